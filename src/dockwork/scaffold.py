"""``dockwork init``: set dockwork up in a project that has a compose file.

Reads the compose files as Compose does (``docker compose config --no-interpolate``: no
variable needs a value), infers the services dockwork works with, and writes what is
missing: ``tasks.py``, ``noxfile.py``, a ``[tool.dockwork]`` table and, when the compose
files need variables that have no default, ``.env.example``. It never overwrites a file
without ``--force``, asks nothing, and where it cannot infer a setting it writes a
commented placeholder and says what to fill in.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockwork import envfile, runner
from dockwork.compose import awaited
from dockwork.compose_yaml import kind_of_image
from dockwork.config import derive_template_inputs
from dockwork.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
#: other compose files: ``docker-compose.infra.yml``, ``compose.prod.yaml`` (not overrides)
COMPOSE_VARIANT = re.compile(r"^(docker-)?compose\.(?!override\.)[\w-]+\.ya?ml$")
APP_NAMES = ("app", "web", "api", "server", "backend")
#: directories never searched (dependencies, environments, caches)
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", ".git", ".tox", ".nox", "__pycache__"})
SEARCH_DEPTH = 4
#: ${NAME}, ${NAME?msg}, ${NAME:?msg}: no default (unlike ${NAME:-x} / ${NAME-x}); $${…} is
#: an escaped dollar for the container's shell, not a variable
NO_DEFAULT = re.compile(r"(?<!\$)\$\{(\w+)(?:(?::?\?)[^}]*)?\}")
#: split connection settings an app may read, by the part of the test database they name
SPLIT_SETTINGS = (
    (re.compile(r"^(POSTGRES|PG|DB|DATABASE)_?(SERVER|HOST|HOSTNAME)$"), "{postgres.host}"),
    (re.compile(r"^(POSTGRES|PG|DB|DATABASE)_?PORT$"), "{postgres.port}"),
    (re.compile(r"^(POSTGRES|PG|DB|DATABASE)_?(USER|USERNAME)$"), "{postgres.user}"),
    (re.compile(r"^(POSTGRES|PG|DB|DATABASE)_?(PASSWORD|PASS)$"), "{postgres.password}"),
    (
        re.compile(r"^(POSTGRES_DB|PGDATABASE|DB_NAME|DATABASE_NAME|POSTGRES_DATABASE)$"),
        "{postgres.database}",
    ),
)
#: a database driver the project depends on → the SQLAlchemy scheme its URLs use
DRIVERS = (
    ("asyncpg", "postgresql+asyncpg"),
    ("psycopg", "postgresql+psycopg"),
    ("psycopg2", "postgresql+psycopg2"),
    ("psycopg2-binary", "postgresql+psycopg2"),
)

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
    session.run(*noxtools.pytest_args(noxtools.project_config(), session.posargs))
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
    #: [tool.dockwork.test_env]: the variables the app reads its servers from
    test_env: dict[str, str] = field(default_factory=dict)
    #: what it could not read, said after the rest (a service's env_file that is not there)
    unread: list[str] = field(default_factory=list)


# -- where things are ------------------------------------------------------------------------


def _walk(top: Path, depth: int) -> Iterator[Path]:
    """Directories from ``top`` down to ``depth`` levels, skipping environments and caches."""
    yield top
    if depth <= 0:
        return
    try:
        children = sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name not in SKIP_DIRS and not child.name.startswith("."):
            yield from _walk(child, depth - 1)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def find_project(start: Path) -> tuple[Path, str]:
    """The Python project dockwork is set up in, and why: ``start`` when its pyproject.toml
    is a project's; else the one project below it (a uv workspace's member, ``backend/``)."""
    own = _toml(start / "pyproject.toml")
    if "project" in own or ("tool" in own and "dockwork" in own["tool"]):
        return start, "its pyproject.toml is the project's"
    found = [
        d
        for d in _walk(start, SEARCH_DEPTH)
        if d != start and "project" in _toml(d / "pyproject.toml")
    ]
    if len(found) > 1:  # the one with migrations or tests, when only one has them
        marked = [d for d in found if (d / "alembic.ini").is_file() or (d / "tests").is_dir()]
        found = marked if len(marked) == 1 else found
    if len(found) == 1:
        where = found[0].relative_to(start)
        return found[0], f"the Python project below {start.name}/ ({where}/pyproject.toml)"
    if found:
        names = ", ".join(str(d.relative_to(start)) for d in found)
        raise UsageError(
            f"several Python projects below {start}: {names}. Run `dockwork init` inside the "
            "one dockwork should work for, or name it with --root."
        )
    if own or (start / "pyproject.toml").exists():
        return start, "its pyproject.toml"
    raise UsageError(
        f"no pyproject.toml in {start} or below it. `dockwork init` sets dockwork up in a "
        "Python project: create one (`uv init`), or run it inside the project."
    )


def repository_top(project: Path) -> Path:
    """Where the project's repository begins (its git work tree), else the project."""
    for candidate in (project, *project.parents):
        if (candidate / ".git").exists():
            return candidate
    return project


