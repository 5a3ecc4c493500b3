"""The model server's request counts and latency histograms, for Prometheus.

Exposed at TensorFlow Serving's path, ``GET /monitoring/prometheus/metrics``, with its metric
names and units, so one dashboard or alert reads either server:

* ``:tensorflow:serving:request_count`` (counter): predict and status calls by ``model_name``
  and ``status`` (``OK`` or the error's HTTP reason, e.g. ``BAD_REQUEST``);
* ``:tensorflow:serving:request_latency`` (histogram, microseconds, as TensorFlow Serving's):
  the time of each predict call in the server, by ``model_name``;

and one of the model server's own (TensorFlow Serving reports its batching otherwise):

* ``:retrainer:serving:batch_requests`` (histogram): requests answered by each model call, by
  ``model_name`` and ``version`` (with adaptive batching; 1 for a request that ran alone); its
  ``_sum`` over its ``_count`` is the mean number of requests a model call served.

The first two carry ``version`` and ``label`` besides (TensorFlow Serving has neither): the
version that answered and the label the request named (``stable`` when it named none, ``""``
when it named a version), so a canary's traffic and latency are told apart from stable's.

:func:`parse` reads the text format back (the deploy check compares counts and latency before
and after its own requests, on either server).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PATH = "/monitoring/prometheus/metrics"
COUNT = ":tensorflow:serving:request_count"
LATENCY = ":tensorflow:serving:request_latency"
#: upper bounds of the latency buckets, in microseconds (50 us to 10 s)
BUCKETS_US = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BATCH = ":retrainer:serving:batch_requests"
#: upper bounds of the batch buckets, in requests per model call
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


def _labels(**kv: str) -> Labels:
    return tuple(sorted(kv.items()))


def _fmt(labels: Labels) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels) + "}"


class Metrics:
    """Counters and histograms kept in memory, safe across the server's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Labels, int] = {}
        self._buckets: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}
        self._batches: dict[Labels, list[int]] = {}
        self._batch_sums: dict[Labels, int] = {}

    def observe(
        self, api: str, model: str, version: int | None, label: str | None, status: str, seconds: float
    ) -> None:
        """One call: ``api`` ``predict`` or ``status``; the latency is kept for predict calls."""
        served = "" if version is None else str(version)
        count = _labels(model_name=model, version=served, label=label or "", API=api, entrypoint="REST", status=status)
        with self._lock:
            self._counts[count] = self._counts.get(count, 0) + 1
            if api != "predict" or status != "OK":
                return
            key = _labels(model_name=model, version=served, label=label or "", API=api, entrypoint="REST")
            buckets = self._buckets.setdefault(key, [0] * (len(BUCKETS_US) + 1))
            micros = seconds * 1e6
            index = next((i for i, bound in enumerate(BUCKETS_US) if micros <= bound), len(BUCKETS_US))
            buckets[index] += 1
            self._sums[key] = self._sums.get(key, 0.0) + micros

    def batch(self, model: str, version: int, requests: int) -> None:
        """One model call that answered ``requests`` requests."""
        key = _labels(model_name=model, version=str(version))
        with self._lock:
            row = self._batches.setdefault(key, [0] * (len(BATCH_BUCKETS) + 1))
            row[next((i for i, bound in enumerate(BATCH_BUCKETS) if requests <= bound), len(BATCH_BUCKETS))] += 1
            self._batch_sums[key] = self._batch_sums.get(key, 0) + requests

    def render(self) -> str:
        """The Prometheus text exposition format."""
        with self._lock:
            counts, buckets, sums = dict(self._counts), {k: list(v) for k, v in self._buckets.items()}, dict(self._sums)
            batches, batch_sums = {k: list(v) for k, v in self._batches.items()}, dict(self._batch_sums)
        lines = [f"# TYPE {COUNT} counter"]
        lines += [f"{COUNT}{_fmt(k)} {n}" for k, n in sorted(counts.items())]
        lines += _histogram(LATENCY, BUCKETS_US, buckets, {k: f"{v:.1f}" for k, v in sums.items()})
        lines += _histogram(BATCH, BATCH_BUCKETS, batches, {k: str(v) for k, v in batch_sums.items()})
        return "\n".join(lines) + "\n"


def _histogram(name: str, bounds: tuple[int, ...], rows: dict[Labels, list[int]], sums: dict[Labels, str]) -> list[str]:
    lines = [f"# TYPE {name} histogram"]
    for key, row in sorted(rows.items()):
        total = 0
        for bound, n in zip((*bounds, math.inf), row, strict=True):
            total += n
            le = "+Inf" if bound == math.inf else str(bound)
            lines.append(f"{name}_bucket{_fmt((*key, ('le', le)))} {total}")
        lines.append(f"{name}_sum{_fmt(key)} {sums[key]}")
        lines.append(f"{name}_count{_fmt(key)} {total}")
    return lines


# ------------------------------------------------------------------------------ reading

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], v)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (comments and blank lines skipped)."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or line.lstrip().startswith("#"):
            continue
        labels = {k: _unescape(v) for k, v in _PAIR.findall(m[2] or "")}
        try:
            out.append(Sample(m[1], labels, float(m[3])))
        except ValueError:
            continue
    return out


def select(samples: Iterable[Sample], name: str, **match: str) -> list[Sample]:
    """The samples called ``name`` whose labels hold ``match`` (a label a server does not have,
    e.g. TensorFlow Serving's missing ``version``, is not required)."""
    return [s for s in samples if s.name == name and all(s.labels.get(k, v) == v for k, v in match.items())]


def total(samples: Iterable[Sample]) -> float:
    return float(sum(s.value for s in samples))


def buckets(samples: Iterable[Sample]) -> dict[float, float]:
    """Cumulative counts per upper bound (``le``), summed over the samples given."""
    out: dict[float, float] = {}
    for s in samples:
        le = s.labels.get("le")
        if le is not None:
            bound = math.inf if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0.0) + s.value
    return out


def quantile(before: Mapping[float, float], after: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile (as a bucket's upper bound) of what was observed between two reads of
    one histogram's cumulative buckets; None if nothing was."""
    bounds = sorted(after)
    deltas = [after[b] - before.get(b, 0.0) for b in bounds]
    if not deltas or deltas[-1] <= 0:
        return None
    rank = q * deltas[-1]
    return next(b for b, n in zip(bounds, deltas, strict=True) if n >= rank)
