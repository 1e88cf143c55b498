"""The app serving a built frontend: cache headers, client-side routes, the API untouched."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import TestClient

from app.main import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from app.settings import Settings


@pytest.fixture
def site(tmp_path: Path, settings: Settings) -> Iterator[TestClient[Any]]:
    """The app with a small built frontend, as Vite lays it out."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><div id="root"></div>')
    (dist / "assets" / "index-Dk2x9aQ1.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    with TestClient(app=create_app(dataclasses.replace(settings, web_dir=str(dist)))) as client:
        yield client


def test_hashed_assets_are_cached_for_good(site: TestClient[Any]) -> None:
    response = site.get("/assets/index-Dk2x9aQ1.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=31536000, public, immutable"
    assert site.get("/assets/index-gone.js").status_code == 404


@pytest.mark.parametrize("path", ["/", "/users", "/users/42/edit"])
def test_the_page_and_client_side_routes_get_index_html_uncached(
    site: TestClient[Any], path: str
) -> None:
    response = site.get(path)
    assert response.status_code == 200
    assert response.text.startswith("<!doctype html>")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"


def test_root_files_are_served_and_nothing_escapes_the_build(site: TestClient[Any]) -> None:
    assert site.get("/favicon.svg").text == "<svg/>"
    escaped = site.get("/%2e%2e/%2e%2e/etc/passwd")
    assert "root:" not in escaped.text


def test_the_api_and_health_are_unaffected(site: TestClient[Any]) -> None:
    unknown = site.get("/api/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/json")
    assert site.get("/health").json()["status"] == "ok"
    assert site.post("/api/users", json={"email": "web@x.test", "name": "W"}).status_code in {
        201,
        409,
    }


def test_no_build_the_root_leads_to_the_api_docs(client: TestClient[Any]) -> None:
    """Development (no WEB_DIR: Vite's dev server serves the page): the app's own URL, the
    one `inv dev` prints, leads to the API docs instead of a 404."""
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 302, root.text
    assert root.headers["location"] == "/schema"
    docs = client.get("/")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/api/users" in docs.text, "the docs page describes the API"
    # only `/` is routed: other paths are still the API's JSON 404
    unknown = client.get("/users/42")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/json")


def test_a_web_dir_without_a_build_says_so_and_leads_to_the_docs(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "dist"
    empty.mkdir()
    with TestClient(app=create_app(dataclasses.replace(settings, web_dir=str(empty)))) as c:
        assert c.get("/", follow_redirects=False).headers["location"] == "/schema"
    assert f"{empty} has no index.html" in caplog.text
