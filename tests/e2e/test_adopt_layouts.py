"""Adoption in two real-world layouts, each a foreign project written here in the shape of a
well-known template, set up from dockwork's wheel by an adopter's steps:

- ``foreign_backend/``: full-stack-fastapi-template's shape. The repository's root holds
  the compose files and a committed ``.env``, and is a uv workspace; the Python project is
  ``backend/`` (settings read at import time from split ``POSTGRES_*`` variables, then
  ``../.env``; an engine made at import; alembic in ``backend/app/alembic``; a ``prestart``
  one-shot running a script); its tests use only the project's own fixtures.
- ``foreign_deploy/``: litestar-fullstack's shape. The compose files live in
  ``deploy/docker/`` (an infra-only file beside the app's file and its override); the
  Python project is at the root with a ``src/`` layout, SQLAlchemy async over asyncpg,
  ``DATABASE_URL`` from an ``env_file``, a migration CLI of the project's own run by a
  ``migrator`` one-shot, and tests written on pytest-databases' fixtures.

For each: dockwork added with ``uv add --dev``, ``dockwork init`` from the repository's root,
``inv doctor``, ``inv up``, ``inv migrate``, ``nox -s tests -- -n 2`` (proven to run on
dockwork's per-worker databases, the suite unchanged), ``inv db.revision`` and ``inv down``.
Every step's exit code and duration is printed as a table, pass or fail. (The suites run
their own way too, on the project's database or pytest-databases' containers, before
dockwork is added: the fixtures are checked that way when they change, not on every run.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dockwork.testing.servers.docker import docker_available
from tests.e2e.conftest import NOT_THE_ADOPTERS
from tests.helpers import remove_project_images

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
HERE = Path(__file__).resolve().parent
#: what a fresh shell of the adopter has: nothing of this run's own settings or servers
DROPPED_PREFIXES = ("DOCKWORK_", "UV_PROJECT", "VIRTUAL_ENV", "NOX", "PYTEST_", "COMPOSE_")
DROPPED = NOT_THE_ADOPTERS | {"PYTHONPATH"}
#: what a fresh clone of the foreign projects would not have (caches left by local tools)
NOT_IN_A_CLONE = shutil.ignore_patterns(".ruff_cache", "__pycache__", ".venv", ".nox", "uv.lock")
URL_LINE = re.compile(r"^(?:dockwork: )?(\S+) → (http://\S+) \(port \d+\)$", re.MULTILINE)


@dataclass
class Step:
    """One adopter's step: what ran, its exit code, how long it took."""

    name: str
    code: int
    seconds: float


