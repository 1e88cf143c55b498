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


def test_no_build_no_frontend_routes(client: TestClient[Any]) -> None:
    assert client.get("/").status_code == 404, "development: the Vite server serves the page"