def compose_sets(top: Path) -> list[list[Path]]:
    """Every compose file set below ``top``: a base file and its ``.override`` sibling."""
    sets: list[list[Path]] = []
    for directory in _walk(top, SEARCH_DEPTH):
        for path in sorted(directory.iterdir()):
            if not path.is_file():
                continue
            if path.name in COMPOSE_NAMES or COMPOSE_VARIANT.match(path.name):
                stem, _, suffix = path.name.rpartition(".")
                override = directory / f"{stem}.override.{suffix}"
                sets.append([path, *([override] if override.is_file() else [])])
    return sets


def compose_config(files: Sequence[Path]) -> dict[str, Any]:
    """``docker compose config --no-interpolate`` of ``files`` (no variable needs a value);
    the project directory is the first file's, as Compose has it."""
    argv = ["docker", "compose"]
    for f in files:
        argv += ["-f", str(f)]
    result = runner.run([*argv, "config", "--no-interpolate", "--format", "json"], check=False)
    if not result.ok:
        raise UsageError(
            f"`docker compose config` could not read {', '.join(map(str, files))}: "
            f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}. Fix the compose "
            "files, then run `dockwork init` again."
        )
    data = json.loads(result.stdout)
    return data if isinstance(data, dict) else {}


def _score(resolved: dict[str, Any]) -> tuple[int, str]:
    """How much of the app a compose set runs, and a few words on it."""
    services: dict[str, dict[str, Any]] = resolved.get("services") or {}
    built = sorted(n for n, s in services.items() if s.get("build") and _published(s))
    postgres = sorted(
        n for n, s in services.items() if kind_of_image(str(s.get("image") or "")) == "postgres"
    )
    score = (4 if built else 0) + (2 if postgres else 0) + (1 if len(services) > 1 else 0)
    parts = []
    if built:
        parts.append(f"builds and publishes {', '.join(built)}")
    if postgres:
        parts.append(f"runs PostgreSQL ({', '.join(postgres)})")
    return score, "; ".join(parts) or f"{len(services)} service(s), none built here"


def choose_compose(
    project: Path, start: Path | None = None
) -> tuple[list[Path], dict[str, Any], str]:
    """The compose set that runs the app: its files, resolved, and why it was chosen.
    Searched from the repository's top, or from ``start`` (where init ran) when that is
    higher: a template copied without its .git."""
    top = repository_top(project)
    if start is not None and start in top.parents:
        top = start
    sets = compose_sets(top)
    if not sets:
        raise UsageError(
            f"no compose file in {top} or below it ({', '.join(COMPOSE_NAMES)}). `dockwork "
            "init` sets dockwork up in a project that has one: write your compose.yaml first, "
            "then run it again."
        )
    scored = []
    for files in sets:
        try:
            resolved = compose_config(files)
        except UsageError:
            continue
        score, words = _score(resolved)
        # the base names before variants, the shallowest first
        plain = files[0].name in COMPOSE_NAMES
        scored.append(((score, plain, -len(files[0].parts)), files, resolved, words))
    if not scored:
        compose_config(sets[0])  # says why it cannot be read
    scored.sort(key=lambda item: item[0], reverse=True)
    _, files, resolved, words = scored[0]
    shown = " + ".join(_rel(f, project) for f in files)
    why = f"compose files {shown}: {words}"
    others = [" + ".join(_rel(f, project) for f in s[1]) for s in scored[1:]]
    if others:
        why += f" (also found: {'; '.join(others)}; --compose names another)"
    return files, resolved, why


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


