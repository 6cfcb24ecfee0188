"""The metric names follow STYLE.md §2 and cover every name API.md (Operations) requires."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram, Metric

from monitoring import metrics
from monitoring.collector import QueueCollector, QueueSample

REQUIRED = {
    "algotcha_queue_jobs",
    "algotcha_queue_estimated_wait_seconds",
    "algotcha_workers_online",
    "algotcha_backtest_wait_seconds",
    "algotcha_backtest_duration_seconds",
    "algotcha_backtests_total",
    "algotcha_notifications_total",
    "algotcha_http_requests_total",
    "algotcha_http_request_duration_seconds",
}
ID_LABELS = {"id", "job_id", "user_id", "jobid", "userid", "message_id", "chat_id"}


def registered_families() -> list[Metric]:
    return [family for family in REGISTRY.collect() if family.name.startswith("algotcha_")]


def collector_families() -> list[Metric]:
    return list(QueueCollector(lambda: QueueSample({}, 0.0, 0, 0.0)).describe())


def exported_name(family: Metric) -> str:
    return family.name + "_total" if family.type == "counter" else family.name


def test_every_metric_object_is_registered_once_under_its_module_name() -> None:
    objects = [value for value in vars(metrics).values() if isinstance(value, Counter | Histogram)]
    names = [family.name for family in registered_families()]
    assert len(objects) == len(names) == len(set(names))
    assert {obj._name for obj in objects} == set(names)


def test_counters_end_in_total_and_histograms_in_seconds() -> None:
    for family in registered_families():
        if family.type == "counter":
            assert {s.name for s in family.samples} <= {
                family.name + "_total",
                family.name + "_created",
            }
        elif family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        else:
            raise AssertionError(f"{family.name}: unexpected type {family.type}")


def test_no_label_holds_an_id() -> None:
    for family in registered_families() + collector_families():
        labels = {name for sample in family.samples for name in sample.labels} - {"le"}
        assert not labels & ID_LABELS, family.name
    for obj in vars(metrics).values():
        if isinstance(obj, Counter | Histogram):
            names = set(obj._labelnames)
            assert not names & ID_LABELS
            assert not any(name.endswith("_id") for name in names), obj._name


def test_collector_gauges_are_named_in_base_units() -> None:
    for family in collector_families():
        assert family.type == "gauge"
        assert family.name.startswith("algotcha_")
        assert not family.name.endswith("_total")
        assert "_milliseconds" not in family.name and "_minutes" not in family.name


def test_every_name_api_md_requires_is_exported() -> None:
    exported = {exported_name(f) for f in registered_families() + collector_families()}
    assert exported >= REQUIRED, REQUIRED - exported


def test_known_label_values_exist_at_zero_before_any_event() -> None:
    for outcome in metrics.BACKTEST_OUTCOMES:
        labels = {"outcome": outcome}
        assert REGISTRY.get_sample_value("algotcha_backtests_total", labels) is not None
    for channel in metrics.NOTIFICATION_CHANNELS:
        for outcome in metrics.NOTIFICATION_OUTCOMES:
            labels = {"channel": channel, "outcome": outcome}
            assert REGISTRY.get_sample_value("algotcha_notifications_total", labels) is not None


def test_backtest_buckets_span_50_ms_to_beyond_an_hour() -> None:
    buckets = metrics.BACKTEST_BUCKETS_S
    assert buckets[0] == 0.05
    assert buckets[-1] > 3600
    assert list(buckets) == sorted(set(buckets))
