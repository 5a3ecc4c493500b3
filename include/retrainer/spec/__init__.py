"""Dataset specs: what a dataset is, read from its spec file.

A spec names the time column, the target and the task, the features with their types,
ranges and categories, and how to train, judge, review, deploy and watch models on it.
The pipeline knows nothing about a dataset beyond its spec, so a new dataset is a new spec
file. Where things live is apart, in ``retrainer.settings``.

One module per part of the file, each with its records and the reader of its sections:

- ``dataset``: ``DatasetSpec`` (the whole spec, ``DatasetSpec.load``) and the top level;
- ``columns``: the target and the features (``target``, ``features``, ``unique_by``, ``time_format``);
- ``intake``: what a delivered batch may be (``ingest``, ``rows``) and the reader's ``Limits``;
- ``learning``: how models are trained, judged and watched for drift (``training``, ``gate``, ``drift``);
- ``rollout``: who approves a candidate and how a version is deployed (``approval``, ``deploy``);
- ``fields``: ``SpecError`` and the typed field readers every section uses;
- ``yamlfile`` and ``cadence``: the YAML loader, and the light read of two fields of each spec
  that ``retrain_model``'s timetable takes as the DAG file is parsed.

This package's own module imports nothing: importing ``retrainer.spec.cadence`` at parse time
costs the cadence reader alone, not the spec records.
"""
