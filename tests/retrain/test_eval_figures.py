"""A run's figures: bootstrap interval of the mean, pass rates, p95 latency, cost never $0."""

from __future__ import annotations

import numpy as np
import pytest

from monitors.scoring import Score
from retrain.eval_figures import CallRecord, RunFigures, bootstrap_mean, summarise


def test_the_bootstrap_interval_holds_the_mean_and_matches_a_direct_resampling() -> None:
    values = [0.0, 1.0, 1.0, 0.5, 0.25, 1.0, 0.75, 0.0]
    mean, low, high = bootstrap_mean(values)
    assert mean == pytest.approx(np.mean(values))
    assert low < mean < high
    rng = np.random.default_rng(7)
    direct = [np.mean(rng.choice(values, size=len(values))) for _ in range(4000)]
    assert low == pytest.approx(np.percentile(direct, 2.5), abs=0.05)
    assert high == pytest.approx(np.percentile(direct, 97.5), abs=0.05)
    assert bootstrap_mean([0.4]) == (0.4, 0.4, 0.4)
    assert bootstrap_mean(values) == (mean, low, high)  # fixed seed: the same run, same figures


def test_summarise_counts_errors_apart_and_never_prices_the_unknown_as_zero() -> None:
    calls = [
        CallRecord(True, 100.0, 10, 5, 30),
        CallRecord(True, 300.0, 12, 6, None),
        CallRecord(False, None, None, None, None),
    ]
    scores = {
        "exact_match": [
            Score.of(1.0, threshold=1.0),
            Score.of(0.0, threshold=1.0),
            Score.error("x"),
        ],
        "judge": [
            Score.of(
                0.75,
                threshold=0.75,
                judge_score=4,
                input_tokens=50,
                output_tokens=9,
                cost_nano_usd=None,
            ),
            Score.error("judge down"),
            Score.error("no answer"),
        ],
    }
    figures = summarise(calls=calls, scores=scores)
    exact = figures.scorers["exact_match"]
    assert (exact.mean, exact.pass_rate, exact.scored, exact.errors) == (0.5, 0.5, 2, 1)
    judge = figures.scorers["judge"]
    assert (judge.mean, judge.errors) == (0.75, 2)
    assert figures.calls.calls == 3
    assert figures.calls.call_errors == 1
    assert (figures.calls.input_tokens, figures.calls.output_tokens) == (22, 11)
    assert figures.calls.cost_nano_usd == 30
    assert figures.calls.unpriced_calls == 1
    assert figures.calls.p95_latency_ms == 300.0
    assert figures.calls.judge_input_tokens == 50
    assert figures.calls.judge_cost_nano_usd is None
    assert RunFigures.from_dict(figures.to_dict()) == figures