# -- the settings --------------------------------------------------------------------------


def _command(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(str(value or ""))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping: its ``env_file`` files (which ``config
    --no-interpolate`` does not merge), then ``environment`` (Compose gives a list of K=V
    uninterpolated), which wins."""
    found: dict[str, str] = {}
    for entry in service.get("env_file") or []:
        path = Path(str(entry.get("path") if isinstance(entry, dict) else entry))
        found |= envfile.values(path)
    value = service.get("environment") or {}
    if isinstance(value, dict):
        return found | {str(k): str(v if v is not None else "") for k, v in value.items()}
    pairs = (str(item).partition("=") for item in value)
    return found | {k: v for k, _, v in pairs}


def _published(service: dict[str, Any]) -> bool:
    return bool(service.get("ports"))


def _pick(names: list[str], preferred: tuple[str, ...]) -> str | None:
    for want in preferred:
        for name in names:
            if name == want or name.startswith(want):
                return name
    return names[0] if names else None


def _services(found: Inferred, services: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """db (a PostgreSQL image), cache (Redis/Valkey), migrate (waited for to complete, or a
    one-shot that migrates), app (built here and publishing a port)."""
    names = sorted(services)

    def running(kind: str) -> list[str]:
        return [n for n in names if kind_of_image(str(services[n].get("image") or "")) == kind]

    db = _pick(running("postgres"), ("db", "postgres"))
    cache = _pick(running("redis"), ("cache", "redis", "valkey"))
    waited = sorted(awaited(services))
    one_shots = sorted(
        n
        for n in names
        if str(services[n].get("restart") or "no") == "no"
        and "migrat" in f"{n} {' '.join(_command(services[n].get('command')))}"
    )
    migrate = _pick(sorted(set(waited)), ("migrat", "prestart")) or _pick(one_shots, ("migrat",))
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
    for key, service in (("postgres_image", db), ("redis_image", cache)):
        image = _image(services[service]) if service else None
        if image:  # the tests' server is the app's: the same major, the same image
            found.settings[key] = image
            found.why.append(f"{key} = {image!r}: what {service} runs")
    test_services = [kind for kind, service in (("postgres", db), ("redis", cache)) if service]
    found.settings["test_services"] = test_services
    redis = "a Redis service is in" if cache else "no Redis service in"
    found.why.append(f"test_services = {test_services!r}: {redis} the compose files")
    return {"db": db, "cache": cache, "migrate": migrate, "app": app}


#: ``${NAME:-default}`` / ``${NAME-default}``: an image named by a variable, with a default
IMAGE_VARIABLE = re.compile(r"^\$\{\w+:?-([^}]+)\}$")


def _image(service: dict[str, Any]) -> str | None:
    """The image a service runs, as written or as its variable's default (None when it
    depends on a variable without one)."""
    image = str(service.get("image") or "")
    match = IMAGE_VARIABLE.match(image)
    if match:
        return match.group(1)
    return image if image and "$" not in image else None


def _alembic_ini(root: Path) -> Path | None:
    """The project's alembic.ini: at its root, else the one below it."""
    if (root / "alembic.ini").is_file():
        return root / "alembic.ini"
    below = _walk(root, SEARCH_DEPTH + 2)  # src/py/app/db/migrations/alembic.ini
    found = [d / "alembic.ini" for d in below if (d / "alembic.ini").is_file()]
    return found[0] if len(found) == 1 else None


def _shell_script(argv: list[str]) -> bool:
    """A command that runs a shell or a script (``bash scripts/prestart.sh``, ``sh -c …``)."""
    return bool(argv) and (Path(argv[0]).name in {"sh", "bash"} or argv[0].endswith(".sh"))


