"""Honest `inv up`: which services are one-shots, how each container stands after `up`, the
failure report and the app's URL (exact commands through invoke's MockContext; `ps` and
`config` stubbed with the JSON Compose prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from dockwork import ports
from dockwork.compose import Compose, ServiceState, completed_only, one_shots
from dockwork.tasks import stack

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker compose -p demo -f compose.yaml -f compose.override.yaml"
UP = f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans"


def state(service: str, state: str = "running", health: str = "", code: int = 0) -> ServiceState:
    return ServiceState(service, f"demo-{service}-1", state, health, code)


def test_one_shots_follow_composes_semantics() -> None:
    resolved: dict[str, Any] = {
        "services": {
            # Compose's own one-shot: a service waits for it to complete
            "migrate": {"restart": "no"},
            "app": {
                "depends_on": {
                    "migrate": {"condition": "service_completed_successfully"},
                    "db": {"condition": "service_healthy"},
                },
                "healthcheck": {"test": ["CMD", "true"]},
            },
            "db": {"restart": "unless-stopped", "healthcheck": {"test": ["CMD", "true"]}},
            # nothing depends on these, but they are written to run once
            "seed": {"restart": "no"},
            "retry": {"restart": "on-failure:3"},
            "swarmish": {"deploy": {"restart_policy": {"condition": "none"}}},
            "unchecked": {"restart": "no", "healthcheck": {"test": ["NONE"]}},
            "disabled": {"restart": "no", "healthcheck": {"test": ["CMD", "x"], "disable": True}},
            # long-running: Compose's default policy, a restarting one, a checked one
            "mail": {},
            "worker": {"restart": "always"},
            "checked": {"restart": "no", "healthcheck": {"test": ["CMD", "true"]}},
        }
    }
    assert one_shots(resolved) == {
        "migrate",
        "seed",
        "retry",
        "swarmish",
        "unchecked",
        "disabled",
    }


@pytest.mark.parametrize(
    ("container", "one_shot", "verdict"),
    [
        (state("seed", "running"), True, "pending"),
        (state("seed", "exited", code=0), True, "ok"),
        (state("seed", "exited", code=1), True, "failed"),
        (state("seed", "restarting", code=1), True, "pending"),  # on-failure retrying
        (state("app", "running", "healthy"), False, "ok"),
        (state("app", "running"), False, "ok"),
        (state("app", "running", "starting"), False, "pending"),
        (state("app", "running", "unhealthy"), False, "failed"),
        (state("app", "restarting", code=2), False, "pending"),  # judged once it runs again
        (state("app", "running", "healthy"), True, "ok"),  # its image has a HEALTHCHECK
        (state("app", "exited", code=0), False, "ok"),
        (state("app", "exited", code=137), False, "failed"),
        (state("app", "dead"), False, "failed"),
        (state("app", "created"), False, "waiting"),
    ],
)
def test_verdict(container: ServiceState, one_shot: bool, verdict: str) -> None:
    assert container.verdict(one_shot=one_shot) == verdict


def test_completed_only_is_composes_complaint_about_exit_0() -> None:
    assert completed_only("...\ncontainer demo-seed-1 exited (0)\n")
    assert not completed_only("container demo-seed-1 exited (0)\ncontainer demo-x-1 exited (2)")
    assert not completed_only("dependency failed to start: container demo-db-1 is unhealthy")
    assert not completed_only("")


class Clock:
    """Stands in for the `time` module in dockwork.compose: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Clock:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DOCKWORK_PROJECT_NAME", "demo")
    monkeypatch.setattr("dockwork.tasks._base.check_engine", lambda timeout: None)
    # a command these mocks fail is not followed by a real `docker compose version`
    monkeypatch.setattr("dockwork.tasks._base.compose_problem", lambda argv: None)
    monkeypatch.setattr("dockwork.envfile.ensure", lambda config: None)
    clock = Clock()
    monkeypatch.setattr("dockwork.compose.time", clock)
    return clock


def stub(
    monkeypatch: pytest.MonkeyPatch,
    resolved: dict[str, Any],
    *polls: list[ServiceState],
) -> list[int]:
    """`config` answers ``resolved``; each `ps` the next of ``polls`` (the last repeats)."""
    asked: list[int] = []

    def states(self: Compose) -> list[ServiceState]:  # noqa: ARG001 - a method
        asked.append(1)
        return polls[min(len(asked), len(polls)) - 1]

    monkeypatch.setattr(Compose, "resolved", lambda self: resolved)
    monkeypatch.setattr(Compose, "states", states)
    return asked


SEED = {"services": {"app": {"healthcheck": {"test": ["CMD", "true"]}}, "seed": {"restart": "no"}}}


