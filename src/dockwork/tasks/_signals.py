"""Signals during a task: SIGTERM/SIGHUP/SIGINT reach the running command, and the task
exits as a signalled process does (128 + the signal number: Ctrl-C → 130).

invoke forwards Ctrl-C by writing ``^C`` to the command's stdin, which only a pty turns
into a signal, and does not forward SIGTERM or SIGHUP at all: a cancelled CI job or a
closed terminal would leave ``docker compose`` running on its own. :class:`ForwardingLocal`
is invoke's local runner with real forwarding; :func:`guarded` turns a signal outside a
command into an orderly exit (``finally`` blocks run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from invoke.runners import Local

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGHUP)
#: signals received during the current task, in order
received: list[int] = []
#: the last command the task ran (for the message after a signal)
command = ""


class Interrupted(BaseException):
    """The task was signalled; unwinds like KeyboardInterrupt so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def exit_code() -> int | None:
    """128 + the first signal received during the task, or None."""
    return 128 + received[0] if received else None


def _in_terminal_foreground() -> bool:
    """True when a Ctrl-C typed in our terminal also reaches our children directly."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


class ForwardingLocal(Local):
    """invoke's local runner, forwarding SIGTERM, SIGHUP and SIGINT to the command."""

    def start(self, command: str, shell: str, env: dict[str, Any]) -> None:
        """Start the command, then forward SIGTERM/SIGHUP to it while it runs."""
        super().start(command, shell, env)
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                self._previous[signum] = signal.signal(signum, self._forward)

    def _forward(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.get_pid(), signum)

    def send_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        """Ctrl-C: a terminal already signalled the command; otherwise send SIGINT."""
        received.append(signal.SIGINT)
        if self.using_pty:
            super().send_interrupt(interrupt)
        elif not _in_terminal_foreground():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.get_pid(), signal.SIGINT)

    def stop(self) -> None:
        """Restore the handlers that were there before the command."""
        for signum, handler in getattr(self, "_previous", {}).items():
            signal.signal(signum, handler)
        self._previous = {}
        super().stop()


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """For a task's duration: SIGTERM/SIGHUP raise :class:`Interrupted` (cleanup runs)."""
    global command  # noqa: PLW0603 - per-task state, reset here
    received.clear()
    command = ""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        received.append(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in FORWARDED}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


__all__ = ["ForwardingLocal", "Interrupted", "exit_code", "guarded", "received"]
