"""What every task shares: config and Compose for the project, running argv, clean errors."""

from __future__ import annotations

import functools
import shlex
import signal
import sys
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from invoke.exceptions import Exit, UnexpectedExit

from dockwork import envfile
from dockwork.compose import Compose, host_ids
from dockwork.config import Config, load_config
from dockwork.engine_probe import check_engine, compose_problem
from dockwork.errors import PREFIX, CommandError, DockworkError, render
from dockwork.tasks import _signals

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from invoke.context import Context
    from invoke.runners import Result

P = ParamSpec("P")
R = TypeVar("R")


def say(message: str, *, out: bool = False) -> None:
    """A line from dockwork itself (not from a command it runs): on stderr, or on stdout
    (``out``) when it is the task's result."""
    print(PREFIX + message, file=sys.stdout if out else sys.stderr, flush=True)


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """The task boundary: a :class:`DockworkError` becomes its message and exit code, a
    signal (Ctrl-C, SIGTERM, SIGHUP) exits 128 + its number, never with a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with _signals.guarded():
                try:
                    result = func(*args, **kwargs)
                except CommandError as exc:  # Compose itself missing: say what to install
                    if (problem := compose_problem(exc.argv)) is not None:
                        raise problem from exc
                    raise
        except CommandError as exc:  # a captured query (`compose ps`, `config`) that failed
            output = f"{exc.stdout}\n{exc.stderr}"
            hint = _hint(output)
            if hint is None:
                raise Exit(render(exc), code=_signals.exit_code() or exc.exit_code) from exc
            # Compose's own line, then dockwork's one line on the fix
            cause = next((ln for ln in output.splitlines() if "required variable" in ln), "")
            raise Exit(f"{cause.strip()}\n{PREFIX}{hint}", code=exc.exit_code) from exc
        except DockworkError as exc:
            raise Exit(render(exc), code=_signals.exit_code() or exc.exit_code) from exc
        except (KeyboardInterrupt, _signals.Interrupted) as exc:
            if not _signals.received:
                _signals.received.append(signal.SIGINT)  # a Ctrl-C outside any command
            _say_interrupted()
            raise Exit(code=_signals.exit_code()) from exc
        except UnexpectedExit as exc:
            if not _signals.received:
                raise
            raise Exit(code=_signals.exit_code()) from exc
        if _signals.received:
            raise Exit(code=_signals.exit_code())
        return result

    return wrapper


def project(*, engine: bool = True) -> tuple[Config, Compose]:
    """The project's resolved configuration and its Compose wrapper.

    With ``engine`` (the default) also check that docker and its engine answer, so a
    missing engine is one clear message instead of a raw docker error (a missing Compose is
    named when its first command fails: :func:`run`, :func:`clean_errors`), and, in
    development only, create .env from .env.example on first use.
    """
    config = load_config()
    if engine:
        check_engine(config.engine_timeout)
        created = envfile.ensure(config)
        if created is not None:
            say(
                f"created {created.name} from {envfile.EXAMPLE_NAME} (development values, mode "
                "0600; edit it to change credentials or ports)."
            )
        elif lacking := envfile.behind_example(config):
            say(
                f"{envfile.env_path(config).name} lacks {', '.join(lacking)}, which "
                f"{envfile.EXAMPLE_NAME} has (added after your {envfile.env_path(config).name} "
                "was made): copy the lines you want from it."
            )
    return config, Compose.from_config(config)


def compose_env() -> dict[str, str]:
    """Variables dockwork passes to Compose: the host uid/gid for the dev image's user."""
    ids = host_ids()
    if ids is None:
        return {}
    uid, gid = ids.split(":")
    return {"DOCKWORK_UID": uid, "DOCKWORK_GID": gid}


def run(
    c: Context,
    argv: Sequence[str],
    *,
    pty: bool | None = None,
    warn: bool = False,
    hide: bool | str = False,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Echo and run ``argv`` through invoke; output streams to the terminal unless ``hide``
    (``True`` also stops invoke's echo; ``"both"`` hides the output and keeps the echo).

    When Compose fails on a variable without a value, one line says how to set it. When
    the task was signalled while the command ran (the signal was forwarded to it), the task
    stops here: :class:`~dockwork.tasks._signals.Interrupted` unwinds it.
    """
    _signals.command = shlex.join(argv)
    try:
        result: Result = c.run(
            shlex.join(argv),
            echo=True,
            pty=sys.stdout.isatty() if pty is None else pty,
            warn=warn,
            hide=hide,
            env={**compose_env(), **(env or {})},
        )
    except UnexpectedExit as exc:
        if _signals.received:
            raise _signals.Interrupted(_signals.received[0]) from exc
        if (problem := compose_problem(argv)) is not None:
            raise problem from exc
        _explain(f"{exc.result.stdout or ''}\n{exc.result.stderr or ''}")
        raise
    if _signals.received:
        raise _signals.Interrupted(_signals.received[0])
    if not result.ok:
        if (problem := compose_problem(argv)) is not None:
            raise problem
        _explain(f"{result.stdout or ''}\n{result.stderr or ''}")
    return result


def build_images(
    c: Context, compose: Compose, services: Sequence[str] = (), *, pty: bool | None = None
) -> None:
    """``docker compose build [services]``, alone: a failed build ends with one line saying
    so (after Compose's own output), before anything is started."""
    result = run(c, compose.build(services), warn=True, pty=pty)
    if not result.ok:
        which = f"the image{'s' if len(services) > 1 else ''} of {', '.join(services)}"
        raise DockworkError(
            f"building {which if services else 'the images'} failed (exit {result.exited}); "
            "the build's output is above. No container was started: fix the Dockerfile or "
            "what it copies and run the task again.",
            exit_code=result.exited or 1,
        )


def _hint(output: str) -> str | None:
    """One line on how to fix a failure dockwork recognises in a command's output."""
    if "required variable" not in output:
        return None
    return envfile.missing_variable_hint(output, load_config())


def _explain(output: str) -> None:
    hint = _hint(output)
    if hint:
        say(hint)


def _say_interrupted() -> None:
    """After SIGTERM or SIGHUP (a cancelled job, a closed terminal): what may be half done.
    A Ctrl-C in a terminal speaks for itself."""
    signum = _signals.received[0]
    if signum == signal.SIGINT:
        return
    name = signal.Signals(signum).name
    doing = f" while `{_signals.command}` ran (it got the signal too)" if _signals.command else ""
    say(
        f"stopped by {name}{doing}. What it had started may be half done: `inv ps` shows the "
        "stack, `inv down` stops it."
    )


def remainder_args(c: Context, argv: Sequence[str] | None = None) -> list[str]:
    """The words after ``--``, exactly as given.

    invoke joins them into ``c.remainder`` with spaces, which loses quoting
    (``-k "a and b"``); the process's own argv still has them intact.
    """
    words = list(sys.argv if argv is None else argv)
    if "--" in words:
        return words[words.index("--") + 1 :]
    return shlex.split(c.remainder or "")


def split_names(names: str | None) -> list[str]:
    """``"app,worker"`` or ``"app worker"`` → ``["app", "worker"]``."""
    return [n for n in (names or "").replace(",", " ").split() if n]
