"""How `deploy.rm` asks `docker stack rm` again while a network of the stack is held.

The behaviour on a real swarm is proven in tests/e2e/test_swarm.py (a service of the test's
holds the stack's network until the retry is seen); here, how the commands follow each
other and what ends the loop."""

from __future__ import annotations

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from dockwork.errors import DeployError
from dockwork.tasks import _signals, deploy

RM = "docker stack rm shop"
#: as Docker 20.10 prints it: the holder's ID runs on into the next line
HELD_BY_TASK = (
    "Removing network shop_default\nFailed to remove network 99at42zgsoc6myiubibh6ax82: Error "
    "response from daemon: rpc error: code = FailedPrecondition desc = network "
    "99at42zgsoc6myiubibh6ax82 is in use by task u1le44lgh07mhkidzveqsk1vsfailed to remove "
    "some resources from stack: shop\n"
)
HELD_BY_SERVICE = HELD_BY_TASK.replace("by task", "by service")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockwork.tasks.deploy.time.sleep", lambda _seconds: None)
    # called without the task's boundary, which starts each task with no signal received
    monkeypatch.setattr(_signals, "received", [])


def test_a_held_network_is_asked_for_again_until_it_is_let_go(
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = MockContext(
        run={
            RM: [
                Result(command=RM, exited=1, stderr=HELD_BY_TASK),
                Result(command=RM, exited=1, stderr=HELD_BY_SERVICE),
                Result(command=RM, exited=0),
            ]
        }
    )
    deploy._remove_stack(c, "shop")
    assert [call.args[0] for call in c.run.call_args_list] == [RM] * 3  # type: ignore[attr-defined]
    assert capsys.readouterr().err.count("asking again") == 1


def test_a_network_held_past_the_deadline_is_an_error_saying_what_to_do() -> None:
    c = MockContext(run={RM: Result(command=RM, exited=1, stderr=HELD_BY_TASK)}, repeat=True)
    with pytest.raises(DeployError) as caught:
        deploy._remove_stack(c, "shop", timeout=0)
    message = str(caught.value)
    assert "network 99at42zgsoc6myiubibh6ax82, in use by task u1le44lgh07mhkidzveqsk1vs." in message
    assert "docker network inspect --verbose 99at42zgsoc6myiubibh6ax82" in message
    assert "inv deploy.rm" in message
    assert "not touched" in message


def test_any_other_failure_is_the_command_s_own_exit() -> None:
    refused = "Error response from daemon: This node is not a swarm manager.\n"
    c = MockContext(run={RM: Result(command=RM, exited=1, stderr=refused)})
    with pytest.raises(Exit) as caught:
        deploy._remove_stack(c, "shop")
    assert caught.value.code == 1
    assert c.run.call_count == 1  # type: ignore[attr-defined]


def test_a_retry_failing_otherwise_shows_its_output_and_exits_with_its_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = "Error response from daemon: Cannot connect to the Docker daemon.\n"
    c = MockContext(
        run={
            RM: [
                Result(command=RM, exited=1, stderr=HELD_BY_TASK),
                Result(command=RM, exited=2, stderr=gone, hide=("stdout", "stderr")),
            ]
        }
    )
    with pytest.raises(Exit) as caught:
        deploy._remove_stack(c, "shop")
    assert caught.value.code == 2
    assert gone in capsys.readouterr().err
