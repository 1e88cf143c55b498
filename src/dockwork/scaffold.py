"""``dockwork init``: set dockwork up in a project that has a compose file.

Reads the compose files as Compose does (``docker compose config --no-interpolate``: no
variable needs a value), infers the services dockwork works with, and writes what is
missing: ``tasks.py``, ``noxfile.py``, a ``[tool.dockwork]`` table and, when the compose
files need variables that have no default, ``.env.example``. It never overwrites a file
without ``--force``, asks nothing, and where it cannot infer a setting it writes a
commented placeholder and says what to fill in.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockwork import runner
from dockwork.composefile import kind_of_image
from dockwork.config import derive_template_inputs
from dockwork.errors import UsageError

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
APP_NAMES = ("app", "web", "api", "server", "backend")
#: ${NAME}, ${NAME?msg}, ${NAME:?msg}: no default (unlike ${NAME:-x} / ${NAME-x}); $${…} is
#: an escaped dollar for the container's shell, not a variable
NO_DEFAULT = re.compile(r"(?<!\$)\$\{(\w+)(?:(?::?\?)[^}]*)?\}")

TASKS_PY = '''"""Tasks for this project: `inv --list`. The workflow itself lives in dockwork."""

from dockwork.tasks import namespace

ns = namespace()
'''

NOXFILE_HEAD = '''"""The checks, defined once: `nox` runs them here and in CI.

Written by `dockwork init`; edit freely. The logic is in dockwork.noxtools.
"""

from __future__ import annotations

import nox

from dockwork import noxtools
from dockwork.config import load_config

nox.options.default_venv_backend = "uv"
nox.options.envdir = noxtools.envdir()
nox.options.sessions = {sessions!r}


@nox.session
def compose(session: nox.Session) -> None:
    """`docker compose config -q` for every compose-file combination."""
    noxtools.check_compose(session)


@nox.session
def tests(session: nox.Session) -> None:
    """The tests, against real servers dockwork starts for them."""
    noxtools.sync(session)
    session.run(*noxtools.pytest_args(load_config(), session.posargs))
'''

NOXFILE_MIGRATIONS = '''

@nox.session
def migrations(session: nox.Session) -> None:
    """On a fresh PostgreSQL: upgrade head, downgrade base, upgrade head, then the drift check."""
    noxtools.sync(session)
    with noxtools.servers(session, "postgres") as servers:
        assert servers.database_url is not None
        noxtools.migration_roundtrip(session, servers.database_url)
'''


@dataclass
class Inferred:
    """What ``init`` found: settings, why, and what it could not tell."""

    settings: dict[str, object] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    required_variables: list[str] = field(default_factory=list)


def compose_files(root: Path) -> tuple[str, str | None]:
    """The base compose file and its override (Compose's own discovery names)."""
    for name in COMPOSE_NAMES:
        if (root / name).is_file():
            stem, _, suffix = name.rpartition(".")
            override = f"{stem}.override.{suffix}"
            return name, override if (root / override).is_file() else None
    raise UsageError(
        f"no compose file in {root} ({', '.join(COMPOSE_NAMES)}). `dockwork init` sets dockwork "
        "up in a project that has one: write your compose.yaml first, then run it again."
    )


def _command(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value or ""))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (Compose gives a list of K=V uninterpolated)."""
    value = service.get("environment") or {}
    if isinstance(value, dict):
        return {str(k): str(v if v is not None else "") for k, v in value.items()}
    pairs = (str(item).partition("=") for item in value)
    return {k: v for k, _, v in pairs}


def _published(service: dict[str, Any]) -> bool:
    return bool(service.get("ports"))


def _pick(names: list[str], preferred: tuple[str, ...]) -> str | None:
    for want in preferred:
        for name in names:
            if name == want or name.startswith(want):
                return name
    return names[0] if names else None


def _services(found: Inferred, services: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """db (a PostgreSQL image), cache (Redis/Valkey), migrate (waited for to complete), app
    (built here and publishing a port)."""
    names = sorted(services)

    def running(kind: str) -> list[str]:
        return [n for n in names if kind_of_image(str(services[n].get("image") or "")) == kind]

    db = _pick(running("postgres"), ("db", "postgres"))
    cache = _pick(running("redis"), ("cache", "redis"))
    waited = sorted(
        dep
        for s in services.values()
        for dep, how in (s.get("depends_on") or {}).items()
        if isinstance(how, dict) and how.get("condition") == "service_completed_successfully"
    )
    migrate = _pick(sorted(set(waited)), ("migrat",))
    others = [n for n in names if n not in {db, cache, migrate}]
    built = [n for n in others if services[n].get("build") and _published(services[n])]
    app = _pick(built, APP_NAMES) or _pick(
        [n for n in others if _published(services[n])], APP_NAMES
    )
    if db:
        found.settings["db_service"] = db
        found.why.append(
            f"db_service = {db!r}: its image is PostgreSQL ({services[db].get('image')})"
        )
    else:
        found.missing["db_service"] = "no service runs a postgres image; name your database service"
    if app:
        found.settings["app_service"] = app
        found.why.append(f"app_service = {app!r}: it is built here and publishes a port")
    else:
        found.missing["app_service"] = "no built service publishes a port; name your app service"
    test_services = [kind for kind, service in (("postgres", db), ("redis", cache)) if service]
    found.settings["test_services"] = test_services
    redis = "a Redis service is in" if cache else "no Redis service in"
    found.why.append(f"test_services = {test_services!r}: {redis} the compose files")
    return {"db": db, "cache": cache, "migrate": migrate, "app": app}


def _migrations(
    found: Inferred, root: Path, services: dict[str, Any], picked: dict[str, str | None]
) -> None:
    """The migration service and command, alembic's CLI, and what the schema depends on."""
    migrate: list[str] = []
    if picked["migrate"]:
        migrate = _command(services[picked["migrate"]].get("command"))
        found.settings["migrate_service"] = picked["migrate"]
        found.why.append(
            f"migrate_service = {picked['migrate']!r}: other services wait for it to complete "
            "(service_completed_successfully)"
        )
    elif picked["app"] and (root / "alembic.ini").is_file():
        migrate = ["alembic", "upgrade", "head"]
        found.settings["migrate_service"] = picked["app"]
        found.why.append(f"migrate_service = {picked['app']!r}: no migration service; alembic.ini")
    if not migrate:
        found.missing["migrate_command"] = (
            "no migration service or alembic.ini found; the command that migrates to head, "
            'e.g. ["alembic", "upgrade", "head"]'
        )
        return
    found.settings["migrate_command"] = migrate
    found.why.append(f"migrate_command = {migrate!r}: what that service runs")
    if migrate[-2:] == ["upgrade", "head"]:
        found.settings["alembic_command"] = migrate[:-2]
    inputs = derive_template_inputs(root, migrate)
    if inputs:
        found.settings["template_inputs"] = [inputs]
        found.why.append(f"template_inputs = [{inputs!r}]: where the migrations live")
    else:
        found.missing["template_inputs"] = (
            'the files the migrated schema depends on: ["migrations"]'
        )


