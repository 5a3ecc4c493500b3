"""The MLflow server app of the production shape: MLflow's basic-auth app, plus who may do
what to the evidence reviewers decide on.

``mlflow server --app-name retrainer-auth`` (an ``mlflow.app`` entry point of this package).
Every request needs a login (MLflow's basic auth: users, passwords, READ/EDIT/MANAGE
permissions per experiment and registered model). On top of that, in the model registry:

* the pipeline's service account is the MLflow admin: it registers versions, writes their
  tags and moves aliases;
* any other user may write one thing in the registry: the ``approval`` tag of a version
  (``approved`` or ``rejected``), and only with EDIT on that registered model (a reviewer,
  see ``python -m retrainer reviewers``). Aliases, other tags, versions and models are
  refused (403) and nothing changes;
* the reviewer is the authenticated user: the server records it as ``approval.reviewer``
  before it stores the answer, so the pipeline never sees an answer without its reviewer,
  and no one but the service account can write ``approval.reviewer`` itself.

Runs inside the MLflow server only (Flask, MLflow's server modules); nothing else imports it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from retrainer import schema

log = logging.getLogger(__name__)

_REGISTRY = re.compile(r"^/(?:ajax-)?api/\d+\.\d+/mlflow/(?P<path>(?:registered-models|model-versions)/.+)$")
#: POST endpoints of the registry that only read
_READS = {"registered-models/get-latest-versions"}
#: what a reviewer may write, besides nothing
_REVIEWER_WRITES = {"model-versions/set-tag", "model-versions/delete-tag"}
_DECISIONS = {"approved", "rejected"}


def create_app(app: Any = None) -> Any:
    """MLflow's basic-auth app with the registry rules above (an ``mlflow.app`` factory)."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    flask = app if app is not None else flask_app
    served = basic_auth_app(flask)
    flask.before_request(_registry_rules)  # after basic auth's own check: the user is known
    return served


def _registry_rules() -> Any:
    from flask import g, make_response, request

    match = _REGISTRY.match(request.path)
    if match is None or request.method in ("GET", "HEAD", "OPTIONS") or match["path"] in _READS:
        return None
    user = getattr(g, "mlflow_authenticated_user", None)
    if user is None or _is_admin(user):
        return None
    verdict = _reviewer_write(match["path"], request.method, _params(request), user)
    if verdict is None:
        return None
    log.warning("refused %s %s by %s: %s", request.method, request.path, user, verdict)
    response = make_response({"error_code": "PERMISSION_DENIED", "message": verdict}, 403)
    return response


def _params(request: Any) -> dict[str, Any]:
    body = request.get_json(silent=True) if request.method in ("POST", "PATCH", "DELETE") else None
    params = dict(request.args)
    if isinstance(body, dict):
        params.update(body)
    return params


def _reviewer_write(path: str, method: str, params: dict[str, Any], user: str) -> str | None:
    """None when ``user`` (not the service account) may make this registry write, else why not.
    An allowed approval first records ``user`` as its reviewer."""
    if path not in _REVIEWER_WRITES or params.get("key") != schema.APPROVAL:
        return (
            f"{user} may write only the '{schema.APPROVAL}' tag of a model version in the registry; "
            f"{method} {path} {params.get('key') or ''} is for the pipeline's service account".rstrip()
        )
    if path == "model-versions/set-tag":
        value = str(params.get("value") or "").strip().lower()
        if value not in _DECISIONS:
            return f"'{schema.APPROVAL}' must be 'approved' or 'rejected', not {params.get('value')!r}"
        try:
            _record_reviewer(str(params.get("name")), str(params.get("version")), user)
        except Exception as exc:  # e.g. no such version: nothing was written
            return f"cannot record the reviewer of {params.get('name')} v{params.get('version')}: {exc}"
    return None


def _record_reviewer(model: str, version: str, user: str) -> None:
    from mlflow.entities.model_registry import ModelVersionTag
    from mlflow.server.handlers import _get_model_registry_store

    _get_model_registry_store().set_model_version_tag(model, version, ModelVersionTag(schema.APPROVAL_REVIEWER, user))


def _is_admin(user: str) -> bool:
    from mlflow.server.auth import store

    return bool(store.get_user(user).is_admin)
