"""The welcome email under faults: Redis down when the user is created, jobs retried or
enqueued twice, a mailer that fails. Real PostgreSQL, Redis and SAQ worker."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.mail import LogMailer, Message
from app.main import create_app
from app.settings import Settings
from app.worker import send_email
from dockwork import urls
from tests.helpers import relay
from tests.integration.conftest import unique_email, wait_for


def outbox_rows(settings: Settings, user_id: int) -> list[tuple[str, int]]:
    with psycopg.connect(urls.libpq(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT status, attempts FROM email_outbox WHERE user_id = %s", (user_id,)
        ).fetchall()
    return [(str(s), int(a)) for s, a in rows]


@pytest.mark.usefixtures("worker")
def test_redis_down_at_create_is_still_201_and_the_email_goes_out(settings: Settings) -> None:
    host, port = urls.host_port(settings.redis_url, 6379)
    with relay((0, "127.0.0.1"), (host, int(port))) as cut:
        through = settings.redis_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{cut.address[1]}/")
        app_settings = Settings(settings.database_url, through, settings.queue_name)
        with TestClient(app=create_app(app_settings)) as client:
            cut.close()  # Redis goes away under the running app
            response = client.post("/api/users", json={"email": unique_email(), "name": "Ada"})
    assert response.status_code == 201, response.text
    user = response.json()
    assert [m["status"] for m in user["outbox"]] == ["pending"]
    # the worker (Redis reachable again for it) sweeps rows left pending and sends them
    wait_for(
        lambda: outbox_rows(settings, user["id"]) == [("sent", 1)],
        timeout=90,  # the sweep runs every second here; a loaded CI machine gets slack
        what="the sweep sending the email whose enqueue failed",
    )


class Recording:
    """A mailer that records what it delivers (the external side of sending)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[Message] = []
        self.fail = fail

    async def send(self, message: Message) -> None:
        await asyncio.sleep(0.05)  # a provider call takes time: jobs overlap
        if self.fail:
            raise ConnectionError("provider down")
        self.sent.append(message)


def _run_jobs(settings: Settings, outbox_id: int, mailer: Recording, copies: int) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_async_engine(settings.database_url)
        ctx: dict[str, Any] = {"sessions": async_sessionmaker(engine), "mailer": mailer}
        try:
            return await asyncio.gather(
                *(send_email(ctx, outbox_id=outbox_id) for _ in range(copies)),  # type: ignore[arg-type]
                return_exceptions=True,
            )
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_send_retried_or_enqueued_twice_sends_once(
    client: TestClient[Any], settings: Settings
) -> None:
    user = client.post("/api/users", json={"email": unique_email(), "name": "Grace"}).json()
    outbox_id = user["outbox"][0]["id"]
    mailer = Recording()
    results = _run_jobs(settings, outbox_id, mailer, copies=4)
    assert sorted(r["sent"] for r in results) == [False, False, False, True]
    assert [m.key for m in mailer.sent] == [f"outbox-{outbox_id}"]
    # a later retry of a finished send is a no-op too
    assert _run_jobs(settings, outbox_id, mailer, copies=1) == [
        {"outbox_id": outbox_id, "sent": False}
    ]
    assert len(mailer.sent) == 1
    assert outbox_rows(settings, user["id"]) == [("sent", 1)]


def test_a_failed_send_gives_the_row_back_for_the_retry(
    client: TestClient[Any], settings: Settings
) -> None:
    user = client.post("/api/users", json={"email": unique_email(), "name": "Hedy"}).json()
    outbox_id = user["outbox"][0]["id"]
    [error] = _run_jobs(settings, outbox_id, Recording(fail=True), copies=1)
    assert isinstance(error, ConnectionError), "the job fails, so SAQ retries it"
    assert outbox_rows(settings, user["id"]) == [("pending", 1)]
    ok = Recording()
    assert _run_jobs(settings, outbox_id, ok, copies=1) == [{"outbox_id": outbox_id, "sent": True}]
    assert outbox_rows(settings, user["id"]) == [("sent", 2)]


def test_the_log_mailer_logs_each_delivery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="app.mail")
    asyncio.run(LogMailer().send(Message("outbox-1", "a@x.test", "Welcome, A!")))
    assert "delivered outbox-1 to a@x.test: Welcome, A!" in caplog.text
