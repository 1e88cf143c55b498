"""``[tool.dockwork]`` resolved once into a frozen dataclass.

Precedence: explicit overrides (task arguments) > environment (``DOCKWORK_*``) >
``[tool.dockwork]`` in pyproject.toml > defaults. Nothing is read at import time. Every knob
dockwork reads is a field here: the code below this module never looks at ``os.environ``
for its own settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, get_args, get_origin, get_type_hints

from dockwork import kinds
from dockwork.errors import ConfigError
from dockwork.private import cache_dir  # re-exported: the one cache, private to its user
from dockwork.urls import POSTGRES_SCHEMES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

ENV_PREFIX = "DOCKWORK_"
#: settings that also follow a variable the compose files read (the contract's names); the
#: DOCKWORK_ name wins over these
ENV_ALIASES = kinds.image_variables() | {"deploy_proxy_image": "HAPROXY_IMAGE"}
#: Compose's rule for project names (compose-spec: lowercase letters, digits, - and _,
#: starting with a letter or digit)
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
POSTGRES_INIT_MODES = ("baked", "direct", "entrypoint")
#: the built-in test-server kinds (any service of the compose files can be one too)
TEST_SERVICES = tuple(kinds.KINDS)
TEST_BACKENDS = ("auto", "docker", "embedded")
DEPLOY_ROUTINGS = ("mesh", "proxy")
LIMIT_KEYS = ("cpus", "memory")
#: Docker's rule for stack (and service) names
STACK_NAME = re.compile(r"^(?=.{1,41}$)[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$")
#: the migration commands: lists of strings, or unset (None: the tool's preset)
MIGRATION_STEPS = frozenset(
    {
        "migration_upgrade",
        "migration_downgrade",
        "migration_revision",
        "migration_empty_revision",
        "migration_check",
        "migration_history",
        "migration_current",
    }
)
#: seconds test servers get to answer a real query (one default: the backends use it too)
DEFAULT_SERVICE_TIMEOUT = 60.0
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class Config:
    """Everything project-specific that dockwork needs to know."""

    root: Path
    project_name: str = ""
    compose_files: tuple[str, ...] = ("compose.yaml", "compose.override.yaml")
    #: the development override: `.env` is created from `.env.example` only when it is in use
    dev_override: str = "compose.override.yaml"
    env_file: str | None = None
    profiles: tuple[str, ...] = ()
    app_service: str = "app"
    db_service: str = "db"
    migrate_service: str = "migrate"
    migrate_command: tuple[str, ...] = ("python", "-m", "app.db", "upgrade", "head")
    #: the migration tool's command line without a subcommand (alembic's CLI)
    alembic_command: tuple[str, ...] = ("python", "-m", "app.db")
    #: the CLI the db tasks drive (see dockwork.migrations): "alembic", "advanced-alchemy"
    #: (its `database` group: `litestar database …`, `app database …`) or "custom" (each
    #: migration_* command given)
    migration_tool: str = "alembic"
    #: the preset's command line without a subcommand (default: `alembic_command` for
    #: alembic; for advanced-alchemy, `migrate_command`'s words before "upgrade")
    migration_program: tuple[str, ...] = ()
    #: each command's whole argv, overriding the preset; dockwork fills {revision} (upgrade,
    #: downgrade) and {message} (the revisions); [] = the tool has no such command
    migration_upgrade: tuple[str, ...] | None = None
    migration_downgrade: tuple[str, ...] | None = None
    migration_revision: tuple[str, ...] | None = None
    migration_empty_revision: tuple[str, ...] | None = None
    migration_check: tuple[str, ...] | None = None
    migration_history: tuple[str, ...] | None = None
    migration_current: tuple[str, ...] | None = None
    #: where new revision files belong (default: the `versions` directory under
    #: `template_inputs`); `inv db.revision` copies them here from a container without it
    migration_versions: str = ""
    #: the environment variables through which the app, its migrations and its tests get
    #: the database and Redis URLs
    database_url_env: str = "DATABASE_URL"
    redis_url_env: str = "REDIS_URL"
    #: the SQLAlchemy driver scheme the project's code expects in database URLs
    database_scheme: str = "postgresql"
    #: how the app reads its connection settings, set in every pytest process (each xdist
    #: worker: its own database) before any conftest or test module is imported: variable
    #: -> template over the worker's servers, e.g. POSTGRES_SERVER = "{postgres.host}",
    #: DATABASE_URL = "{postgres.url}", REDIS_URL = "{redis.url}" (see dockwork.kinds.templates).
    #: Empty (the default): nothing is set, servers start when a fixture first asks
    test_env: tuple[tuple[str, str], ...] = ()
    #: suites written on pytest-databases' fixtures (postgres_service, redis_service, …)
    #: get dockwork's servers behind those names
    pytest_databases: bool = False
    shell_command: tuple[str, ...] = ("bash",)
    #: the frontend's Node service (`inv web.*`; its URL printed by `inv dev`)
    web_service: str = "web"
    #: where the dev image has the checkout mounted (maps container paths to host paths)
    container_workdir: str = "/app"
    test_paths: tuple[str, ...] = ("tests",)
    #: files whose content defines the migrated schema; the test template is keyed by them
    #: (default: where the migrate command's migrations live)
    template_inputs: tuple[str, ...] = ()
    #: seconds `up --wait` may take (Compose takes whole seconds)
    wait_timeout: int = 180
    #: seconds each engine query of `inv doctor` and the engine check may take
    engine_timeout: float = 20
    log_tail: int = 50
    #: seconds the test servers get to answer a real query
    service_timeout: float = DEFAULT_SERVICE_TIMEOUT
    #: keep the test servers between runs (DOCKWORK_REUSE=1)
    reuse: bool = False
    #: how the test PostgreSQL container starts: "baked" (an image with the data directory
    #: initialised once), "direct" (initdb + postgres in each container) or "entrypoint"
    postgres_init: str = "baked"
    #: where test servers come from: "auto" (a Docker engine when one answers, else the
    #: embedded servers), "docker", or "embedded" (server processes from wheels, no Docker)
    test_backend: str = "auto"
    #: the embedded PostgreSQL's major version the project requires ("" = any), e.g. "18"
    embedded_postgres: str = ""
    #: the address test containers publish their ports on (the engine's loopback by default)
    test_bind: str = "127.0.0.1"
    #: the servers the project's tests use: "postgres", "redis", or the name of any service of
    #: the compose files (run as its own container; see dockwork.kinds). Default: the
    #: kinds the compose files run
    test_services: tuple[str, ...] = ("postgres",)
    #: servers the user runs for tests (never the app's DATABASE_URL / REDIS_URL): when set,
    #: dockwork starts nothing and uses these (DOCKWORK_TEST_DATABASE_URL, …_REDIS_URL)
    test_database_url: str | None = None
    test_redis_url: str | None = None
    #: images of the test servers (POSTGRES_IMAGE / REDIS_IMAGE, like the compose files)
    postgres_image: str = "postgres:17"
    redis_image: str = "redis:7"
    #: `inv deploy.*` (Docker Swarm): the stack's name (default: the project's)
    deploy_stack: str = ""
    #: the compose files the stack file is rendered from (production: no dev override)
    deploy_files: tuple[str, ...] = ("compose.yaml",)
    #: replicas, as "service=N" (default: the app 2, every other service 1)
    deploy_replicas: tuple[str, ...] = ()
    #: resource limits, as "service.cpus=1.5" / "service.memory=512M"
    deploy_limits: tuple[str, ...] = ()
    #: variables that become Docker secrets (their value from the environment, or from the
    #: file `<NAME>_FILE` names)
    deploy_secrets: tuple[str, ...] = ("POSTGRES_PASSWORD",)
    #: a registry to push the images to, so other nodes can pull them (none: this node's)
    deploy_registry: str = ""
    #: the images' tag (default: the commit, with "-dirty-<hash>" for uncommitted changes)
    deploy_tag: str = ""
    #: "mesh" (Swarm's virtual IPs and ingress routing) or "proxy" (DNS round robin, the
    #: app published by an HAProxy service in host mode: for engines without IPVS)
    deploy_routing: str = "mesh"
    #: the proxy's image (HAPROXY_IMAGE, like the compose files' image variables)
    deploy_proxy_image: str = "haproxy:3.0"
    #: seconds an updated task is watched before the update counts as good
    deploy_monitor: float = 10
    #: seconds a deploy (the migration job, then convergence) may take
    deploy_timeout: float = 300

    @property
    def compose_paths(self) -> tuple[Path, ...]:
        """The compose files as absolute paths."""
        return tuple(self.root / f for f in self.compose_files)

    @property
    def compose_dir(self) -> Path:
        """Compose's project directory: the first compose file's (where it reads ``.env``
        and resolves relative paths), which need not be the Python project's."""
        return (self.root / self.compose_files[0]).parent.resolve()

    def template_paths(self) -> list[Path]:
        """The files the migrated test template is keyed by; an error names the key when they
        are unknown or match nothing (a template keyed by nothing would never refresh)."""
        if not self.template_inputs:
            raise ConfigError(
                "`template_inputs` is not set, and dockwork cannot tell from `migrate_command` "
                f"({shlex.join(self.migrate_command)}) where the migrations live. Set it in "
                '[tool.dockwork] to the files the migrated schema depends on, e.g. ["migrations"].'
            )
        missing = [p for p in self.template_inputs if not (self.root / p).exists()]
        if missing:
            raise ConfigError(
                f"`template_inputs` names {', '.join(map(repr, missing))}, which match no file "
                f"under {self.root}. Fix it in [tool.dockwork]: the migrations' directory, e.g. "
                '["migrations"].'
            )
        return [self.root / p for p in self.template_inputs]

    @property
    def stack(self) -> str:
        """The Swarm stack's name."""
        return self.deploy_stack or self.project_name

    def replicas(self) -> dict[str, int]:
        """``deploy_replicas`` as a mapping (validated when the config was loaded)."""
        return {k: int(v) for k, v in (e.split("=", 1) for e in self.deploy_replicas)}

    def limits(self) -> dict[str, dict[str, str]]:
        """``deploy_limits`` as service → {"cpus": …, "memory": …}."""
        out: dict[str, dict[str, str]] = {}
        for entry in self.deploy_limits:
            key, value = entry.split("=", 1)
            service, what = key.rsplit(".", 1)
            out.setdefault(service, {})[what] = value
        return out

    @property
    def development(self) -> bool:
        """True when the development override is among the compose files in use."""
        return self.dev_override in self.compose_files


