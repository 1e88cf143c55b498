"""Benchmark: what getting PostgreSQL + Redis ready costs a test session, per tool.

Each tool runs as a whole ``pytest`` process over a one-test project that needs a
PostgreSQL (``SELECT 1``) and a Redis (``PING``), on the same images (POSTGRES_IMAGE,
REDIS_IMAGE); a project without services is the baseline. Runs are interleaved round by
round so drift hits every tool alike; the figure is median(tool) - median(baseline).
Then, on one running server: a per-worker database cloned from the migrated template vs
running the migrations into an empty database.

Prints figures and ratios; asserts nothing about time (shared, noisy machines).
Run: ``uv run nox -s bench`` (or ``-- --rounds 7``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dockwork import testdb, urls  # noqa: E402
from dockwork.config import load_config  # noqa: E402
from dockwork.testservers.containers import postgres_spec  # noqa: E402
from dockwork.testservers.docker import LABEL, DockerBackend  # noqa: E402

PG_IMAGE = os.environ.get("POSTGRES_IMAGE") or "postgres:17"
REDIS_IMAGE = os.environ.get("REDIS_IMAGE") or "redis:7"

QUERY = """
import psycopg, redis

def check(pg_url, redis_url):
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert redis.Redis.from_url(redis_url).ping()
"""

PROJECTS: dict[str, dict[str, str]] = {
    # imports the same client libraries, so only the services' cost remains
    "baseline": {
        "test_x.py": QUERY + "\n\ndef test_x():\n    assert check\n",
    },
    "dockwork": {
        "test_x.py": QUERY
        + textwrap.dedent("""
            def test_x(dockwork_servers):
                check(dockwork_servers.database_url, dockwork_servers.redis_url)
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
        "test_x.py": QUERY
        + textwrap.dedent("""
            def test_x(postgres_service, redis_service):
                pg = postgres_service
                check(f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}",
                      f"redis://{redis_service.host}:{redis_service.port}/0")
            """),
    },
    "testcontainers": {
        "conftest.py": textwrap.dedent(f"""
            import pytest
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            @pytest.fixture(scope="session")
            def services():
                with PostgresContainer({PG_IMAGE!r}, driver=None) as pg, \\
                        RedisContainer({REDIS_IMAGE!r}) as rd:
                    yield pg.get_connection_url(), (
                        f"redis://{{rd.get_container_host_ip()}}:{{rd.get_exposed_port(6379)}}/0")
            """),
        "test_x.py": QUERY
        + textwrap.dedent("""
            def test_x(services):
                check(*services)
            """),
    },
}


