"""The one command runner: argv lists only, echoed exactly, failures carry argv/code/output.

Modelled on nox's ``command.run``: look the program up first, pass a list (never a shell
string), use ``shlex.join`` only to show the command, and raise an error that carries the
argv, the exit code and whatever was captured.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockwork.errors import CommandError, ProgramNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


#: the exit code reported for a command that ran past its timeout
TIMED_OUT = 124


@dataclass(frozen=True, slots=True)
class Result:
    """A finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        """True when the command was stopped at its timeout."""
        return self.returncode == TIMED_OUT and "(timed out)" in self.stderr


def which(program: str, *, hint: str = "") -> str:
    """The full path of ``program`` on PATH, or a clear error saying what to install."""
    found = shutil.which(program)
    if found is None:
        raise ProgramNotFoundError(
            f"`{program}` was not found on PATH. " + (hint or f"Install {program} and retry.")
        )
    return found


def with_interpreter(argv: Sequence[str], python: str) -> list[str]:
    """A command written for a container (``python -m …``) run with another interpreter."""
    out = list(argv)
    if out and out[0] in {"python", "python3"}:
        out[0] = python
    return out


def echo(argv: Sequence[str]) -> None:
    """Show the exact command about to run, copy-pasteable."""
    print(f"$ {shlex.join(argv)}", file=sys.stderr, flush=True)  # noqa: T201 - its purpose


def run(
    argv: Sequence[str],
    *,
    capture: bool = True,
    check: bool = True,
    show: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    stdin: str | None = None,
) -> Result:
    """Run ``argv``; capture its output (queries) or stream it (actions).

    With ``check`` a non-zero exit (or running past ``timeout``) raises
    :class:`CommandError`; otherwise the caller must look at ``Result.ok``: a timeout is
    then exit code 124 (as coreutils' ``timeout`` reports it) with the reason in stderr.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("empty argv")
    program = which(argv[0])
    if show:
        echo(argv)
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            [program, *argv[1:]],
            capture_output=capture,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            input=stdin,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        result = Result(tuple(argv), TIMED_OUT, out, f"no answer within {timeout:g}s (timed out)")
    else:
        result = Result(tuple(argv), proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not result.ok:
        raise CommandError(argv, result.returncode, result.stdout, result.stderr)
    return result


#: processes started to outlive the call that started them (test servers, watchdogs, the
#: detached remover): kept referenced, so that Python never warns "subprocess … is still
#: running" when their Popen objects would be collected (a ResourceWarning, which a suite
#: run with -W error turns into a failed test)
_DETACHED: list[subprocess.Popen[Any]] = []


def detach(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Keep ``proc`` referenced for as long as this process lives; returns it."""
    _DETACHED[:] = [p for p in _DETACHED if p.poll() is None]
    _DETACHED.append(proc)
    return proc
