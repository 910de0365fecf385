"""Which engine summarises a window: the local streaming pass, or Spark for large windows.

Only the summaries change engine; statistics, verdicts and findings are computed from them
the same way, so both engines give the same findings. Spark pays off only on large windows
(starting its JVM and Python workers costs seconds: ``bench/spark_engine.py`` measures where),
so ``auto`` sends a window to Spark from ``row_threshold`` rows, and named deployments always.
Today the drift and prediction-drift kinds summarise on Spark; other kinds run locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ENGINES", "EngineName", "SummaryEngine"]

EngineName = Literal["local", "spark"]
ENGINES: tuple[str, ...] = ("local", "spark", "auto")


@dataclass(frozen=True, slots=True)
class SummaryEngine:
    """The engine rule of a process (the settings ``monitor_engine``, ``spark_*``).

    Attributes:
        mode: ``local`` (always), ``spark`` (always) or ``auto`` (by size and deployment).
        row_threshold: Under ``auto``, windows of at least this many rows go to Spark.
        deployments: Under ``auto``, deployment names whose windows always go to Spark.
        master: The Spark master URL (``local[2]`` runs Spark inside this machine).
    """

    mode: Literal["local", "spark", "auto"] = "local"
    row_threshold: int = 5_000_000
    deployments: frozenset[str] = frozenset()
    master: str = "local[2]"

    def choose(self, *, rows: int, deployment: str | None = None) -> EngineName:
        """Return the engine for a window of ``rows`` rows of ``deployment``."""
        if self.mode == "auto":
            if deployment is not None and deployment in self.deployments:
                return "spark"
            return "spark" if rows >= self.row_threshold else "local"
        return self.mode