def _migrations(
    found: Inferred, root: Path, services: dict[str, Any], picked: dict[str, str | None]
) -> None:
    """The migration service and command, alembic's CLI, and what the schema depends on."""
    migrate: list[str] = []
    ini = _alembic_ini(root)
    alembic = (
        ["alembic"] if ini is None or ini.parent == root else ["alembic", "-c", _rel(ini, root)]
    )
    service = picked["migrate"] or picked["app"]
    if picked["migrate"]:
        migrate = _command(services[picked["migrate"]].get("command"))
        found.settings["migrate_service"] = picked["migrate"]
        waited = picked["migrate"] in awaited(services)
        found.why.append(
            f"migrate_service = {picked['migrate']!r}: it runs the migrations once, "
            + ("before the services that wait for it" if waited else "as the stack starts")
        )
        if ini is not None and (not migrate or _shell_script(migrate)):
            # a prestart script does more than migrate: run alembic itself
            migrate = [*alembic, "upgrade", "head"]
    elif service and ini is not None:
        migrate = [*alembic, "upgrade", "head"]
        found.settings["migrate_service"] = service
        found.why.append(f"migrate_service = {service!r}: no migration service; {_rel(ini, root)}")
    else:
        found.missing["migrate_service"] = (
            "no service runs the migrations; the service whose image has your migration tool"
        )
    if not migrate:
        found.missing["migrate_command"] = (
            "no migration service or alembic.ini found; the command that migrates to head, "
            'e.g. ["alembic", "upgrade", "head"]'
        )
        return
    found.settings["migrate_command"] = migrate
    found.why.append(f"migrate_command = {migrate!r}: what migrates to head")
    _migration_tool(found, root, migrate)
    inputs = derive_template_inputs(root, migrate)
    if inputs is None and ini is not None:
        inputs = derive_template_inputs(root, [*alembic, "upgrade", "head"])
    if inputs:
        found.settings["template_inputs"] = [inputs]
        found.why.append(f"template_inputs = [{inputs!r}]: where the migrations live")
    else:
        found.missing["template_inputs"] = (
            'the files the migrated schema depends on: ["migrations"]'
        )


def _migration_tool(found: Inferred, root: Path, migrate: list[str]) -> None:
    """Which CLI the db tasks drive: alembic's (``… upgrade head``), Advanced Alchemy's
    ``database`` group (``litestar database upgrade``), or another (each command to fill in)."""
    words = migrate[: migrate.index("upgrade")] if "upgrade" in migrate else []
    uses = dependencies(root) & {"advanced-alchemy", "litestar"}
    if words and words[-1] in {"database", "db"} and uses:
        found.settings["migration_tool"] = "advanced-alchemy"
        found.settings["migration_program"] = words
        found.why.append(
            f"migration_tool = 'advanced-alchemy': {' '.join(words)} is Advanced Alchemy's "
            f"database command group (the project uses {', '.join(sorted(uses))})"
        )
    elif migrate[-2:] == ["upgrade", "head"]:
        found.settings["alembic_command"] = migrate[:-2]
    else:
        found.settings["migration_tool"] = "custom"
        found.why.append(
            f"migration_tool = 'custom': {migrate[0]} is neither alembic nor Advanced Alchemy"
        )
        for key, example in (
            ("migration_revision", '["…", "new", "-m", "{message}"]'),
            ("migration_downgrade", '["…", "down", "{revision}"]'),
            ("migration_check", "[] if the tool has no drift check"),
        ):
            found.missing[key] = f"that command of your migration tool, e.g. {example}"


def dependencies(root: Path) -> set[str]:
    """The names of every package the project depends on (all groups and extras)."""
    data = _toml(root / "pyproject.toml")
    project = data.get("project") or {}
    specs: list[str] = list(project.get("dependencies") or [])
    for group in (project.get("optional-dependencies") or {}).values():
        specs += group
    for group in (data.get("dependency-groups") or {}).values():
        specs += [s for s in group if isinstance(s, str)]
    specs += list((data.get("tool") or {}).get("uv", {}).get("dev-dependencies") or [])
    return {re.split(r"[\s\[<>=!~;@]", s.strip(), maxsplit=1)[0].lower() for s in specs if s}