def write_projects(base: Path) -> dict[str, Path]:
    paths = {}
    for name, files in PROJECTS.items():
        root = base / name
        root.mkdir()
        (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
        for filename, text in files.items():
            (root / filename).write_text(text)
        paths[name] = root
    return paths


def env_for(tool: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith(("DOCKWORK_", "PYTEST_"))
    }
    env["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # its reaper image cannot be pulled offline
    if tool == "dockwork warm":
        env["DOCKWORK_REUSE"] = "1"
    return env


def time_run(root: Path, env: dict[str, str]) -> float | str:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [ln for ln in lines if "Error" in ln or "error" in ln]
        return (errors or lines or ["failed"])[-1][:160]
    return elapsed


def remove_reused(project: str) -> None:
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label={LABEL}.project={project}",
            "--filter",
            f"label={LABEL}.reuse=1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out:
        subprocess.run(["docker", "rm", "-f", *out], capture_output=True, check=True)


def session_overheads(rounds: int) -> dict[str, list[float] | str]:
    tools = ["baseline", "dockwork cold", "dockwork warm", "pytest-databases", "testcontainers"]
    results: dict[str, list[float] | str] = {t: [] for t in tools}
    with tempfile.TemporaryDirectory(prefix="dockwork-bench-") as tmp:
        paths = write_projects(Path(tmp))
        paths["dockwork cold"] = paths["dockwork warm"] = paths["dockwork"]
        remove_reused("dockwork")
        try:
            # warm-up: images in the page cache; the reused containers created (not counted)
            for tool in tools:
                time_run(paths[tool], env_for(tool))
            for r in range(rounds):
                for tool in tools:
                    if isinstance(results[tool], str):
                        continue
                    figure = time_run(paths[tool], env_for(tool))
                    if isinstance(figure, str):
                        results[tool] = f"failed: {figure}"
                    else:
                        results[tool].append(figure)  # type: ignore[union-attr]
                print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
        finally:
            remove_reused("dockwork")
    return results


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def clone_vs_migrate(rounds: int) -> tuple[list[float], list[float]]:
    config = load_config(ROOT, require_compose_files=False)
    backend = DockerBackend("dockwork-bench", [postgres_spec(PG_IMAGE)])
    admin = backend.start().database_url
    assert admin is not None
    try:
        inputs = config.template_paths()
        template = f"dw_tpl_{testdb.fingerprint(inputs)}"
        testdb.ensure_template(admin, testdb.TemplateSpec(template, config.migrate_command, ROOT))
        clones, migrations = [], []
        for i in range(rounds):
            clones.append(testdb.clone(admin, template, f"bench_clone_{i}"))
            name = f"bench_migrate_{i}"
            t0 = time.perf_counter()
            testdb.create(admin, name)
            run = subprocess.run(
                [sys.executable, *config.migrate_command[1:]],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": urls.with_database(admin, name)},
                capture_output=True,
                text=True,
                check=False,
            )
            migrations.append(time.perf_counter() - t0)
            if run.returncode != 0:
                raise SystemExit(f"migration failed:\n{run.stderr}")
        return clones, migrations
    finally:
        backend.stop()


def row(label: str, value: str, ratio: str = "", target: str = "") -> str:
    return f"| {label:<38} | {value:>12} | {ratio:>12} | {target:<16} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="counted runs per tool (default 5)")
    args = parser.parse_args()
    print(f"images: {PG_IMAGE}, {REDIS_IMAGE}; {args.rounds} rounds, interleaved", file=sys.stderr)

    results = session_overheads(args.rounds)
    clones, migrations = clone_vs_migrate(max(args.rounds, 5))

    base = results["baseline"]
    assert isinstance(base, list)
    base_ms = median_ms(base)
    overhead: dict[str, float | str] = {}
    for tool, samples in results.items():
        if tool != "baseline":
            overhead[tool] = samples if isinstance(samples, str) else median_ms(samples) - base_ms
    ref = overhead["pytest-databases"]

    def ratio(value: float | str, target: str = "") -> tuple[str, str, str]:
        if isinstance(value, str):
            return value, "", target
        r = f"{value / ref:.2f}x" if isinstance(ref, float) and ref > 0 else "n/a"
        return f"{value:,.0f} ms", r, target

    print()
    print("Test-session overhead for PostgreSQL + Redis (median wall time minus the baseline)")
    print(row("tool", "overhead", "vs pytest-db", "target"))
    print(row("-" * 38, "-" * 12, "-" * 12, "-" * 16))
    print(row("baseline pytest session (no services)", f"{base_ms:,.0f} ms", "", "(subtracted)"))
    print(row("dockwork, cold (new containers)", *ratio(overhead["dockwork cold"], "<= 0.5x")))
    print(row("dockwork, warm (DOCKWORK_REUSE=1)", *ratio(overhead["dockwork warm"], "<= 0.1x")))
    print(row("pytest-databases", *ratio(overhead["pytest-databases"], "(reference)")))
    print(row("testcontainers-python", *ratio(overhead["testcontainers"])))
    print()
    clone_ms, migrate_ms = median_ms(clones), median_ms(migrations)
    print("Per-worker database on a running server (median)")
    print(row("way", "time", "vs migrate", "target"))
    print(row("-" * 38, "-" * 12, "-" * 12, "-" * 16))
    print(
        row(
            "CREATE DATABASE … TEMPLATE (clone)",
            f"{clone_ms:,.1f} ms",
            f"{clone_ms / migrate_ms:.3f}x",
            "<= 100 ms",
        )
    )
    print(row("create + run the migrations", f"{migrate_ms:,.1f} ms", "1.000x"))
    for tool, samples in results.items():
        if isinstance(samples, list) and samples:
            spread = f"{min(samples) * 1000:,.0f}-{max(samples) * 1000:,.0f} ms"
            print(f"  {tool}: whole-run min-max {spread} over {len(samples)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
