"""`inv doctor`: is this machine ready for `inv dev`? One line per check, with a fix."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockwork import runner
from dockwork.compose import Compose
from dockwork.config import load_config
from dockwork.engine import COMPOSE_HINT, INSTALL_HINT, START_HINT
from dockwork.errors import DockworkError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dockwork.config import Config

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
MARKS = {OK: "✔", WARN: "!", FAIL: "✘", SKIP: "-"}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def blocking(self) -> bool:
        """A failure that stops `inv dev`."""
        return self.status == FAIL


def _engine_kind(version: dict[str, Any]) -> str:
    server = version.get("Server") or {}
    platform = (server.get("Platform") or {}).get("Name", "")
    names = " ".join(str(c.get("Name", "")) for c in server.get("Components") or [])
    if "podman" in f"{platform} {names}".lower():
        return "Podman"
    return platform or "Docker Engine"


def _context() -> str:
    if os.environ.get("DOCKER_HOST"):
        return f"DOCKER_HOST={os.environ['DOCKER_HOST']}"
    result = runner.run(["docker", "context", "show"], check=False, timeout=10)
    return f"context {result.stdout.strip() or 'default'}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _published(resolved: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    for name, service in (resolved.get("services") or {}).items():
        for port in service.get("ports") or []:
            published = str(port.get("published") or "")
            if published.isdigit() and int(published) > 0:
                yield name, port.get("host_ip") or "0.0.0.0", int(published)  # noqa: S104


def run_checks(root: Path | None = None) -> list[Check]:  # noqa: PLR0912, PLR0915 - a checklist
    """Every check, in order; later ones are skipped when what they need is missing."""
    checks: list[Check] = []
    add = checks.append

    try:
        docker = runner.which("docker")
    except DockworkError:
        add(
            Check(
                "docker CLI",
                FAIL,
                "not on PATH",
                INSTALL_HINT,
            )
        )
        docker = ""
    else:
        add(Check("docker CLI", OK, docker))

    engine_ok = False
    if docker:
        result = runner.run(
            ["docker", "version", "--format", "{{json .}}"], check=False, timeout=20
        )
        try:
            version = json.loads(result.stdout) if result.stdout.strip() else {}
        except json.JSONDecodeError:
            version = {}
        server = version.get("Server") or {}
        if result.ok and server:
            engine_ok = True
            add(
                Check(
                    "engine",
                    OK,
                    f"{_engine_kind(version)} {server.get('Version', '?')} via {_context()}",
                )
            )
        else:
            reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
            add(
                Check(
                    "engine",
                    FAIL,
                    f"not reachable via {_context()}: {reason}",
                    START_HINT,
                )
            )
        compose = runner.run(["docker", "compose", "version", "--short"], check=False, timeout=20)
        short = compose.stdout.strip().lstrip("v")
        if compose.ok and short[:1].isdigit() and int(short.split(".")[0]) >= 2:  # noqa: PLR2004
            add(Check("compose", OK, f"Compose v{short}"))
        else:
            add(
                Check(
                    "compose",
                    FAIL,
                    "Compose v2 not found",
                    COMPOSE_HINT,
                )
            )

    config: Config | None = None
    try:
        config = load_config(root)
    except DockworkError as exc:
        add(Check("[tool.dockwork]", FAIL, exc.message.splitlines()[0], "fix pyproject.toml"))
    else:
        add(
            Check(
                "[tool.dockwork]",
                OK,
                f"project {config.project_name!r}, files {', '.join(config.compose_files)}",
            )
        )

    if config is None:
        return checks
    env_file = config.root / ".env"
    example = config.root / ".env.example"
    if env_file.is_file():
        add(Check(".env", OK, str(env_file.relative_to(config.root))))
    elif example.is_file():
        add(
            Check(
                ".env",
                WARN,
                "missing",
                "`inv dev` creates it from .env.example (or copy it yourself)",
            )
        )
    else:
        add(Check(".env", OK, "not used (no .env.example)"))

    if not docker:
        return checks
    compose_obj = Compose.from_config(config)
    env_arg = None if env_file.is_file() or not example.is_file() else str(example)
    checked = Compose(
        compose_obj.project_name,
        compose_obj.files,
        compose_obj.project_directory,
        env_arg or compose_obj.env_file,
        compose_obj.profiles,
    )
    resolved_run = runner.run(
        checked.config().add_option("--format", "json"), check=False, timeout=30
    )
    if not resolved_run.ok:
        detail = (resolved_run.stderr.strip().splitlines() or ["invalid"])[-1]
        add(
            Check("compose files", FAIL, detail, "fix the compose files or the variables they need")
        )
        return checks
    resolved = json.loads(resolved_run.stdout)
    add(Check("compose files", OK, f"valid ({len(resolved.get('services') or {})} services)"))

    ours: set[int] = set()
    if engine_ok:
        with contextlib.suppress(DockworkError):
            ours = {p for s in compose_obj.states() for p, _, _ in s.publishers}
    for service, host, port in _published(resolved):
        name = f"port {port} ({service})"
        if port in ours:
            add(Check(name, OK, "in use by this stack"))
        elif _port_free(host, port):
            add(Check(name, OK, f"free on {host}"))
        else:
            add(
                Check(
                    name,
                    FAIL,
                    f"in use on {host} by another program",
                    "stop it, or choose another port in .env (APP_PORT, DB_PORT, CACHE_PORT)",
                )
            )

    images = sorted(
        {
            str(s["image"])
            for s in (resolved.get("services") or {}).values()
            if s.get("image") and not s.get("build")
        }
    )
    for image in images:
        if not engine_ok:
            add(Check(f"image {image}", SKIP, "needs the engine"))
            continue
        present = runner.run(["docker", "image", "inspect", image], check=False, timeout=20).ok
        if present:
            add(Check(f"image {image}", OK, "present"))
        else:
            add(
                Check(
                    f"image {image}",
                    WARN,
                    "not present; pulled on first `inv dev`",
                    "needs registry access, or set the *_IMAGE variable to an image you have",
                )
            )
    return checks


def render(checks: list[Check]) -> str:
    """A table: mark, check, detail, fix."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        line = f"{MARKS[c.status]} {c.name:<{width}}  {c.detail}"
        if c.fix and c.status in {FAIL, WARN}:
            line += f"\n  {'':<{width}}  → {c.fix}"
        lines.append(line)
    blocking = [c.name for c in checks if c.blocking]
    lines.append("")
    lines.append(
        f"{len(blocking)} problem(s) block `inv dev`: {', '.join(blocking)}"
        if blocking
        else "ready for `inv dev`"
    )
    return "\n".join(lines)