#: keys that cannot be set from pyproject (they are derived)
_DERIVED = {"root"}
_FIELDS = {f.name: f for f in dataclasses.fields(Config) if f.name not in _DERIVED}
_HINTS = get_type_hints(Config)


def _kind(name: str) -> str:
    hint = _HINTS[name]
    if get_origin(hint) is tuple:
        return "list of strings"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if isinstance(hint, UnionType) and type(None) in get_args(hint):
        return "string or null"
    return "string"


def _number(value: object, *, from_env: bool, integer: bool) -> float | int | None:
    """A positive number from TOML or an environment string; None when it is not one."""
    if isinstance(value, str) and from_env:
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if integer and not isinstance(value, int):
        return None
    return value if value > 0 and value == value and value != float("inf") else None  # noqa: PLR0124 - NaN


def _table(name: str, value: object, source: str) -> tuple[tuple[str, str], ...]:
    """A table of strings (TOML), or ``NAME=value`` words (an environment variable)."""
    if isinstance(value, str) and source.startswith("environment"):
        pairs = [word.partition("=") for word in shlex.split(value)]
        if all(sep and key for key, sep, _ in pairs):
            return tuple((key, text) for key, _, text in pairs)
    elif isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return tuple(value.items())
    raise ConfigError(
        f"{source}: `{name}` must be a table of strings (in pyproject: "
        f'[tool.dockwork.{name}] with lines like DATABASE_URL = "{{postgres.url}}"; in the '
        f'environment: "DATABASE_URL={{postgres.url}} …"), got {value!r}. Fix it in {source}.'
    )


