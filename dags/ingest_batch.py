"""
### ingest_batch: a batch lands, is validated, then quarantined or versioned

`watch_landing` starts one run per file delivered to the landing location (a folder or an
`s3://` prefix); by hand, trigger it with a period (and optionally the batch file or URI; by
default `<landing>/<dataset>/<period>.csv`):

1. **validate_batch** reads only batches under the landing location (a path elsewhere, or a
   link leading out of it, is refused unread). A file that is no CSV text of the spec's
   columns (empty, cut off, compressed, binary, not UTF-8, another delimiter, a header
   missing or doubled, a field or file over the spec's `ingest` limits) fails with what and
   where; a readable one runs the Great Expectations suite generated from the spec (columns
   and types, ranges, allowed categories, null-rate limits, row count, timestamps inside the
   period and unique) and the checks against the versioned data (a partial re-delivery, a
   feature gone constant, a unit change, a feature that leaks the target, a column the spec
   does not name). The full result is kept.
2. **route** sends a failing batch to **quarantine_batch**, which copies it and its
   validation result side by side into quarantine and fails the run with a message that
   names every failed expectation. A quarantined batch never reaches training.
3. **version_batch** adds a passing batch to the DVC data registry as a new immutable data
   version (in one form: UTF-8, `\n` line ends, the spec's column order, UTC timestamps, so
   a re-encoded re-delivery of the same data is the same version; only that batch is hashed
   and pushed; one writer at a time, in the pool `retrainer_data_registry`, and pushed to the
   registry's remote when it has one), and **publish** announces it on the
   `retrainer_data_versions` asset, which starts `monitor_drift` (it decides whether the new
   data calls for a retraining).

Re-running a run is safe: the same bytes give the same data version, never a second one,
and a version that already existed is not announced again.
"""

from __future__ import annotations

from airflow.sdk import dag

from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.defaults import REGISTRY_POOL, dag_defaults, dataset_param, param, period_param
from retrainer_airflow.tasks import ingest


@dag(
    dag_id="ingest_batch",
    schedule=None,
    max_active_runs=4,
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "data"],
    params={
        "dataset": dataset_param(),
        "period": period_param(),
        "batch": param(
            None,
            type=["null", "string"],
            title="Batch (optional)",
            description=(
                "the batch file or s3:// URI, under the landing location (empty: <landing>/<dataset>/<period>.csv)"
            ),
            examples=["/data/landing/bike_sharing/2011-03.csv", "s3://landing/bike_sharing/2011-03.parquet"],
        ),
    },
)
def ingest_batch() -> None:
    validation = ingest.validate_batch()
    versioned = ingest.version_batch.override(pool=REGISTRY_POOL)(validation)  # one registry writer at a time
    ingest.route(validation) >> [ingest.quarantine_batch(validation), versioned]
    # inlets: to see what was announced before
    ingest.publish.override(outlets=[DATA_VERSIONS], inlets=[DATA_VERSIONS])(versioned)


ingest_batch()
