"""Compose argv building and `ps --format json` parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockwork.compose import Command, Compose, ServiceState, parse_ps
from dockwork.config import load_config
from dockwork.runner import Result

ROOT = Path(__file__).resolve().parents[2]
BASE = ["docker", "compose", "-p", "demo", "-f", "compose.yaml", "-f", "compose.override.yaml"]


def compose() -> Compose:
    return Compose(project_name="demo", files=("compose.yaml", "compose.override.yaml"))


def test_command_skips_none_and_false() -> None:
    cmd = Command(["x"]).add_flag("--a").add_flag("--b", value=False)
    cmd.add_option("--c", None).add_option("--d", 0).add_option("--e", ["1", "2"])
    assert cmd == ["x", "--a", "--d", "0", "--e", "1", "--e", "2"]


def test_global_options_built_once() -> None:
    c = Compose(
        "demo", ("a.yaml",), project_directory="/p", env_file=".env.ci", profiles=("x", "y")
    )
    assert c.command("ps") == [
        "docker",
        "compose",
        "-p",
        "demo",
        "-f",
        "a.yaml",
        "--project-directory",
        "/p",
        "--env-file",
        ".env.ci",
        "--profile",
        "x",
        "--profile",
        "y",
        "ps",
    ]


def test_up_waits_with_timeout() -> None:
    assert compose().up(wait_timeout=90) == [
        *BASE,
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        "90",
        "--remove-orphans",
    ]
    assert compose().up(["db"], wait=False, build=True) == [
        *BASE,
        "up",
        "--detach",
        "--build",
        "--remove-orphans",
        "db",
    ]


def test_down_keeps_volumes_unless_asked() -> None:
    assert compose().down() == [*BASE, "down", "--remove-orphans"]
    assert compose().down(volumes=True) == [*BASE, "down", "--volumes", "--remove-orphans"]


def test_logs_run_exec() -> None:
    assert compose().logs(["app"], follow=True, tail=20) == [
        *BASE,
        "logs",
        "--follow",
        "--tail",
        "20",
        "app",
    ]
    assert compose().run("migrate", ["python", "-m", "app.db", "upgrade", "head"], tty=False) == [
        *BASE,
        "run",
        "--rm",
        "-T",
        "migrate",
        "python",
        "-m",
        "app.db",
        "upgrade",
        "head",
    ]
    assert compose().run("app", ["bash"], env={"A": "1"}) == [
        *BASE,
        "run",
        "--rm",
        "--env",
        "A=1",
        "app",
        "bash",
    ]
    assert compose().run("app", ["pytest"], tty=False, user="1000:1000", env={"SECRET": None}) == [
        *BASE,
        "run",
        "--rm",
        "-T",
        "--user",
        "1000:1000",
        "--env",
        "SECRET",
        "app",
        "pytest",
    ]
    assert compose().exec("app", ["bash"], tty=False) == [*BASE, "exec", "-T", "app", "bash"]


def test_paths_are_short_at_the_root_and_absolute_elsewhere(tmp_path: Path) -> None:
    config = load_config(ROOT, environ={})
    at_root = Compose.from_config(config, cwd=ROOT)
    assert at_root.files == ("compose.yaml", "compose.override.yaml")
    assert at_root.project_directory is None
    elsewhere = Compose.from_config(config, cwd=tmp_path)
    assert elsewhere.files == (str(ROOT / "compose.yaml"), str(ROOT / "compose.override.yaml"))
    assert elsewhere.project_directory == str(ROOT)


PS_ITEM = {
    "Service": "app",
    "Name": "demo-app-1",
    "State": "running",
    "Health": "healthy",
    "ExitCode": 0,
    "Publishers": [
        {"URL": "0.0.0.0", "TargetPort": 8000, "PublishedPort": 8000, "Protocol": "tcp"},
        {"URL": "", "TargetPort": 9000, "PublishedPort": 0, "Protocol": "tcp"},
    ],
}
PS_MIGRATE = {
    "Service": "migrate",
    "Name": "demo-migrate-1",
    "State": "exited",
    "Health": "",
    "ExitCode": 0,
    "Publishers": None,
}


def test_parse_ps_lines_and_array() -> None:
    lines = json.dumps(PS_ITEM) + "\n" + json.dumps(PS_MIGRATE) + "\n"
    for text in (lines, json.dumps([PS_ITEM, PS_MIGRATE])):
        app, migrate = parse_ps(text)
        assert (app.service, app.healthy, app.publishers[0]) == (
            "app",
            True,
            (8000, 8000, "0.0.0.0"),
        )
        assert (migrate.state, migrate.exit_code, migrate.healthy) == ("exited", 0, False)
    assert parse_ps("") == []


def test_unhealthy_is_not_healthy() -> None:
    (state,) = parse_ps(json.dumps({**PS_ITEM, "Health": "starting"}))
    assert not state.healthy


def test_compose_files_above_the_project_keep_their_own_directory(tmp_path: Path) -> None:
    """FastAPI's template: compose.yml at the repository's root, the project in backend/.
    Compose's project directory (where it reads .env and resolves `build: ./backend`) is the
    first file's, from anywhere."""
    (tmp_path / "compose.yml").write_text("services: {}\n")
    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / "pyproject.toml").write_text('[tool.dockwork]\ncompose_files = ["../compose.yml"]\n')
    config = load_config(backend, environ={})
    assert config.compose_dir == tmp_path.resolve()
    at_root = Compose.from_config(config, cwd=backend)
    assert at_root.files == ("../compose.yml",)
    assert at_root.project_directory is None  # Compose takes the first file's directory
    elsewhere = Compose.from_config(config, cwd=tmp_path)
    assert elsewhere.project_directory == str(tmp_path.resolve())


