"""The API, as a WSGI application on the standard library (``python -m app.main``)."""

from __future__ import annotations

import json
import re
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer, make_server

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import crud
from app.db import engine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from app.models import Item

PREFIX = "/api/v1"
ITEM = re.compile(rf"^{PREFIX}/items/(\d+)$")
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}


def _item(item: Item) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "description": item.description}


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = json.loads(environ["wsgi.input"].read(length) or b"{}")
    return data if isinstance(data, dict) else {}


def route(environ: dict[str, Any]) -> tuple[int, Any]:
    """The status and JSON body for a request."""
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    with Session(engine) as session:
        if path == f"{PREFIX}/utils/health-check/":
            session.execute(text("SELECT 1"))
            return 200, True
        if path == f"{PREFIX}/items/" and method == "GET":
            items, count = crud.list_items(session)
            return 200, {"data": [_item(i) for i in items], "count": count}
        if path == f"{PREFIX}/items/" and method == "POST":
            body = _body(environ)
            if not body.get("title"):
                return 400, {"detail": "title is required"}
            try:
                item = crud.create_item(session, str(body["title"]), body.get("description"))
            except crud.DuplicateError:
                return 409, {"detail": "an item with this title exists"}
            return 201, _item(item)
        match = ITEM.match(path)
        if match:
            found = crud.get_item(session, int(match.group(1)))
            if found is None:
                return 404, {"detail": "Item not found"}
            if method == "GET":
                return 200, _item(found)
            if method == "PUT":
                body = _body(environ)
                changes = {k: body[k] for k in ("title", "description") if k in body}
                return 200, _item(crud.update_item(session, found, **changes))
            if method == "DELETE":
                crud.delete_item(session, found)
                return 200, {"message": "Item deleted successfully"}
    return 404, {"detail": "Not Found"}


def application(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], Any]
) -> Iterable[bytes]:
    status, body = route(environ)
    payload = json.dumps(body).encode()
    start_response(
        f"{status} {REASONS.get(status, '')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main(host: str = "0.0.0.0", port: int = 8000) -> None:  # noqa: S104 - inside the container
    with make_server(host, port, application, server_class=ThreadingServer) as server:
        print(f"serving on http://{host}:{port}", flush=True)  # noqa: T201
        server.serve_forever()


if __name__ == "__main__":
    main()
