"""The Grafana dashboard and the Prometheus config name only metrics that exist, and load as is."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Histogram

from monitoring import metrics
from monitoring.collector import QueueCollector, QueueSample

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "algotcha.json"
PROMETHEUS = ROOT / "monitoring" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"

#: What the rabbitmq_prometheus plugin exports per queue (deps/rabbitmq_prometheus, collector
#: prometheus_rabbitmq_core_metrics_collector: queue_coarse_metrics and queue_consumer_count).
RABBITMQ_METRICS = {
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers",
}
#: Grafana's interval variables, replaced by a duration before promtool parses an expression.
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
PROMTOOL = shutil.which("promtool")


def _require_promtool(func: Any) -> Any:
    """promtool comes with `make test` (tests/services.sh installs Debian's prometheus)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if PROMTOOL is None:
            pytest.fail(
                "promtool is not installed: run tests/services.sh (apt-get install prometheus)"
            )
        return func(*args, **kwargs)

    return functools.wraps(func)(wrapper)


needs_promtool = _require_promtool


def project_series() -> set[str]:
    """Every series name the project exports: registered metrics and the queue collector."""
    objects = [obj for obj in vars(metrics).values() if isinstance(obj, Counter | Histogram)]
    families = [family for obj in objects for family in obj.collect()]
    families += QueueCollector(lambda: QueueSample({}, 0.0, 0, 0.0)).describe()
    return {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}


KNOWN = project_series() | RABBITMQ_METRICS | {"up"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()
        if before.isdigit() or before == "." or after.startswith("("):
            continue  # a number's exponent or unit, or a function / aggregation
        if match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def promtool(*args: str, cwd: Path) -> None:
    assert PROMTOOL is not None
    run = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_metric_names_reads_selectors_and_skips_everything_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route!="/x/{id}"}'
        "[$__rate_interval]))) / on() max(b) > 1e3 and c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}


def test_dashboard_names_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        unknown = metric_names(expr) - KNOWN
        assert not unknown, f"{expr!r} names {sorted(unknown)}"


def test_dashboard_shows_what_operators_asked_for() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert used >= {
        "algotcha_queue_jobs",
        "algotcha_queue_estimated_wait_seconds",
        "algotcha_workers_online",
        "algotcha_backtests_total",
        "algotcha_backtest_wait_seconds_count",
        "algotcha_backtest_wait_seconds_bucket",
        "algotcha_backtest_duration_seconds_bucket",
        "algotcha_notifications_total",
        "algotcha_http_request_duration_seconds_bucket",
        "algotcha_http_requests_total",
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "algotcha_sweep_combinations_total",
        "algotcha_sweep_combination_seconds_bucket",
        "algotcha_sweep_chunks_in_flight",
    }


def test_dashboard_imports_without_edits() -> None:
    data = dashboard()
    assert data["uid"] and data["id"] is None and data["schemaVersion"] >= 36
    [variable] = [v for v in data["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": "${" + variable["name"] + "}"}
    for panel in panels(data["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]
    assert "${DS_" not in DASHBOARD.read_text()


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard()["panels"]):
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert not cells & taken, panel["title"]
        taken |= cells


def test_alerts_name_only_exported_metrics_and_say_what_to_do() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "AlgotchaNoWorkerOnline",
        "AlgotchaEstimatedWaitHigh",
        "AlgotchaBacktestFailureRatioHigh",
        "AlgotchaNotificationFailures",
        "AlgotchaBacktestStuck",
        "AlgotchaTargetDown",
    }
    for rule in rules:
        unknown = metric_names(rule["expr"]) - KNOWN
        assert not unknown, f"{rule['alert']} names {sorted(unknown)}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_prometheus_scrapes_api_workers_notifier_and_rabbitmq() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["algotcha-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["algotcha-api"]["metrics_path"] == "/metrics"
    assert jobs["algotcha-worker"]["dns_sd_configs"][0]["port"] == 9191
    assert jobs["algotcha-notifier"]["static_configs"][0]["targets"] == ["notifier:9192"]
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool("check", "config", PROMETHEUS.name, cwd=PROMETHEUS.parent)
    promtool("check", "rules", ALERTS.name, cwd=ALERTS.parent)


@needs_promtool
def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    rules = []
    for n, expr in enumerate(dashboard_exprs()):
        for variable, duration in GRAFANA_DURATIONS.items():
            expr = expr.replace(variable, duration)
        rules.append({"record": f"dashboard_expr_{n}", "expr": expr})
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    promtool("check", "rules", "dashboard.yml", cwd=tmp_path)


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{selector}}}", "values": values}


