"""Benchmark: the loops people wait on, each beside its reference, measured in one run.

1. Test servers: what getting PostgreSQL + Redis ready costs a pytest session. Each tool
   runs as a whole ``pytest`` process over a one-test project that asks for both servers,
   on the same images (POSTGRES_IMAGE, REDIS_IMAGE). The baseline is a bare session that
   loads no server plugin and imports no client library (``-p no:dockwork``): what a
   user's wall clock sees without servers. Runs are interleaved round by round, so drift
   hits every tool alike; a tool's figure is median(tool) - median(baseline), and its ratio
   is against pytest-databases. Cold = new containers (dockwork's baked image is made once,
   before the rounds, like the images themselves); warm = reused ones.
2. A per-worker database: cloned from the migrated template vs running the migrations.
3. The stack, in a copy of the checkout under its own project name and ports, images
   built first: ``inv up`` to healthy on a warm machine (images built, volumes present)
   beside raw ``docker compose up --detach --wait``, with the floors (the database ready
   alone, the migrations alone, the app ready alone); ``inv test -- tests/unit`` beside
   the same pytest run with ``docker compose exec`` in the running app container.

Prints figures and ratios; asserts nothing about time (shared, noisy machines).
Run: ``uv run nox -s bench`` (``-- --rounds 7``, ``-- --only servers``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.helpers import remove_project_images  # noqa: E402

from dockwork import urls  # noqa: E402
from dockwork.config import load_config  # noqa: E402
from dockwork.kinds.containers import postgres_spec  # noqa: E402
from dockwork.testing import databases  # noqa: E402
from dockwork.testing.servers.docker import LABEL, DockerBackend  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PG_IMAGE = os.environ.get("POSTGRES_IMAGE") or "postgres:17"
REDIS_IMAGE = os.environ.get("REDIS_IMAGE") or "redis:7"
HOST_IDS = f"{os.getuid()}:{os.getgid()}"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]

#: the dockwork probe project's name, this bench run's own: what it keeps between rounds
#: (DOCKWORK_REUSE) and removes at the end is never another project's (this repository is
#: named "dockwork" too, and a developer's kept servers of it are not the bench's)
BENCH_PROJECT = f"dwbench{uuid.uuid4().hex[:8]}"

PROJECTS: dict[str, dict[str, str]] = {
    "baseline": {"test_x.py": "def test_x():\n    pass\n"},
    "dockwork": {
        "pyproject.toml": (
            f'[tool.dockwork]\nproject_name = "{BENCH_PROJECT}"\n'
            'test_services = ["postgres", "redis"]\n'
        ),
        "test_x.py": textwrap.dedent("""
            def test_x(dockwork_servers):
                assert dockwork_servers.database_url and dockwork_servers.redis_url
            """),
    },
    "pytest-databases": {
        "conftest.py": textwrap.dedent(f"""
            import pytest
            pytest_plugins = ["pytest_databases.docker.postgres", "pytest_databases.docker.redis"]

            @pytest.fixture(scope="session")
            def postgres_image():
                return {PG_IMAGE!r}

            @pytest.fixture(scope="session")
            def redis_image():
                return {REDIS_IMAGE!r}
            """),
        "test_x.py": textwrap.dedent("""
            def test_x(postgres_service, redis_service):
                assert postgres_service.port and redis_service.port
            """),
    },
    "testcontainers": {
        "conftest.py": textwrap.dedent(f"""
            import pytest
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            @pytest.fixture(scope="session")
            def servers():
                with PostgresContainer({PG_IMAGE!r}, driver=None) as pg, \\
                        RedisContainer({REDIS_IMAGE!r}) as rd:
                    yield pg.get_exposed_port(5432), rd.get_exposed_port(6379)
            """),
        "test_x.py": "def test_x(servers):\n    assert all(servers)\n",
    },
}
TOOLS = {
    # name: (project, extra pytest args, extra environment)
    "baseline": ("baseline", ["-p", "no:dockwork"], {}),
    "dockwork cold": ("dockwork", [], {}),
    "dockwork warm": ("dockwork", [], {"DOCKWORK_REUSE": "1"}),
    "embedded cold": ("dockwork", [], {"DOCKWORK_TEST_BACKEND": "embedded"}),
    "embedded warm": ("dockwork", [], {"DOCKWORK_TEST_BACKEND": "embedded", "DOCKWORK_REUSE": "1"}),
    "pytest-databases": ("pytest-databases", ["-p", "no:dockwork"], {}),
    "testcontainers": ("testcontainers", ["-p", "no:dockwork"], {}),
}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would hand a run ready-made servers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith(("DOCKWORK_", "PYTEST_"))
    }
    env["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # its reaper image cannot be pulled offline
    return env | extra


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds a whole command takes; a failure stops the benchmark, saying why."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench: `{' '.join(argv)}` failed in {cwd}:\n{tail}")
    return elapsed


def interleaved(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each run once per round, in turn; one warm-up round first (not counted)."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds + 1):
        for name, run in runs.items():
            figure = run()
            if r:
                samples[name].append(figure)
        if r:
            print(f"  round {r}/{rounds}", file=sys.stderr, flush=True)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def remove_reused() -> None:
    """The reused servers of the bench's project (containers, and embedded processes)."""
    from dockwork.testing.servers import embedded  # noqa: PLC0415

    for record in embedded.state_dir(BENCH_PROJECT).glob("reuse-*.json"):
        embedded.release_record(record)
        record.with_suffix(".servers").unlink(missing_ok=True)
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label={LABEL}.project={BENCH_PROJECT}",
            "--filter",
            f"label={LABEL}.reuse=1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out:  # with their anonymous volumes (Redis's image declares one)
        subprocess.run(["docker", "rm", "-f", "-v", *out], capture_output=True, check=True)


