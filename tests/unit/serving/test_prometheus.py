"""The model server's metrics in Prometheus' text format, with TensorFlow Serving's names and
units, and the reader the deploy check compares two reads with (the counts of real requests
through the server: tests/unit/serving/test_rest.py)."""

from __future__ import annotations

import math
import threading

from retrainer.serving import prometheus as m


def test_the_metrics_text_reads_back() -> None:

    metrics = m.Metrics()
    metrics.observe("predict", 'odd"name', 3, "canary", "OK", 0.0007)
    metrics.observe("predict", 'odd"name', 3, "canary", "OK", 0.02)
    metrics.observe("status", 'odd"name', 3, "canary", "OK", 0.0)
    samples = m.parse(metrics.render())
    assert m.total(m.select(samples, m.COUNT, model_name='odd"name', API="predict")) == 2
    assert m.total(m.select(samples, m.COUNT, API="status")) == 1
    cumulative = m.buckets(m.select(samples, f"{m.LATENCY}_bucket"))
    assert cumulative[1000.0] == 1 and cumulative[25_000.0] == 2 and cumulative[float("inf")] == 2
    assert m.quantile({}, cumulative, 0.5) == 1000.0 and m.quantile({}, cumulative, 0.99) == 25_000.0
    assert m.quantile(cumulative, cumulative, 0.99) is None  # nothing between two equal reads
    for requests in (1, 3, 8, 300):  # the requests each model call answered
        metrics.batch('odd"name', 3, requests)
    samples = m.parse(metrics.render())
    batches = m.buckets(m.select(samples, f"{m.BATCH}_bucket", version="3"))
    assert (batches[1.0], batches[4.0], batches[8.0], batches[256.0], batches[float("inf")]) == (1, 2, 3, 3, 4)
    assert m.total(m.select(samples, f"{m.BATCH}_sum")) == 312 and m.total(m.select(samples, f"{m.BATCH}_count")) == 4
    # TensorFlow Serving's own lines (no version, no label) are read and matched as well
    tfs = m.parse(':tensorflow:serving:request_count{model_name="bike_demand",status="OK"} 7\n# HELP x y\n')
    assert m.total(m.select(tfs, m.COUNT, model_name="bike_demand", version="4", status="OK")) == 7


def test_the_text_names_its_types_and_escapes_label_values() -> None:
    metrics = m.Metrics()
    metrics.observe("predict", 'a"b\\c\nd', None, None, "OK", 0.001)
    text = metrics.render()
    assert text.startswith(f"# TYPE {m.COUNT} counter\n") and text.endswith("\n")
    assert f"# TYPE {m.LATENCY} histogram" in text and f"# TYPE {m.BATCH} histogram" in text
    assert 'model_name="a\\"b\\\\c\\nd"' in text  # quote, backslash and newline escaped
    (count,) = m.select(m.parse(text), m.COUNT)
    assert count.labels == {
        "API": "predict",
        "entrypoint": "REST",
        "label": "",
        "model_name": 'a"b\\c\nd',  # and read back as they were
        "status": "OK",
        "version": "",
    }
    assert count.value == 1.0


def test_only_successful_predict_calls_are_timed() -> None:
    metrics = m.Metrics()
    metrics.observe("predict", "bikes", 1, "stable", "BAD_REQUEST", 0.5)
    metrics.observe("status", "bikes", 1, "stable", "OK", 0.5)
    samples = m.parse(metrics.render())
    assert m.total(m.select(samples, m.COUNT)) == 2
    assert m.select(samples, f"{m.LATENCY}_count") == [] and m.select(samples, f"{m.LATENCY}_bucket") == []


def test_a_latency_on_a_bound_falls_in_that_bucket_and_a_slow_one_in_the_last() -> None:
    metrics = m.Metrics()
    metrics.observe("predict", "bikes", 2, None, "OK", 0.001)  # 1000 us exactly
    metrics.observe("predict", "bikes", 2, None, "OK", 30.0)  # beyond 10 s
    samples = m.parse(metrics.render())
    cumulative = m.buckets(m.select(samples, f"{m.LATENCY}_bucket", version="2"))
    assert cumulative[500.0] == 0 and cumulative[1000.0] == 1
    assert cumulative[float(m.BUCKETS_US[-1])] == 1 and cumulative[math.inf] == 2
    assert m.total(m.select(samples, f"{m.LATENCY}_sum")) == 1000.0 + 30_000_000.0
    assert m.quantile({}, cumulative, 0.99) == math.inf  # the p99 lies beyond the last bound


def test_counts_from_many_threads_are_all_kept() -> None:
    metrics = m.Metrics()

    def calls() -> None:
        for _ in range(500):
            metrics.observe("predict", "bikes", 1, "stable", "OK", 0.0001)
            metrics.batch("bikes", 1, 2)

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples = m.parse(metrics.render())
    assert m.total(m.select(samples, m.COUNT)) == 2000
    assert m.total(m.select(samples, f"{m.BATCH}_count")) == 2000
    assert m.total(m.select(samples, f"{m.BATCH}_sum")) == 4000


def test_the_reader_skips_what_is_no_sample() -> None:
    text = '# HELP x y\n\n  # TYPE x counter\nnot a sample line at all {\nx{a="1"} NaN-ish\nx{a="1",b="2"} 3.5\ny 4\n'
    samples = m.parse(text)
    assert [(s.name, s.labels, s.value) for s in samples] == [("x", {"a": "1", "b": "2"}, 3.5), ("y", {}, 4.0)]
    assert m.select(samples, "x", a="1", c="anything") == samples[:1]  # a label the sample lacks is not required
    assert m.select(samples, "x", a="2") == []
    assert m.buckets(samples) == {}  # no le: no bucket
    assert m.total([]) == 0.0


def test_a_quantile_is_read_between_two_reads() -> None:
    before = {100.0: 5.0, 1000.0: 10.0, math.inf: 10.0}
    after = {100.0: 6.0, 1000.0: 20.0, math.inf: 20.0}  # 10 new: 1 under 100 us, 9 under 1000 us
    assert m.quantile(before, after, 0.1) == 100.0
    assert m.quantile(before, after, 0.5) == 1000.0
    assert m.quantile({}, {}, 0.5) is None
