"""The checks, defined once: CI, `inv ci` and the README all run these sessions.

`uv run nox` runs the default sessions; `uv run nox -s tests -- -k users -x` passes
arguments to pytest; `-R` reuses the session environments. The logic is in dockwork.noxtools.
"""

from __future__ import annotations

import nox

from dockwork import noxtools

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# a second nox run of this checkout gets environments of its own instead of deleting ours
nox.options.envdir = noxtools.envdir()
# independent sessions side by side, one per core (each one's output is printed as a block
# when it ends; the summary gives each session's duration); `nox -j 1` runs one at a time
nox.options.parallel = "auto"
nox.options.allow_parallel = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "compose",
    "web",
    "tests",
    "tests-embedded",
    "migrations",
    "e2e",
    "swarm",
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
    """Unit and integration tests against real PostgreSQL and Redis containers."""
    noxtools.sync(session)
    args = ["-n", "auto", *session.posargs]
    session.run(*noxtools.pytest_args(noxtools.project_config(), args, "not e2e", "not clones"))


@nox.session(name="tests-embedded")
def tests_embedded(session: nox.Session) -> None:
    """The same tests with no Docker engine: real PostgreSQL and Redis from wheels."""
    noxtools.sync(session)
    args = ["-n", "auto", *session.posargs]
    # DOCKER_HOST names nothing: tests that need the engine skip, the servers are embedded
    env = {
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "DOCKWORK_TEST_BACKEND": "auto",
        "DOCKWORK_TESTS_NEED_DOCKER": "0",  # here the engine's absence is the point
    }
    session.run(
        *noxtools.pytest_args(noxtools.project_config(), args, "not e2e", "not clones"), env=env
    )


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
    # a module's tests share a stack: they stay on one worker (loadfile); images are built once
    args = ["-n", "auto", "--dist", "loadfile", *session.posargs, "tests/e2e"]
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
    """`inv deploy.*` on a single-node Docker Swarm: deploy, rolling update, rollback, rm."""
    noxtools.sync(session)
    args = [*session.posargs, "tests/e2e/test_swarm.py", "-s"]
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
