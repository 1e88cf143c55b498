"""Test-service provisioning against the real engine: ownership, failure, orphans, reuse."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import psycopg
import pytest
import redis

from dockwork.services import ProvisionError, discover
from dockwork.services.docker import (
    LABEL,
    DockerBackend,
    docker_available,
    postgres_spec,
)
from dockwork.services.reuse_cache import CachedBackend
from tests.helpers import env_without_services

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_client() -> Iterator[object]:
    if (reason := docker_available()) is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def project(docker_client: object) -> Iterator[str]:
    """A project name of this test's own; anything left with it is removed afterwards."""
    name = f"dwprov{uuid.uuid4().hex[:8]}"
    yield name
    for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL}.project={name}"}):  # type: ignore[attr-defined]
        c.remove(force=True, v=True)


def containers_of(client: object, project: str) -> list[object]:
    return client.containers.list(all=True, filters={"label": f"{LABEL}.project={project}"})  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("init", ["direct", "entrypoint"])
def test_provision_query_teardown_leaves_nothing(
    docker_client: object, project: str, init: str
) -> None:
    image = os.environ.get("POSTGRES_IMAGE") or "postgres:17"
    backend = DockerBackend(project, postgres=postgres_spec(image, init))
    services = backend.start()
    try:
        with psycopg.connect(services.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW cluster_name").fetchone() == ("dockwork-test",)
        assert redis.Redis.from_url(services.redis_url).ping()
        labels = [c.labels for c in containers_of(docker_client, project)]  # type: ignore[attr-defined]
        assert len(labels) == 2
        for lab in labels:
            assert lab[f"{LABEL}.pid"] == str(os.getpid())
            assert lab[f"{LABEL}.run"] == backend.run_id
            assert lab[f"{LABEL}.host"] == socket.gethostname()
        # published on loopback only, on ports the engine picked
        assert "127.0.0.1" in services.database_url
    finally:
        backend.stop()
    assert containers_of(docker_client, project) == []
    backend.stop()  # idempotent


def test_service_that_never_becomes_ready_fails_clearly_and_leaves_nothing(
    docker_client: object, project: str
) -> None:
    image = os.environ.get("POSTGRES_IMAGE") or "postgres:17"
    broken = postgres_spec(image)
    broken = dataclasses.replace(broken, command=(*broken.command, "-c", "no_such_setting=1"))
    backend = DockerBackend(project, postgres=broken, startup_timeout=120)
    with pytest.raises(ProvisionError) as excinfo:
        backend.start()
    message = excinfo.value.message
    assert "test postgres" in message
    assert "exited" in message, "a dead container is reported at once, not after the deadline"
    assert "no_such_setting" in message, "its last log lines are part of the error"
    assert containers_of(docker_client, project) == []


HOLDER = textwrap.dedent(
    """
    import sys, time
    from dockwork.services.docker import DockerBackend
    backend = DockerBackend(sys.argv[1])
    services = backend.start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_run_is_reaped_by_the_next_and_nothing_else_is(
    docker_client: object, project: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, project], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    orphans = {c.name for c in containers_of(docker_client, project)}  # type: ignore[attr-defined]
    assert len(orphans) == 2, "SIGKILL skips teardown: the containers are still there"

    image = os.environ.get("REDIS_IMAGE") or "redis:7"
    run = docker_client.containers.run  # type: ignore[attr-defined]
    unlabelled = run(image, detach=True, name=f"{project}-unlabelled")
    # a dev-stack container of the same project name (Compose labels, no dockwork labels)
    dev_stack = run(
        image, detach=True, name=f"{project}-db-1", labels={"com.docker.compose.project": project}
    )
    # the next run of the project removes the dead run's containers as it starts
    live = DockerBackend(project)
    live_services = live.start()
    try:
        assert set(live.reaped) == orphans
        # a live owner's containers are not orphans
        assert DockerBackend(project).reap_orphans() == []
        survivors = {c.name for c in containers_of(docker_client, project)}  # type: ignore[attr-defined]
        assert survivors == {live_services.details["postgres"], live_services.details["redis"]}
        for c in (unlabelled, dev_stack):
            c.reload()
            assert c.status == "running", f"{c.name} is not dockwork's to remove"
    finally:
        live.stop()
        unlabelled.remove(force=True)
        dev_stack.remove(force=True)


def test_reuse_keeps_containers_between_runs(
    docker_client: object, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = DockerBackend(project, reuse=True)
    a = first.start()
    first.stop()
    kept = containers_of(docker_client, project)
    assert len(kept) == 2, "reused containers survive the run"
    second = DockerBackend(project, reuse=True)
    b = second.start()
    second.stop()
    assert (a.database_url, a.redis_url) == (b.database_url, b.redis_url)
    assert {c.id for c in containers_of(docker_client, project)} == {c.id for c in kept}  # type: ignore[attr-defined]
    # reused containers are never reaped as orphans: they have no owner pid
    assert DockerBackend(project).reap_orphans() == []
    # a warm run finds them without asking the engine
    warm = discover(project, reuse=True)
    assert isinstance(warm, CachedBackend)
    assert warm.start().database_url == a.database_url
    # once they are gone, the stale entry is dropped and the engine is asked again
    for c in kept:
        c.remove(force=True, v=True)  # type: ignore[attr-defined]
    assert isinstance(discover(project, reuse=True), DockerBackend)


def test_two_concurrent_test_runs_both_pass(docker_client: object) -> None:  # noqa: ARG001
    env = env_without_services()
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "tests/integration/test_users.py",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    runs = [
        subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "5 passed" in output