def server_sessions(rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="dockwork-bench-") as tmp:
        roots = {}
        for name, files in PROJECTS.items():
            root = Path(tmp) / name
            root.mkdir()
            (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
            for filename, text in files.items():
                path = root / filename
                path.write_text(path.read_text() + "\n" + text if path.exists() else text)
            roots[name] = root
        remove_reused()
        runs = {
            tool: (
                lambda p=project, a=args, e=extra: timed([*PYTEST, *a], roots[p], clean_env(**e))
            )
            for tool, (project, args, extra) in TOOLS.items()
        }
        try:
            return interleaved(rounds, runs)
        finally:
            remove_reused()


def clone_vs_migrate(rounds: int) -> tuple[list[float], list[float]]:
    config = load_config(ROOT, require_compose_files=False)
    backend = DockerBackend("dockwork-bench", [postgres_spec(PG_IMAGE)])
    admin = backend.start().database_url
    assert admin is not None
    try:
        template = f"dw_tpl_{databases.fingerprint(config.template_paths())}"
        databases.ensure_template(
            admin, databases.TemplateSpec(template, config.migrate_command, ROOT)
        )
        clones, migrations = [], []
        for i in range(rounds):
            clones.append(databases.clone(admin, template, f"bench_clone_{i}"))
            name = f"bench_migrate_{i}"
            t0 = time.perf_counter()
            databases.create(admin, name)
            env = {**os.environ, "DATABASE_URL": urls.with_database(admin, name)}
            argv = [sys.executable, *config.migrate_command[1:]]
            subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True)
            migrations.append(time.perf_counter() - t0)
        return clones, migrations
    finally:
        backend.stop()


@dataclass
class Stack:
    """A copy of the checkout running as a stack of its own."""

    root: Path
    env: dict[str, str]
    name: str

    def compose(self, *args: str) -> list[str]:
        return ["docker", "compose", "-p", self.name, *args]

    @staticmethod
    def inv(*args: str) -> list[str]:
        return [sys.executable, "-m", "invoke", *args]

    def timed(self, argv: list[str]) -> float:
        return timed(argv, self.root, self.env)

    def run(self, argv: list[str]) -> Callable[[], float]:
        """A figure: ``argv``'s time, from wherever the stack is."""
        return lambda: self.timed(argv)

    def from_down(self, *steps: list[str]) -> Callable[[], float]:
        """A figure: the last step's time, from a stopped stack (volumes kept: warm), after
        the earlier steps (not timed)."""

        def run() -> float:
            self.timed(self.compose("down", "--timeout", "5"))
            for step in steps[:-1]:
                self.timed(step)
            return self.timed(steps[-1])

        return run