def _scheme(found: Inferred, root: Path, variable: str, scheme: str) -> None:
    """The driver scheme: the URL's own, else the driver the project depends on."""
    if "+" not in scheme:
        deps = dependencies(root)
        driver = next((s for name, s in DRIVERS if name in deps), None)
        if driver:
            found.settings["database_scheme"] = driver
            found.why.append(
                f"database_scheme = {driver!r}: {variable} names no driver; the project "
                f"depends on {driver.split('+')[1]}"
            )
            return
    found.settings["database_scheme"] = "postgresql" if scheme == "postgres" else scheme


def _unread_env_files(found: Inferred, root: Path, service: dict[str, Any], name: str) -> None:
    """The service's env_files that are not there (Compose would refuse to start it): what
    the app reads its servers from may be in them, so init says it could not read them."""
    for entry in service.get("env_file") or []:
        path = Path(str(entry.get("path") if isinstance(entry, dict) else entry))
        optional = isinstance(entry, dict) and entry.get("required") is False
        # read uninterpolated: a path made of variables is Compose's to find, not init's
        if not optional and "${" not in str(path) and not path.is_file():
            found.unread.append(
                f"{_rel(path, root)} ({name}'s env_file) does not exist: how the app finds "
                "its servers may be there; fix the path, then `dockwork init --force`"
            )


def _app_environment(found: Inferred, root: Path, service: dict[str, Any], name: str) -> None:
    """How the app reads its servers (URL variables, split ones: ``test_env``), the driver
    scheme, and where the project is mounted."""
    _unread_env_files(found, root, service, name)
    for variable, text in sorted(environment_of(service).items()):
        if text.startswith(("postgres://", "postgresql")):
            scheme = text.split("://", 1)[0]
            found.test_env[variable] = "{postgres.url}"
            if "database_url_env" not in found.settings:
                found.settings["database_url_env"] = variable
                _scheme(found, root, variable, scheme)
                found.why.append(
                    f"database_url_env = {variable!r} ({scheme}://…): {name}'s environment"
                )
        elif text.startswith(("redis://", "rediss://")):
            found.test_env[variable] = "{redis.url}"
            if "redis_url_env" not in found.settings:
                found.settings["redis_url_env"] = variable
                found.why.append(f"redis_url_env = {variable!r}: {name}'s environment")
        else:
            for pattern, template in SPLIT_SETTINGS:
                if pattern.match(variable):
                    found.test_env[variable] = template
    if found.test_env:
        found.why.append(
            f"test_env: {', '.join(found.test_env)} from {name}'s environment, set in every "
            "test process to its own test database before the tests are imported"
        )
    for volume in service.get("volumes") or []:
        source = str(volume.get("source") or "") if isinstance(volume, dict) else ""
        if source and Path(source).resolve() == root.resolve() and volume.get("target"):
            found.settings["container_workdir"] = str(volume["target"])
            found.why.append(f"container_workdir = {volume['target']!r}: where {name} mounts it")
            return


def _tests(found: Inferred, root: Path) -> None:
    """Where the tests are (pytest's testpaths, else a tests/ folder), and whether they are
    written on pytest-databases' fixtures."""
    pytest_ini = (_toml(root / "pyproject.toml").get("tool") or {}).get("pytest") or {}
    testpaths = (pytest_ini.get("ini_options") or {}).get("testpaths")
    if isinstance(testpaths, list) and testpaths:
        found.settings["test_paths"] = [str(p) for p in testpaths]
        found.why.append("test_paths: pytest's testpaths")
    elif (root / "tests").is_dir():
        found.settings["test_paths"] = ["tests"]
    if "pytest-databases" in dependencies(root):
        found.settings["pytest_databases"] = True
        found.why.append(
            "pytest_databases = true: the project uses pytest-databases; its postgres_service "
            "and redis_service get dockwork's servers"
        )


