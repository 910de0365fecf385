"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions."""

__all__: list[str] = []
