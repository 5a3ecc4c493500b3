"""The reviewer's decision under approval policy ``review``: Airflow's Human-in-the-loop
``ApprovalOperator``, answered in the Airflow UI or, equally, in the MLflow UI.

``ModelReviewOperator`` asks (subject and body carry the evidence and links, shown on the
task's Required Actions page) and defers to ``ReviewTrigger``, so a waiting review holds no
worker slot. The trigger, in the triggerer, looks every ``poke_interval`` seconds at two
places: the Airflow response (what the UI writes) and the model version's ``approval`` tag
in MLflow. The first answer decides: an MLflow answer is written back as the Airflow
response (so the UI shows the request answered, and a late click gets "already answered"),
and an Airflow answer is recorded on the version. At the deadline with no answer the
trigger answers ``Reject`` (the operator's default) and the version is rejected.

With policy ``auto``, or when the gate already failed, nothing is asked and the task
passes straight through. A decision already recorded on the version (a retry, a cleared
task) is reused, never asked again, and a rejection skips the tasks downstream whether it
came now or earlier. The scheduler can fail a task that resumes within seconds of deferring
(apache/airflow#72716), so the review keeps at least one retry, and the trigger records the
answers it takes (MLflow, the deadline) on the version before the task resumes: the retry
finds them there. An answer in the Airflow UI resumes the task directly (no trigger) and
is recorded by the resumed task; if that task is lost before it recorded it, the retry
asks again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.sdk.execution_time.hitl import upsert_hitl_detail
from airflow.sdk.timezone import utcnow
from airflow.triggers.base import TriggerEvent
from asgiref.sync import sync_to_async

if TYPE_CHECKING:  # the records are read when the review runs, never when a DAG file is parsed
    from airflow.sdk import Context

    from retrainer.records import Evaluation, RegisteredVersion, TrainingPlan

APPROVE = ApprovalOperator.APPROVE
REJECT = ApprovalOperator.REJECT
REJECTED = "rejected"  # retrainer.registry.approval.REJECTED (not imported here: the DAG file imports this module)


def answer_of(event: dict[str, Any]) -> tuple[bool, str, str]:
    """(approved, reviewer, via) of a review trigger's success event: via ``timeout`` (reviewer
    ``nobody``) when no one answered, else ``mlflow`` or ``airflow``."""
    chosen = list(event.get("chosen_options") or [])
    user = event.get("responded_by_user") or {}
    if event.get("timedout") or not user:
        return APPROVE in chosen, "nobody", "timeout"
    return APPROVE in chosen, str(user.get("name") or user.get("id")), str(event.get("via") or "airflow")


class ReviewTrigger(HITLTrigger):
    """``HITLTrigger`` that also takes an answer from the model version's tags in MLflow.

    Every ``poke_interval`` seconds it looks at the Airflow response, then at the version's
    ``approval`` tag; an MLflow answer is written back as the Airflow response (an answer
    that does not name its reviewer yet is taken one poke later, so a reviewer's name written
    just after the answer is kept). At
    ``timeout_datetime`` with no answer it answers the defaults (Reject).

    Each answer it takes (and the timeout) is recorded on the version before the event is
    sent (first answer stands), so a retry of the task finds it there. (Airflow 3.3 resumes
    the task itself when the answer comes through its UI or API, usually before a poke.)

    :param tracking_uri: the MLflow tracking server (or store) the version is registered in.
    :param model_name: the registered model.
    :param version: the model version under review.
    :param dataset: the dataset spec of the model (to record the answer); empty: not recorded
        here, only by the resumed task.
    :param kwargs: ``HITLTrigger``'s: ``ti_id``, ``options``, ``defaults``, ``params``,
        ``multiple``, ``timeout_datetime``, ``poke_interval``.
    """

    def __init__(self, *, tracking_uri: str, model_name: str, version: str, dataset: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.version = version
        self.dataset = dataset
        self._unnamed_seen = False  # an answer without a reviewer's name was seen once

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        mine = {
            "tracking_uri": self.tracking_uri,
            "model_name": self.model_name,
            "version": self.version,
            "dataset": self.dataset,
        }
        return "retrainer_airflow.review.ReviewTrigger", {**kwargs, **mine}

    def _version_tags(self) -> dict[str, str]:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        return dict(client.get_model_version(self.model_name, self.version).tags)

    async def _mlflow_event(self) -> TriggerEvent | None:
        from airflow.sdk.execution_time.hitl import update_hitl_detail_response

        from retrainer.registry import approval

        try:
            tags = await sync_to_async(self._version_tags)()
        except Exception as exc:  # MLflow briefly unreachable: look again at the next poke
            self.log.warning("could not read %s v%s tags from MLflow: %s", self.model_name, self.version, exc)
            return None
        answer = approval.mlflow_answer(tags)
        if answer is None:
            return None
        if not approval.names_reviewer(tags) and not self._unnamed_seen:
            # MLflow writes one tag per request: a reviewer who sets `approval` and then
            # `approval.reviewer` (or the server recording the logged-in user) is named a
            # moment later. Take the answer at the next poke, named if the name came.
            self._unnamed_seen = True
            return None
        decision, reviewer = answer
        option = APPROVE if decision == approval.APPROVED else REJECT
        try:  # answer the Airflow request too; if the UI answered a moment ago, that answer stands
            resp = await sync_to_async(update_hitl_detail_response)(
                ti_id=self.ti_id, chosen_options=[option], params_input={}
            )
            responded_at = resp.responded_at or utcnow()
        except Exception as exc:
            self.log.info("Airflow request already answered (%s); taking that answer", exc)
            return await self._handle_response()
        self.log.info("[review] %s v%s %s by %s in MLflow", self.model_name, self.version, decision, reviewer)
        return TriggerEvent(
            {
                "chosen_options": [option],
                "params_input": {},
                "responded_at": responded_at,
                "responded_by_user": {"id": f"mlflow:{reviewer}", "name": reviewer},
                "timedout": False,
                "via": "mlflow",
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            if self.timeout_datetime and self.timeout_datetime < utcnow():
                yield await self._handle_timeout()
                return
            event = await self._handle_response()  # answered in the Airflow UI
            if event is None:
                event = await self._mlflow_event()
            if event is not None:
                await self._record(event)
                yield event
                return
            await asyncio.sleep(self.poke_interval)

    async def _record(self, event: TriggerEvent) -> None:
        """Record the answer on the version now, so it outlives the resumed task (if MLflow is
        away, the resumed task records it, or fails and retries)."""
        from retrainer_airflow.tasks import release

        if not self.dataset or "error" in event.payload:
            return
        approved, reviewer, via = answer_of(event.payload)
        try:
            first = await sync_to_async(release.record_answer)(self.dataset, self.version, approved, reviewer, via)
        except Exception as exc:
            self.log.warning("could not record the answer on %s v%s yet: %s", self.model_name, self.version, exc)
            return
        self.log.info(
            "[review] recorded on %s v%s: %s by %s via %s",
            self.model_name,
            self.version,
            first.decision,
            first.reviewer,
            first.via,
        )


class ModelReviewOperator(ApprovalOperator):
    """Wait for a reviewer's decision on the registered candidate (approval policy ``review``).

    Under policy ``auto``, for a candidate that failed the gate, or when a decision is already
    recorded on the version, it asks nothing and returns the decision that stands. Otherwise it
    writes the request (subject and a body with the evidence and links, built from the
    evaluation) and defers to :class:`ReviewTrigger` until the first answer, in Airflow or in
    MLflow, or the deadline; a rejection skips the tasks downstream. Returns the decision
    (a ``retrainer.records.ReviewDecision``).

    :param plan: ``plan_training``'s record (templated: pass the task's output).
    :param evaluation: ``evaluate``'s record, the evidence shown (templated).
    :param registered: ``register``'s record, the version decided on (templated).
    :param poke_interval: seconds between looks for an answer; default ``RETRAINER_REVIEW_POKE_S``
        (30).
    :param kwargs: ``ApprovalOperator``'s, except the arguments it fixes (``FIXED_ARGS``) and the
        ones the review fixes (``FIXED_BY_REVIEW``): the subject and body come from the evidence,
        the default (taken at the deadline) is Reject, and the deadline comes from the spec's
        ``approval.timeout_hours``. Passing one of those raises ValueError.
    """

    FIXED_BY_REVIEW = ("subject", "body", "defaults", "response_timeout")
    template_fields = ("plan", "evaluation", "registered")
    ui_color = "#fdf2cc"

    def __init__(
        self,
        *,
        plan: Any,
        evaluation: Any,
        registered: Any,
        poke_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        for arg in self.FIXED_BY_REVIEW:
            if arg in kwargs:
                raise ValueError(f"Passing {arg} to {type(self).__name__} is not allowed: the review fixes it")
        super().__init__(subject="Model review", defaults=REJECT, **kwargs)
        # a task resumed within seconds of deferring can be failed by the scheduler while it
        # runs (apache/airflow#72716): one retry then takes the answer the trigger recorded
        self.retries = max(int(self.retries or 0), 1)
        self.plan = plan
        self.evaluation = evaluation
        self.registered = registered
        self.poke_interval = poke_interval

    def _records(self) -> tuple[TrainingPlan, Evaluation, RegisteredVersion]:
        """The records the review decides on, read from its (rendered) arguments."""
        from retrainer.records import Evaluation, RegisteredVersion, TrainingPlan
        from retrainer_airflow.tasks.boundary import read

        return (
            read(TrainingPlan, self.plan, "review: argument 'plan'", "plan"),
            read(Evaluation, self.evaluation, "review: argument 'evaluation'", "evaluation"),
            read(RegisteredVersion, self.registered, "review: argument 'registered'", "registered"),
        )

    def execute(self, context: Context) -> Any:
        from retrainer.records import ReviewDecision
        from retrainer_airflow.tasks import release
        from retrainer_airflow.tasks.boundary import outcomes_as_task_states

        ti = context["ti"]
        plan, evaluation, registered = self._records()
        with outcomes_as_task_states():  # a backfill's candidate is not reviewed: the task is skipped
            asked = release.review_request(plan, evaluation, registered)
        if isinstance(asked, ReviewDecision):  # policy auto, gate failed, or already decided: nothing to ask
            if asked.decision == REJECTED:  # rejected by a reviewer (or the deadline) earlier
                self.log.info("Rejected earlier by %s via %s. Skipping downstream tasks", asked.reviewer, asked.via)
                self._skip_downstream(context)
            return asked.to_json()
        self.subject, self.body = asked.subject, asked.body
        upsert_hitl_detail(
            ti_id=ti.id,
            options=self.options,
            subject=self.subject,
            body=self.body,
            defaults=self.defaults,
            multiple=False,
            params=self.serialized_params,
            assigned_users=self.assigned_users,
        )
        self.log.info(
            "Waiting for a decision on %s v%s until %s (Airflow: Required actions; "
            "MLflow: tag approval=approved|rejected)",
            asked.model_name,
            asked.version,
            asked.deadline,
        )
        poke = self.poke_interval or float(os.environ.get("RETRAINER_REVIEW_POKE_S", "30"))
        self.defer(
            trigger=ReviewTrigger(
                ti_id=ti.id,
                options=self.options,
                defaults=self.defaults,
                params=self.serialized_params,
                multiple=False,
                timeout_datetime=datetime.fromisoformat(asked.deadline),
                poke_interval=poke,
                tracking_uri=asked.tracking_uri,
                model_name=asked.model_name,
                version=asked.version,
                dataset=plan.dataset,
            ),
            method_name="execute_complete",
        )

    def _skip_downstream(self, context: Context) -> None:
        tasks = [t for t in context["task"].get_direct_relatives(upstream=False) if not t.is_teardown]
        if tasks:
            self.skip(ti=context["ti"], tasks=tasks)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from retrainer_airflow.tasks import release

        if "error" in event:
            return super().execute_complete(context, event)
        plan, _, registered = self._records()
        approved, reviewer, via = answer_of(event)
        decided = release.record_answer(plan.dataset, registered.version, approved, reviewer, via)
        # the first answer recorded on the version decides, whatever this event says
        event = {**event, "chosen_options": [APPROVE if decided.approved else REJECT]}
        super().execute_complete(context, event)
        return decided.to_json()