@pytest.mark.usefixtures("demo")
def test_up_waits_for_a_one_shot_and_fails_with_its_code_and_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = state("app", "running", "healthy")
    stub(
        monkeypatch,
        SEED,
        [app],  # the port check
        [app, state("seed")],  # after `up --wait`: seed still runs
        [app, state("seed")],
        [app, state("seed", "exited", code=3)],
    )
    logs = f"{BASE} logs --tail 50 seed"
    c = MockContext(run={UP: Result(), logs: Result("seed: boom")}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    message = str(excinfo.value.message)
    assert excinfo.value.code == 3, "the one-shot's exit code"
    assert "failing: seed. seed (one-shot) exited with code 3." in message
    assert [call.args[0] for call in c.run.call_args_list] == [UP, logs]  # type: ignore[attr-defined]
    assert "waiting for seed to finish" in capsys.readouterr().err


@pytest.mark.usefixtures("demo")
def test_up_passes_when_composes_only_complaint_is_a_one_shot_that_exited_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = [state("app", "running", "healthy"), state("seed", "exited", code=0)]
    stub(monkeypatch, SEED, [], done)
    c = MockContext(
        run={UP: Result(stderr="container demo-seed-1 exited (0)\n", exited=1)}, repeat=True
    )
    stack.up(c)
    assert "no URL for the app: app publishes no port" in capsys.readouterr().out


@pytest.mark.usefixtures("demo")
def test_up_still_fails_on_composes_other_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    # a build that failed leaves the old containers running, healthy: not a success
    stub(monkeypatch, SEED, [state("app", "running", "healthy")])
    monkeypatch.setattr(Compose, "failing", lambda self, output="": [])
    c = MockContext(run={UP: Result(stderr="failed to solve: boom", exited=17)}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    assert excinfo.value.code == 17
    assert "failing: see the output above" in str(excinfo.value.message)


def test_a_one_shot_that_never_finishes_is_reported_at_the_deadline(
    demo: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = stub(monkeypatch, SEED, [state("app", "running", "healthy"), state("seed")])
    logs = f"{BASE} logs --tail 50 seed"
    c = MockContext(run={UP: Result(), logs: Result()}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    message = str(excinfo.value.message)
    assert excinfo.value.code == 1
    assert demo.now == 180, "it waited out wait_timeout, polling"
    assert len(asked) > 100
    assert (
        "did not settle within 180 s; failing: seed. seed (one-shot) is still running." in message
    )
    assert "needs a healthcheck or `restart: unless-stopped`" in message


# -- the app's URL ----------------------------------------------------------------------


def published(service: str, *publishers: tuple[int, int, str]) -> ServiceState:
    return ServiceState(service, f"demo-{service}-1", "running", "", 0, publishers)


def port(target: int, **extra: Any) -> dict[str, Any]:
    return {"target": target, "published": "0", "protocol": "tcp", **extra}


def test_the_app_url_is_its_own_first_listed_port_not_the_one_ps_lists_first() -> None:
    # `ps` sorts publishers by container port: the Vite port comes first
    app = published("app", (41006, 3006, "0.0.0.0"), (41000, 8000, "0.0.0.0"))
    web = published("web", (45173, 5173, "127.0.0.1"))
    resolved = {"services": {"app": {"ports": [port(8000), port(3006)]}, "web": {}}}
    found = ports.endpoint("app", resolved, [web, app])
    assert isinstance(found, ports.Endpoint)
    assert (found.url, found.target, found.others) == ("http://127.0.0.1:41000", 8000, (3006,))
    assert "first in its `ports:` (8000)" in found.note


@pytest.mark.parametrize(
    ("service", "target"),
    [
        ({"ports": [port(3006), port(8000, app_protocol="http")]}, 8000),
        (
            {
                "ports": [port(3006), port(8000)],
                "healthcheck": {"test": ["CMD", "curl", "-f", "http://localhost:8000/health"]},
            },
            8000,
        ),
    ],
    ids=["app_protocol", "healthcheck"],
)
def test_the_port_that_says_it_serves_http_wins(service: dict[str, Any], target: int) -> None:
    app = published("app", (41006, 3006, "0.0.0.0"), (41000, 8000, "0.0.0.0"))
    found = ports.endpoint("app", {"services": {"app": service}}, [app])
    assert isinstance(found, ports.Endpoint)
    assert (found.target, found.note) == (target, "")


def test_the_host_is_one_to_open_from_here() -> None:
    resolved = {"services": {"app": {"ports": [port(8000)]}}}
    both = published("app", (41000, 8000, "::"), (41000, 8000, "0.0.0.0"))
    v6 = published("app", (41000, 8000, "::"))
    own = published("app", (41000, 8000, "192.0.2.7"), (41000, 8000, "0.0.0.0"))
    urls = [ports.endpoint("app", resolved, [s]) for s in (both, v6, own)]
    assert [u.url for u in urls if isinstance(u, ports.Endpoint)] == [
        "http://127.0.0.1:41000",
        "http://[::1]:41000",
        "http://192.0.2.7:41000",
    ]


def test_no_url_says_why() -> None:
    resolved = {"services": {"app": {"expose": ["8000"]}, "web": {"ports": [port(5173)]}}}
    exposed_only = published("app", (0, 8000, ""))
    assert ports.endpoint("app", resolved, [exposed_only]) == (
        "app publishes no port on this machine (its compose service has no `ports:`)"
    )
    assert ports.endpoint("app", resolved, []) == "app is not running"
    assert ports.endpoint("api", resolved, []) == "'api' is not a service of this project"
