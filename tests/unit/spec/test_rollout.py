"""Who decides that a candidate goes to production, and how a version is deployed and checked:
the spec's ``approval`` and ``deploy`` sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import Fields, SpecError
from retrainer.spec.rollout import ApprovalConfig, DeployConfig, read_approval, read_deploy
from tests.helpers import assert_refused_naming_file_and_field, bike_spec_data, write_spec

F = Fields({}, "flights.yaml")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(approval={"policy": "manual"}), "approval.policy"),
        (lambda d: d.update(approval={"timeout_hours": 0}), "approval.timeout_hours"),
        (lambda d: d.update(approval={"reviewers": ["a"]}), "approval.reviewers"),
        (lambda d: d.update(deploy={"canary": "yes"}), "deploy.canary"),
        (lambda d: d.update(deploy={"check_rows": 0}), "deploy.check_rows"),
        (lambda d: d.update(deploy={"max_p99_ms": -1}), "deploy.max_p99_ms"),
        (lambda d: d.update(deploy={"tflite": 1}), "deploy.tflite"),
        (lambda d: d.update(deploy={"latency_requests": True}), "deploy.latency_requests"),
        (lambda d: d.update(deploy={"canari": False}), "deploy.canari"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_approval_and_deploy_sections(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    assert (bike_spec.approval.policy, bike_spec.approval.timeout_hours) == ("auto", 72)
    assert bike_spec.deploy.canary and bike_spec.deploy.check_rows == 64 and bike_spec.deploy.max_p99_ms == 250
    data = bike_spec_data()
    data["approval"] = {"policy": "review", "timeout_hours": 0.5}
    spec = DatasetSpec.load(write_spec(tmp_path, data))
    assert (spec.approval.policy, spec.approval.timeout_hours) == ("review", 0.5)


def test_sections_left_out_take_the_defaults() -> None:
    assert read_approval(F, {}) == ApprovalConfig(policy="auto", timeout_hours=72.0)
    assert read_deploy(F, {}) == DeployConfig()
    assert DeployConfig().canary and not DeployConfig().tflite


def test_deploy_reads_each_of_its_fields() -> None:
    deploy = read_deploy(
        F,
        {
            "canary": False,
            "check_rows": 16,
            "tolerance": 0.01,
            "latency_requests": 5,
            "max_p99_ms": 40,
            "tflite": True,
            "tflite_max_change": 0.05,
        },
    )
    assert deploy == DeployConfig(False, 16, 0.01, 5, 40.0, True, 0.05)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"check_rows": 2.5}, r"deploy\.check_rows': must be a positive integer, got 2\.5"),
        ({"latency_requests": -3}, r"deploy\.latency_requests': must be a positive integer, got -3"),
        ({"tolerance": "tight"}, r"deploy\.tolerance': must be a non-negative number, got 'tight'"),
    ],
)
def test_deploy_values_are_refused_saying_why(raw: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError, match=says):
        read_deploy(F, raw)


def test_a_review_must_have_time_to_happen() -> None:
    assert read_approval(F, {"policy": "review", "timeout_hours": 0.25}).timeout_hours == 0.25
    with pytest.raises(SpecError, match=r"must be above 0 \(no answer in time = rejected\)"):
        read_approval(F, {"policy": "review", "timeout_hours": 0})
    with pytest.raises(SpecError, match=r"must be one of \['auto', 'review'\], got 'manual'"):
        read_approval(F, {"policy": "manual"})
