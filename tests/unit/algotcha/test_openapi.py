"""/openapi.json names every mounted route with exactly its methods, and nothing else."""

from __future__ import annotations

import re

from starlette.routing import Route

from algotcha import openapi
from algotcha.app import create_app
from algotcha.config import Settings

# Served but not part of the JSON API: the page, its files, metrics, and this document.
NOT_DOCUMENTED = {"/", "/static/{name}", "/shared/{token}", "/metrics", "/openapi.json"}


def mounted() -> dict[str, set[str]]:
    settings = Settings(database_url="postgresql://unused", jwt_secret="x" * 32)
    routes: dict[str, set[str]] = {}
    for route in create_app(settings).routes:
        assert isinstance(route, Route), route
        if route.path not in NOT_DOCUMENTED:
            # Starlette adds HEAD to every GET: not an operation of its own.
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {id:job_id} -> {id}
            routes.setdefault(path, set()).update(m.lower() for m in route.methods or ())
            routes[path].discard("head")
    return routes


def test_every_mounted_route_is_documented_with_exactly_its_methods() -> None:
    paths = openapi.document("http://127.0.0.1")["paths"]
    assert {path: set(item) for path, item in paths.items()} == mounted()


def test_every_operation_has_an_id_a_summary_and_a_tag() -> None:
    operations = [op for item in openapi.document("")["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert all(op["summary"] and op["tags"] for op in operations)


def test_every_reference_resolves() -> None:
    document = openapi.document("")
    text = str(document)
    names = set(document["components"]["schemas"])
    refs = {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs <= names
