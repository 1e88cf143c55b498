"""Compose argv building and `ps --format json` parsing."""

from __future__ import annotations

import json
from pathlib import Path

from dockwork.compose import Command, Compose, parse_ps
from dockwork.config import load_config

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
