"""The nox helpers: compose-file combinations and pytest argument building."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dockwork import noxtools
from dockwork.config import load_config
from dockwork.noxtools import compose_config_commands, compose_file_sets, pytest_args
from dockwork.runner import with_interpreter

ROOT = Path(__file__).resolve().parents[2]


def test_every_combination_keeps_the_base_file_first() -> None:
    config = replace(load_config(ROOT, environ={}), compose_files=("a.yaml", "b.yaml", "c.yaml"))
    assert compose_file_sets(config) == [
        ("a.yaml",),
        ("a.yaml", "b.yaml"),
        ("a.yaml", "c.yaml"),
        ("a.yaml", "b.yaml", "c.yaml"),
    ]


def test_compose_check_uses_the_example_env_file() -> None:
    config = load_config(ROOT, environ={})
    commands = compose_config_commands(config)
    assert len(commands) == 2
    for argv in commands:
        assert argv[-2:] == ["config", "--quiet"]
        assert argv[argv.index("--env-file") + 1] == ".env.example"


def test_pytest_args_add_test_paths_unless_paths_given() -> None:
    config = load_config(ROOT, environ={})
    assert pytest_args(config, ["-k", "users", "-x"], "not e2e") == [
        "pytest",
        "-m",
        "not e2e",
        "tests",
        "-k",
        "users",
        "-x",
    ]
    assert pytest_args(config, ["tests/unit/test_noxtools.py::test_x"]) == [
        "pytest",
        "tests/unit/test_noxtools.py::test_x",
    ]
    # a session's own default paths (tests-embedded: the integration tests) give way too
    assert pytest_args(config, ["-x"], paths=["tests/integration"]) == [
        "pytest",
        "tests/integration",
        "-x",
    ]
    assert pytest_args(config, ["tests/unit"], paths=["tests/integration"]) == [
        "pytest",
        "tests/unit",
    ]


def test_container_commands_run_with_the_given_interpreter() -> None:
    assert with_interpreter(("python3", "-m", "app.db"), "python") == ["python", "-m", "app.db"]
    assert with_interpreter(("alembic", "upgrade"), "python") == ["alembic", "upgrade"]


class _Venv:
    location = "/checkout/.nox/tests"


class _Session:
    """What noxtools.sync uses of a nox session: the venv, run_install and env."""

    def __init__(self) -> None:
        self.virtualenv = _Venv()
        self.env: dict[str, str | None] = {}
        self.installed: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def run_install(self, *argv: str, env: dict[str, str]) -> None:
        self.installed.append((argv, env))


def test_sync_installs_as_locked_and_gives_the_session_one_bytecode_cache() -> None:
    session = _Session()
    noxtools.sync(session, "bench")
    [(argv, env)] = session.installed
    assert argv == ("uv", "sync", "--locked", "--inexact", "--group", "bench")
    assert env == {"UV_PROJECT_ENVIRONMENT": "/checkout/.nox/tests"}
    # every command of the session: bytecode written once, in the venv, never the checkout
    assert session.env == {
        "PYTHONPYCACHEPREFIX": "/checkout/.nox/tests/pycache",
        "PYTHONDONTWRITEBYTECODE": None,
    }
