"""Signals during a task: SIGTERM/SIGHUP/SIGINT reach the running command, and the task
exits as a signalled process does (128 + the signal number: Ctrl-C → 130).

invoke forwards Ctrl-C by writing ``^C`` to the command's stdin, which only a pty turns
into a signal, and does not forward SIGTERM or SIGHUP at all: a cancelled CI job or a
closed terminal would leave ``docker compose`` running on its own. :class:`ForwardingLocal`
is invoke's local runner with real forwarding; :func:`guarded` turns a signal outside a
command into an orderly exit (``finally`` blocks run).

Some steps must not be cut in half (a database closed to connections and not yet swapped):
:func:`deferred` holds signals back for a block (recorded, neither raised nor forwarded;
commands started in it run in a session of their own, so a Ctrl-C typed in the terminal
misses them too), :func:`interruptible` lets them through again for a long step inside it,
and :func:`checkpoint` acts on a held one between two steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from subprocess import PIPE, Popen
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
#: the signals :func:`deferred` holds back
HELD = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
#: True while signals are held back (in :func:`deferred`, outside :func:`interruptible`)
_holding = False
#: nesting depth of :func:`deferred` (its handlers are installed by the outermost)
_depth = 0


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
        """Start the command, then forward SIGTERM/SIGHUP to it while it runs (while signals
        are held back: in a session of its own, so a terminal's Ctrl-C does not reach it)."""
        if _holding and not self.using_pty:
            # invoke's own non-pty start, plus the session; invoke hands over one string,
            # built by the caller with shlex.join
            self.process = Popen(  # noqa: S602
                command,
                shell=True,
                executable=shell,
                env=env,
                stdout=PIPE,
                stderr=PIPE,
                stdin=PIPE,
                start_new_session=True,
            )
        else:
            super().start(command, shell, env)
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                self._previous[signum] = signal.signal(signum, self._forward)

    def _forward(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        received.append(signum)
        if _holding:  # recorded only: the command runs to its end
            return
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


def holding() -> bool:
    """True while signals are held back (commands run to their end, nothing is raised)."""
    return _holding


def checkpoint() -> None:
    """Between two steps: raise :class:`Interrupted` for a signal received so far."""
    if received:
        raise Interrupted(received[0])


@contextlib.contextmanager
def _masked() -> Iterator[None]:
    """Signals wait at the door while handlers and flags change (never half switched)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _hold(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    """The handler inside :func:`deferred`: record; raise only inside :func:`interruptible`."""
    global _holding  # noqa: PLW0603 - the state this module keeps
    received.append(signum)
    if _holding:
        return
    _holding = True  # one signal ends the interruptible step; later ones are held
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGHUP and SIGINT back for the block: each is recorded in
    :data:`received` (so the task still exits 128 + the first), none is raised or forwarded,
    and the command running goes on to its end. The block decides what to do with them
    (:func:`checkpoint`); outside the main thread this does nothing.
    """
    global _holding, _depth  # noqa: PLW0603 - the state this module keeps
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _masked():
        outer = _depth == 0
        previous = {signum: signal.signal(signum, _hold) for signum in HELD} if outer else {}
        was_holding = _holding
        _holding = True
        _depth += 1
    try:
        yield
    finally:
        with _masked():
            _depth -= 1
            _holding = was_holding
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if not outer and not was_holding and received:  # nested in an interruptible step
        checkpoint()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside :func:`deferred`, a long step a signal may end: forwarded to its command, then
    raised (:class:`Interrupted`, or KeyboardInterrupt for SIGINT). A signal held before the
    step ends it before it starts. Outside :func:`deferred` signals act anyway: no change."""
    global _holding  # noqa: PLW0603 - the state this module keeps
    if not _holding:
        yield
        return
    checkpoint()
    _holding = False
    if received:  # arrived between the check and the switch
        _holding = True
        checkpoint()
    try:
        yield
    finally:
        _holding = True


__all__ = [
    "ForwardingLocal",
    "Interrupted",
    "checkpoint",
    "deferred",
    "exit_code",
    "guarded",
    "holding",
    "interruptible",
    "received",
]
