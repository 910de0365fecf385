"""The demo's Adult income data: where the shipped files are, how to read them, and the step.

:func:`train` is a real pipeline entry point (``api.demo.adult:train``): it trains what the demo
deploys, an ``OrdinalEncoder`` for the categorical columns in front of scikit-learn's
``HistGradientBoostingClassifier`` (TreeSHAP can explain the final tree model on the encoded
features; LightGBM's wrapper fails on scikit-learn 1.9). Training data is whatever the run was
given — dataset versions or labelled inferences resolved to files by the runner — or, failing
that, the ``train_path`` parameter. Files are the UCI Adult CSV (header-less, optionally gzipped,
``>50K`` labels), a CSV with a header, or Parquet with the same column names; :func:`read_adult`
(``api.demo.adult:read_adult``) is the evaluation reader for them.

Parameters (all optional): ``train_path``, ``max_rows`` (sample size, 0 = all), ``test_size``,
``max_iter``, ``learning_rate``, ``random_state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.demo.options import DemoFailed
from lineage.errors import InvalidInput
from retrain.mlflow_registry import dataset_digest, save_sklearn_model
from retrain.step import StepContext, TrainingInput

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = [
    "CATEGORICAL",
    "COLUMNS",
    "FEATURES",
    "NUMERIC",
    "TARGET",
    "build_model",
    "find_adult_data",
    "read_adult",
    "train",
]

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
CATEGORICAL = [
    "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
    "native_country",
]  # fmt: skip
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "income"


def find_adult_data() -> Path:
    """Return the shipped ``data/adult`` directory (repository or installed checkout).

    Raises:
        DemoFailed: Neither the package's checkout nor the working directory has it.
    """
    candidates = [Path(__file__).resolve().parents[2] / "data" / "adult", Path.cwd() / "data/adult"]
    for candidate in candidates:
        if (candidate / "adult.data.gz").is_file() and (candidate / "adult.test.gz").is_file():
            return candidate
    raise DemoFailed(
        "1", f"the UCI Adult data is not in {' or '.join(map(str, candidates))}; reinstall Warden"
    )


def _labels(values: pd.Series) -> pd.Series:
    if values.dtype == object or str(values.dtype).startswith(("string", "category")):
        text = values.astype(str).str.strip().str.rstrip(".")
        return text.isin([">50K", "1", "True", "true"]).astype(int)
    return values.astype(int)


def read_adult(uri: str) -> pd.DataFrame:
    """Read Adult rows from a UCI file, a CSV with a header, or Parquet; label 1 means >50K.

    Numeric columns are floats, so the logged model schema accepts missing values.
    """
    import pandas as pd

    path = Path(uri.removeprefix("file://"))
    if path.suffix == ".parquet" or path.is_dir():
        frame = pd.read_parquet(path)
    else:
        head = pd.read_csv(path, nrows=1, header=None, comment="|", skipinitialspace=True)
        has_header = "age" in {str(v).strip() for v in head.iloc[0].tolist()}
        frame = pd.read_csv(
            path,
            header=0 if has_header else None,
            names=None if has_header else COLUMNS,
            skipinitialspace=True,
            na_values="?",
            comment="|",
        )
    missing = sorted({*FEATURES, TARGET} - set(frame.columns))
    if missing:
        raise InvalidInput(f"{path.name} lacks the Adult columns {missing}", field="train_path")
    frame = frame.dropna(subset=[TARGET]).reset_index(drop=True)
    frame[TARGET] = _labels(frame[TARGET])
    for column in NUMERIC:
        frame[column] = frame[column].astype("float64")
    for column in CATEGORICAL:
        frame[column] = frame[column].astype("object")
    return frame


def build_model(
    *, max_iter: int = 100, learning_rate: float = 0.1, random_state: int = 0
) -> Pipeline:
    """Return the untrained income classifier: ordinal encoding, then gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encoder = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, random_state=random_state
    )
    return Pipeline([("encode", encoder), ("classify", classifier)])


def _inputs(context: StepContext) -> list[TrainingInput]:
    if context.training_inputs:
        return list(context.training_inputs)
    path = context.parameters.get("train_path")
    if not path:
        raise InvalidInput(
            "the run has no training data: give the pipeline dataset versions or inferences, "
            "or a 'train_path' parameter",
            field="training_data",
        )
    resolved = Path(str(path)).resolve()
    return [TrainingInput(name=resolved.name, uri=str(resolved))]


def train(context: StepContext) -> dict[str, Any]:
    """Train one income classifier, save it in the output folder; return what it produced."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    params = context.parameters
    max_rows = int(params.get("max_rows") or 0)
    test_size = float(params.get("test_size") or 0.2)
    random_state = int(params.get("random_state") or 0)
    max_iter = int(params.get("max_iter") or 100)
    learning_rate = float(params.get("learning_rate") or 0.1)

    inputs = _inputs(context)
    frames = [read_adult(item.uri) for item in inputs]
    data = pd.concat(frames, ignore_index=True)
    if max_rows and len(data) > max_rows:
        data = data.sample(n=max_rows, random_state=random_state).reset_index(drop=True)
    train_rows, valid_rows = train_test_split(
        data, test_size=test_size, random_state=random_state, stratify=data[TARGET]
    )
    model = build_model(max_iter=max_iter, learning_rate=learning_rate, random_state=random_state)
    model.fit(train_rows[FEATURES], train_rows[TARGET])
    predicted = model.predict(valid_rows[FEATURES])
    scores = model.predict_proba(valid_rows[FEATURES])[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(valid_rows[TARGET], predicted)),
        "f1": float(f1_score(valid_rows[TARGET], predicted)),
        "roc_auc": float(roc_auc_score(valid_rows[TARGET], scores)),
        "train_rows": float(len(train_rows)),
        "validation_rows": float(len(valid_rows)),
    }
    print(f"trained on {len(train_rows)} rows: {metrics}", flush=True)

    # The step runs sandboxed and never talks to MLflow: it saves the model in its output
    # folder, and the worker logs it with these parameters, metrics and inputs and registers it.
    save_sklearn_model(
        model, Path(context.work_dir) / "model", input_example=valid_rows[FEATURES].head(5)
    )
    datasets = [
        dataset_digest(frame, source=item.uri, name=item.name, targets=TARGET)
        for item, frame in zip(inputs, frames, strict=True)
    ]
    print(f"saved the model for {context.model_name} in the run's output", flush=True)
    # Data the run was not handed (a train_path) is reported, so lineage links it as well.
    read = (
        []
        if context.training_inputs
        else [
            {"namespace": "file", "name": item.uri, "version": dataset["digest"]}
            for item, dataset in zip(inputs, datasets, strict=True)
        ]
    )
    schema = {column: "float" for column in NUMERIC} | {
        column: "category" for column in CATEGORICAL
    }
    return {
        "model_dir": "model",
        "datasets": datasets,
        "metrics": metrics,
        "parameters": {
            "max_rows": max_rows,
            "test_size": test_size,
            "max_iter": max_iter,
            "learning_rate": learning_rate,
            "random_state": random_state,
        },
        "feature_schema": schema,
        "inputs": read,
    }
