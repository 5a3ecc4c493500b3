"""Who decides that a candidate goes to production and how a version is deployed and checked:
the spec's ``approval`` and ``deploy`` sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrainer.spec.fields import Fields

APPROVAL_POLICIES = ("auto", "review")


@dataclass(frozen=True)
class ApprovalConfig:
    """Who decides that a candidate that passed the gate goes to production (spec section ``approval``)."""

    policy: str = "auto"  # auto: the gate decides; review: a reviewer decides, in Airflow or in MLflow
    timeout_hours: float = 72.0  # review: no answer by then means rejected


@dataclass(frozen=True)
class DeployConfig:
    """The check after each deploy (spec section ``deploy``)."""

    canary: bool = True  # label a new version ``canary`` first; ``stable`` moves only after the check
    check_rows: int = 64  # holdout rows whose served predictions must equal the registry model's
    tolerance: float = 1e-3  # allowed |served - registry|, relative to the predictions' scale (at least 1)
    latency_requests: int = 50  # single-row requests timed through the server
    max_p99_ms: float = 250.0  # the check fails when their 99th percentile is slower
    tflite: bool = False  # serve the quantized TFLite model when it scores within tflite_max_change
    tflite_max_change: float = 0.01  # largest |relative change| of the gate metric on the holdout, TFLite vs full


def read_approval(f: Fields, raw: dict[str, Any]) -> ApprovalConfig:
    f.known("approval", raw, ApprovalConfig.__dataclass_fields__)
    policy = f.choice("approval.policy", raw.get("policy", "auto"), APPROVAL_POLICIES)
    timeout = f.unit("approval.timeout_hours", raw.get("timeout_hours", 72.0), None)
    if timeout <= 0:
        raise f.error("approval.timeout_hours", "must be above 0 (no answer in time = rejected)")
    return ApprovalConfig(policy=policy, timeout_hours=timeout)


def read_deploy(f: Fields, raw: dict[str, Any]) -> DeployConfig:
    f.known("deploy", raw, DeployConfig.__dataclass_fields__)
    canary = f.flag("deploy.canary", raw.get("canary", True))
    tflite = f.flag("deploy.tflite", raw.get("tflite", False))
    return DeployConfig(
        canary=canary,
        check_rows=_count(f, raw, "check_rows"),
        tolerance=f.unit("deploy.tolerance", raw.get("tolerance", 1e-3), None),
        latency_requests=_count(f, raw, "latency_requests"),
        max_p99_ms=f.unit("deploy.max_p99_ms", raw.get("max_p99_ms", 250.0), None),
        tflite=tflite,
        tflite_max_change=f.unit("deploy.tflite_max_change", raw.get("tflite_max_change", 0.01), None),
    )


def _count(f: Fields, raw: dict[str, Any], key: str) -> int:
    value = raw.get(key, getattr(DeployConfig(), key))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise f.error(f"deploy.{key}", f"must be a positive integer, got {value!r}")
    return value
