"""Test-server provisioning against the real engine: ownership, failure, orphans, reuse."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import psycopg
import pytest
import redis

from dockwork.config import load_config
from dockwork.errors import ProvisionError
from dockwork.testing.servers import discover
from dockwork.testing.servers.docker import LABEL
from dockwork.testing.servers.docker import beat as beat_containers
from dockwork.testing.servers.engine_api import Engine
from dockwork.testing.servers.ownership import Owner
from dockwork.testing.servers.reuse_cache import CachedBackend
from tests.helpers import (
    docker_backend,
    needs_docker,
    pg_image,
    redis_image,
    relay,
    wrong_password,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    needs_docker()
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def project(docker_client: docker.DockerClient) -> Iterator[str]:
    """A project name of this test's own; anything left with it is removed afterwards."""
    name = f"dwprov{uuid.uuid4().hex[:8]}"
    yield name
    for c in containers_of(docker_client, name):
        c.remove(force=True, v=True)


def containers_of(
    client: docker.DockerClient, project: str
) -> list[docker.models.containers.Container]:
    return client.containers.list(all=True, filters={"label": f"{LABEL}.project={project}"})


@pytest.mark.parametrize("init", ["baked", "direct", "entrypoint"])
def test_provision_query_teardown_leaves_nothing(
    docker_client: docker.DockerClient, project: str, init: str
) -> None:
    backend = docker_backend(project, init=init)
    servers = backend.start()
    try:
        assert servers.database_url is not None
        assert servers.redis_url is not None
        with psycopg.connect(servers.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW cluster_name").fetchone() == ("dockwork-test",)
        assert redis.Redis.from_url(servers.redis_url).ping()
        # the servers ask for the run's random password: a wrong one gets no entry
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(wrong_password(servers.database_url))
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(wrong_password(servers.redis_url)).ping()
        me = Owner.current()
        labels = [c.labels for c in containers_of(docker_client, project)]
        assert len(labels) == 2
        for lab in labels:
            assert Owner.from_labels(lab, f"{LABEL}.owner") == me
            assert lab[f"{LABEL}.run"] == backend.run_id
        # published on loopback only, on ports the engine picked
        assert "@127.0.0.1:" in servers.database_url
        assert set(servers.handles) == {c.id for c in containers_of(docker_client, project)}
    finally:
        backend.stop()
    assert containers_of(docker_client, project) == []
    backend.stop()  # idempotent


def test_only_the_servers_the_project_asks_for(
    docker_client: docker.DockerClient, project: str
) -> None:
    backend = docker_backend(project, kinds=("postgres",))
    servers = backend.start()
    try:
        assert servers.redis_url is None
        kinds = {c.labels[f"{LABEL}.service"] for c in containers_of(docker_client, project)}
        assert kinds == {"postgres"}, "no Redis container for a project without Redis"
    finally:
        backend.stop()


def test_server_that_never_becomes_ready_fails_clearly_and_leaves_nothing(
    docker_client: docker.DockerClient, project: str
) -> None:
    backend = docker_backend(project, service_timeout=120)
    broken = backend.specs[0]
    backend.specs = (
        dataclasses.replace(broken, command=(*broken.command, "-c", "no_such_setting=1")),
        backend.specs[1],
    )
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
    sys.path.insert(0, sys.argv[2])
    from tests.helpers import docker_backend, needs_docker
    backend = docker_backend(sys.argv[1])
    backend.start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_run_is_reaped_by_the_next_and_nothing_else_is(
    docker_client: docker.DockerClient, project: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, project, str(ROOT)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    orphans = {c.name for c in containers_of(docker_client, project)}
    assert len(orphans) == 2, "SIGKILL skips teardown: the containers are still there"

    run = docker_client.containers.run
    unlabelled = run(redis_image(), detach=True, name=f"{project}-unlabelled")
    # a dev-stack container of the same project name (Compose labels, no dockwork labels)
    dev_stack = run(
        redis_image(),
        detach=True,
        name=f"{project}-db-1",
        labels={"com.docker.compose.project": project},
    )
    # the next run of the project removes the dead run's containers as it starts
    live = docker_backend(project)
    live_servers = live.start()
    try:
        assert set(live.reaped) == orphans
        # a live owner's containers are not orphans
        assert docker_backend(project).reap_orphans() == []
        survivors = {c.id[:12] for c in containers_of(docker_client, project)}
        assert survivors == {live_servers.details["postgres"], live_servers.details["redis"]}
        for c in (unlabelled, dev_stack):
            c.reload()
            assert c.status == "running", f"{c.name} is not dockwork's to remove"
    finally:
        live.stop()
        unlabelled.remove(force=True, v=True)  # its anonymous /data volume too
        dev_stack.remove(force=True, v=True)


def _foreign(
    client: docker.DockerClient, project: str, owner: Owner
) -> docker.models.containers.Container:
    """A container as another run would leave it: labels of an owner we cannot check."""
    labels = {
        f"{LABEL}.project": project,
        f"{LABEL}.role": "test-server",
        f"{LABEL}.service": "redis",
        f"{LABEL}.reuse": "0",
        f"{LABEL}.run": "elsewhere",
        **owner.to_labels(f"{LABEL}.owner"),
    }
    return client.containers.run(redis_image(), detach=True, labels=labels)


def test_unverifiable_owner_is_judged_by_its_heartbeat_never_by_its_pid(
    docker_client: docker.DockerClient, project: str
) -> None:
    me = Owner.current()
    # another machine (other boot id) with a pid that is dead here, and another container of
    # this machine (other pid namespace) whose pid happens to be ours: neither pid means
    # anything from here
    other_host = dataclasses.replace(me, pid=2**22 + 7, boot="another-boot", host="ci-runner-2")
    other_ns = dataclasses.replace(me, pidns="pid:[1]")
    live_elsewhere = _foreign(docker_client, project, other_host)
    gone_elsewhere = _foreign(docker_client, project, other_ns)
    reaper = docker_backend(project, service_timeout=0.1)
    # young, within the lease: kept although the pid is dead here (a lease longer than a
    # loaded machine takes to start the two containers)
    reaper.lease_seconds = 120.0
    assert reaper.reap_orphans() == []
    # a lease of a few heartbeats (every 0.5 s), even on a loaded machine
    reaper.lease_seconds = 6.0
    # the live run keeps beating; the other never does
    beating = threading.Event()

    def beat() -> None:
        while not beating.wait(0.5):
            beat_containers(Engine(), [live_elsewhere.id])

    threading.Thread(target=beat, daemon=True).start()
    try:
        time.sleep(7)
        assert reaper.reap_orphans() == [gone_elsewhere.name]
        live_elsewhere.reload()
        assert live_elsewhere.status == "running", "a run that keeps its heartbeat is never reaped"
    finally:
        beating.set()


def test_two_runs_sweeping_the_same_orphans_both_succeed(
    docker_client: docker.DockerClient, project: str
) -> None:
    dead = dataclasses.replace(Owner.current(), pid=2**22 + 9, start="1")
    orphans = [_foreign(docker_client, project, dead) for _ in range(4)]
    sweepers = [docker_backend(project) for _ in range(2)]
    results: list[list[str] | BaseException] = []

    def sweep(backend: object) -> None:
        try:
            results.append(backend.reap_orphans())  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, list) for r in results), results
    assert containers_of(docker_client, project) == []
    assert {n for r in results for n in r} <= {c.name for c in orphans}  # type: ignore[union-attr]


