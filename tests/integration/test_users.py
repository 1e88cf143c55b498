"""Users API and the welcome-email job, against real PostgreSQL, Redis and a SAQ worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from tests.integration.conftest import unique_email, wait_for

if TYPE_CHECKING:
    import subprocess

    from litestar.testing import TestClient

    from app.settings import Settings


def test_create_returns_201_with_pending_outbox(client: TestClient[Any]) -> None:
    email = unique_email()
    response = client.post("/api/users", json={"email": email, "name": "Ada"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email
    assert body["name"] == "Ada"
    assert [m["status"] for m in body["outbox"]] == ["pending"]


def test_duplicate_email_is_409_with_json_error(client: TestClient[Any]) -> None:
    email = unique_email()
    assert client.post("/api/users", json={"email": email, "name": "A"}).status_code == 201
    response = client.post("/api/users", json={"email": email, "name": "B"})
    assert response.status_code == 409
    assert email in response.json()["detail"]


def test_invalid_email_is_rejected(client: TestClient[Any]) -> None:
    response = client.post("/api/users", json={"email": "not-an-email", "name": "A"})
    assert response.status_code in {400, 422}
    assert "email" in response.text


def test_unknown_user_is_404(client: TestClient[Any]) -> None:
    response = client.get("/api/users/987654321")
    assert response.status_code == 404
    assert response.json()["detail"] == "no user with id 987654321"


def test_worker_marks_welcome_email_sent(
    client: TestClient[Any], worker: subprocess.Popen[str], settings: Settings
) -> None:
    created = client.post("/api/users", json={"email": unique_email(), "name": "Grace"}).json()

    def sent() -> bool:
        outbox = client.get(f"/api/users/{created['id']}").json()["outbox"]
        return bool(outbox) and all(m["status"] == "sent" and m["sent_at"] for m in outbox)

    assert worker.poll() is None, "the worker exited early"
    wait_for(sent, timeout=30, what="the worker marking the welcome email sent")
    # and the row itself says so, straight from PostgreSQL
    url = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status, sent_at IS NOT NULL FROM email_outbox WHERE user_id = %s",
            (created["id"],),
        ).fetchone()
    assert row == ("sent", True)


def test_names_are_clean_text(client: TestClient[Any]) -> None:
    for bad in ("Ada\nLovelace", "Ada\r", "Ada\x00", "Ada\u202eecalevoL", "   "):
        response = client.post("/api/users", json={"email": unique_email(), "name": bad})
        assert response.status_code == 400, (bad, response.text)
        assert "name" in response.text
    # NFC: "e" + combining acute is stored as the single code point
    decomposed = "Ame\u0301lie"
    created = client.post("/api/users", json={"email": unique_email(), "name": decomposed})
    assert created.status_code == 201
    assert created.json()["name"] == "Am\u00e9lie"


def test_email_is_anchored_and_unique_whatever_its_case(client: TestClient[Any]) -> None:
    email = unique_email()
    trailing = client.post("/api/users", json={"email": email + "\n", "name": "A"})
    assert trailing.status_code == 400, "a trailing newline is not part of an email"
    assert client.post("/api/users", json={"email": email, "name": "A"}).status_code == 201
    shouted = client.post("/api/users", json={"email": email.upper(), "name": "B"})
    assert shouted.status_code == 409


def test_ids_beyond_bigint_are_404_not_500(client: TestClient[Any]) -> None:
    for user_id in (2**63, 2**70, 0):
        response = client.get(f"/api/users/{user_id}")
        assert response.status_code == 404, (user_id, response.text)


def test_list_returns_the_newest_first(client: TestClient[Any]) -> None:
    first = client.post("/api/users", json={"email": unique_email(), "name": "First"}).json()
    second = client.post("/api/users", json={"email": unique_email(), "name": "Second"}).json()
    listed = client.get("/api/users").json()
    ids = [u["id"] for u in listed]
    assert ids.index(second["id"]) < ids.index(first["id"])
    assert all("outbox" in u for u in listed)
