"""Reference baselines: what a monitor compares a window against, and where it is kept.

``column_summary`` holds the maths of one column's mergeable summary, ``summary`` the whole
reference (``Baseline``: every column plus named extras, built and merged), ``storage`` the
stored baselines of deployments (rows, JSON files in the artifact store, uploaded references).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.baseline.column_summary import (
        BINS,
        FREQUENCY_LIMIT,
        RAW_LIMIT,
        SAMPLE_LIMIT,
        CategoricalSummary,
        ColumnSummary,
        ColumnType,
        NumericSummary,
    )
    from monitors.baseline.storage import (
        BaselineCreate,
        BaselinePublic,
        StoredBaseline,
        create_baseline,
        get_baseline,
        latest_baseline,
        list_baselines,
        load_baseline,
        save_baseline,
        store_reference,
    )
    from monitors.baseline.summary import Baseline, build_baseline, merge
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.baseline.column_summary": (
                "BINS",
                "FREQUENCY_LIMIT",
                "RAW_LIMIT",
                "SAMPLE_LIMIT",
                "CategoricalSummary",
                "ColumnSummary",
                "ColumnType",
                "NumericSummary",
            ),
            "monitors.baseline.storage": (
                "BaselineCreate",
                "BaselinePublic",
                "StoredBaseline",
                "create_baseline",
                "get_baseline",
                "latest_baseline",
                "list_baselines",
                "load_baseline",
                "save_baseline",
                "store_reference",
            ),
            "monitors.baseline.summary": ("Baseline", "build_baseline", "merge"),
        },
    )

__all__ = [
    "BINS",
    "FREQUENCY_LIMIT",
    "RAW_LIMIT",
    "SAMPLE_LIMIT",
    "Baseline",
    "BaselineCreate",
    "BaselinePublic",
    "CategoricalSummary",
    "ColumnSummary",
    "ColumnType",
    "NumericSummary",
    "StoredBaseline",
    "build_baseline",
    "create_baseline",
    "get_baseline",
    "latest_baseline",
    "list_baselines",
    "load_baseline",
    "merge",
    "save_baseline",
    "store_reference",
]
