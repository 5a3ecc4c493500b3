"""
### retrain_model: pinned data version to a verified deployment

Runs on schedule as each period starts (monthly while every spec retrains monthly; the most
frequent `training.every` among the specs sets it, `RETRAINER_RETRAIN_SCHEDULE` overrides
it) for the datasets whose retraining period just ended, when `monitor_drift` finds that new data
drifted (its conf carries the dataset, the reason, the drift summary and the data version),
when somebody posts an event to the asset `retrainer_retrain_requests` (its extra may name
`dataset` and `data_version`), or by hand with Params (a bad conf is refused before the run
starts, naming the field). A run trains one dataset: a scheduled run the dataset of its
Params (if due), and **retrain_other_datasets** starts a run of its own for every other due spec; a run
started by requests trains one requested dataset and starts the others the same way. A backfill
(`airflow backfill create --dag-id retrain_model --from-date ... --to-date ...`) retrains
the models of past periods from the data of their time (a run whose interval holds no end of
the dataset's retraining period is skipped, saying so); they are registered and evaluated,
tagged as backfill runs, and never promoted nor deployed.

1. **plan_training** pins the data version (the `data_version` Param, else the one an asset
   event named, else the one that was current at the end of the run's data interval) and
   picks the training window ending there and the holdout period after it. A data version
   and window that another run already trained is skipped unless `force` is set.
2. **validate_window** re-validates every period of the window as read from the registry.
3. **train** trains the Keras model (preprocessing inside the model, tf.data input) and
   logs params, learning curves, the data version, the GX result and the model with its
   signature to this run's MLflow run (a retry reuses that run).
4. **evaluate** scores candidate, champion and a naive baseline on the same holdout and
   applies the gate from the dataset spec.
5. **register** registers the model once (a retry never makes a second version), with
   the evidence as version tags and alias `challenger`.
6. **review**: under the spec's approval policy `review`, waits (deferred, no worker slot)
   for a reviewer's decision with the evidence and links shown on the task's *Required
   actions* page; the reviewer answers there or in MLflow (version tag
   `approval=approved|rejected`), the first answer decides, no answer by the deadline
   rejects. Under policy `auto` it passes straight through.
7. **promote** moves alias `champion` when the gate passed (and a reviewer approved, under
   review) by compare-and-set; if the champion moved meanwhile the candidate is evaluated
   again, never promoted blind. A losing candidate stays registered, tagged with why it
   lost, and nothing is deployed.
8. **deploy** exports the champion as a SavedModel into the model store
   (`<root>/<model>/<version>/`, published in one step) labelled `canary`, and **verify**
   checks it through a model server (health, predictions equal to the registry model's,
   latency) before `stable` moves to it; a failed check puts the previous champion back.
"""

from __future__ import annotations

import os

# ModelReviewOperator's base, imported here at the top so that the DAG processor imports it once,
# in its own process, rather than in every parse of this file (parsing_pre_import_modules)
import airflow.providers.standard.operators.hitl  # noqa: F401
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.interval import CronDataIntervalTimetable

from retrainer_airflow.assets import RETRAIN_REQUESTS
from retrainer_airflow.defaults import dag_defaults, data_version_param, dataset_param, param, retrain_cron
from retrainer_airflow.review import ModelReviewOperator
from retrainer_airflow.tasks import deploy, evaluate, release, train


@dag(
    dag_id="retrain_model",
    # as each period starts (monthly for monthly specs: retrain_cron), for the period that just
    # ended (a data interval), and whenever somebody asks
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(retrain_cron(), timezone="UTC"), assets=[RETRAIN_REQUESTS]
    ),
    # several at once, so one dataset's retraining (or its review) never holds up another's;
    # two drift retrainings of one dataset are kept apart by monitor_drift's in-flight check
    max_active_runs=int(os.environ.get("RETRAINER_RETRAIN_MAX_RUNS", "4")),
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "training"],
    params={
        "dataset": dataset_param(),
        "data_version": data_version_param(),
        "window": param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=8784,  # a leap year of hourly periods
            title="Training window (optional)",
            description="periods of the dataset's frequency to train on; empty: the spec's window. At least 1"
            " (the form's number field does not go below it)",
            examples=[6, 12],
        ),
        "epochs": param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=500,
            title="Epochs (optional)",
            description="most epochs to train; empty: the spec's",
            examples=[5, 40],
        ),
        "force": param(
            False,
            type="boolean",
            title="Force",
            description="train even if this data version and window already have a model",
            examples=[True],
        ),
        "reason": param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason (optional)",
            description="why this run was started, recorded in MLflow; empty: the kind of run (manual, scheduled)",
            examples=["upstream fixed the March humidity values"],
        ),
        "drift": param(
            None,
            type=["null", "object"],
            title="Drift summary (set by monitor_drift)",
            description="filled in by monitor_drift when drift started the run; leave empty by hand",
            examples=[{"drifted_features": ["temp"], "drift_share": 0.6}],
        ),
    },
)
def retrain_model() -> None:
    # a run trains one dataset; the others its schedule or its requests cover get runs of their own
    TriggerDagRunOperator.partial(
        task_id="retrain_other_datasets", trigger_dag_id="retrain_model", skip_when_already_exists=True
    ).expand_kwargs(train.plan_other_datasets())

    plan = train.plan_training()
    trained = train.train(plan, train.validate_window(plan))
    evaluated = evaluate.evaluate(plan, trained)
    registered = release.register(plan, trained, evaluated)
    review = ModelReviewOperator(task_id="review", plan=plan, evaluation=evaluated, registered=registered)
    promoted = release.promote(plan, trained, evaluated, registered)
    review >> promoted
    deploy.verify(plan, deploy.deploy(plan, registered, promoted))


retrain_model()
