"""The retrainer tasks, one module per stage (mirroring ``retrainer.pipeline``), each task declared
once with ``boundary.record_task``: a function typed with the records it takes and returns.

A task reads its upstream records from XCom (and its run's Params as a conf record) through the
boundary, calls the library, and turns outcomes into Airflow states (a quarantined batch fails its
run; a model that is not promoted skips deployment); its result goes back to XCom as strict JSON.

DAG files import these modules while they are parsed: a module holds its task declarations and
imports nothing of the library at its top (the records are named under ``TYPE_CHECKING`` and
resolved when a task runs; ``retrainer.pipeline`` and through it pandas, GX, MLflow and
TensorFlow are imported inside the functions).
"""
