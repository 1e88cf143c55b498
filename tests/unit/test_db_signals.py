"""Signals held back and let through (tasks/_signals.py), with real signals sent to this
process and a real command run through invoke's runner."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

import pytest
from invoke.config import Config
from invoke.context import Context

from dockwork.tasks import _signals

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def task() -> Iterator[None]:
    """As in a task: guarded(), signals recorded from scratch."""
    with _signals.guarded():
        yield
    assert not _signals.holding()


def context() -> Context:
    return Context(Config(overrides={"runners": {"local": _signals.ForwardingLocal}}))


def test_held_signals_are_recorded_not_raised() -> None:
    before = {s: signal.getsignal(s) for s in _signals.HELD}
    with _signals.deferred():
        assert _signals.holding()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert _signals.received == [signal.SIGTERM, signal.SIGINT]
        with pytest.raises(_signals.Interrupted) as caught:
            _signals.checkpoint()
        assert caught.value.signum == signal.SIGTERM
    assert {s: signal.getsignal(s) for s in _signals.HELD} == before
    assert _signals.exit_code() == 143


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGTERM, _signals.Interrupted), (signal.SIGINT, KeyboardInterrupt)],
)
def test_interruptible_lets_one_signal_through_then_holds_again(
    signum: int, raised: type[BaseException]
) -> None:
    def step() -> None:
        with _signals.interruptible():
            assert not _signals.holding()
            os.kill(os.getpid(), signum)
            pytest.fail("the signal did not end the step")

    with _signals.deferred():
        with pytest.raises(raised):
            step()
        assert _signals.holding()
        os.kill(os.getpid(), signal.SIGHUP)  # held again
    assert _signals.received == [signum, signal.SIGHUP]


def test_a_held_signal_ends_the_next_step_before_it_starts() -> None:
    ran = False
    with _signals.deferred():
        os.kill(os.getpid(), signal.SIGHUP)
        with pytest.raises(_signals.Interrupted), _signals.interruptible():
            ran = True
    assert not ran


def test_a_command_runs_to_its_end_in_a_session_of_its_own_while_signals_are_held() -> None:
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    with _signals.deferred():
        timer.start()
        result = context().run(
            # the session id from /proc (slim images, where `inv test` runs this, have no ps)
            'sleep 1.5; read -r _ _ _ _ _ sid _ < /proc/$$/stat; echo "$sid done"',
            hide=True,
            warn=True,
            pty=False,
            in_stream=False,
        )
    timer.join()
    assert result.ok, result
    sid, done = result.stdout.split()
    assert done == "done", "not cut short by the SIGTERM"
    assert int(sid) != os.getsid(0), "out of reach of a Ctrl-C typed in the terminal"
    assert _signals.received == [signal.SIGTERM]


def test_outside_a_held_block_the_signal_still_reaches_the_command() -> None:
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    result = context().run("exec sleep 5", hide=True, warn=True, pty=False, in_stream=False)
    timer.join()
    assert result.exited == -signal.SIGTERM or result.exited == 128 + signal.SIGTERM, result
    assert _signals.received == [signal.SIGTERM]
