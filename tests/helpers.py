"""Shared test helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from typing import TYPE_CHECKING, Any

from dockwork.kinds.containers import postgres_spec, redis_spec
from dockwork.testing.servers.docker import DockerBackend

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


#: pytest plugins of the dev environment that the child runs of this suite never use, left
#: unloaded there: pytest-databases' imports the Docker SDK and requests (~120 ms of CPU per
#: pytest process), faker's (from litestar's polyfactory) its locales (~65 ms), and a check
#: run starts about a hundred child pytest processes. test_pytest_databases loads them all.
CHILD_ADDOPTS = "-p no:pytest_databases -p no:faker"


def env_without_services() -> dict[str, str]:
    """This environment minus anything that would hand a child run ready-made servers, so
    the child provisions its own (as a fresh `pytest` or `nox` would); its pytest runs
    without the plugins it never uses (:data:`CHILD_ADDOPTS`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"}
        and not k.startswith(("DOCKWORK_TEST_", "PYTEST_", "DOCKWORK_REUSE"))
    }
    return {**env, "PYTEST_ADDOPTS": CHILD_ADDOPTS}


def default_signals() -> None:
    """``preexec_fn`` for a child a test signals: SIGINT, SIGHUP and SIGTERM act as they do by
    default. A run started in the background (``nohup nox … &``, a shell without job control)
    hands its children SIGINT and SIGHUP ignored, which an exec keeps: Python then never raises
    KeyboardInterrupt, and dockwork leaves an ignored SIGHUP ignored, as it should."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


#: set to 1 where a run must have a Docker engine (CI): a test that needs one then fails
#: instead of skipping, so a broken engine cannot pass green
NEED_DOCKER = "DOCKWORK_TESTS_NEED_DOCKER"


def needs_docker(what: str = "a Docker engine") -> None:
    """Skip the calling test when no engine answers, or fail it where one is required."""
    import pytest  # noqa: PLC0415

    from dockwork.testing.servers.docker import docker_available  # noqa: PLC0415

    reason = docker_available()
    if reason is None:
        return
    if os.environ.get(NEED_DOCKER) == "1":
        pytest.fail(f"{NEED_DOCKER}=1: this run needs {what}, and none answers: {reason}")
    pytest.skip(f"needs {what}: {reason}")


def dockwork_containers(project: str) -> list[str]:
    """Ids of the test-server containers of ``project`` (dockwork's labels)."""
    import subprocess  # noqa: PLC0415

    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dev.dockwork.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def gone(project: str, timeout: float = 20) -> bool:
    """True once ``project`` has no test-server container left: a run's end leaves their
    removal to a detached process, so they go a moment after the run's process exits."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while dockwork_containers(project):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def remove_project_images(*projects: str) -> None:
    """Every image Compose built for these projects, tagged or not. Services sharing one
    image name each build it with their own labels: one build keeps the tag, the others
    are left dangling, labelled with the project. Only for names unique to the caller's
    run (a random suffix): a generic name (``docker``) may be another run's."""
    ids: set[str] = set()
    for project in projects:
        argv = ["docker", "image", "ls", "--all", "--quiet", "--filter"]
        listed = subprocess.run(
            [*argv, f"label=com.docker.compose.project={project}"],
            capture_output=True,
            text=True,
            check=False,
        )
        ids.update(listed.stdout.split())
    if ids:
        rm = ["docker", "image", "rm", "--force", *sorted(ids)]
        subprocess.run(rm, capture_output=True, check=False)


def wrong_password(url: str) -> str:
    """``url`` with another password: what an intruder without it would try."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    parts = urlsplit(url)
    netloc = f"{parts.username or ''}:wrong@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def pg_image() -> str:
    return os.environ.get("POSTGRES_IMAGE") or "postgres:17"


def redis_image() -> str:
    return os.environ.get("REDIS_IMAGE") or "redis:7"


def docker_backend(
    project: str, *, init: str = "baked", kinds: tuple[str, ...] = ("postgres", "redis"), **kw: Any
) -> DockerBackend:
    """A backend for this project with the sandbox's (or official) images."""
    made = {"postgres": postgres_spec(pg_image(), init), "redis": redis_spec(redis_image())}
    return DockerBackend(project, [made[k] for k in kinds], **kw)


@contextlib.contextmanager
def relay(listen: tuple[int, str] | str, target: tuple[str, int] | str) -> Iterator[Any]:
    """A byte relay (TCP or unix socket) to ``target``; closing it cuts every connection,
    as if the server behind it had gone away. Yields an object with ``address`` and
    ``close()``."""

    class Relay:
        def __init__(self) -> None:
            family = socket.AF_UNIX if isinstance(listen, str) else socket.AF_INET
            self.server = socket.socket(family, socket.SOCK_STREAM)
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if isinstance(listen, str):
                self.server.bind(listen)
                self.address: Any = listen
            else:
                port, host = listen
                self.server.bind((host, port))
                self.address = self.server.getsockname()
            self.server.listen(64)
            self.sockets: list[socket.socket] = [self.server]
            self.closed = False
            threading.Thread(target=self._accept, daemon=True).start()

        def _connect(self) -> socket.socket:
            if isinstance(target, str):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(target)
                return s
            return socket.create_connection(target)

        def _accept(self) -> None:
            while not self.closed:
                try:
                    client, _ = self.server.accept()
                except OSError:
                    return
                try:
                    upstream = self._connect()
                except OSError:
                    client.close()
                    continue
                self.sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

        @staticmethod
        def _pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    b.shutdown(socket.SHUT_WR)

        def close(self) -> None:
            self.closed = True
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    r = Relay()
    try:
        yield r
    finally:
        r.close()


#: a small project of a test's own: migrated by migrate.py, on PostgreSQL and Redis;
#: ``extra`` adds [tool.dockwork] lines (and tables after them)
PROBE_PYPROJECT = """[project]
name = "probe"
version = "0"

[tool.dockwork]
project_name = "{project}"
migrate_command = ["python", "migrate.py"]
template_inputs = ["migrate.py"]
test_services = ["postgres", "redis"]
{extra}"""
#: the probe's tasks.py, for `inv test-servers.*`
PROBE_TASKS = "from dockwork.tasks import namespace\n\nns = namespace()\n"


def probe_project(root: Path, project: str, files: dict[str, str], extra: str = "") -> Path:
    """Write a probe project into ``root``: its pyproject.toml, then ``files`` (name →
    text, dedented), e.g. migrate.py, conftest.py, test_probe.py."""
    import textwrap  # noqa: PLC0415

    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        PROBE_PYPROJECT.format(project=project, extra=textwrap.dedent(extra).lstrip("\n"))
    )
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root
