"""
### rollback_model: serve an earlier model version again, on purpose and on the record

Trigger by hand with a version number, or `previous` for the version the current champion
replaced, and a reason. The task redeploys that version if the model store lacks it,
verifies it from the store against the registry model, moves alias `champion` to it
(compare-and-set: it fails if the champion moved meanwhile) and the `stable` label with it
(servers pick that up without a restart), and records who, why and when on both versions.
"""

from __future__ import annotations

from airflow.sdk import dag

from retrainer_airflow.defaults import dag_defaults, dataset_param, param
from retrainer_airflow.tasks import rollback


@dag(
    dag_id="rollback_model",
    schedule=None,
    max_active_runs=1,
    **dag_defaults(retries=0),
    doc_md=__doc__,
    tags=["retrainer", "deployment"],
    params={
        "dataset": dataset_param(),
        "version": param(
            "previous",
            type="string",
            pattern=r"^(previous|\d+)$",
            title="Version",
            description="the model version to serve again: 'previous' (the one the champion replaced) or its number",
            examples=["previous", "3"],
        ),
        "reason": param(
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason (required)",
            description="why you roll back, at least 3 characters; recorded on both model versions",
            examples=["v5 under-predicts weekend demand"],
        ),
    },
)
def rollback_model() -> None:
    rollback.rollback()


rollback_model()
