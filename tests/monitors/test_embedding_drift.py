"""Embedding drift on real Banking77 questions, and its contract on small synthetic samples."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from lineage.errors import InvalidInput
from monitors.embedding_drift import MONITOR, compute_embedding_drift, mmd_test
from monitors.embeddings import embed_texts
from monitors.findings import Finding, Status
from tests.banking77 import CARD_INTENTS, banking77

SEEDS = 20


@pytest.fixture(scope="module")
def pool() -> tuple[list[str], npt.NDArray[np.str_], npt.NDArray[np.float32]]:
    """900 test-split questions: every card-loss one and a random sample of the rest, embedded."""
    rows = banking77("test")
    card = [index for index, (_, intent) in enumerate(rows) if intent in CARD_INTENTS]
    rest = [index for index, (_, intent) in enumerate(rows) if intent not in CARD_INTENTS]
    chosen = card + [int(i) for i in np.random.default_rng(7).choice(rest, 900 - len(card), False)]
    texts = [rows[index][0] for index in chosen]
    intents = np.array([rows[index][1] for index in chosen])
    return texts, intents, embed_texts(texts)


@pytest.mark.slow
def test_two_random_halves_of_the_same_traffic_rarely_alarm(
    pool: tuple[list[str], npt.NDArray[np.str_], npt.NDArray[np.float32]],
) -> None:
    _, intents, vectors = pool
    natural = np.flatnonzero(~np.isin(intents, CARD_INTENTS))
    alarms = {"domain_classifier_auc": 0, "mmd_p_value": 0, "topic_mix_p_value": 0, "any": 0}
    for seed in range(SEEDS):
        halves = np.random.default_rng(seed).permutation(natural)[:600]
        result = compute_embedding_drift(vectors[halves[:300]], vectors[halves[300:]], seed=seed)
        for finding in result.findings():
            alarms[finding.metric] += finding.status is Status.ALERT
        alarms["any"] += result.drifted
    rates = {metric: count / SEEDS for metric, count in alarms.items()}
    print(f"false alarms over {SEEDS} seeds, 300 vs 300 questions, alpha 0.01: {rates}")
    # alpha is 1% per view: one alarm in 20 runs is chance, three would mean a broken null.
    assert all(count <= 1 for metric, count in alarms.items() if metric != "any"), rates
    assert alarms["any"] <= 2, rates


@pytest.mark.slow
def test_a_surge_of_lost_or_stolen_card_questions_is_found(
    pool: tuple[list[str], npt.NDArray[np.str_], npt.NDArray[np.float32]],
) -> None:
    texts, intents, vectors = pool
    card = np.flatnonzero(np.isin(intents, CARD_INTENTS))
    natural = np.random.default_rng(1).permutation(np.flatnonzero(~np.isin(intents, CARD_INTENTS)))
    # The reference carries card-loss questions at their natural share (4%), the current 33%.
    reference, current = np.r_[natural[:288], card[:12]], np.r_[natural[300:500], card[12:112]]
    result = compute_embedding_drift(
        vectors[reference], vectors[current], reference_texts=[texts[i] for i in reference]
    )
    findings = {finding.metric: finding for finding in result.findings()}
    assert {f.status for f in findings.values()} == {Status.ALERT}, result.to_dict()
    assert findings["domain_classifier_auc"].value > 0.6  # type: ignore[operator]
    assert result.topics is not None
    grown = result.topics.grown
    print(f"grown topic: {grown!r} ({intents[texts.index(grown)]}); {result.to_dict()}")
    assert intents[texts.index(grown)] in CARD_INTENTS, grown
    assert result.topics.js_distance > 0.1


def _gaussians(seed: int, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(n, 8))
    current = rng.normal(size=(n, 8))
    current += shift
    return reference, current


def test_a_shifted_sample_alerts_on_every_view_and_findings_round_trip() -> None:
    reference, current = _gaussians(0, 150, shift=1.0)
    result = compute_embedding_drift(reference, current, permutations=99)
    assert result.drifted
    for finding in result.findings(scope="column:question"):
        assert finding.monitor == MONITOR
        assert finding.scope == "column:question"
        assert finding.status is Status.ALERT
        assert Finding.from_dict(finding.to_dict()) == finding
    assert result.mmd is not None
    assert result.mmd.p_value == pytest.approx(1 / 100)


def test_same_distribution_stays_quiet() -> None:
    reference, current = _gaussians(1, 150)
    result = compute_embedding_drift(reference, current, permutations=99)
    assert not result.drifted
    assert {finding.status for finding in result.findings()} == {Status.OK}


def test_small_samples_are_insufficient_not_judged() -> None:
    reference, current = _gaussians(2, 12, shift=5.0)
    result = compute_embedding_drift(reference, current)
    findings = result.findings()
    assert [finding.status for finding in findings] == [Status.INSUFFICIENT] * 3
    assert all(finding.value is None for finding in findings)
    assert findings[0].detail["min_samples"] == 20
    assert not result.drifted


def test_mmd_permutation_p_value_matches_a_direct_recomputation() -> None:
    reference, current = _gaussians(3, 40, shift=0.3)
    result = mmd_test(reference, current, permutations=50, seed=4)
    pooled = np.vstack([reference, current])
    distances = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(axis=-1)
    kernel = np.exp(-distances / (2 * result.bandwidth**2))

    def mmd2(first: np.ndarray, second: np.ndarray) -> float:
        kxx, kyy = kernel[np.ix_(first, first)], kernel[np.ix_(second, second)]
        n, m = len(first), len(second)
        return float(
            (kxx.sum() - n) / (n * (n - 1))
            + (kyy.sum() - m) / (m * (m - 1))
            - 2 * kernel[np.ix_(first, second)].mean()
        )

    assert result.mmd2 == pytest.approx(mmd2(np.arange(40), np.arange(40, 80)))
    assert result.bandwidth == pytest.approx(
        np.sqrt(np.median(distances[np.triu_indices(80, 1)]) / 2)
    )


@pytest.mark.parametrize(
    ("reference", "current", "kwargs", "field"),
    [
        (np.zeros((30, 4)), np.zeros((30, 5)), {}, "current"),
        (np.full((30, 4), np.nan), np.zeros((30, 4)), {}, "reference"),
        (np.zeros(30), np.zeros((30, 4)), {}, "reference"),
        (np.zeros((30, 4)), np.zeros((30, 4)), {"alpha": 0.7}, "alpha"),
        (np.zeros((30, 4)), np.zeros((30, 4)), {"permutations": 0}, "permutations"),
        (np.zeros((30, 4)), np.zeros((30, 4)), {"reference_texts": ["a"]}, "reference_texts"),
    ],
)
def test_bad_input_names_the_field(
    reference: np.ndarray, current: np.ndarray, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        compute_embedding_drift(reference, current, **kwargs)  # type: ignore[arg-type]
    assert error.value.field == field
