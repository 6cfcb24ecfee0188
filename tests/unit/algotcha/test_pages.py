"""routes/pages.py: the page and its static files, their headers, and nothing outside web/."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from importlib import resources

import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException, StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 behind its TestClient; httpx, a dependency already, works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from algotcha import problems
from algotcha.errors import AlgotchaError
from algotcha.routes import pages


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=pages.routes,
        exception_handlers={AlgotchaError: problems.handle, HTTPException: problems.handle_http},
    )
    with TestClient(app) as c:
        yield c


def test_index_serves_the_page_with_a_strict_content_security_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/app.js"></script>' in r.text


def test_the_page_has_no_inline_script_style_or_handler(client: TestClient) -> None:
    """The CSP would block them: they must not exist in the first place."""
    html = client.get("/").text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"<style\b|\sstyle=", html) == []
    assert re.findall(r"\son[a-z]+=", html) == []


def test_javascript_is_served_as_javascript_and_revalidated(client: TestClient) -> None:
    r = client.get("/static/app.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    again = client.get("/static/app.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")],
)
def test_other_assets_have_their_content_type(
    client: TestClient, name: str, content_type: str
) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200 and r.headers["content-type"] == content_type


def test_every_file_the_page_and_its_modules_load_is_served(client: TestClient) -> None:
    web = resources.files("algotcha") / "web"
    texts = [client.get("/").text]
    texts += [f.read_text() for f in web.iterdir() if f.name.endswith(".js")]
    referenced = {m for t in texts for m in re.findall(r"/static/([\w.-]+)", t)}
    referenced |= {m for t in texts for m in re.findall(r'from "\./([\w.-]+)"', t)}
    assert {"app.js", "app.css", "api.js", "chart.js", "format.js"} <= referenced
    for name in referenced:
        assert client.get(f"/static/{name}").status_code == 200, name


def test_an_unknown_static_file_is_a_404_problem(client: TestClient) -> None:
    r = client.get("/static/nothing.js")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 404 and body["success"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",  # the client resolves it to /app.py, as a browser does
        "/static/..%2Fapp.py",  # the server sees /static/../app.py
        "/static/%2e%2e%2fapp.py",
        "/static/%2e%2e/routes/pages.py",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e",
        "/static/.hidden.js",
        "/static/__init__.py",
        "/static/app.js%00.css",
    ],
)
def test_nothing_outside_the_web_folder_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, path
    assert r.headers["content-type"] == "application/problem+json"
    assert "import" not in r.text and "def " not in r.text