def infer(
    root: Path, resolved: dict[str, Any], raw_text: str, compose_dir: Path | None = None
) -> Inferred:
    """Settings from the compose configuration (uninterpolated) and the project's files;
    ``compose_dir``: where Compose reads ``.env`` (the first compose file's directory)."""
    found = Inferred()
    services: dict[str, dict[str, Any]] = resolved.get("services") or {}
    picked = _services(found, services)
    _migrations(found, root, services, picked)
    app = picked["app"]
    if app:
        _app_environment(found, root, services[app], app)
    _litestar_app(found, services, picked["migrate"] or app, compose_dir or root)
    _tests(found, root)
    where = compose_dir or root
    defined = set(envfile.values(where / ".env.example")) | set(_dotenv_names(where / ".env"))
    found.required_variables = sorted(set(NO_DEFAULT.findall(raw_text)) - defined)
    return found


#: how the litestar CLI finds the app (else ``--app`` or its autodiscovery)
LITESTAR_APP = "LITESTAR_APP"


def _litestar_app(found: Inferred, services: dict[str, Any], name: str | None, where: Path) -> None:
    """The litestar CLI migrates (``litestar database upgrade``) and the image tells it where
    the app is (litestar-fullstack's Dockerfile: ``ENV LITESTAR_APP=…``); the tests'
    migration runs on this machine, where nothing does: carried into ``test_env`` from the
    migrate service's environment or its Dockerfile."""
    command = found.settings.get("migrate_command")
    if not name or not isinstance(command, list) or LITESTAR_APP in found.test_env:
        return
    if "litestar" not in [Path(str(word)).name for word in command[:3]]:
        return
    service = services.get(name) or {}
    value, source = environment_of(service).get(LITESTAR_APP), "environment"
    if not value:
        value, source = _dockerfile_env(service, LITESTAR_APP, where), "Dockerfile"
    if not value or any(mark in value for mark in "${}"):  # unknown here, or a template
        return
    found.test_env[LITESTAR_APP] = value
    found.why.append(
        f"test_env: {LITESTAR_APP} = {value!r} from {name}'s {source}: the litestar CLI finds "
        "the app by it, and the tests migrate on this machine"
    )


#: ``$NAME``, ``${NAME}``, ``${NAME:-default}`` / ``${NAME-default}`` in a Dockerfile
_REFERENCE = re.compile(r"\$(?:\{(\w+)(?::?-([^}]*))?\}|(\w+))")


def _build_args(build: dict[str, Any]) -> dict[str, str]:
    """The service's ``build.args`` with a known value (a list of ``K=V`` or a mapping;
    read uninterpolated: ``${X:-default}`` gives its default, another variable nothing)."""
    given = build.get("args") or {}
    if isinstance(given, list):
        given = dict(str(item).partition("=")[::2] for item in given if "=" in str(item))
    known = {}
    for key, value in given.items():
        if value is None:
            continue
        text = str(value)
        default = IMAGE_VARIABLE.match(text)
        if default:
            known[str(key)] = default.group(1)
        elif "$" not in text:
            known[str(key)] = text
    return known


def _dockerfile_env(service: dict[str, Any], variable: str, where: Path) -> str | None:
    """The last ``ENV variable=…`` (or ``ENV variable …``) of the service's Dockerfile, its
    ``${ARG}`` references filled from the stage's ``ARG`` defaults or the service's build
    args (litestar-fullstack: ``ARG LITESTAR_APP=…`` then ``ENV LITESTAR_APP="${…}"``);
    a reference to anything else is left as written."""
    build = service.get("build")
    if not isinstance(build, dict) or not build.get("context"):
        return None
    context = Path(str(build["context"]))
    context = context if context.is_absolute() else where / context
    dockerfile = Path(str(build.get("dockerfile") or "Dockerfile"))
    path = dockerfile if dockerfile.is_absolute() else context / dockerfile
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    given = _build_args(build)
    before_from: dict[str, str] = {}  # ARGs before the first FROM: only where re-declared
    args: dict[str, str] = {}
    staged = False

    def fill(value: str) -> str:
        scope = args if staged else before_from

        def one(m: re.Match[str]) -> str:
            name = m[1] or m[3]
            if name in scope:
                return scope[name]
            return m[2] if m[2] is not None else m[0]

        return _REFERENCE.sub(one, value)

    found = None
    for keyword, words in _instructions(text):
        if keyword == "FROM":
            staged, args = True, {}
        elif keyword == "ARG":
            for word in words:
                name, sep, default = word.partition("=")
                value = given.get(name, fill(default) if sep else before_from.get(name))
                if value is not None:
                    (args if staged else before_from)[name] = value
        elif keyword == "ENV":
            if "=" in words[0]:
                pairs = [word.partition("=")[::2] for word in words if "=" in word]
            else:
                pairs = [(words[0], " ".join(words[1:]))]
            for key, value in pairs:
                if key == variable:
                    found = fill(value)
    return found