@dataclass
class Adopter:
    """A foreign project in a temp dir, driven step by step as its team would."""

    title: str
    top: Path
    env: dict[str, str]
    steps: list[Step] = field(default_factory=list)
    #: what dockwork got wrong without stopping the steps (reported at the end)
    findings: list[str] = field(default_factory=list)
    #: Compose projects to remove at the end, and images to delete
    projects: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)

    def run(
        self,
        name: str,
        *argv: str,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = 900,
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        """Run one step; a failing step (when ``check``) ends the test with its output."""
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd or self.top,
                env={**self.env, **env},
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            self.steps.append(Step(name, -1, time.monotonic() - t0))
            pytest.fail(f"{name}: `{' '.join(argv)}` timed out after {timeout} s:\n{exc.stdout}")
        self.steps.append(Step(name, proc.returncode, time.monotonic() - t0))
        if check and proc.returncode != 0:
            pytest.fail(
                f"{name}: `{' '.join(argv)}` (in {cwd or self.top}) exited {proc.returncode}:\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def table(self) -> str:
        width = max([len(s.name) for s in self.steps] + [4])
        lines = [
            f"\n=== {self.title} ===",
            f"{'step':<{width}}  exit  seconds",
            f"{'-' * width}  ----  -------",
        ]
        lines += [f"{s.name:<{width}}  {s.code:>4}  {s.seconds:7.1f}" for s in self.steps]
        lines += [f"finding: {f}" for f in self.findings]
        return "\n".join(lines)

    def compose_default_name(self, *files: str) -> str:
        """The project name plain `docker compose` gives these files (no -p)."""
        argv = ["docker", "compose", *[a for f in files for a in ("-f", f)]]
        out = subprocess.run(
            [*argv, "config", "--format", "json"],
            cwd=self.top,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return str(json.loads(out)["name"])

    def cleanup(self, *files: str) -> None:
        flags = [a for f in files for a in ("-f", f)]
        for name in sorted(self.projects):
            subprocess.run(
                ["docker", "compose", "-p", name, *flags, "down", "--volumes", "--timeout", "0"],
                cwd=self.top,
                env=self.env,
                capture_output=True,
                check=False,
            )
        if self.images:
            subprocess.run(
                ["docker", "image", "rm", "-f", *sorted(self.images)],
                capture_output=True,
                check=False,
            )
        # what Compose built under this test's own project names (never a generic one, such
        # as `docker`, which another run may share)
        remove_project_images(*[n for n in self.projects if self.top.name in n])


def fresh_env(**extra: str) -> dict[str, str]:
    """The adopter's shell: this run's dockwork/uv/pytest settings and URLs removed, and no
    POSTGRES_* other than the image (the projects read those as their settings)."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(DROPPED_PREFIXES)
        and k not in DROPPED
        and (not k.startswith("POSTGRES_") or k == "POSTGRES_IMAGE")
    }
    return kept | extra


def table_of(pyproject: Path) -> str:
    """The [tool.dockwork] table (and its sub-tables) as written."""
    text = pyproject.read_text()
    start = text.index("[tool.dockwork]")
    return text[start:]


def set_settings(pyproject: Path, lines: str) -> None:
    """Set keys in [tool.dockwork] by hand, as an adopter edits it: a key init wrote is
    replaced, the others added under the table's header."""
    keys = {line.split("=", 1)[0].strip() for line in lines.splitlines() if "=" in line}
    out, in_table = [], False
    for line in pyproject.read_text().splitlines(keepends=True):
        if line.startswith("["):
            in_table = line.strip() == "[tool.dockwork]"
            out.append(line + (lines if in_table else ""))
            continue
        if in_table and line.split("=", 1)[0].strip() in keys:
            continue
        out.append(line)
    pyproject.write_text("".join(out))


def databases(log: Path) -> dict[str, tuple[str, str]]:
    """worker → (database, host:port), from the lines the suites' fixtures append."""
    found = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        worker, name, where = line.split()
        found[worker] = (name, where)
    return found


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback http
        return json.loads(response.read())


def published_url(output: str, service: str) -> str:
    """The URL `inv up` printed for a service."""
    urls = dict(URL_LINE.findall(output))
    assert service in urls, f"`inv up` printed no URL for {service}:\n{output}"
    return urls[service]


def docker_events(since: float, until: float, label: str) -> list[str]:
    """Containers created with ``label`` between two times (the engine's event log)."""
    out = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            str(int(since) - 1),
            "--until",
            str(int(until) + 1),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            f"label={label}",
            "--format",
            "{{.Actor.Attributes.name}}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return out.split()


@pytest.fixture
def wheel(request: pytest.FixtureRequest) -> Path:
    """dockwork's wheel (built once per run), where a Docker engine answers."""
    if (reason := docker_available()) is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    built: Path = request.getfixturevalue("dockwork_wheel")
    return built


@pytest.fixture
def backend_project(tmp_path: Path) -> Iterator[Adopter]:
    """foreign_backend/ copied under a unique repository name, with its committed .env."""
    top = tmp_path / f"fullstack{uuid.uuid4().hex[:8]}"
    shutil.copytree(HERE / "foreign_backend", top, ignore=NOT_IN_A_CLONE)
    # committed in the template it follows; stored as `dotenv` here, where .env is ignored
    (top / "dotenv").rename(top / ".env")
    image = f"dockwork-e2e-{top.name}-backend"
    env = fresh_env(
        # the project's own variables: its image name, and every host port ephemeral
        DOCKER_IMAGE_BACKEND=image,
        TAG="e2e",
        BACKEND_PORT="0",
        POSTGRES_PUBLISH_PORT="0",
    )
    project = Adopter("backend below the root (full-stack-fastapi-template's shape)", top, env)
    project.images.add(f"{image}:e2e")
    try:
        yield project
    finally:
        print(project.table())  # noqa: T201 - the summary, in CI's log whatever happened
        project.cleanup("compose.yaml", "compose.override.yaml")


@pytest.fixture
def deploy_project(tmp_path: Path) -> Iterator[Adopter]:
    """foreign_deploy/ copied under a unique repository name."""
    top = tmp_path / f"catalogue{uuid.uuid4().hex[:8]}"
    shutil.copytree(HERE / "foreign_deploy", top, ignore=NOT_IN_A_CLONE)
    image = f"dockwork-e2e-{top.name}:e2e"
    env = fresh_env(SHOP_IMAGE=image, APP_PORT="0", DB_PORT="0")
    project = Adopter("compose files in deploy/docker/ (litestar-fullstack's shape)", top, env)
    project.images.add(image)
    try:
        yield project
    finally:
        print(project.table())  # noqa: T201 - the summary, in CI's log whatever happened
        project.cleanup(
            "deploy/docker/docker-compose.yml", "deploy/docker/docker-compose.override.yml"
        )


def test_backend_below_the_root_adopts_dockwork(  # noqa: PLR0915 - the adopter's steps, in order
    wheel: Path, backend_project: Adopter
) -> None:
    p = backend_project
    top, backend = p.top, p.top / "backend"
    log_nox = top / "nox.log"

    # 1. install dockwork into the backend (a workspace member)
    p.run(
        "uv add --dev dockwork[nox,pytest]",
        *("uv", "add", "--dev", f"dockwork[nox,pytest] @ {wheel.as_uri()}"),
        cwd=backend,
    )

    # 2. dockwork init from the repository's root: it finds backend/ and the root's files.
    # First in the copy as it is (no .git: a downloaded archive), then as a clone has it.
    bare = p.run("dockwork init (root, no .git)", "uv", "run", "dockwork", "init", check=False)
    if bare.returncode != 0:
        p.findings.append(
            f"`dockwork init` run at the root of a checkout without .git exited "
            f"{bare.returncode}: {bare.stderr.strip()}"
        )
    p.run("git init", "git", "init", "-q")
    init = p.run("dockwork init (root)", "uv", "run", "dockwork", "init", cwd=top)
    print(init.stdout)  # noqa: T201 - what init chose and why, for the record
    assert f"dockwork init in {backend}" in init.stdout, init.stdout
    table = table_of(backend / "pyproject.toml")
    for line in (
        'compose_files = ["../compose.yaml", "../compose.override.yaml"]',
        'app_service = "backend"',
        'db_service = "db"',
        'migrate_service = "prestart"',
        'migrate_command = ["alembic", "upgrade", "head"]',
        'template_inputs = ["app/alembic"]',
        'test_paths = ["tests"]',
        "[tool.dockwork.test_env]",
        'POSTGRES_SERVER = "{postgres.host}"',
        'POSTGRES_PORT = "{postgres.port}"',
        'POSTGRES_USER = "{postgres.user}"',
        'POSTGRES_PASSWORD = "{postgres.password}"',
        'POSTGRES_DB = "{postgres.database}"',
    ):
        assert line in table, f"{line!r} not in what init wrote:\n{table}"
    assert "could not tell" not in table, table
    assert (backend / "tasks.py").is_file()
    assert (backend / "noxfile.py").is_file()
    assert not (top / ".env.example").exists(), "the committed .env has every variable"
    again = p.run("dockwork init again", "uv", "run", "dockwork", "init", cwd=top)
    assert "unchanged tasks.py" in again.stdout, again.stdout

    # 3. the tasks, from backend/
    doctor = p.run("inv doctor", "uv", "run", "inv", "doctor", cwd=backend)
    print(doctor.stdout)  # noqa: T201
    assert "ready for `inv dev`" in doctor.stdout
    named = re.search(r"project '([\w-]+)'", doctor.stdout)
    assert named, doctor.stdout
    p.projects.add(named.group(1))
    compose_name = p.compose_default_name("compose.yaml", "compose.override.yaml")
    p.projects.add(compose_name)
    if named.group(1) != compose_name:
        p.findings.append(
            f"dockwork's Compose project is {named.group(1)!r}, plain `docker compose` at the "
            f"root calls the same files {compose_name!r}: two stacks of one checkout"
        )
    up = p.run("inv up", "uv", "run", "inv", "up", cwd=backend)
    url = published_url(up.stdout + up.stderr, "backend")
    assert get_json(f"{url}/api/v1/utils/health-check/") is True, "the app answers"
    items = get_json(f"{url}/api/v1/items/")
    assert isinstance(items, dict)
    assert [i["title"] for i in items["data"]] == ["welcome"], "prestart migrated and seeded"
    p.run("inv migrate", "uv", "run", "inv", "migrate", cwd=backend)
    built = p.run("inv doctor (images built)", "uv", "run", "inv", "doctor", cwd=backend)
    assert "✔ migrations in prestart" in built.stdout, built.stdout

    # 4. the suite on dockwork's servers, through nox, as CI runs it
    nox = p.run(
        "nox -s tests -- -n 2",
        *("uv", "run", "nox", "-s", "tests", "--", "-n", "2", "-p", "no:cacheprovider"),
        cwd=backend,
        APP_TEST_DATABASE_LOG=str(log_nox),
    )
    assert "Session tests was successful" in nox.stdout + nox.stderr
    stack_db = p.run(
        "compose port db (stack)",
        *("docker", "compose", "-p", named.group(1), "port", "db", "5432"),
    ).stdout.strip()
    used = databases(log_nox)
    assert sorted(used) == ["gw0", "gw1"], used
    names = {name for name, _ in used.values()}
    assert len(names) == 2, f"each worker its own database: {used}"
    assert all(n.startswith("dw_") for n in names), f"dockwork's databases: {used}"
    hosts = {where for _, where in used.values()}
    assert not hosts & {"localhost:5432", stack_db.replace("127.0.0.1", "localhost")}, used
    assert stack_db not in hosts, f"not the stack's database ({stack_db}): {used}"

    # 5. a model changes; the migration lands on the host, in the project's versions
    models = backend / "app" / "models.py"
    models.write_text(
        models.read_text() + "    price: Mapped[int | None] = mapped_column(nullable=True)\n"
    )
    revision = p.run(
        "inv db.revision -m", "uv", "run", "inv", "db.revision", "-m", "add item price", cwd=backend
    )
    match = re.search(r"new migration: (\S+\.py)", revision.stdout)
    assert match, revision.stdout + revision.stderr
    written = (backend / match.group(1)).resolve()
    assert written.parent == backend / "app" / "alembic" / "versions", written
    assert "add_column" in written.read_text()
    print(revision.stdout)  # noqa: T201 - where dockwork says the file went

    # 6. down, data and all
    p.run("inv down --volumes --yes", "uv", "run", "inv", "down", "--volumes", "--yes", cwd=backend)
    left = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project={named.group(1)}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert left == [], "inv down removed the stack"
    assert not p.findings, "\n".join(p.findings)


#: the project's own migration CLI, step by step (configuration, as the README says)
SHOP_DB = '"python", "-m", "shop.manage", "db"'
MIGRATION_SETTINGS = f"""\
migration_tool = "custom"
migration_upgrade = [{SHOP_DB}, "upgrade", "{{revision}}"]
migration_downgrade = [{SHOP_DB}, "downgrade", "{{revision}}"]
migration_revision = [{SHOP_DB}, "make", "-m", "{{message}}"]
migration_empty_revision = [{SHOP_DB}, "make", "-m", "{{message}}", "--empty"]
migration_check = [{SHOP_DB}, "check"]
migration_history = [{SHOP_DB}, "history"]
migration_current = [{SHOP_DB}, "current"]
"""


def test_compose_files_in_deploy_docker_adopt_dockwork(  # noqa: PLR0915 - the adopter's steps, in order
    wheel: Path, deploy_project: Adopter
) -> None:
    p = deploy_project
    top = p.top
    log_nox = top / "nox.log"

    # 1. install
    p.run(
        "uv add --dev dockwork[nox,pytest]",
        *("uv", "add", "--dev", f"dockwork[nox,pytest] @ {wheel.as_uri()}"),
    )

    # 2. init: the app's compose set in deploy/docker/, pytest-databases' names served
    init = p.run("dockwork init", "uv", "run", "dockwork", "init")
    print(init.stdout)  # noqa: T201 - what init chose and why, for the record
    table = table_of(top / "pyproject.toml")
    for line in (
        (
            'compose_files = ["deploy/docker/docker-compose.yml", '
            '"deploy/docker/docker-compose.override.yml"]'
        ),
        'app_service = "app"',
        'db_service = "db"',
        'migrate_service = "migrator"',
        'migrate_command = ["python", "-m", "shop.manage", "db", "upgrade"]',
        'database_url_env = "DATABASE_URL"',
        'database_scheme = "postgresql+asyncpg"',
        'test_paths = ["tests"]',
        "pytest_databases = true",
        'DATABASE_URL = "{postgres.url}"',
    ):
        assert line in table, f"{line!r} not in what init wrote:\n{table}"
    assert "docker-compose.infra.yml" in init.stdout, "it says which set it did not choose"
    assert (top / "tasks.py").is_file()
    assert (top / "noxfile.py").is_file()

    # the hand edit: the project's migration CLI is its own (configuration only)
    inferred = re.search(r'^migration_tool = "([\w-]+)"', table, re.MULTILINE)
    if inferred and inferred.group(1) != "custom":
        p.findings.append(
            f"init inferred migration_tool = {inferred.group(1)!r} for `python -m shop.manage "
            "db upgrade`, a CLI of the project's own (no advanced-alchemy among its "
            "dependencies; its revision command is `db make -m`)"
        )
    set_settings(top / "pyproject.toml", MIGRATION_SETTINGS)

    # 3. the tasks. Compose names these files' project `docker`, as any project's with
    # files in a docker/ directory: doctor warns, and its proposal is what the adopter
    # applies (a second run on this engine would otherwise share the stack)
    files = ("deploy/docker/docker-compose.yml", "deploy/docker/docker-compose.override.yml")
    warned = p.run("inv doctor (generic name)", "uv", "run", "inv", "doctor")
    proposal = f"`name: {top.name}` at the top of {files[0]}"
    assert "'docker' is a generic name" in warned.stdout, warned.stdout
    assert proposal in warned.stdout, warned.stdout
    first = top / files[0]
    first.write_text(f"name: {top.name}\n{first.read_text()}")
    doctor = p.run("inv doctor", "uv", "run", "inv", "doctor")
    print(doctor.stdout)  # noqa: T201
    assert "ready for `inv dev`" in doctor.stdout
    assert "generic name" not in doctor.stdout, doctor.stdout
    named = re.search(r"project '([\w-]+)'", doctor.stdout)
    assert named, doctor.stdout
    assert named.group(1) == top.name == p.compose_default_name(*files), "one name for both"
    p.projects.add(named.group(1))
    up = p.run("inv up", "uv", "run", "inv", "up")
    url = published_url(up.stdout + up.stderr, "app")
    assert get_json(f"{url}/health") == {"status": "ok", "database": "online"}, "the app answers"
    assert get_json(f"{url}/products") == [], "the migrator migrated"
    p.run("inv migrate", "uv", "run", "inv", "migrate")
    built = p.run("inv doctor (images built)", "uv", "run", "inv", "doctor")
    assert "✔ migrations in migrator" in built.stdout, built.stdout

    # 4. the suite on dockwork's servers, no pytest-databases container
    t0 = time.time()
    nox = p.run(
        "nox -s tests -- -n 2",
        *("uv", "run", "nox", "-s", "tests", "--", "-n", "2", "-p", "no:cacheprovider"),
        SHOP_TEST_DATABASE_LOG=str(log_nox),
    )
    created = docker_events(t0, time.time(), "pytest_databases")
    output = nox.stdout + nox.stderr
    assert "Session tests was successful" in output
    if "PytestRemovedIn10Warning" in output:
        warning = next(
            line.strip() for line in output.splitlines() if "PytestRemovedIn10Warning" in line
        )
        p.findings.append(f"the suite warns under dockwork's pytest-databases fixtures: {warning}")
    assert created == [], f"pytest-databases started containers: {created}"
    used = databases(log_nox)
    assert sorted(used) == ["gw0", "gw1"], used
    assert len({n for n, _ in used.values()}) == 2, f"each worker its own database: {used}"
    assert all(n.startswith("dw_") for n, _ in used.values()), f"dockwork's: {used}"

    # 5. a model changes; the project's CLI writes the migration, on the host
    models = top / "src" / "shop" / "models.py"
    models.write_text(
        models.read_text().replace(
            "    price_cents: Mapped[int]\n",
            "    price_cents: Mapped[int]\n"
            '    stock: Mapped[int] = mapped_column(server_default="0")\n',
        )
    )
    versions = top / "src" / "shop" / "db" / "migrations" / "versions"
    present = set(versions.glob("*.py"))
    revision = p.run("inv db.revision -m", "uv", "run", "inv", "db.revision", "-m", "add stock")
    new = set(versions.glob("*.py")) - present
    assert len(new) == 1, f"one new migration in {versions}: {revision.stdout}{revision.stderr}"
    assert "add_column" in next(iter(new)).read_text()
    assert "new migration:" in revision.stdout, revision.stdout
    print(revision.stdout)  # noqa: T201 - where dockwork says the file went

    # 6. down
    p.run("inv down --volumes --yes", "uv", "run", "inv", "down", "--volumes", "--yes")
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={named.group(1)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert left == [], "inv down removed the stack"
    assert not p.findings, "\n".join(p.findings)
