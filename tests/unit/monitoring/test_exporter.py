"""The /metrics app, the worker's HTTP exporter and the HTTP middleware, through real apps."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 behind its TestClient; httpx, a dependency already, works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from monitoring import exporter
from monitoring.collector import QueueCollector, QueueSample

SAMPLE = QueueSample({"queued": 4}, 90.0, 1, 0.0)


def requests_count(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("algotcha_http_requests_total", labels) or 0.0


def duration_count(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    value = REGISTRY.get_sample_value("algotcha_http_request_duration_seconds_count", labels)
    return value or 0.0


def routes_seen() -> set[str]:
    [family] = [f for f in REGISTRY.collect() if f.name == "algotcha_http_requests"]
    return {sample.labels["route"] for sample in family.samples}


async def show_template(request: Request) -> Response:
    return PlainTextResponse(exporter.route_template(request.scope))


async def fail(request: Request) -> Response:
    raise RuntimeError("boom")


async def stream(request: Request) -> Response:
    async def events() -> AsyncIterator[str]:
        for n in range(3):
            yield f"data: {n}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/items/{id}", show_template, methods=["GET"]),
            Route("/fail", fail),
            Route("/items/{id}/events", stream),
            Mount("/api", routes=[Route("/things/{id:int}", show_template)]),
            Route("/metrics", exporter.metrics_app(exporter.registry())),
        ],
        middleware=[Middleware(exporter.HTTPMetricsMiddleware)],
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_route_template_names_the_route_not_the_path(client: TestClient) -> None:
    assert client.get("/items/42").text == "/items/{id}"
    assert client.get("/api/things/7").text == "/api/things/{id}"


def test_route_template_without_a_matched_route_is_unmatched() -> None:
    assert exporter.route_template({"type": "http", "path": "/x/1"}) == exporter.UNMATCHED


def test_middleware_counts_by_template_so_ids_never_become_labels(client: TestClient) -> None:
    before = requests_count("GET", "/items/{id}", "200")
    client.get("/items/1")
    client.get("/items/2")
    assert requests_count("GET", "/items/{id}", "200") == before + 2
    assert not {route for route in routes_seen() if "/items/1" in route or "/items/2" in route}


def test_middleware_labels_misses_and_wrong_methods(client: TestClient) -> None:
    unmatched = requests_count("GET", exporter.UNMATCHED, "404")
    wrong_method = requests_count("POST", "/items/{id}", "405")
    odd_method = requests_count("other", "/items/{id}", "405")

    assert client.get("/nothing/here/99").status_code == 404
    assert client.post("/items/5").status_code == 405
    assert client.request("BREW", "/items/5").status_code == 405

    assert requests_count("GET", exporter.UNMATCHED, "404") == unmatched + 1
    assert requests_count("POST", "/items/{id}", "405") == wrong_method + 1
    assert requests_count("other", "/items/{id}", "405") == odd_method + 1
    assert "/nothing/here/99" not in routes_seen()


def test_middleware_counts_an_exception_as_500(client: TestClient) -> None:
    before = requests_count("GET", "/fail", "500")
    assert client.get("/fail").status_code == 500
    assert requests_count("GET", "/fail", "500") == before + 1


def test_middleware_counts_a_streaming_response_once(client: TestClient) -> None:
    route = "/items/{id}/events"
    counted, timed = requests_count("GET", route, "200"), duration_count("GET", route)

    with client.stream("GET", "/items/3/events") as response:
        body = "".join(response.iter_text())

    assert body == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert requests_count("GET", route, "200") == counted + 1
    assert duration_count("GET", route) == timed + 1


def test_metrics_app_serves_the_text_format(client: TestClient) -> None:
    client.get("/items/1")
    response = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'algotcha_http_requests_total{method="GET",route="/items/{id}",status="200"}' in (
        response.text
    )
    assert "algotcha_backtest_wait_seconds_bucket" in response.text


def test_metrics_app_adds_extra_collectors_without_touching_the_registry() -> None:
    registry = CollectorRegistry()
    Counter("algotcha_example_total", "An example.", registry=registry).inc()
    app = Starlette(
        routes=[Route("/metrics", exporter.metrics_app(registry, QueueCollector(lambda: SAMPLE)))]
    )
    with TestClient(app) as test_client:
        text = test_client.get("/metrics").text
        filtered = test_client.get("/metrics", params={"name[]": "algotcha_workers_online"}).text
        zipped = test_client.get("/metrics", headers={"Accept-Encoding": "gzip"})

    assert 'algotcha_queue_jobs{status="queued"} 4.0' in text
    assert "algotcha_example_total 1.0" in text
    assert registry.get_sample_value("algotcha_queue_jobs", {"status": "queued"}) is None
    assert "algotcha_workers_online 1.0" in filtered
    assert "algotcha_example_total" not in filtered
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.text.startswith("# HELP")  # httpx decoded it


def test_metrics_response_serves_collectors_from_the_lifespan_state() -> None:
    async def metrics_route(request: Request) -> Response:
        return await exporter.metrics_response(
            request, exporter.registry(), request.state.collector
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, QueueCollector]]:
        yield {"collector": QueueCollector(lambda: SAMPLE)}

    app = Starlette(routes=[Route("/metrics", metrics_route)], lifespan=lifespan)
    with TestClient(app) as test_client:
        text = test_client.get("/metrics").text
    assert "algotcha_queue_estimated_wait_seconds 90.0" in text
    assert "algotcha_http_requests_total" in text


def test_start_http_exporter_serves_the_registry_and_extras() -> None:
    server, thread = exporter.start_http_exporter(
        exporter.registry(), "127.0.0.1", 0, QueueCollector(lambda: SAMPLE)
    )
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        response = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert response.status_code == 200
    assert "algotcha_workers_online 1.0" in response.text
    assert "algotcha_backtests_total" in response.text
    assert response.headers["content-encoding"] == "gzip"


def test_registry_without_a_directory_is_the_default_one() -> None:
    assert exporter.registry() is REGISTRY
