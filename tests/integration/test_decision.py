"""One decision picks a run's backend: pytest's header (choice) and the run (discover)
ask the same function, so they cannot disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dockwork.config import load_config
from dockwork.testing.servers import discovery, embedded
from dockwork.testing.servers.docker import DockerBackend
from dockwork.testing.servers.embedded import EmbeddedBackend
from dockwork.testing.servers.external import ExternalBackend
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
