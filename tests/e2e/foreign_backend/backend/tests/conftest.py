"""The backend's fixtures: its own settings and engine, imported at module level."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from app.core.config import settings
from app.db import engine, init_db
from app.main import application
from app.models import Item

#: a file to append "worker database host:port" to, for whoever runs the suite to see
#: which database it used (unset: nothing is written)
DATABASE_LOG = os.environ.get("APP_TEST_DATABASE_LOG")
#: this session's rows carry it, and only they are removed at the end
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session", autouse=True)
def db() -> Iterator[Session]:
    with Session(engine) as session:
        init_db(session)
        if DATABASE_LOG:
            name = session.scalar(text("SELECT current_database()"))
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            where = f"{settings.POSTGRES_SERVER}:{settings.POSTGRES_PORT}"
            with open(DATABASE_LOG, "a") as log:
                log.write(f"{worker} {name} {where}\n")
        yield session
        session.execute(delete(Item).where(Item.title.like(f"{RUN}-%")))
        session.commit()


@pytest.fixture
def title() -> str:
    """A title no other test (or worker) uses."""
    return f"{RUN}-{uuid.uuid4().hex[:12]}"


class Response:
    def __init__(self, status: str, body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self._body = body

    def json(self) -> Any:
        return json.loads(self._body)


class ApiClient:
    """Calls the WSGI application in-process."""

    def request(self, method: str, path: str, body: object = None) -> Response:
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
        }
        captured: list[str] = []
        chunks = application(environ, lambda status, headers: captured.append(status))
        return Response(captured[0], b"".join(chunks))

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, json: object) -> Response:
        return self.request("POST", path, json)

    def put(self, path: str, json: object) -> Response:
        return self.request("PUT", path, json)

    def delete(self, path: str) -> Response:
        return self.request("DELETE", path)


@pytest.fixture(scope="module")
def client() -> ApiClient:
    return ApiClient()
