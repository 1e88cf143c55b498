"""The API's 400s speak to a person: a field's message is a sentence (never msgspec's
wording, which quotes the regular expression), in Litestar's structure (status, detail,
extra[].key naming the field) the frontend maps onto its form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.conftest import unique_email

if TYPE_CHECKING:
    from litestar.testing import TestClient

SENTENCE = "Enter an email address like name@example.com."


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@b", "two@@x.test", "a b@x.test", "a@x.test\n"]
)
def test_a_malformed_email_is_a_400_with_a_sentence(client: TestClient[Any], email: str) -> None:
    response = client.post("/api/users", json={"email": email, "name": "Ada"})
    assert response.status_code == 400, response.text
    assert response.json() == {
        "status_code": 400,
        "detail": "Validation failed for POST /api/users",
        "extra": [{"message": SENTENCE, "key": "email", "source": "body"}],
    }
    assert "regex" not in response.text
    assert "\\A" not in response.text


def test_lengths_are_sentences_too(client: TestClient[Any]) -> None:
    long_email = "a" * 320 + "@x.test"
    response = client.post("/api/users", json={"email": long_email, "name": "Ada"})
    assert response.status_code == 400
    assert response.json()["extra"] == [
        {"message": "Use at most 320 characters.", "key": "email", "source": "body"}
    ]
    response = client.post("/api/users", json={"email": unique_email(), "name": ""})
    assert response.status_code == 400
    assert response.json()["extra"] == [
        {"message": "This field is required.", "key": "name", "source": "body"}
    ]


def test_other_400s_keep_their_messages(client: TestClient[Any]) -> None:
    wrong_type = client.post("/api/users", json={"email": 5, "name": "Ada"})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["extra"][0]["key"] == "email"
    assert wrong_type.json()["extra"][0]["message"] == "Expected `str`, got `int`"
    missing = client.post("/api/users", json={"email": unique_email()})
    assert missing.status_code == 400
    assert "name" in missing.json()["extra"][0]["message"]


def test_a_good_email_still_creates_the_user(client: TestClient[Any]) -> None:
    email = unique_email()
    response = client.post("/api/users", json={"email": email, "name": "Ada"})
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email
