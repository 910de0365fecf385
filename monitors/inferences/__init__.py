"""Inference logs and labels: checked against the model's input schema, stored append-only.

What goes in (one batch at a time, at most :data:`MAX_BATCH` records):

* an inference record carries a client request id, a time, the features (one value per input
  column), the prediction, and the score (probability of the positive class) or the class
  probabilities; optionally context values that are not model inputs (sensitive attributes,
  slices; stored as ``context.<name>`` columns) and per-feature attributions (stored as JSON);
* a label record carries a request id already logged and the ground truth, arriving later.

A record whose *structure* does not match the deployment's model version (``feature_schema`` in
lineage: a column missing, an unknown column, a text where a number belongs) is refused with
:class:`~lineage.errors.InvalidInput` naming the field (``records[3].features.age``), and then
nothing of the batch is stored. A well-formed record with bad *values* (nulls, NaN,
out-of-range numbers, unseen categories) is kept: counting those is the data-quality monitor's
job, and dropping them would hide exactly what it must see.

Storage: each accepted batch is one Parquet object (a partition) in the artifact store (the data
directory or an S3 bucket, :mod:`lineage.storage`), under a key made of ids only
(:func:`partition_key`), plus one ``monitors_inference_batch`` row that lists it and one run
of its request ids (sorted id hashes of its kind, inferences or labels,
:mod:`monitors.inferences.runs`), so a re-sent request id is counted once (the first record
wins; the duplicate is reported as such, not stored). The object is written whole before the
transaction commits, so a committed batch always has its object; one whose transaction rolled
back is deleted again and never listed, so it is never read.

A monitor reads a window with :func:`read_window`: the inference partitions of a deployment
slot overlapping ``[start, end)``, filtered by record time, with labels joined by request id;
a local explanation reads one logged record with :func:`read_inference`.

A plain JSON batch is checked and shaped column by column, any other record by record. Where
each part lives: ``records`` (what a client sends), ``columnar`` (a plain batch as Arrow
columns), ``ingest`` (checking and storing a batch), ``runs`` (which request ids a deployment
logged or labelled), ``partitions`` (batch and run rows, the key rows before them, partition
keys), ``kept`` (an uploaded Parquet file stored as it came, when it already is a partition),
``windows`` (reading back).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.inferences.columnar import Irregular, inference_table
    from monitors.inferences.ingest import (
        deployment_of,
        log_inference_table,
        log_inference_upload,
        log_inferences,
        log_labels,
    )
    from monitors.inferences.partitions import (
        InferenceBatch,
        InferenceKey,
        LabelKey,
        partition_key,
    )
    from monitors.inferences.records import (
        CONTEXT_PREFIX,
        MAX_BATCH,
        RESERVED_COLUMNS,
        Cell,
        InferenceRecord,
        IngestResult,
        LabelRecord,
        records_from_frame,
        refuse_non_finite,
    )
    from monitors.inferences.windows import read_inference, read_window, slot_deployments
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.inferences.columnar": ("Irregular", "inference_table"),
            "monitors.inferences.ingest": (
                "deployment_of",
                "log_inference_table",
                "log_inference_upload",
                "log_inferences",
                "log_labels",
            ),
            "monitors.inferences.partitions": (
                "InferenceBatch",
                "InferenceKey",
                "LabelKey",
                "partition_key",
            ),
            "monitors.inferences.records": (
                "CONTEXT_PREFIX",
                "MAX_BATCH",
                "RESERVED_COLUMNS",
                "Cell",
                "InferenceRecord",
                "IngestResult",
                "LabelRecord",
                "records_from_frame",
                "refuse_non_finite",
            ),
            "monitors.inferences.windows": ("read_inference", "read_window", "slot_deployments"),
        },
    )

__all__ = [
    "CONTEXT_PREFIX",
    "MAX_BATCH",
    "RESERVED_COLUMNS",
    "Cell",
    "InferenceBatch",
    "InferenceKey",
    "InferenceRecord",
    "IngestResult",
    "Irregular",
    "LabelKey",
    "LabelRecord",
    "deployment_of",
    "inference_table",
    "log_inference_table",
    "log_inference_upload",
    "log_inferences",
    "log_labels",
    "partition_key",
    "read_inference",
    "read_window",
    "records_from_frame",
    "refuse_non_finite",
    "slot_deployments",
]
