"""One decision picks a run's backend: pytest's header (choice) and the run (discover)
ask the same function, so they cannot disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dockwork.config import load_config
from dockwork.testing.servers import discovery, embedded
from dockwork.testing.servers.docker import DockerBackend, connect
from dockwork.testing.servers.embedded import EmbeddedBackend
from dockwork.testing.servers.external import ExternalBackend
from dockwork.testing.servers.testrun import Run
from tests.helpers import needs_docker

if TYPE_CHECKING:
    from pathlib import Path

NOWHERE = "unix:///nonexistent/docker.sock"
CASES = {
    # test_backend, DOCKER_HOST, expected backend, expected class
    "auto, engine": ("auto", None, "docker", DockerBackend),
    "auto, no engine": ("auto", NOWHERE, "embedded", EmbeddedBackend),
    "docker": ("docker", None, "docker", DockerBackend),
    "embedded": ("embedded", None, "embedded", EmbeddedBackend),
}


@pytest.mark.parametrize("case", list(CASES))
def test_header_and_run_agree(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend, docker_host, expected, cls = CASES[case]
    if docker_host is None:
        needs_docker()
    else:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    if expected == "embedded" and embedded.missing(("postgres",)):
        pytest.skip("needs the embedded wheels")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.dockwork]\ntest_services = ["postgres"]\ntest_backend = "{backend}"\n'
    )
    config = load_config(tmp_path, environ={}, require_compose_files=False)
    decision = discovery.decide(config)
    assert decision.backend == expected
    assert isinstance(discovery.discover(config, decision=decision), cls)
    assert isinstance(discovery.discover(config), cls)
    assert discovery.choice(config).startswith(expected)


def test_external_wins_over_every_backend(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dockwork]\ntest_services = ["postgres"]\ntest_backend = "docker"\n'
    )
    url = "postgresql://u:secret@127.0.0.1:1/x"
    config = load_config(
        tmp_path, environ={"DOCKWORK_TEST_DATABASE_URL": url}, require_compose_files=False
    )
    assert discovery.decide(config).backend == "external"
    assert isinstance(discovery.discover(config), ExternalBackend)
    header = discovery.choice(config)
    assert header.startswith("external")
    assert "secret" not in header


SERVICE_TIMEOUT_CASES = {
    # test_backend, the settings' URLs, compose services among test_services
    "docker": ("docker", {}, False),
    "embedded": ("embedded", {}, False),
    "external": ("auto", {"DOCKWORK_TEST_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x"}, False),
    "external, a compose service in Docker": (
        "auto",
        {"DOCKWORK_TEST_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x"},
        True,
    ),
}


@pytest.mark.parametrize("case", list(SERVICE_TIMEOUT_CASES))
def test_the_service_timeout_reaches_every_backend(case: str, tmp_path: Path) -> None:
    """DOCKWORK_SERVICE_TIMEOUT, set as a user sets it, is the window every backend waits
    for its servers (and sizes its heartbeat lease from): no backend keeps a default."""
    backend_setting, urls, service = SERVICE_TIMEOUT_CASES[case]
    if backend_setting == "docker" or service:
        needs_docker()
    if backend_setting == "embedded" and embedded.missing(("postgres",)):
        pytest.skip("needs the embedded wheels")
    services = '["postgres", "mail"]' if service else '["postgres"]'
    (tmp_path / "pyproject.toml").write_text(
        f"[tool.dockwork]\ntest_services = {services}\ntest_backend = "
        f'"{backend_setting}"\ncompose_files = ["compose.yaml"]\n'
    )
    (tmp_path / "compose.yaml").write_text("services:\n  mail:\n    image: busybox\n")
    config = load_config(tmp_path, environ={"DOCKWORK_SERVICE_TIMEOUT": "120", **urls})
    assert config.service_timeout == 120
    backend = discovery.discover(config)
    assert backend.service_timeout == 120
    if isinstance(backend, ExternalBackend) and service:
        assert isinstance(backend.services, DockerBackend)
        assert backend.services.service_timeout == 120
    if isinstance(backend, DockerBackend | EmbeddedBackend):
        assert backend.lease_seconds >= 120


def test_a_run_asks_the_engine_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run decides once (pytest's header, or the first fixture) and records it: its
    other processes read the decision, the engine found, without asking again."""
    needs_docker()
    (tmp_path / "pyproject.toml").write_text('[tool.dockwork]\ntest_services = ["postgres"]\n')
    config = load_config(tmp_path, environ={}, require_compose_files=False)
    run = Run.begin()
    try:
        decided = run.decision(config)
        assert decided.backend == "docker"
        assert decided.engine is not None
        # from here on, asking anew would find no engine at all
        monkeypatch.setenv("DOCKER_HOST", NOWHERE)
        assert connect(timeout=5)[0] is None
        worker = Run.join(str(run.directory))
        recorded = worker.decision(config)
        assert recorded.backend == "docker"
        assert recorded.why == decided.why
        assert recorded.engine is not None
        assert recorded.engine.host == decided.engine.host
        recorded.engine.ping()  # the same engine, reached without a new decision
    finally:
        run.end()
