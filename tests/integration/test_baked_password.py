"""The baked test-PostgreSQL image is shared by every project on the engine: it holds no
password (not in its environment, its labels or its data directory), and each run's
server gets a password of its own."""

from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest

from dockwork.testing.servers.baking import REPOSITORY
from tests.helpers import docker_backend, needs_docker


@pytest.fixture(autouse=True)
def _engine() -> None:
    needs_docker()


def test_each_run_has_its_own_password_and_the_image_has_none() -> None:
    runs = [docker_backend(f"dwbake{uuid.uuid4().hex[:8]}", kinds=("postgres",)) for _ in "ab"]
    passwords, images = [], set()
    try:
        for backend in runs:
            servers = backend.start()
            images |= {inspect("container", cid, "{{.Config.Image}}") for cid in servers.handles}
            assert servers.database_url is not None
            with psycopg.connect(servers.database_url, connect_timeout=10) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            passwords.append(urlsplit(servers.database_url).password)
        assert passwords[0] != passwords[1], "two runs, two passwords"
        # the other run's password does not open this run's server
        other = servers.database_url.replace(str(passwords[1]), str(passwords[0]))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(other, connect_timeout=10)
    finally:
        for backend in runs:
            backend.stop()
    assert len(images) == 1, images
    used = images.pop()
    assert used.startswith(f"{REPOSITORY}:"), "the runs used the baked image"
    config = json.loads(inspect("image", used, "{{json .Config}}"))
    for password in passwords:
        assert str(password) not in json.dumps(config)
    assert not any(e.startswith("POSTGRES_PASSWORD=") for e in config.get("Env") or [])
    assert not any("password" in k for k in config.get("Labels") or {}), config["Labels"]


def inspect(kind: str, name: str, template: str) -> str:
    argv = ["docker", kind, "inspect", "--format", template, name]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
