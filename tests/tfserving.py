"""What TensorFlow Serving does with each ``models.config`` the pipeline writes.

Its binary does not run here, so each config text is parsed by TensorFlow Serving's own
``ModelServerConfig`` proto (``tensorflow-serving-api``) and applied with the rules of its
model manager as configured in ``docker-compose.yaml`` (``--model_config_file`` polled,
without ``--allow_version_labels_for_unavailable_models``):

* a model's versions are exactly its ``specific`` policy's (a model without one would serve
  its newest folder the moment it appears: refused here);
* a label may only name a version that is already loaded, i.e. one the previously applied
  config served and that exists on disk. A config that breaks this is rejected by the
  server as a whole: what it served before stays served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


class ConfigRejected(AssertionError):
    """TensorFlow Serving would refuse this config (and keep serving the previous one)."""


@dataclass
class Model:
    base_path: str
    loaded: set[int] = field(default_factory=set)
    labels: dict[str, int] = field(default_factory=dict)


def parse(text: str) -> model_server_config_pb2.ModelServerConfig:
    """TF Serving's own parser: raises ParseError on anything it would not read."""
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


@dataclass
class TFServing:
    """The state of one TensorFlow Serving over a model store, config by config."""

    models: dict[str, Model] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)

    @classmethod
    def serving(cls, text: str | None) -> TFServing:
        """A server that has applied ``text`` (and loaded what it names)."""
        server = cls()
        for c in parse(text).model_config_list.config if text else []:
            versions = set(c.model_version_policy.specific.versions)
            server.models[c.name] = Model(c.base_path, versions, dict(c.version_labels))
        return server

    def apply(self, text: str) -> None:
        config = parse(text)
        new: dict[str, Model] = {}
        for c in config.model_config_list.config:
            if c.model_platform != "tensorflow":
                raise ConfigRejected(f"{c.name}: model_platform {c.model_platform!r}")
            if not c.model_version_policy.HasField("specific"):
                raise ConfigRejected(f"{c.name}: no specific version policy (the newest folder would be served)")
            versions = set(c.model_version_policy.specific.versions)
            local = not c.base_path.startswith("s3://")
            missing = [v for v in versions if local and not (Path(c.base_path) / str(v) / "saved_model.pb").is_file()]
            if missing:
                raise ConfigRejected(f"{c.name}: versions {missing} are not in {c.base_path}")
            before = self.models.get(c.name, Model(c.base_path)).loaded
            for label, version in c.version_labels.items():
                if version not in before:
                    raise ConfigRejected(
                        f"{c.name}: label {label!r} names version {version}, which is not loaded yet "
                        f"(loaded: {sorted(before)}); load it in one config, label it in the next"
                    )
            new[c.name] = Model(c.base_path, versions, dict(c.version_labels))
        self.models = new
        self.applied.append(text)

    def serves(self, model: str, label: str = "stable") -> int | None:
        m = self.models.get(model)
        return m.labels.get(label) if m else None
