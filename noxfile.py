"""The checks, defined once: CI, `inv ci` and the README all run these sessions.

`uv run nox` runs the default sessions; `uv run nox -s tests -- -k users -x` passes
arguments to pytest; `-R` reuses the session environments. The logic is in dockwork.noxtools.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from pathlib import Path

import nox
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from dockwork import noxtools

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# a second nox run of this checkout gets environments of its own instead of deleting ours
nox.options.envdir = noxtools.envdir()
# independent sessions side by side, one per core (each one's output is printed as a block
# when it ends; the summary gives each session's duration); `nox -j 1` runs one at a time.
# Longest first: the run is CPU-bound, and a long session started last would run alone at
# the end, on part of the machine (e2e ~4 min, tests ~3, swarm ~2, tests-embedded ~1).
# Not more at once: three sessions on 2 cores cost more CPU than two (652 CPU-s against
# 570-581) and took longer (332 s against 297-303).
nox.options.parallel = "auto"
nox.options.allow_parallel = True
nox.options.sessions = [
    "e2e",
    "tests",
    "swarm",
    "tests-embedded",
    "lint",
    "typecheck",
    "migrations",
    "package",
    "compose",
    "web",
]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and check formatting (changes nothing)."""
    noxtools.sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def format(session: nox.Session) -> None:  # noqa: A001 - the session's public name
    """Ruff: format and apply safe fixes."""
    noxtools.sync(session)
    session.run("ruff", "format", ".")
    session.run("ruff", "check", "--fix", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy, strict, over src."""
    noxtools.sync(session)
    session.run("mypy", *session.posargs)


@nox.session(venv_backend="none")
def package(session: nox.Session) -> None:
    """What a release publishes, proven before it is published (the release workflow runs it).

    `uv build`: the sdist, then the wheel built from that sdist (so the sdist is complete);
    their metadata passes `twine check --strict` (the build itself refuses unknown
    classifiers and readme types); the wheel holds dockwork alone, with py.typed. Then the
    wheel, installed by itself into a new virtualenv (its declared dependencies from the
    index, nothing from this repository's environment), runs from outside the checkout:
    `dockwork --version` prints the wheel's version and `dockwork init --help` works.

    `-- --expect-version 1.2.3` also fails unless the build is that version (the tag's);
    `-- --out-dir dist` copies the proven sdist and wheel there (an empty or new directory).
    """
    options = _package_options(session)
    out = None if options.out_dir is None else Path(options.out_dir)
    if out is not None and out.exists() and any(out.iterdir()):
        session.error(f"{out} is not empty: whatever it holds would be published too")
    work = Path(session.create_tmp()).resolve() / "package"
    shutil.rmtree(work, ignore_errors=True)
    built, venv = work / "dist", work / "venv"
    build = ["uv", "build", "--no-sources", "--no-create-gitignore", "--out-dir", str(built)]
    session.run(*build, external=True)
    (wheel,), (sdist,) = sorted(built.glob("*.whl")), sorted(built.glob("*.tar.gz"))
    _, version, _, _ = parse_wheel_filename(wheel.name)
    if parse_sdist_filename(sdist.name)[1] != version:
        session.error(f"the sdist ({sdist.name}) and the wheel ({wheel.name}) differ in version")
    if options.expect_version is not None and _version(session, options.expect_version) != version:
        session.error(
            f"built version {version}, expected {options.expect_version}: is the tag on the "
            "checked-out commit, with history and tags fetched, and the tree clean?"
        )
    twine = ["uv", "tool", "run", "--from", "twine>=6.1", "twine"]
    session.run(*twine, "check", "--strict", str(sdist), str(wheel), external=True)
    _check_wheel_files(session, wheel)

    session.run("uv", "venv", "--quiet", str(venv), external=True)
    session.run("uv", "pip", "install", "--python", str(venv), str(wheel), external=True)
    scripts = venv / ("Scripts" if sys.platform == "win32" else "bin")
    with session.chdir(work):  # nothing of the checkout on sys.path
        probe = "import dockwork; print(dockwork.__file__)"
        where = session.run(str(scripts / "python"), "-c", probe, external=True, silent=True)
        if not isinstance(where, str) or not Path(where.strip()).is_relative_to(venv):
            session.error(f"dockwork was imported from {where!r}, not from the wheel in {venv}")
        printed = session.run(str(scripts / "dockwork"), "--version", external=True, silent=True)
        session.log(f"dockwork --version: {printed!r}")
        if printed != f"dockwork {version}\n":
            session.error(f"dockwork --version printed {printed!r}; the wheel is {version}")
        session.run(str(scripts / "dockwork"), "init", "--help", external=True)

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for dist in (sdist, wheel):
            shutil.copy2(dist, out / dist.name)
        session.log(f"proven: {sdist.name} and {wheel.name}, copied to {out}")


def _package_options(session: nox.Session) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s package --")
    parser.add_argument("--out-dir", help="copy the proven sdist and wheel here")
    parser.add_argument("--expect-version", help="fail unless the build is this version")
    try:
        return parser.parse_args(session.posargs)
    except SystemExit:  # argparse has printed the usage and what is wrong
        session.error("bad arguments (above)")


def _version(session: nox.Session, text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        session.error(f"{text!r} is not a version (PEP 440): a release tag is v1.2.3")


def _check_wheel_files(session: nox.Session, wheel: Path) -> None:
    """The wheel holds the dockwork package and its metadata, nothing else (no app, no
    tests), and py.typed, so that adopters' type checkers read dockwork's annotations."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    stray = sorted({name.split("/")[0] for name in names} - {"dockwork", dist_info})
    if stray:
        session.error(f"{wheel.name} holds more than dockwork and its metadata: {stray}")
    if "dockwork/py.typed" not in names:
        session.error(f"{wheel.name} has no dockwork/py.typed")


@nox.session
def compose(session: nox.Session) -> None:
    """`docker compose config -q` for every compose-file combination."""
    noxtools.check_compose(session)


@nox.session(venv_backend="none")
def web(session: nox.Session) -> None:
    """The frontend: biome, tsc and vitest in its Node service (Node comes in the image)."""
    noxtools.web_checks(session)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests against real PostgreSQL and Redis containers. The tests
    of the embedded backend (marked ``embedded``: they use it whatever the engine) are left
    to tests-embedded, which runs them without an engine, the stronger proof."""
    noxtools.sync(session)
    args = ["-n", "auto", *session.posargs]
    config = noxtools.project_config()
    session.run(*noxtools.pytest_args(config, args, "not e2e", "not clones", "not embedded"))


@nox.session(name="tests-embedded")
def tests_embedded(session: nox.Session) -> None:
    """The integration tests with no Docker engine: real PostgreSQL and Redis from wheels.
    (The unit tests start no server and need no engine: `tests` runs them.)"""
    noxtools.sync(session)
    args = ["-n", "auto", *session.posargs]
    # DOCKER_HOST names nothing: tests that need the engine skip, the servers are embedded
    env = {
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "DOCKWORK_TEST_BACKEND": "auto",
        "DOCKWORK_TESTS_NEED_DOCKER": "0",  # here the engine's absence is the point
    }
    config = noxtools.project_config()
    argv = noxtools.pytest_args(config, args, "not e2e", "not clones", paths=["tests/integration"])
    session.run(*argv, env=env)


@nox.session
def migrations(session: nox.Session) -> None:
    """On a fresh PostgreSQL: upgrade head, downgrade base, upgrade head, then the drift check."""
    noxtools.sync(session)
    with noxtools.servers(session, "postgres") as servers:
        assert servers.database_url is not None
        noxtools.migration_roundtrip(session, servers.database_url)


@nox.session
def e2e(session: nox.Session) -> None:
    """The whole Compose stack under its own project name and ephemeral ports, torn down after."""
    noxtools.sync(session)
    # a module's tests share a stack: they stay on one worker (loadfile); images are built once.
    # One worker per core: beside the other sessions (`uv run nox`, CI) the machine is busy
    # already, and a worker more only adds contention (the whole run on 2 cores, one round:
    # 309, 315 and 330 s, 557-592 CPU-s, against 323 and 327 s, 613 and 620 CPU-s with one
    # more; docs/benchmarks.md). Alone its workers wait on the engine much of the time:
    # `nox -s e2e -- -n 3` (an earlier round: 163 s against 183 s).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = str(cores or 1)
    args = ["-n", workers, "--dist", "loadfile", *session.posargs, "tests/e2e"]
    session.run(
        *noxtools.pytest_args(noxtools.project_config(), args, "e2e", "not clones", "not swarm")
    )


@nox.session(default=False)
def clones(session: nox.Session) -> None:
    """Two checkouts run `nox -s tests` at once on one engine: both must pass.

    Not a default session: minutes for one property, which the default `tests` session
    proves in seconds (tests/integration/test_concurrent_runs.py: two runs of one project
    at once under xdist, sharing its name, each creating databases, tables, Redis keys and
    containers; both pass, nothing left behind). Run it before a release.
    """
    noxtools.sync(session)
    args = [*session.posargs, "tests/e2e/test_clones.py", "-s"]
    session.run(*noxtools.pytest_args(noxtools.project_config(), args, "clones"))


@nox.session
def swarm(session: nox.Session) -> None:
    """`inv deploy.*` on a single-node Docker Swarm: deploy, rolling update, rollback, rm;
    and mesh routing refused, before anything is built, on an engine without IPVS."""
    noxtools.sync(session)
    args = [*session.posargs, "tests/e2e/test_swarm.py", "tests/e2e/test_routing_check.py", "-s"]
    session.run(*noxtools.pytest_args(noxtools.project_config(), args, "swarm"))


@nox.session(default=False)
def cluster(session: nox.Session) -> None:
    """`inv deploy.*` on a three-node swarm (engines in containers): placement, faults, load."""
    noxtools.sync(session)
    args = [*session.posargs, "tests/e2e/test_cluster.py", "-s"]
    session.run(*noxtools.pytest_args(noxtools.project_config(), args, "swarm"))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmark: test-service overhead vs pytest-databases and testcontainers (prints a table)."""
    noxtools.sync(session, "bench")
    session.run("python", "scripts/bench.py", *session.posargs)