def fires(alert: str, at: str, **labels: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels}]}


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


API = {"job": "algotcha-api", "instance": "api:8000"}
CASES: list[dict[str, Any]] = [
    {  # jobs queued, nobody to run them: fires once it has lasted 2 minutes
        "input_series": [
            series("algotcha_queue_jobs", "3x20", status="queued", **API),
            series("algotcha_workers_online", "0x20", **API),
        ],
        "alert_rule_test": [
            quiet("AlgotchaNoWorkerOnline", "1m"),
            fires("AlgotchaNoWorkerOnline", "3m", severity="critical"),
        ],
    },
    {  # a worker is online: the queue just waits
        "input_series": [
            series("algotcha_queue_jobs", "3x20", status="queued", **API),
            series("algotcha_workers_online", "1x20", **API),
        ],
        "alert_rule_test": [quiet("AlgotchaNoWorkerOnline", "4m")],
    },
    {
        "input_series": [series("algotcha_queue_estimated_wait_seconds", "2400x60", **API)],
        "alert_rule_test": [
            quiet("AlgotchaEstimatedWaitHigh", "5m"),
            fires("AlgotchaEstimatedWaitHigh", "11m", severity="warning"),
        ],
    },
    {  # half the attempts fail
        "input_series": [
            series("algotcha_backtests_total", "0+1x80", outcome="completed", **API),
            series("algotcha_backtests_total", "0+1x80", outcome="failed", **API),
        ],
        "alert_rule_test": [fires("AlgotchaBacktestFailureRatioHigh", "10m", severity="warning")],
    },
    {  # one failure out of two is too few attempts to page anybody
        "input_series": [
            series("algotcha_backtests_total", "0x80", outcome="completed", **API),
            series("algotcha_backtests_total", "0 1x80", outcome="failed", **API),
        ],
        "alert_rule_test": [quiet("AlgotchaBacktestFailureRatioHigh", "10m")],
    },
    {
        "input_series": [series("algotcha_queue_oldest_processing_seconds", "2200x20", **API)],
        "alert_rule_test": [fires("AlgotchaBacktestStuck", "3m", severity="critical")],
    },
    {
        "input_series": [series("algotcha_queue_oldest_processing_seconds", "1700x20", **API)],
        "alert_rule_test": [quiet("AlgotchaBacktestStuck", "3m")],
    },
    {
        "input_series": [
            series(
                "algotcha_notifications_total",
                "0 0 1x20",
                channel="telegram",
                outcome="failed",
                job="algotcha-notifier",
                instance="notifier:9192",
            )
        ],
        "alert_rule_test": [
            fires("AlgotchaNotificationFailures", "2m", severity="warning", channel="telegram")
        ],
    },
    {
        "input_series": [series("algotcha_queue_collector_up", "0x40", **API)],
        "alert_rule_test": [
            fires("AlgotchaQueueCollectorFailing", "6m", severity="critical", **API)
        ],
    },
    {
        "input_series": [series("up", "0x20", job="algotcha-worker", instance="10.0.0.5:9191")],
        "alert_rule_test": [
            fires(
                "AlgotchaTargetDown",
                "3m",
                severity="critical",
                job="algotcha-worker",
                instance="10.0.0.5:9191",
            )
        ],
    },
]


@needs_promtool
def test_alerts_fire_on_the_conditions_they_name(tmp_path: Path) -> None:
    # promtool compares annotations too; their templates are checked by `promtool check rules`.
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    tests = [{"interval": "15s", **copy.deepcopy(case)} for case in CASES]
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["alerts.yml"], "evaluation_interval": "15s", "tests": tests})
    )
    promtool("test", "rules", "tests.yml", cwd=tmp_path)
