"""Performance estimated before labels arrive: CBPE for classifiers, DLE for regressors.

``cbpe`` and ``dle`` hold the maths (fit on a labelled reference, estimate a window with
sampling-error bands), ``monitor`` the ``performance_estimate`` kind that judges the estimates
and says when they cannot be trusted. The method, its assumptions and its limits are described in
``docs/monitors.md``.
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.estimation.cbpe import (
        ClassificationReference,
        estimate_classification,
        fit_classification,
        realised_classification,
    )
    from monitors.estimation.dle import (
        RegressionReference,
        estimate_regression,
        fit_regression,
        realised_regression,
    )
    from monitors.estimation.monitor import SECTION, reference_estimation
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.estimation.cbpe": (
                "ClassificationReference",
                "estimate_classification",
                "fit_classification",
                "realised_classification",
            ),
            "monitors.estimation.dle": (
                "RegressionReference",
                "estimate_regression",
                "fit_regression",
                "realised_regression",
            ),
            "monitors.estimation.monitor": ("SECTION", "reference_estimation"),
        },
    )

__all__ = [
    "SECTION",
    "ClassificationReference",
    "RegressionReference",
    "estimate_classification",
    "estimate_regression",
    "fit_classification",
    "fit_regression",
    "realised_classification",
    "realised_regression",
    "reference_estimation",
]
