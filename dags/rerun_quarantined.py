"""
### rerun_quarantined: judge a dataset's quarantined deliveries again, after its spec changed

Trigger by hand with a dataset (and a period, or none for every period not versioned yet),
once the spec allows what quarantined them (a seasonal column's `checks`, a wider
`max_scale_change`, a category added). **plan_reruns** finds the dataset's quarantined
deliveries; **start_ingest** starts an `ingest_batch` run for each, named by the delivery's
bytes and the spec's text: triggered again with the same spec it starts nothing, after another
spec change it judges them anew. Each run validates, and versions or quarantines, as any
delivery's does.

    airflow dags trigger rerun_quarantined --conf '{"dataset": "bike_sharing"}'
    airflow dags trigger rerun_quarantined --conf '{"dataset": "bike_sharing", "period": "2011-04"}'
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag

from retrainer.periods import ANY
from retrainer_airflow.defaults import dag_defaults, dataset_param, param
from retrainer_airflow.sensors import INGEST_DAG_ID
from retrainer_airflow.tasks import ingest


@dag(
    dag_id="rerun_quarantined",
    schedule=None,
    max_active_runs=1,
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "data"],
    params={
        "dataset": dataset_param("the dataset whose quarantined deliveries are judged again"),
        "period": param(
            None,
            type=["null", "string"],
            pattern=f"^(?:{ANY})$",
            title="Period (optional)",
            description="one period's quarantined deliveries (even if the period is versioned); empty: every"
            " period not versioned yet",
            examples=["2011-04"],
        ),
    },
)
def rerun_quarantined() -> None:
    TriggerDagRunOperator.partial(
        task_id="start_ingest", trigger_dag_id=INGEST_DAG_ID, skip_when_already_exists=True
    ).expand_kwargs(ingest.plan_reruns())


rerun_quarantined()
