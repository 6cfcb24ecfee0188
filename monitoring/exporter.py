"""Exposing metrics: the registry a process serves, /metrics over ASGI, the HTTP exporter."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import values
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring import metrics

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9191
#: The route label of a request no route matched (404s, redirects): raw paths never become labels.
UNMATCHED = "unmatched"
#: Any other method is counted as "other", so a client cannot create series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def registry(multiproc_dir: str | None = None) -> CollectorRegistry:
    """The registry a process should expose.

    Without `multiproc_dir`, prometheus_client's default registry (this process's metrics plus
    the process and GC collectors). With it, a fresh registry that sums the metric files every
    process of the group wrote into that directory. prometheus_client picks its storage when it
    is first imported, from the environment variable PROMETHEUS_MULTIPROC_DIR, which must name
    the same directory; this raises RuntimeError when that did not happen, since the metrics of
    this process would otherwise be missing from every scrape without a word.
    """
    if multiproc_dir is None:
        return REGISTRY
    if not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError(
            "prometheus_client is not in multiprocess mode: set PROMETHEUS_MULTIPROC_DIR="
            f"{multiproc_dir} in the environment before anything imports prometheus_client"
        )
    # Without names of its own, MultiProcessCollector would be dropped by `?name[]=` filtering.
    multiprocess_registry = CollectorRegistry(support_collectors_without_names=True)
    # prometheus_client leaves this constructor unannotated.
    MultiProcessCollector(multiprocess_registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    return multiprocess_registry


def combine(registry: CollectorRegistry, *extra: Collector) -> CollectorRegistry:
    """`registry` plus `extra` collectors, without registering them on `registry` itself.

    The queue gauges are computed at scrape time by the process that answers the scrape, so
    they join the exposition here rather than going through the multiprocess files (which hold
    only values written by prometheus_client's own metric objects, and would sum the gauges of
    every process). Leaving the shared registry untouched also lets tests build many apps.
    """
    if not extra:
        return registry
    combined = CollectorRegistry(support_collectors_without_names=True)
    combined.register(registry)
    for collector in extra:
        combined.register(collector)
    return combined


async def metrics_response(
    conn: HTTPConnection, registry: CollectorRegistry, *extra: Collector
) -> Response:
    """The text exposition for one request (content negotiated, gzip, `name[]` filtering).

    For a route handler whose collectors live in the lifespan state. The collection runs in a
    thread: a collector may query the database and must not block the event loop.
    """
    source = combine(registry, *extra)
    names = conn.query_params.getlist("name[]")
    return await run_in_threadpool(
        _render,
        source,
        conn.headers.get("accept", ""),
        conn.headers.get("accept-encoding", ""),
        names,
    )


class MetricsApp:
    """ASGI app serving the exposition of a registry and extra collectors at any path."""

    def __init__(self, registry: CollectorRegistry, *extra: Collector) -> None:
        self._source = combine(registry, *extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        names = QueryParams(scope.get("query_string", b"")).getlist("name[]")
        response = await run_in_threadpool(
            _render,
            self._source,
            headers.get("accept", ""),
            headers.get("accept-encoding", ""),
            names,
        )
        await response(scope, receive, send)


def metrics_app(registry: CollectorRegistry, *extra: Collector) -> MetricsApp:
    """/metrics as an ASGI app: `Route("/metrics", metrics_app(...))` or `Mount`."""
    return MetricsApp(registry, *extra)


def _render(
    source: CollectorRegistry, accept: str, accept_encoding: str, names: Sequence[str]
) -> Response:
    encoder, content_type = choose_encoder(accept)
    body = encoder(source.restricted_registry(names) if names else source)
    headers = {"Content-Type": content_type}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers)


def start_http_exporter(
    registry: CollectorRegistry,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *extra: Collector,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve the exposition on host:port from a daemon thread (the worker and notifier).

    Stop it with `server.shutdown(); server.server_close()`. In a process group that shares a
    multiprocess directory, start it in one process only: the port can be bound once.
    """
    return prometheus_client.start_http_server(port, addr=host, registry=combine(registry, *extra))


def route_template(scope: Scope) -> str:
    """The matched route's path template (e.g. "/api/backtest/queue/{id}"), or "unmatched".

    Read after routing: Starlette's Router stores the route it chose in scope["route"]. A Mount
    replaces root_path, so through mounts the full template is rebuilt from the top router.
    """
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    if "app_root_path" not in scope:  # no Mount crossed: the router's choice is the template
        path = _path_of(route)
        return path if isinstance(path, str) else UNMATCHED
    router = scope.get("router")
    if router is None:
        return UNMATCHED
    original = {
        "type": scope["type"],
        "path": scope["path"],
        "root_path": scope["app_root_path"],
        "method": scope.get("method", "GET"),
        "headers": scope.get("headers", []),
    }
    return _match(router.routes, original, "")


def _match(routes: Sequence[BaseRoute], scope: Scope, prefix: str) -> str:
    partial: tuple[BaseRoute, Scope] | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return _template(route, {**scope, **child_scope}, prefix)
        if match is Match.PARTIAL and partial is None:
            partial = (route, {**scope, **child_scope})
    if partial is None:
        return UNMATCHED
    return _template(partial[0], partial[1], prefix)


def _path_of(route: object) -> object:
    # A route's path_format ("/queue/{id}" of "/queue/{id:job_id}"): the label names the
    # route as /openapi.json does, not the convertor that reads its parameter.
    if isinstance(route, Route):
        return route.path_format
    return getattr(route, "path", None)


def _template(route: BaseRoute, scope: Scope, prefix: str) -> str:
    path = prefix + str(_path_of(route) or "")
    if isinstance(route, Mount | Host) and route.routes:
        return _match(route.routes, scope, path)
    return path or "/"


class HTTPMetricsMiddleware:
    """Counts and times HTTP requests by method, route template and status.

    Pure ASGI, so streaming responses (SSE) pass through untouched: the status is taken from
    `http.response.start` and the request counted then; the duration is observed when the
    response ends. A request that raises before answering is counted as a 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "other"
        started = time.perf_counter()
        answered = False

        async def send_counting(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                metrics.HTTP_REQUESTS.labels(
                    method, route_template(scope), str(message["status"])
                ).inc()
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            route = route_template(scope)
            if not answered:
                metrics.HTTP_REQUESTS.labels(method, route, "500").inc()
            metrics.HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