def test_reuse_keeps_containers_between_runs(
    docker_client: docker.DockerClient,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = docker_backend(project, reuse=True)
    a = first.start()
    first.stop()
    kept = containers_of(docker_client, project)
    assert len(kept) == 2, "reused containers survive the run"
    second = docker_backend(project, reuse=True)
    b = second.start()
    second.stop()
    assert (a.database_url, a.redis_url) == (b.database_url, b.redis_url)
    assert {c.id for c in containers_of(docker_client, project)} == {c.id for c in kept}
    # reused containers are never reaped as orphans: they have no owner
    assert docker_backend(project).reap_orphans() == []
    # a warm run finds them without asking the engine
    images = {"POSTGRES_IMAGE": pg_image(), "REDIS_IMAGE": redis_image()}
    config = load_config(
        ROOT, environ={"DOCKWORK_PROJECT_NAME": project, "DOCKWORK_REUSE": "1", **images}
    )
    warm = discover(config)
    assert isinstance(warm, CachedBackend)
    assert warm.start().database_url == a.database_url
    # once they are gone, the stale entry is dropped and the engine is asked again
    for c in kept:
        c.remove(force=True, v=True)
    assert not isinstance(discover(config), CachedBackend)


def non_loopback_address() -> str:
    """An IPv4 address of this machine other than loopback: the engine's "remote" host."""
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    for line in out.stdout.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127."):
            return address
    pytest.skip("this machine has no non-loopback IPv4 address to stand in for a remote engine")


def test_an_engine_at_this_machines_own_address_is_local(
    docker_client: docker.DockerClient, project: str
) -> None:
    own = non_loopback_address()
    with relay((0, own), "/var/run/docker.sock") as engine:
        url = f"tcp://{own}:{engine.address[1]}"
        env = {
            "DOCKWORK_PROJECT_NAME": project,
            "POSTGRES_IMAGE": pg_image(),
            "REDIS_IMAGE": redis_image(),
        }
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DOCKER_HOST", url)
            backend = discover(load_config(ROOT, environ=env))
            servers = backend.start()
            try:
                assert servers.database_url is not None
                assert "@127.0.0.1:" in servers.database_url, "published on loopback, as locally"
                with psycopg.connect(servers.database_url) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            finally:
                backend.stop()
    assert containers_of(docker_client, project) == []


def test_an_engine_that_does_not_answer_is_the_culprit_named(project: str) -> None:
    own = non_loopback_address()
    with socket.socket() as closed:  # a port of this machine where nothing listens
        closed.bind((own, 0))
        url = f"tcp://{own}:{closed.getsockname()[1]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", url)
        # docker, not auto: auto would (rightly) fall back to the embedded servers
        environ = {"DOCKWORK_PROJECT_NAME": project, "DOCKWORK_TEST_BACKEND": "docker"}
        config = load_config(ROOT, environ=environ)
        t0 = time.monotonic()
        with pytest.raises(ProvisionError) as excinfo:
            discover(config)
    message = excinfo.value.message
    assert time.monotonic() - t0 < 30
    assert f"no Docker engine answers at {url}" in message
    assert "Connection refused" in message, "the cause, not a cut-off SDK repr"
    assert "another machine" not in message
