"""Benchmark: offline sentence embeddings and a full embedding-drift run on Banking77.

Run ``python -m bench.embeddings`` (defaults: throughput on 500 questions with one BLAS thread,
then embedding drift on 2 x 1,000 questions with two threads); ``--texts N`` runs it small.

What is measured, in one process, with nothing fetched from a network:

* throughput: texts per second of ``monitors.embeddings`` on one core (BLAS and OpenMP pools
  limited to one thread with threadpoolctl), model loading excluded and timed apart;
* a full run: embed a reference of N Banking77 questions (both splits) and a current window of
  N with a surge of lost-or-stolen-card questions (a third of it), then
  ``compute_embedding_drift`` (domain classifier, MMD with 200 permutations, topic mix) on two
  threads — wall time of embedding, of the drift computation and of both, and every verdict;
* the network interfaces the process could see (``/proc/net/dev``): only ``lo`` inside
  ``unshare -n``.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from monitors.embedding_drift import compute_embedding_drift
from monitors.embeddings import get_embedder

DATA = Path(__file__).resolve().parent.parent / "data" / "banking77"
SURGE = ("lost_or_stolen_card", "compromised_card", "card_swallowed")


def questions(split: str = "train") -> list[tuple[str, str]]:
    """Return Banking77 ``(text, intent)`` pairs."""
    with gzip.open(DATA / f"{split}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def windows(texts: int, *, seed: int) -> tuple[list[str], list[str]]:
    """Return a reference of natural traffic and a current window a third of it card-loss."""
    rows = questions("train") + questions("test")  # 349 card-loss questions in all
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    surge = [int(index) for index in order if rows[index][1] in SURGE]
    natural = [int(index) for index in order if rows[index][1] not in SURGE]
    surged = texts // 3
    if len(surge) < surged or len(natural) < 2 * texts:
        raise SystemExit(f"--texts {texts} is more than Banking77 allows")
    reference = [rows[index][0] for index in natural[:texts]]
    current = [rows[index][0] for index in natural[texts : 2 * texts - surged] + surge[:surged]]
    return reference, current


def interfaces() -> list[str]:
    """Return the network interfaces this process can see."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000, help="questions per side (drift)")
    parser.add_argument("--throughput-texts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the full run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    embedder = get_embedder()
    load_seconds = time.perf_counter() - started
    print(f"model loaded in {load_seconds:.2f} s", file=sys.stderr)

    sample = [text for text, _ in questions("test")[: args.throughput_texts]]
    with threadpool_limits(limits=1):
        embedder.embed(sample[:8])  # warm-up: first BLAS calls allocate their buffers
        started = time.perf_counter()
        embedder.embed(sample)
        one_core = time.perf_counter() - started
    throughput = len(sample) / one_core
    print(f"throughput, one core: {throughput:.1f} texts/s", file=sys.stderr)

    reference_texts, current_texts = windows(args.texts, seed=args.seed)
    with threadpool_limits(limits=args.threads):
        started = time.perf_counter()
        reference = embedder.embed(reference_texts)
        current = embedder.embed(current_texts)
        embedded = time.perf_counter()
        result = compute_embedding_drift(
            reference, current, seed=args.seed, reference_texts=reference_texts
        )
        finished = time.perf_counter()
    verdicts = {finding.metric: finding.status.value for finding in result.findings()}
    print(f"embedding drift, 2 x {args.texts}: {finished - started:.1f} s", file=sys.stderr)
    figures: dict[str, Any] = {
        "texts_per_side": args.texts,
        "model_load_seconds": round(load_seconds, 3),
        "throughput_texts": len(sample),
        "throughput_texts_per_second_one_core": round(throughput, 2),
        "threads": args.threads,
        "embed_seconds": round(embedded - started, 3),
        "drift_seconds": round(finished - embedded, 3),
        "full_run_seconds": round(finished - started, 3),
        "verdicts": verdicts,
        "drifted": result.drifted,
        "auc": result.domain.auc if result.domain else None,
        "grown_topic": result.topics.grown if result.topics else None,
        "network_interfaces": interfaces(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
