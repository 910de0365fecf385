"""Scoring LLM responses: offline scorers, embedding similarity and LLM judges.

Shared by evaluation runs (``retrain``: datasets x candidates x scorers) and by monitors of
production traces (sampled judges), so a score means the same wherever it was made. Where each
part lives: ``scores`` (the case and score types), ``scorers`` (one spec per kind and
:func:`run_scorer`), ``judges`` (:class:`Judge`: structured output with fallbacks, tokens and
cost), ``openai_chat`` (the one OpenAI-compatible chat client; credentials by reference).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.scoring.judges import (
        DEFAULT_CRITERIA,
        Judge,
        JudgeVerdict,
        LlmJudgeSpec,
        Pricer,
        parse_verdict,
    )
    from monitors.scoring.openai_chat import (
        ChatReply,
        Endpoint,
        EndpointError,
        EndpointRefused,
        EndpointUnavailable,
        Guard,
        chat,
        resolve_credential,
    )
    from monitors.scoring.scorers import (
        MAX_SCORERS,
        ScorerSpec,
        is_refusal,
        label_of,
        parse_scorers,
        rouge_l,
        run_scorer,
        token_f1,
    )
    from monitors.scoring.scores import Score, ScoreStatus, ScoringCase
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.scoring.judges": (
                "DEFAULT_CRITERIA",
                "Judge",
                "JudgeVerdict",
                "LlmJudgeSpec",
                "Pricer",
                "parse_verdict",
            ),
            "monitors.scoring.openai_chat": (
                "ChatReply",
                "Endpoint",
                "EndpointError",
                "EndpointRefused",
                "EndpointUnavailable",
                "Guard",
                "chat",
                "resolve_credential",
            ),
            "monitors.scoring.scorers": (
                "MAX_SCORERS",
                "ScorerSpec",
                "is_refusal",
                "label_of",
                "parse_scorers",
                "rouge_l",
                "run_scorer",
                "token_f1",
            ),
            "monitors.scoring.scores": ("Score", "ScoreStatus", "ScoringCase"),
        },
    )

__all__ = [
    "DEFAULT_CRITERIA",
    "MAX_SCORERS",
    "ChatReply",
    "Endpoint",
    "EndpointError",
    "EndpointRefused",
    "EndpointUnavailable",
    "Guard",
    "Judge",
    "JudgeVerdict",
    "LlmJudgeSpec",
    "Pricer",
    "Score",
    "ScoreStatus",
    "ScorerSpec",
    "ScoringCase",
    "chat",
    "is_refusal",
    "label_of",
    "parse_scorers",
    "parse_verdict",
    "resolve_credential",
    "rouge_l",
    "run_scorer",
    "token_f1",
]
