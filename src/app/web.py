"""The built frontend (Vite's ``dist``), served by the app in production; without one, ``/``
leads to the API docs.

- ``/assets/*``: content-hashed files, cached for a year and never revalidated;
- ``index.html`` (and unknown paths: client-side routes) with ``no-cache``, so a new
  release is picked up at once;
- other files at the root (``favicon.svg``) served as they are, ``no-cache``;
- ``/api/*``, ``/health`` and ``/assets/*`` never fall back to ``index.html``: an unknown
  API path is a JSON 404, as before.

Without a build (development, where Vite's dev server serves the page; an API-only
deployment), ``/`` redirects to the API docs (Litestar's OpenAPI pages), so the URL
``inv dev`` prints for the app leads somewhere rather than to a 404.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import TYPE_CHECKING

from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from pathlib import Path

    from litestar.types import ControllerRouterHandler

log = logging.getLogger(__name__)

YEAR = 365 * 24 * 3600
#: Litestar's OpenAPI pages (its default path): the API's docs, Redoc at the root
DOCS_PATH = "/schema"
NOT_THE_FRONTEND = frozenset({"api", "health", "assets"})


def frontend(dist: Path) -> list[ControllerRouterHandler]:
    """Route handlers serving ``dist``; none when it was not built."""
    index = dist / "index.html"
    if not index.is_file():
        log.warning("no frontend served: %s has no index.html (was it built?)", index.parent)
        return []
    root = dist.resolve()

    @get(
        ["/", "/{path:path}"],
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
        sync_to_thread=False,
    )
    def spa(path: FromPath[str] = "/") -> File:
        """index.html for the app's own routes; a root file (favicon) when there is one."""
        relative = path.lstrip("/")
        if relative.split("/", 1)[0] in NOT_THE_FRONTEND:
            raise NotFoundException(detail=f"no route for /{relative}")
        candidate = (dist / relative).resolve()
        if relative and candidate.is_file() and candidate.is_relative_to(root):
            served = candidate
        else:
            served = index
        media_type = mimetypes.guess_type(served.name)[0] or "application/octet-stream"
        return File(served, media_type=media_type, content_disposition_type="inline")

    assets = create_static_files_router(
        path="/assets",
        directories=[dist / "assets"],
        cache_control=CacheControlHeader(max_age=YEAR, public=True, immutable=True),
        name="assets",
    )
    return [spa, assets]


@get("/", include_in_schema=False, sync_to_thread=False)
def to_the_docs() -> Redirect:
    """``/`` when the app serves no frontend: a temporary redirect (a later build's page
    must not be hidden by a browser's cached 301) to the API docs."""
    return Redirect(DOCS_PATH)
