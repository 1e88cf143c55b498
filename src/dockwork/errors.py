"""dockwork's error vocabulary: one paragraph saying what is wrong and what to do.

Tasks, sessions and the pytest plugin raise these; :func:`render` adds the ``dockwork:``
prefix in one place. Errors of the libraries dockwork drives (psycopg, redis, the Docker
SDK, sockets) are translated where they enter, by :func:`boundary`, so a user never sees
their tracebacks.
"""

from __future__ import annotations

import contextlib
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

PREFIX = "dockwork: "
#: top-level packages whose exceptions are translated at the boundary
LIBRARIES = frozenset(
    {"psycopg", "redis", "docker", "requests", "urllib3", "http", "socket", "subprocess"}
)


class DockworkError(Exception):
    """A failure with a message meant for the user; shown without a traceback."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        """The user-facing text."""
        return str(self.args[0])


class ConfigError(DockworkError):
    """``[tool.dockwork]`` or an override is invalid."""

    exit_code = 2


class UsageError(DockworkError):
    """A task was called with arguments that cannot work (nothing was changed)."""

    exit_code = 2


class EngineError(DockworkError):
    """Docker, its engine or Compose v2 is missing or unreachable."""

    exit_code = 3


class ProvisionError(DockworkError):
    """Test servers could not be provided."""

    exit_code = 3


class TestDatabaseError(DockworkError):
    """A test database (template, clone) or Redis database could not be prepared."""

    __test__ = False  # not a pytest test class, despite its name
    exit_code = 3


class DeployError(DockworkError):
    """A Swarm deploy could not be done, or did not converge (what runs is said)."""


class ProgramNotFoundError(DockworkError):
    """A program is not on PATH."""

    exit_code = 127


class CommandError(DockworkError):
    """A command exited non-zero; carries its argv, exit code and captured output."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip()
        tail = "\n".join(detail.splitlines()[-20:])
        message = f"`{shlex.join(self.argv)}` failed with exit code {returncode}"
        if tail:
            message += f":\n{tail}"
        super().__init__(message, exit_code=returncode if 0 < returncode < 256 else 1)  # noqa: PLR2004


def render(exc: DockworkError) -> str:
    """The text shown for an error: the prefix, added here and nowhere else."""
    return PREFIX + exc.message


def root_cause(exc: BaseException) -> BaseException:
    """The innermost OS-level error behind ``exc`` (a refused connection under an SDK's
    wrappers), or ``exc`` itself."""
    seen = {id(exc)}
    found, current = exc, exc
    while (nxt := current.__cause__ or current.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        current = nxt
        if isinstance(current, OSError):
            found = current
    return found


def describe(exc: BaseException) -> str:
    """A library exception in one line: its type and first line, no traceback; for an
    error that wraps an OS error (a client library's connection error), that error."""
    exc = root_cause(exc)
    text = " ".join(str(exc).split("\n")[0].split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_library_error(exc: BaseException) -> bool:
    """An error of a library or the OS that dockwork drives (translated, never shown raw)."""
    if isinstance(exc, DockworkError):
        return False
    if isinstance(exc, OSError | TimeoutError):
        return True
    return type(exc).__module__.split(".", 1)[0] in LIBRARIES


@contextlib.contextmanager
def boundary(error: type[DockworkError], what: str, hint: str = "") -> Iterator[None]:
    """Translate library errors raised inside into ``error``: "<what>: <cause>. <hint>"."""
    try:
        yield
    except Exception as exc:
        if not is_library_error(exc):
            raise
        raise error(f"{what}: {describe(exc)}." + (f" {hint}" if hint else "")) from exc


__all__ = [
    "CommandError",
    "ConfigError",
    "DeployError",
    "DockworkError",
    "EngineError",
    "ProgramNotFoundError",
    "ProvisionError",
    "TestDatabaseError",
    "UsageError",
    "boundary",
    "describe",
    "render",
]