def test_engine_timestamps_are_read_to_the_fraction() -> None:
    from dockwork.compose import _timestamp  # noqa: PLC0415 - a private helper, pinned here

    assert _timestamp("1970-01-01T00:00:10.5Z") == 10.5
    assert _timestamp("2026-11-30T22:10:01.123456789Z") == pytest.approx(1796076601.123456789)
    assert _timestamp("2026-11-30T22:10:01Z") == 1796076601
    assert _timestamp("0001-01-01T00:00:00Z") is not None  # a container never started
    assert _timestamp("garbage") is None


def _running(service: str, health: str = "") -> ServiceState:
    return ServiceState(service, f"p-{service}-1", "running", health, 0)


@pytest.mark.parametrize(
    ("lives", "expected"),
    [
        (["0 running 0", "0 running 0"], []),
        (["0 running 0", "0 exited 0"], []),  # finished its work: fine, as settle says
        (["0 running 0", "0 exited 1"], ["app"]),
        (["0 running 0", "0 restarting 1", "0 restarting 1"], ["app"]),  # stuck
        (["0 running 0", "1 running 0", "1 running 0"], []),  # one restart, then up
        (["0 running 0", "1 running 0", "2 running 0"], ["app"]),  # a second one
        (["3 running 0", "0 running 0"], []),  # restarted by hand meanwhile: not a crash
    ],
    ids=["up", "exit-0", "exit-1", "stuck", "one-restart", "two-restarts", "count-reset"],
)
def test_a_service_without_healthcheck_must_stay_up(
    monkeypatch: pytest.MonkeyPatch, lives: list[str], expected: list[str]
) -> None:
    from dockwork import compose as module  # noqa: PLC0415

    answers = iter(lives)
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> Result:  # noqa: ARG001 - runner.run's
        calls.append(argv)
        if argv[1] == "info":
            return Result(tuple(argv), 0, "2026-11-30T22:10:02.5Z\n")
        return Result(tuple(argv), 0, f"/p-app-1 {next(answers)} 2026-11-30T22:10:01Z\n")

    slept: list[float] = []
    monkeypatch.setattr(module.runner, "run", run)
    monkeypatch.setattr(module.time, "sleep", slept.append)
    states = [_running("app"), _running("db", "healthy"), _running("migrate")]
    compose = Compose("p", ("compose.yaml",))
    assert compose.unsteady(states, one_shot={"migrate"}) == expected
    assert slept[0] == pytest.approx(1.5), "only what remains of 3 s since it started"
    assert all("p-db-1" not in c and "p-migrate-1" not in c for c in calls)


def test_a_stack_whose_services_all_have_healthchecks_costs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dockwork import compose as module  # noqa: PLC0415

    monkeypatch.setattr(module.runner, "run", lambda *a, **k: pytest.fail("no command"))
    monkeypatch.setattr(module.time, "sleep", lambda s: pytest.fail("no wait"))
    states = [_running("app", "healthy"), _running("db", "healthy")]
    assert Compose("p", ("compose.yaml",)).unsteady(states, one_shot=()) == []