@contextlib.contextmanager
def stack_copy() -> Iterator[Stack]:
    """A copy of the checkout as a stack of its own; removed (volumes, images) afterwards."""
    from tests.e2e.conftest import copy_checkout  # noqa: PLC0415

    name = f"dwbench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="dockwork-bench-stack-") as tmp:
        root = Path(tmp) / name
        root.mkdir()
        copy_checkout(root)
        env = clean_env(
            DOCKWORK_PROJECT_NAME=name,
            APP_PORT="0",
            DB_PORT="0",
            CACHE_PORT="0",
            WEB_PORT="0",
            APP_IMAGE=f"dockwork-bench-app:{name}",
            APP_DEV_IMAGE=f"dockwork-bench-app-dev:{name}",
        )
        stack = Stack(root, env, name)
        try:
            yield stack
        finally:
            for argv in (
                stack.compose("down", "--volumes", "--timeout", "0"),
                ["docker", "image", "rm", "-f", env["APP_IMAGE"], env["APP_DEV_IMAGE"]],
            ):
                subprocess.run(argv, cwd=root, env=env, capture_output=True, check=False)
            # services sharing an image name each build it: the builds that lost the tag
            # are left dangling, labelled with this (uniquely named) project
            remove_project_images(name)


def stack_loops(rounds: int) -> dict[str, list[float]]:
    with stack_copy() as stack:
        print("  building the images and migrating (not timed)", file=sys.stderr, flush=True)
        stack.timed(stack.inv("up", "--build"))
        up = interleaved(
            rounds,
            {
                "inv up": stack.from_down(stack.inv("up")),
                "docker compose up --wait": stack.from_down(
                    stack.compose("up", "--detach", "--wait")
                ),
                "db ready alone": stack.from_down(stack.compose("up", "--detach", "--wait", "db")),
                "db and cache ready": stack.from_down(
                    stack.compose("up", "--detach", "--wait", "db", "cache")
                ),
                "migrations alone": stack.from_down(
                    stack.compose("up", "--detach", "--wait", "db"),
                    stack.compose("run", "--rm", "--no-deps", "migrate"),
                ),
                "app ready alone": stack.from_down(
                    stack.compose("up", "--detach", "--wait", "db", "cache"),
                    stack.compose("up", "--detach", "--wait", "--no-deps", "app"),
                ),
            },
        )
        stack.timed(stack.inv("up"))
        tests = ["tests/unit", "-q", "-p", "no:cacheprovider"]
        loops = interleaved(
            rounds,
            {
                "inv test -- tests/unit": stack.run(stack.inv("test", "--", *tests)),
                # as the host's user, as `inv test` runs it (the image's own user may not
                # write to the checkout, e.g. where the host user is root)
                "compose exec pytest tests/unit": stack.run(
                    stack.compose("exec", "-T", "--user", HOST_IDS, "app", "pytest", *tests)
                ),
            },
        )
        return up | loops


def row(label: str, value: str, ratio: str = "", target: str = "") -> str:
    return f"| {label:<44} | {value:>12} | {ratio:>14} | {target:<22} |"


def table_head(title: str, ratio: str) -> None:
    print()
    print(title)
    print(row("", "median", ratio, "target"))
    print(row("-" * 44, "-" * 12, "-" * 14, "-" * 22))


