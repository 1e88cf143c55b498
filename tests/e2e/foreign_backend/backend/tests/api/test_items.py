from __future__ import annotations

import pytest

from tests.conftest import ApiClient

ITEMS = "/api/v1/items/"


def test_health_check(client: ApiClient) -> None:
    response = client.get("/api/v1/utils/health-check/")
    assert response.status_code == 200
    assert response.json() is True


def test_create_item(client: ApiClient, title: str) -> None:
    response = client.post(ITEMS, json={"title": title, "description": "Foo"})
    assert response.status_code == 201
    content = response.json()
    assert content["title"] == title
    assert content["description"] == "Foo"
    assert "id" in content


def test_create_item_without_title(client: ApiClient) -> None:
    response = client.post(ITEMS, json={"description": "no title"})
    assert response.status_code == 400


def test_create_duplicate_item(client: ApiClient, title: str) -> None:
    assert client.post(ITEMS, json={"title": title}).status_code == 201
    response = client.post(ITEMS, json={"title": title})
    assert response.status_code == 409


def test_read_item(client: ApiClient, title: str) -> None:
    created = client.post(ITEMS, json={"title": title, "description": "read me"}).json()
    response = client.get(f"{ITEMS}{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_read_item_not_found(client: ApiClient) -> None:
    response = client.get(f"{ITEMS}999999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "Item not found"


@pytest.mark.parametrize("count", [1, 3, 7])
def test_read_items(client: ApiClient, title: str, count: int) -> None:
    ids = {client.post(ITEMS, json={"title": f"{title}-{n}"}).json()["id"] for n in range(count)}
    response = client.get(ITEMS)
    assert response.status_code == 200
    content = response.json()
    assert content["count"] >= count + 1  # and the initial data's item
    assert ids <= {item["id"] for item in content["data"]} or content["count"] > 100


def test_initial_data_is_there(client: ApiClient) -> None:
    titles = [item["title"] for item in client.get(ITEMS).json()["data"]]
    assert "welcome" in titles


@pytest.mark.parametrize("description", ["Updated description", None, ""])
def test_update_item(client: ApiClient, title: str, description: str | None) -> None:
    created = client.post(ITEMS, json={"title": title, "description": "before"}).json()
    response = client.put(
        f"{ITEMS}{created['id']}", json={"title": f"{title}-new", "description": description}
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "title": f"{title}-new",
        "description": description,
    }


def test_update_item_not_found(client: ApiClient) -> None:
    response = client.put(f"{ITEMS}999999999", json={"title": "x"})
    assert response.status_code == 404


def test_delete_item(client: ApiClient, title: str) -> None:
    created = client.post(ITEMS, json={"title": title}).json()
    response = client.delete(f"{ITEMS}{created['id']}")
    assert response.status_code == 200
    assert response.json()["message"] == "Item deleted successfully"
    assert client.get(f"{ITEMS}{created['id']}").status_code == 404


def test_delete_item_not_found(client: ApiClient) -> None:
    assert client.delete(f"{ITEMS}999999999").status_code == 404
