"""Monitors over a deployment's LLM traces: operations, text descriptors, embedding drift.

Each kind reads the window's model and tool calls (:mod:`monitors.llm.calls`) and a reference
window of the same deployment (:mod:`monitors.llm.windows`); the kinds register themselves in
:mod:`monitors.kinds` when first run (``llm_operations``, ``text_descriptors``,
``embedding_drift``).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.llm.calls import CALL_COLUMNS, answer_of, question_of, read_calls
    from monitors.llm.windows import CallWindows, read_call_windows, reference_range
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.llm.calls": ("CALL_COLUMNS", "answer_of", "question_of", "read_calls"),
            "monitors.llm.windows": ("CallWindows", "read_call_windows", "reference_range"),
        },
    )

__all__ = [
    "CALL_COLUMNS",
    "CallWindows",
    "answer_of",
    "question_of",
    "read_call_windows",
    "read_calls",
    "reference_range",
]