def _app_environment(found: Inferred, root: Path, service: dict[str, Any], name: str) -> None:
    """The URL variables (and the database driver scheme) and where the project is mounted."""
    for variable, text in sorted(environment_of(service).items()):
        if (
            text.startswith(("postgres://", "postgresql"))
            and "database_url_env" not in found.settings
        ):
            scheme = text.split("://", 1)[0]
            found.settings["database_url_env"] = variable
            found.settings["database_scheme"] = "postgresql" if scheme == "postgres" else scheme
            found.why.append(
                f"database_url_env = {variable!r} ({scheme}://…): {name}'s environment"
            )
        elif text.startswith(("redis://", "rediss://")) and "redis_url_env" not in found.settings:
            found.settings["redis_url_env"] = variable
            found.why.append(f"redis_url_env = {variable!r}: {name}'s environment")
    for volume in service.get("volumes") or []:
        source = str(volume.get("source") or "") if isinstance(volume, dict) else ""
        if source and Path(source).resolve() == root.resolve() and volume.get("target"):
            found.settings["container_workdir"] = str(volume["target"])
            found.why.append(f"container_workdir = {volume['target']!r}: where {name} mounts it")
            return


def infer(root: Path, resolved: dict[str, Any], raw_text: str) -> Inferred:
    """Settings from the compose configuration (uninterpolated) and the project's files."""
    found = Inferred()
    services: dict[str, dict[str, Any]] = resolved.get("services") or {}
    picked = _services(found, services)
    _migrations(found, root, services, picked)
    app = picked["app"]
    if app:
        _app_environment(found, root, services[app], app)
    if (root / "tests").is_dir():
        found.settings["test_paths"] = ["tests"]
    defined = set(_dotenv_names(root / ".env.example"))
    found.required_variables = sorted(set(NO_DEFAULT.findall(raw_text)) - defined)
    return found


def _dotenv_names(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    ]


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value)