def _coerce(name: str, value: object, source: str) -> object:
    if name == "test_env":
        return _table(name, value, source)
    if name in MIGRATION_STEPS:
        return _argv(name, value, source)
    return _coerce_scalar(name, value, source)


def _argv(name: str, value: object, source: str) -> tuple[str, ...]:
    """A migration command: a list of strings (``[]``: the tool has no such command)."""
    if isinstance(value, str) and source.startswith("environment"):
        value = shlex.split(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(
        f"{source}: `{name}` must be a list of strings (the command's argv, e.g. "
        f'["alembic", "upgrade", "{{revision}}"]; [] when the tool has no such command), got '
        f"{value!r}. Fix it in {source}."
    )


def _coerce_scalar(name: str, value: object, source: str) -> object:
    kind = _kind(name)
    from_env = source.startswith("environment")
    if kind == "list of strings":
        if isinstance(value, str) and from_env:
            value = shlex.split(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind in {"integer", "number"}:
        number = _number(value, from_env=from_env, integer=kind == "integer")
        if number is not None:
            return number
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and from_env and value.strip().lower() in TRUE | FALSE:
            return value.strip().lower() in TRUE
    elif kind == "string or null":
        if value is None or isinstance(value, str):
            return value
    elif isinstance(value, str):
        return value
    article = "an" if kind[0] in "aeiou" else "a"
    positive = " greater than 0" if kind in {"integer", "number"} else ""
    example = " (seconds, e.g. 60)" if kind == "number" else ""
    raise ConfigError(
        f"{source}: `{name}` must be {article} {kind}{positive}{example}, got {value!r}. "
        f"Fix it in {source}."
    )


def _validate(config: Config, sources: Mapping[str, str]) -> None:
    """Checks across a field's whole value (the types are already right); each message
    names where the value came from."""

    def where(name: str) -> str:
        return sources.get(name, "its default")

    if not PROJECT_NAME.match(config.project_name):
        raise ConfigError(
            f"{where('project_name')}: `project_name` {config.project_name!r} is not a valid "
            "Compose project name: use lowercase letters, digits, '-' and '_', starting with a "
            f"letter or digit (e.g. {_normalise(config.project_name) or 'my-project'!r})."
        )
    if not config.compose_files:
        raise ConfigError(
            f"{where('compose_files')}: `compose_files` is empty: dockwork needs at least one "
            'compose file (e.g. ["compose.yaml"]).'
        )
    _validate_test_services(config, where("test_services"))
    if config.database_scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"{where('database_scheme')}: `database_scheme` must be one of "
            f"{', '.join(POSTGRES_SCHEMES)}, got {config.database_scheme!r}."
        )
    if config.test_backend not in TEST_BACKENDS:
        raise ConfigError(
            f"{where('test_backend')}: `test_backend` must be one of {', '.join(TEST_BACKENDS)}, "
            f"got {config.test_backend!r}."
        )
    _validate_deploy(config, where)
    if config.test_env:
        from dockwork.kinds.templates import check_templates  # noqa: PLC0415

        check_templates(config.test_env, config.test_services, where("test_env"))
    if config.postgres_init not in POSTGRES_INIT_MODES:
        raise ConfigError(
            f"{where('postgres_init')}: `postgres_init` must be one of "
            f"{', '.join(POSTGRES_INIT_MODES)}, got {config.postgres_init!r}."
        )
    from dockwork.migration_steps import validate as validate_migrations  # noqa: PLC0415

    validate_migrations(config, where)


def _validate_test_services(config: Config, source: str) -> None:
    """Each name is a built-in kind or a service of the compose files (read only when a
    name is not a built-in kind)."""
    others = kinds.services(config.test_services)
    if not others:
        return
    from dockwork.compose_yaml import services  # noqa: PLC0415 - reads YAML

    present = [p for p in config.compose_paths if p.is_file()]
    defined = services(present)
    unknown = [name for name in others if name not in defined]
    if unknown:
        where = ", ".join(config.compose_files) if present else "no compose file found"
        raise ConfigError(
            f"{source}: `test_services` names {', '.join(map(repr, unknown))}, which is neither "
            f"a kind dockwork provides ({', '.join(TEST_SERVICES)}) nor a service of the "
            f"compose files ({where}: {', '.join(sorted(defined)) or 'no services'})."
        )


def check_stack_name(config: Config, where: Callable[[str], str] = str) -> None:
    """The stack name (``deploy_stack``, or the project name) is one Swarm takes: checked
    when deploy_stack is set, and by the deploy tasks (a project name Compose takes need not
    be a stack name, and only deploys use it)."""
    if not STACK_NAME.match(config.stack):
        raise ConfigError(
            f"{where('deploy_stack')}: the stack name {config.stack!r} is not one Docker "
            "accepts: letters and digits, '_' or '-' between them, at most 41 characters. Set "
            "deploy_stack."
        )


def _validate_deploy(config: Config, where: Callable[[str], str]) -> None:
    if config.deploy_stack:
        check_stack_name(config, where)
    if config.deploy_routing not in DEPLOY_ROUTINGS:
        raise ConfigError(
            f"{where('deploy_routing')}: `deploy_routing` must be one of "
            f"{', '.join(DEPLOY_ROUTINGS)}, got {config.deploy_routing!r}."
        )
    for entry in config.deploy_replicas:
        name, _, count = entry.partition("=")
        if not name or not count.isdigit():
            raise ConfigError(
                f"{where('deploy_replicas')}: `deploy_replicas` entry {entry!r} is not "
                '"service=N" (e.g. "app=3").'
            )
    for entry in config.deploy_limits:
        key, _, value = entry.partition("=")
        service, _, what = key.rpartition(".")
        if not service or what not in LIMIT_KEYS or not value:
            raise ConfigError(
                f"{where('deploy_limits')}: `deploy_limits` entry {entry!r} is not "
                '"service.cpus=N" or "service.memory=SIZE" (e.g. "app.memory=512M").'
            )


#: directories never searched for a project below the current one
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", ".git", ".tox", ".nox", "__pycache__"})
#: how deep below the current directory a project is looked for (``backend/``, ``src/py/``)
SEARCH_DEPTH = 3


def _has_table(pyproject: Path) -> bool:
    """The file has a [tool.dockwork] table (an unreadable file has none)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool", {}).get("dockwork"), dict)


def _below(here: Path, depth: int) -> list[Path]:
    """pyproject.toml files with a [tool.dockwork] table up to ``depth`` levels below."""
    found: list[Path] = []
    try:
        children = sorted(p for p in here.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return found
    for child in children:
        if child.name in SKIP_DIRS or child.name.startswith("."):
            continue
        if _has_table(child / "pyproject.toml"):
            found.append(child)
        elif depth > 1:
            found += _below(child, depth - 1)
    return found


def find_root(start: Path | None = None) -> Path:
    """The project: the nearest directory at or above ``start`` whose pyproject.toml has a
    [tool.dockwork] table; else the one below ``start`` that has one (the Python project in
    a subdirectory, e.g. ``backend/``, run from the repository's root); else the nearest
    pyproject.toml above (dockwork's defaults)."""
    here = (start or Path.cwd()).resolve()
    above = [c for c in (here, *here.parents) if (c / "pyproject.toml").is_file()]
    for candidate in above:
        if _has_table(candidate / "pyproject.toml"):
            return candidate
    # below: only from a repository's or project's top (never from /, a home directory)
    marks = (".git", "pyproject.toml", "compose.yaml", "compose.yml", "docker-compose.yml")
    below = _below(here, SEARCH_DEPTH) if any((here / m).exists() for m in marks) else []
    if len(below) > 1:
        raise ConfigError(
            f"several projects below {here} have a [tool.dockwork] table: "
            f"{', '.join(str(p.relative_to(here)) for p in below)}. Run this from inside the "
            "one you mean."
        )
    if below:
        return below[0]
    if above:
        return above[0]
    raise ConfigError(
        f"no pyproject.toml found in {here}, any parent directory or the directories below "
        "it. Run this from inside the project, or create a pyproject.toml with a "
        "[tool.dockwork] table (`dockwork init` writes one)."
    )


def load_config(
    root: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_compose_files: bool = True,
) -> Config:
    """Resolve the configuration once: overrides > environment > pyproject > defaults."""
    root = find_root(root)
    env = os.environ if environ is None else environ
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}. Fix the file.") from exc
    table = data.get("tool", {}).get("dockwork", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.dockwork] must be a table.")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    source = f"{pyproject} [tool.dockwork]"
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise ConfigError(
                f"{source}: unknown key `{key}`. Valid keys: {', '.join(sorted(_FIELDS))}."
            )
        values[name] = _coerce(name, value, source)
        sources[name] = source
    for name in _FIELDS:
        for env_name in (ENV_ALIASES.get(name), ENV_PREFIX + name.upper()):
            if env_name and env.get(env_name):
                sources[name] = f"environment variable {env_name}"
                values[name] = _coerce(name, env[env_name], sources[name])
    for name, value in (overrides or {}).items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting `{name}`. Valid: {', '.join(sorted(_FIELDS))}.")
        if value is not None:
            sources[name] = f"argument `{name}`"
            values[name] = _coerce(name, value, sources[name])

    config = Config(root=root, **_derived(root, values, env))
    _validate(config, sources)
    missing = [str(p) for p in config.compose_paths if not p.is_file()]
    if missing and require_compose_files:
        raise ConfigError(
            f"compose file(s) not found: {', '.join(missing)}. Fix `compose_files` in "
            f"{source} (now {list(config.compose_files)})."
        )
    return config


def _derived(root: Path, values: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Defaults that follow from the project: its name (as Compose names it), the servers
    its compose files run, where its migrations live."""

    def given(name: str) -> Any:
        return values.get(name, _FIELDS[name].default)

    if not values.get("project_name"):
        values["project_name"] = _normalise(
            env.get("COMPOSE_PROJECT_NAME") or _compose_name(root, given("compose_files"))
        )
        values["project_name"] = values["project_name"] or "dockwork"
    if "migrate_command" not in values:  # the migration tool's upgrade to head
        from dockwork.migration_steps import derived_migrate_command  # noqa: PLC0415

        values["migrate_command"] = derived_migrate_command(given)
    if "template_inputs" not in values:
        found = derive_template_inputs(root, given("migrate_command"))
        values["template_inputs"] = (found,) if found else ()
    if "test_services" not in values:
        present = [root / f for f in given("compose_files") if (root / f).is_file()]
        if present:
            from dockwork.compose_yaml import server_kinds  # noqa: PLC0415 - reads YAML

            values["test_services"] = server_kinds(present)
    return values


def _compose_name(root: Path, files: Sequence[str]) -> str:
    """The project name Compose itself gives these files: the first file's top-level
    ``name:`` (when it is a plain value), else its directory's name. Plain ``docker compose``
    and dockwork then manage one stack, not two with separate volumes."""
    first = (root / files[0]) if files else root / "compose.yaml"
    try:
        text = first.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    match = re.search(r"(?m)^name:\s*['\"]?([A-Za-z0-9][\w.-]*)['\"]?\s*$", text)
    return match.group(1) if match else first.resolve().parent.name


def derive_template_inputs(root: Path, migrate: Sequence[str]) -> str | None:
    """Where the migrations live, from the command that runs them: ``python -m pkg.mod``
    (that module's package, under the root or ``src/``) or alembic (``script_location`` of
    its ini file); None when it cannot tell."""
    import configparser  # noqa: PLC0415 - only for projects that migrate with alembic.ini

    if "-m" in migrate and migrate.index("-m") + 1 < len(migrate):
        module = migrate[migrate.index("-m") + 1]
        if module != "alembic":
            for base in (root, root / "src"):
                path = base.joinpath(*module.split("."))
                if path.is_dir():
                    return path.relative_to(root).as_posix()
                if path.with_suffix(".py").is_file():
                    return path.parent.relative_to(root).as_posix()
    ini = root / "alembic.ini"
    if "-c" in migrate and migrate.index("-c") + 1 < len(migrate):
        ini = root / migrate[migrate.index("-c") + 1]
    if ini.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(ini)
        location = parser.get("alembic", "script_location", fallback="")
        location = location.replace("%(here)s", str(ini.parent))
        scripts = (ini.parent / location).resolve()
        if location and scripts.is_dir():
            return scripts.relative_to(root.resolve()).as_posix()
        # the ini's own directory when it holds the migrations: Advanced Alchemy sets the
        # script location in code (litestar-fullstack's ini names one that does not exist)
        here = ini.parent.resolve()
        below = here.is_relative_to(root.resolve())
        if below and (here / "env.py").is_file() and (here / "versions").is_dir():
            return here.relative_to(root.resolve()).as_posix()
    return None


#: directory names that say where compose files live, not whose they are: Compose names a
#: project after the directory of its first file, so every project keeping its files in,
#: say, ``docker/`` is the project "docker", sharing containers and volumes
GENERIC_NAMES = frozenset(
    {
        "api", "app", "backend", "build", "ci", "compose", "config", "containers", "deploy",
        "deployment", "deployments", "dev", "development", "devops", "docker",
        "docker-compose", "env", "environments", "frontend", "infra", "infrastructure",
        "local", "ops", "project", "server", "services", "src", "stack", "tools", "web",
    }
)  # fmt: skip


def shared_name(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """When the project's name is Compose's default, the name of the directory of its first
    compose file, and that name is generic (:data:`GENERIC_NAMES`): a name of its own to
    give it, the nearest directory from the compose files up to where they meet the
    project's root whose name is not generic (else a placeholder). None when the name is
    not generic, or was given (``name:``, ``project_name``, an environment variable)."""
    env = os.environ if environ is None else environ
    first = config.compose_paths[0] if config.compose_paths else config.root / "compose.yaml"
    directory = _normalise(first.resolve().parent.name)
    if config.project_name not in GENERIC_NAMES or config.project_name != directory:
        return None
    if env.get("DOCKWORK_PROJECT_NAME") or env.get("COMPOSE_PROJECT_NAME"):
        return None
    if _normalise(_compose_name(config.root, config.compose_files)) != directory:
        return None  # the compose file's own `name:`
    with contextlib.suppress(OSError, ValueError):
        table = tomllib.loads((config.root / "pyproject.toml").read_text(encoding="utf-8"))
        if "project_name" in table.get("tool", {}).get("dockwork", {}):
            return None
    here = first.resolve().parent
    top = Path(os.path.commonpath([here, config.root.resolve()]))
    chain = [here, *here.parents]
    for candidate in chain[: chain.index(top) + 1] if top in chain else [here]:
        name = _normalise(candidate.name)
        if name and name not in GENERIC_NAMES:
            return name
    return "<a-name-of-its-own>"


def _normalise(name: str) -> str:
    """Compose's own normalisation of a directory name: lowercase, [a-z0-9_-] only."""
    cleaned = "".join(c for c in name.lower() if c.isascii() and (c.isalnum() or c in "-_"))
    return cleaned.lstrip("-_")


__all__ = [
    "GENERIC_NAMES",
    "Config",
    "cache_dir",
    "check_stack_name",
    "derive_template_inputs",
    "find_root",
    "load_config",
    "shared_name",
]
