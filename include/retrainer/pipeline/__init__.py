"""The stages of the pipelines, one module per stage, one function per Airflow task.

Each step takes and returns the typed records of ``retrainer.records`` (references: paths,
versions, ids; never data frames) and is idempotent: run again with the same inputs it finds
what it made the first time and returns the same answer instead of making a second one.

==========  ====================================================  ======================
module      steps                                                 DAG
==========  ====================================================  ======================
ingest      validate_batch -> quarantine_batch | version_batch    ingest_batch
train       plan_training -> validate_window -> train_and_log     retrain_model
evaluate    evaluate (candidate vs champion vs baseline, gate)    retrain_model
release     register -> (review) -> promote                       retrain_model
deploy      deploy -> verify_deployment                           retrain_model
rollback    rollback, roll_back_bad_deploy                        rollback_model, verify
monitor     check_drift, cooldown_remaining                       monitor_drift
==========  ====================================================  ======================

Nothing here imports Airflow; ``retrainer_airflow.tasks`` mirrors this package and turns
outcomes into Airflow states.
"""