def render_table(files: tuple[str, str | None], found: Inferred) -> str:
    """The ``[tool.dockwork]`` table, with placeholders commented out."""
    base, override = files
    lines = [
        "[tool.dockwork]",
        f"compose_files = {_toml_value([base, *([override] if override else [])])}",
    ]
    if override:
        lines.append(f"dev_override = {json.dumps(override)}")
    order = (
        "app_service",
        "db_service",
        "migrate_service",
        "migrate_command",
        "alembic_command",
        "database_url_env",
        "database_scheme",
        "redis_url_env",
        "test_services",
        "template_inputs",
        "test_paths",
        "container_workdir",
    )
    for key in order:
        if key in found.settings:
            lines.append(f"{key} = {_toml_value(found.settings[key])}")
        elif key in found.missing:
            lines.append(f"# {key} = …  # dockwork init could not tell: {found.missing[key]}")
    return "\n".join(lines) + "\n"


@dataclass
class Report:
    """What ``init`` did, file by file."""

    lines: list[str] = field(default_factory=list)

    def add(self, path: str, action: str, why: str) -> None:
        self.lines.append(f"  {action:<9} {path}: {why}")


def _write(path: Path, text: str, *, force: bool, report: Report, why: str) -> None:
    if path.exists() and not force:
        if path.read_text() == text:
            report.add(path.name, "unchanged", "already as dockwork init writes it")
        else:
            report.add(path.name, "kept", "exists (--force rewrites it)")
        return
    action = "rewrote" if path.exists() else "wrote"
    path.write_text(text)
    report.add(path.name, action, why)


TABLE = re.compile(r"^\[tool\.dockwork\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", re.MULTILINE)


def _write_table(pyproject: Path, table: str, *, force: bool, report: Report) -> None:
    text = pyproject.read_text() if pyproject.exists() else ""
    existing = TABLE.search(text)
    if existing and existing.group(0).strip() == table.strip():
        report.add("pyproject.toml", "unchanged", "[tool.dockwork] already as inferred")
        return
    if existing and not force:
        report.add("pyproject.toml", "kept", "[tool.dockwork] exists (--force replaces it)")
        return
    if existing:
        text = text[: existing.start()] + table + "\n" + text[existing.end() :].lstrip("\n")
        action = "rewrote"
    else:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + table
        action = "wrote" if not pyproject.exists() else "added"
    pyproject.write_text(text)
    report.add("pyproject.toml", action, "[tool.dockwork], inferred as below")


def init(root: Path, *, force: bool = False) -> int:
    """Set dockwork up in ``root``; print what was written and why. Exit code 0."""
    root = root.resolve()
    files = compose_files(root)
    argv = ["docker", "compose", "--project-directory", str(root)]
    for f in files:
        if f:
            argv += ["-f", str(root / f)]
    result = runner.run([*argv, "config", "--no-interpolate", "--format", "json"], check=False)
    if not result.ok:
        raise UsageError(
            f"`docker compose config` could not read {', '.join(f for f in files if f)}: "
            f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}. Fix the compose "
            "files, then run `dockwork init` again."
        )
    raw_text = "\n".join((root / f).read_text() for f in files if f)
    found = infer(root, json.loads(result.stdout), raw_text)
    report = Report()
    _write(root / "tasks.py", TASKS_PY, force=force, report=report, why="dockwork's invoke tasks")
    kinds = found.settings.get("test_services")
    migrations = "alembic_command" in found.settings and isinstance(kinds, list)
    migrations = migrations and "postgres" in kinds  # type: ignore[operator]
    sessions = ["compose", "tests", *(["migrations"] if migrations else [])]
    noxfile = NOXFILE_HEAD.format(sessions=sessions) + (NOXFILE_MIGRATIONS if migrations else "")
    _write(
        root / "noxfile.py",
        noxfile,
        force=force,
        report=report,
        why=f"nox sessions {', '.join(sessions)}",
    )
    _write_table(root / "pyproject.toml", render_table(files, found), force=force, report=report)
    if found.required_variables:
        example = "".join(
            f"# required by the compose files (no default there): a development value\n{name}=\n"
            for name in found.required_variables
        )
        _write(
            root / ".env.example",
            "# Development-only values; dockwork copies this file to .env (mode 0600) on first"
            " use.\n" + example,
            force=force,
            report=report,
            why=f"the compose files need {', '.join(found.required_variables)} without a default",
        )
    out = sys.stdout
    print(f"dockwork init in {root}:", file=out)
    print("\n".join(report.lines), file=out)
    print("inferred:", file=out)
    for line in found.why:
        print(f"  {line}", file=out)
    if found.missing:
        print("fill in (commented out in [tool.dockwork]):", file=out)
        for key, what in found.missing.items():
            print(f"  {key}: {what}", file=out)
    if found.required_variables:
        print(
            f"set development values for {', '.join(found.required_variables)} in .env.example",
            file=out,
        )
    print("next: `inv --list`, `inv doctor`, `inv dev`; `nox -s tests`", file=out)
    return 0


__all__ = ["Inferred", "compose_files", "infer", "init", "render_table"]