def _instructions(text: str) -> Iterator[tuple[str, list[str]]]:
    """A Dockerfile's FROM, ARG and ENV instructions: the keyword, its words unquoted."""
    for line in text.replace("\\\n", " ").splitlines():
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword not in {"FROM", "ARG", "ENV"} or not rest.strip():
            continue
        try:
            yield keyword, shlex.split(rest)
        except ValueError:
            continue


def _dotenv_names(path: Path) -> list[str]:
    """The variables a dotenv file gives a value."""
    return [name for name, value in envfile.values(path).items() if value]


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


#: the keys in the order init writes them (a commented placeholder for one it cannot tell)
ORDER = (
    "app_service",
    "db_service",
    "migrate_service",
    "migrate_command",
    "alembic_command",
    "migration_tool",
    "migration_program",
    "migration_revision",
    "migration_downgrade",
    "migration_check",
    "database_url_env",
    "database_scheme",
    "redis_url_env",
    "test_services",
    "postgres_image",
    "redis_image",
    "template_inputs",
    "test_paths",
    "pytest_databases",
    "container_workdir",
)
PLACEHOLDER = "dockwork init could not tell"


def render_table(files: Sequence[str | None], found: Inferred) -> str:
    """The ``[tool.dockwork]`` table, with placeholders commented out."""
    chosen = [f for f in files if f]
    lines = ["[tool.dockwork]", f"compose_files = {_toml_value(chosen)}"]
    overrides = [f for f in chosen if ".override." in Path(f).name]
    if overrides:
        lines.append(f"dev_override = {json.dumps(overrides[0])}")
    for key in ORDER:
        if key in found.settings:
            lines.append(f"{key} = {_toml_value(found.settings[key])}")
        elif key in found.missing:
            lines.append(f"# {key} = …  # {PLACEHOLDER}: {found.missing[key]}")
    if found.test_env:
        lines += ["", "[tool.dockwork.test_env]"]
        lines += [f"{name} = {json.dumps(value)}" for name, value in found.test_env.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Report:
    """What ``init`` did, file by file."""

    lines: list[str] = field(default_factory=list)

    def add(self, path: str, action: str, why: str) -> None:
        self.lines.append(f"  {action:<9} {path}: {why}")


def _write(path: Path, text: str, *, force: bool, report: Report, why: str, shown: str) -> None:
    if path.exists() and not force:
        if path.read_text() == text:
            report.add(shown, "unchanged", "already as dockwork init writes it")
        else:
            report.add(shown, "kept", "exists (--force rewrites it)")
        return
    action = "rewrote" if path.exists() else "wrote"
    path.write_text(text)
    report.add(shown, action, why)


#: the [tool.dockwork] table and its sub-tables ([tool.dockwork.test_env])
TABLE = re.compile(
    r"^\[tool\.dockwork(?:\.[\w-]+)?\][^\n]*\n(?:(?!\[)[^\n]*\n?)*"
    r"(?:^\[tool\.dockwork\.[\w-]+\][^\n]*\n(?:(?!\[)[^\n]*\n?)*)*",
    re.MULTILINE,
)


def _write_table(
    pyproject: Path, table: str, *, force: bool, report: Report, incomplete: bool = False
) -> None:
    """Write ``[tool.dockwork]``; an existing one only with ``force``, and never with a
    table inferred from files init could not all read (``incomplete``): it may have lost
    settings the existing one has."""
    text = pyproject.read_text() if pyproject.exists() else ""
    existing = TABLE.search(text)
    if existing and existing.group(0).strip() == table.strip():
        report.add("pyproject.toml", "unchanged", "[tool.dockwork] already as inferred")
        return
    if existing and force and incomplete:
        why = "[tool.dockwork] exists; not replaced by one inferred without the files below"
        report.add("pyproject.toml", "kept", why)
        return
    if existing and not force:
        report.add("pyproject.toml", "kept", "[tool.dockwork] exists (--force replaces it)")
        return
    if existing:
        rest = text[existing.end() :].lstrip("\n")
        text = text[: existing.start()] + table + ("\n" + rest if rest else "")
        action = "rewrote"
    else:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + table
        action = "wrote" if not pyproject.exists() else "added"
    pyproject.write_text(text)
    report.add("pyproject.toml", action, "[tool.dockwork], inferred as below")


def init(root: Path | None = None, *, force: bool = False, compose: Sequence[Path] = ()) -> int:
    """Set dockwork up in the project at or below ``root`` (default: here); print what was
    written and why. ``compose``: the compose files to use instead of the ones it picks."""
    start = (root or Path.cwd()).resolve()
    project, project_why = find_project(start)
    if compose:
        files = [Path(f).resolve() for f in compose]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"--compose names {', '.join(missing)}, which do not exist.")
        resolved = compose_config(files)
        set_why = (
            f"compose files {' + '.join(_rel(f, project) for f in files)}: named with --compose"
        )
    else:
        files, resolved, set_why = choose_compose(project, start)
    compose_dir = files[0].parent
    raw_text = "\n".join(f.read_text() for f in files)
    found = infer(project, resolved, raw_text, compose_dir)
    report = Report()
    write = functools.partial(_write, force=force, report=report)
    write(project / "tasks.py", TASKS_PY, why="dockwork's invoke tasks", shown="tasks.py")
    kinds = found.settings.get("test_services")
    # the round trip needs upgrade and downgrade: the presets have both, custom may not
    tool = found.settings.get("migration_tool", "alembic")
    migrations = "migrate_command" in found.settings and tool != "custom"
    migrations = migrations and isinstance(kinds, list) and "postgres" in kinds
    sessions = ["compose", "tests", *(["migrations"] if migrations else [])]
    noxfile = NOXFILE_HEAD.format(sessions=sessions) + (NOXFILE_MIGRATIONS if migrations else "")
    write(
        project / "noxfile.py",
        noxfile,
        why=f"nox sessions {', '.join(sessions)}",
        shown="noxfile.py",
    )
    names = [_rel(f, project) for f in files]
    _write_table(
        project / "pyproject.toml",
        render_table(names, found),
        force=force,
        report=report,
        incomplete=bool(found.unread),
    )
    env_note = _env_example(found, compose_dir, project, write)
    out = sys.stdout
    print(f"dockwork init in {project} ({project_why}):", file=out)
    print("\n".join(report.lines), file=out)
    print("inferred:", file=out)
    for line in [set_why, *found.why]:
        print(f"  {line}", file=out)
    for line in found.unread:
        print(f"not read: {line}", file=out)
    if found.missing:
        print("fill in (commented out in [tool.dockwork]; `inv doctor` points at each):", file=out)
        for key, what in found.missing.items():
            print(f"  {key}: {what}", file=out)
    if env_note:
        print(env_note, file=out)
    print("next: `inv --list`, `inv doctor`, `inv dev`; `nox -s tests`", file=out)
    return 0


def _env_example(
    found: Inferred, compose_dir: Path, project: Path, write: Callable[..., None]
) -> str:
    """``.env.example`` beside the compose files for the variables they need without a
    default, unless a ``.env`` there has them; what to do next, in a line."""
    if not found.required_variables:
        return ""
    names = ", ".join(found.required_variables)
    example = compose_dir / ".env.example"
    shown = _rel(example, project)
    text = (
        "# Development-only values; dockwork copies this file to .env (mode 0600) on first use.\n"
        + "".join(
            f"# required by the compose files (no default there): a development value\n{name}=\n"
            for name in found.required_variables
        )
    )
    write(example, text, why=f"the compose files need {names} without a default", shown=shown)
    return f"set development values for {names} in {shown}"


__all__ = [
    "Inferred",
    "choose_compose",
    "compose_sets",
    "dependencies",
    "find_project",
    "infer",
    "init",
    "render_table",
]
