"""The whole stack, driven through `inv` exactly as a user would, in a copy of the checkout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.helpers import needs_docker, remove_project_images

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
#: another team's project, copied and adopted by test_adopt.py; not this suite's tests
collect_ignore = ["foreign"]
#: the foreign projects test_adopt_layouts.py adopts (their own suites, not this one's)
collect_ignore += ["foreign_backend", "foreign_deploy"]
#: variables of this run's, not of an adopter's shell: its URLs; PYTHONDONTWRITEBYTECODE, a
#: CI image's, not an adopter's laptop's (with it, each Python process compiles everything
#: it imports anew); PYTHONPYCACHEPREFIX, the nox session's bytecode cache
NOT_THE_ADOPTERS = frozenset(
    {"DATABASE_URL", "REDIS_URL", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"}
)
#: names this run's image tags; set by the run's top process, inherited by xdist workers
TAG_VARIABLE = "DOCKWORK_E2E_IMAGE_TAG"


def images() -> dict[str, str]:
    """Image tags of this test run's own: built from this checkout once, shared by its
    stacks (and workers), never an older build left by another run."""
    tag = os.environ[TAG_VARIABLE]
    return {
        "APP_IMAGE": f"dockwork-e2e-app:{tag}",
        "APP_DEV_IMAGE": f"dockwork-e2e-app-dev:{tag}",
        # built by the first test that starts the frontend's dev server
        "WEB_DEV_IMAGE": f"dockwork-e2e-web-dev:{tag}",
    }


#: the run's shared file naming its stacks' Compose projects, one per line
PROJECTS = "projects"


def record_project(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """Name a Compose project of this run's, whose images its end removes."""
    shared = shared_dir(tmp_path_factory)
    shared.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(shared / PROJECTS, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)


def build_projects() -> tuple[str, str]:
    """The Compose projects this run builds its dev and production images under: named
    after the run, so that its end removes what they built (:func:`remove_project_images`)."""
    tag = os.environ[TAG_VARIABLE]
    return f"build-{tag}-dev", f"build-{tag}-prod"


def pytest_configure(config: pytest.Config) -> None:
    """The run's top process names the run's images (xdist workers inherit the name)."""
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(TAG_VARIABLE, f"e2e-{uuid.uuid4().hex[:10]}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's images and shared directory go when the run ends (the images' layers stay
    in the build cache)."""
    if not hasattr(config, "workerinput") and TAG_VARIABLE in os.environ:
        argv = ["docker", "image", "rm", "--force", *images().values()]
        subprocess.run(argv, capture_output=True, check=False)
        # what Compose built under the run's own projects (the builds that lost a shared
        # tag to another service's or another stack's build), now that no tag is left
        shared = shared_dir(config._tmp_path_factory)  # type: ignore[attr-defined]
        listed = shared / PROJECTS
        stacks = listed.read_text().split() if listed.is_file() else []
        remove_project_images(*build_projects(), *stacks)
        shutil.rmtree(shared_dir(config._tmp_path_factory), ignore_errors=True)  # type: ignore[attr-defined]


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this run's, shared by its xdist workers: beside their base temps, in
    pytest's per-user directory (0700, its owner checked by pytest), never the shared /tmp."""
    base = tmp_path_factory.getbasetemp()
    # xdist: each worker's base temp is popen-gwN below the run's own
    parent = base.parent if base.name.startswith("popen-gw") else base
    return parent / f"dockwork-{os.environ[TAG_VARIABLE]}"