def report_servers(results: dict[str, list[float]]) -> None:
    base = median_ms(results["baseline"])
    ref = median_ms(results["pytest-databases"]) - base

    def line(tool: str, target: str = "") -> str:
        overhead = median_ms(results[tool]) - base
        return row(tool, f"{overhead:,.0f} ms", f"{overhead / ref:.2f}x", target)

    table_head(
        "Test servers: PostgreSQL + Redis ready for a pytest session (minus a bare one)",
        "vs pytest-db",
    )
    print(row("bare session (subtracted; no plugin)", f"{base:,.0f} ms"))
    print(line("dockwork cold", "<= 0.35x"))
    print(line("dockwork warm", "<= 0.05x"))
    print(line("embedded cold", "<= 0.2x"))
    print(line("embedded warm"))
    print(line("pytest-databases", "(reference)"))
    print(line("testcontainers"))
    # a target holds in every round, not only in the median one: each round's ratio against
    # the same round's pytest-databases and bare session (they ran next to each other)
    for tool in ("dockwork cold", "dockwork warm", "embedded cold"):
        ratios = [
            (mine - bare) / (ref_run - bare)
            for mine, bare, ref_run in zip(
                results[tool], results["baseline"], results["pytest-databases"], strict=True
            )
        ]
        print(row(f"  {tool}, per round", "", f"{min(ratios):.2f}-{max(ratios):.2f}x"))


def report_clone(clones: list[float], migrations: list[float]) -> None:
    clone, migrate = median_ms(clones), median_ms(migrations)
    table_head("A per-worker database on a running server", "vs migrating")
    print(
        row(
            "CREATE DATABASE … TEMPLATE (clone)",
            f"{clone:,.1f} ms",
            f"{clone / migrate:.3f}x",
            "<= 100 ms",
        )
    )
    print(row("create + run the migrations", f"{migrate:,.1f} ms", "1.000x"))


def report_stack(results: dict[str, list[float]], before_up: float) -> None:
    up = median_ms(results["inv up"])
    table_head("The stack on a warm machine (images built, volumes present)", "ratio")
    print(
        row(
            "inv up, to healthy", f"{up:,.0f} ms", f"{up / before_up:.2f}x before", "<= 0.5x before"
        )
    )
    raw = median_ms(results["docker compose up --wait"])
    print(row("docker compose up --detach --wait", f"{raw:,.0f} ms", f"{up / raw:.2f}x (inv/raw)"))
    servers = median_ms(results["db and cache ready"])
    print(
        row(
            "docker compose up --wait db cache",
            f"{servers:,.0f} ms",
            f"{up / servers:.2f}x (inv/this)",
            "inv up <= 2.8x this",
        )
    )
    low, high = min(results["inv up"]) * 1000, max(results["inv up"]) * 1000
    print(row("  inv up, range over the rounds", f"{low:,.0f}-{high:,.0f} ms"))
    for floor in ("db ready alone", "migrations alone", "app ready alone"):
        print(row(f"  floor: {floor}", f"{median_ms(results[floor]):,.0f} ms"))
    inv_test = median_ms(results["inv test -- tests/unit"])
    exec_test = median_ms(results["compose exec pytest tests/unit"])
    print(row("inv test -- tests/unit (stack up)", f"{inv_test:,.0f} ms"))
    print(row("docker compose exec app pytest tests/unit", f"{exec_test:,.0f} ms"))
    print(row("  overhead of inv test", f"{inv_test - exec_test:,.0f} ms", "", "<= 1,500 ms"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="counted runs per figure")
    parser.add_argument("--only", choices=["servers", "clone", "stack"], action="append")
    parser.add_argument(
        "--before-up-ms",
        type=float,
        default=15_000,
        help="`inv up` to healthy before the speed work, measured on main (15.0 s)",
    )
    args = parser.parse_args()
    only = set(args.only or ["servers", "clone", "stack"])
    print(f"images: {PG_IMAGE}, {REDIS_IMAGE}; {args.rounds} rounds, interleaved", file=sys.stderr)
    servers = server_sessions(args.rounds) if "servers" in only else None
    clone = clone_vs_migrate(max(args.rounds, 5)) if "clone" in only else None
    stack = stack_loops(args.rounds) if "stack" in only else None
    if servers:
        report_servers(servers)
    if clone:
        report_clone(*clone)
    if stack:
        report_stack(stack, args.before_up_ms)
    for name, samples in {**(servers or {}), **(stack or {})}.items():
        spread = f"{min(samples) * 1000:,.0f}-{max(samples) * 1000:,.0f} ms"
        print(f"  {name}: min-max {spread} over {len(samples)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