@contextlib.contextmanager
def run_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Held by one process of the run at a time: the first builds, the others wait for it.
    Yields the run's shared directory."""
    import fcntl  # noqa: PLC0415 - POSIX only

    shared = shared_dir(tmp_path_factory)
    shared.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(shared / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield shared
    finally:
        os.close(fd)


@pytest.fixture(scope="session")
def dockwork_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dockwork's wheel, built from this checkout once per run (the adoption tests install
    it into the foreign projects, as an adopter installs it from PyPI)."""
    if shutil.which("uv") is None:
        pytest.skip("needs uv (the adopter's tool)")
    with run_lock(tmp_path_factory, "wheel") as shared:
        dist = shared / "dist"
        if not any(dist.glob("dockwork-*.whl")):
            build = ["uv", "build", "--wheel", "-o", str(dist)]
            subprocess.run(build, cwd=ROOT, check=True, capture_output=True)
        return next(dist.glob("dockwork-*.whl"))


@pytest.fixture(scope="session")
def built_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The dev and production images, built once per run, before any stack needs them:
    whichever worker comes first builds, the others wait for it."""
    needs_docker()
    tags = images()
    with run_lock(tmp_path_factory, "images"):
        built = [tags["APP_IMAGE"], tags["APP_DEV_IMAGE"]]
        present = subprocess.run(
            ["docker", "image", "inspect", *built], capture_output=True, check=False
        )
        if present.returncode != 0:
            root = tmp_path_factory.mktemp("build")
            copy_checkout(root)
            env = {**os.environ, **tags, "POSTGRES_PASSWORD": "build-only"}
            for project, files in zip(
                build_projects(),
                (["-f", "compose.yaml", "-f", "compose.override.yaml"], ["-f", "compose.yaml"]),
                strict=True,
            ):
                build = ["docker", "compose", "-p", project, *files, "build"]
                result = subprocess.run(
                    build, cwd=root, env=env, capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    pytest.fail(f"building the images failed:\n{result.stdout}\n{result.stderr}")
    return tags


@dataclass
class Stack:
    """A copy of the project with its own Compose project name and ephemeral host ports."""

    root: Path
    name: str
    env: dict[str, str]
    variant: str
    #: the published PostgreSQL port, asked of Compose once (tests poll the server every few
    #: ms while a task runs; a `docker compose port` each time cost seconds of CPU)
    db_port: str | None = field(default=None, repr=False)

    def inv(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run `inv ARGS` in the copy; output captured for assertions and failure messages."""
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"`inv {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Plain `docker compose` for this project (what a user could type)."""
        files = self.env.get("DOCKWORK_COMPOSE_FILES", "compose.yaml compose.override.yaml")
        return subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                self.name,
                *[arg for f in files.split() for arg in ("-f", f)],
                *args,
            ],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    def states(self) -> dict[str, dict[str, object]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        items = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {str(i["Service"]): i for i in items}

    def app_url(self, service: str = "app") -> str:
        """The service's published URL on this machine (the app's by default)."""
        for pub in self.states()[service]["Publishers"]:  # type: ignore[union-attr]
            if pub["PublishedPort"]:
                return f"http://127.0.0.1:{pub['PublishedPort']}"
        raise AssertionError(f"{service} publishes no port")

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A connection of the test's own to a dev stack's PostgreSQL (its published port, as
        .env's user): what the test checks or sets up, not what it proves about a task."""
        env = dict(
            line.split("=", 1)
            for line in (self.root / ".env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )

        def connect(port: str) -> psycopg.Connection[tuple[object, ...]]:
            return psycopg.connect(
                host="127.0.0.1",
                port=int(port),
                user=env["POSTGRES_USER"],
                password=env["POSTGRES_PASSWORD"],
                dbname=database,
                autocommit=True,
                connect_timeout=10,
            )

        if self.db_port is not None:
            try:
                return connect(self.db_port)
            except psycopg.OperationalError:
                pass  # the container was recreated on another port, or the server is down: ask
        self.db_port = self.compose("port", "db", "5432").stdout.strip().rpartition(":")[2]
        return connect(self.db_port)

    def sql(self, query: str, database: str = "app") -> str:
        """One statement over :meth:`connect`: its rows one per line, each value as Python
        prints it, columns joined by ``|``; "" for a statement without rows."""
        with self.connect(database) as conn:
            cursor = conn.execute(query.encode())
            if cursor.description is None:
                return ""
            return "\n".join("|".join(str(v) for v in row) for row in cursor.fetchall())

    def containers(self) -> list[str]:
        out = subprocess.run(
            [
                "docker",
                "ps",
                "--all",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={self.name}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()


def copy_checkout(dest: Path) -> None:
    """The files a fresh clone would have (tracked + untracked, not ignored)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


#: a module's stack lives minutes while its tests drive tasks, not `up`: its services are
#: probed every 3 s instead of every second (each probe costs the engine an exec, ~40 ms of
#: CPU; the stacks of the tests of `up` itself keep the shipped interval)
UNHURRIED_PROBES = """\
services:
  db: {healthcheck: {interval: 3s}}
  cache: {healthcheck: {interval: 3s}}
  app: {healthcheck: {interval: 3s}}
  worker: {healthcheck: {interval: 3s}}
"""


@contextlib.contextmanager
def make_stack(
    base: Path,
    variant: str,
    tags: dict[str, str],
    factory: pytest.TempPathFactory,
    *,
    unhurried: bool = False,
) -> Iterator[Stack]:
    """A fresh copy of the project as its own stack (dev: with the override; prod:
    compose.yaml alone, the production images); everything removed afterwards.
    ``unhurried``: a dev stack whose services are probed less often (UNHURRIED_PROBES)."""
    needs_docker()
    name = f"dwe2e{uuid.uuid4().hex[:8]}"
    record_project(factory, name)
    root = base / name
    root.mkdir()
    copy_checkout(root)
    env = {
        **os.environ,
        "DOCKWORK_PROJECT_NAME": name,
        # ephemeral host ports: never collides with a dev stack or another checkout
        "APP_PORT": "0",
        "DB_PORT": "0",
        "CACHE_PORT": "0",
        "WEB_PORT": "0",
        # the frontend's dev server (profile "web", on in .env) only where a test asks
        "COMPOSE_PROFILES": "",
        # images of this run's own, built once: a dev stack's images are never retagged
        **tags,
        "DOCKWORK_WAIT_TIMEOUT": "240",
        # the worker's sweep every second (5 by default): the Redis outage test waits a
        # second for the email the API could not enqueue
        "OUTBOX_SWEEP_SECONDS": "1",
    }
    if variant == "prod":
        env["DOCKWORK_COMPOSE_FILES"] = "compose.yaml"
        # production never gets .env from .env.example: the secret comes from the environment
        env["POSTGRES_PASSWORD"] = f"e2e-{uuid.uuid4().hex}"
    elif unhurried:
        (root / "compose.e2e.yaml").write_text(UNHURRIED_PROBES)
        env["DOCKWORK_COMPOSE_FILES"] = "compose.yaml compose.override.yaml compose.e2e.yaml"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    s = Stack(root, name, env, variant)
    try:
        yield s
    finally:
        # interpolation needs a value even when the test never got as far as creating .env
        s.env.setdefault("POSTGRES_PASSWORD", "cleanup-only")
        s.compose("--profile", "*", "down", "--volumes", "--remove-orphans", "--timeout", "5")


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    built_images: dict[str, str],
) -> Iterator[Stack]:
    """A stack of this test's own (parametrize indirectly with "dev" or "prod")."""
    variant = getattr(request, "param", "dev")
    with make_stack(tmp_path, variant, built_images, tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="module")
def module_stack(
    tmp_path_factory: pytest.TempPathFactory, built_images: dict[str, str]
) -> Iterator[Stack]:
    """A dev stack shared by a module's tests (each leaves it as it found it), its
    services probed every 3 s."""
    base = tmp_path_factory.mktemp("stack")
    with make_stack(base, "dev", built_images, tmp_path_factory, unhurried=True) as s:
        yield s
