"""How each task builds its command (invoke's MockContext): exact argv, echoed, exit codes."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from dockwork import runner
from dockwork.compose import Compose, ServiceState, host_ids
from dockwork.tasks import namespace, quality, stack, web
from dockwork.tasks._base import remainder_args

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker compose -p demo -f compose.yaml -f compose.override.yaml"


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, with a fixed project name and no engine check."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DOCKWORK_PROJECT_NAME", "demo")
    monkeypatch.setattr("dockwork.tasks._base.check_engine", lambda timeout: None)
    # a command these mocks fail is not followed by a real `docker compose version`
    monkeypatch.setattr("dockwork.tasks._base.compose_problem", lambda argv: None)
    monkeypatch.setattr("dockwork.envfile.ensure", lambda config: None)
    monkeypatch.setattr(
        Compose, "services", lambda self: ["db", "cache", "migrate", "app", "worker"]
    )
    monkeypatch.setattr(Compose, "states", lambda self: [])
    monkeypatch.setattr(Compose, "resolved", lambda self: {"services": {}})


def ran(c: MockContext) -> list[str]:
    return [call.args[0] for call in c.run.call_args_list]  # type: ignore[attr-defined]


def mock(*commands: str, exited: int = 0) -> MockContext:
    return MockContext(run={cmd: Result(exited=exited) for cmd in commands}, repeat=True)


def test_namespace_lists_the_stack_tasks() -> None:
    names = set(namespace().task_names)
    assert {"dev", "up", "down", "build", "logs", "ps", "shell", "restart", "migrate"} <= names
    for name in names:
        assert namespace()[name].__doc__, f"{name} has no docstring for `inv --list`"


def test_down_keeps_volumes_by_default() -> None:
    c = mock(f"{BASE} down --remove-orphans", f"{BASE} down --volumes --remove-orphans")
    stack.down(c)
    stack.down(c, volumes=True, yes=True)
    assert ran(c) == [f"{BASE} down --remove-orphans", f"{BASE} down --volumes --remove-orphans"]


def test_down_volumes_names_them_and_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Compose, "volumes", lambda self: ["demo_db-data", "demo_cache-data"])
    c = mock()
    with pytest.raises(Exit) as excinfo:
        stack.down(c, volumes=True)
    message = str(excinfo.value.message)
    assert "demo_db-data, demo_cache-data" in message
    assert "--volumes --yes" in message
    assert excinfo.value.code == 1
    assert ran(c) == [], "nothing ran: the stack and its data are untouched"


def test_every_command_is_echoed_with_host_ids() -> None:
    c = mock(f"{BASE} build app worker")
    stack.build(c, service="app,worker")
    kwargs: dict[str, Any] = c.run.call_args.kwargs  # type: ignore[attr-defined]
    assert kwargs["echo"] is True
    assert set(kwargs["env"]) == {"DOCKWORK_UID", "DOCKWORK_GID"}


def test_migrate_runs_the_configured_command_in_the_migrate_service() -> None:
    cmd = f"{BASE} run --rm -T migrate python -m app.db upgrade head"
    c = mock(cmd)
    stack.migrate(c)
    assert ran(c) == [cmd]


def test_up_waits_and_propagates_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    up = f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans"
    monkeypatch.setattr(Compose, "failing", lambda self, output="": ["worker"])
    logs = f"{BASE} logs --tail 50 worker"
    c = MockContext(run={up: Result(exited=1), logs: Result("boom")}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    assert excinfo.value.code == 1
    assert "failing: worker" in str(excinfo.value.message)
    assert ran(c) == [up, logs]  # only the failing service's logs, not migrate's or db's


def test_dev_builds_then_waits() -> None:
    commands = [f"{BASE} build", f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans"]
    c = mock(*commands)
    stack.dev(c, follow=False)
    assert ran(c) == commands


UP = f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans"
MIGRATE_IN_APP = f"{BASE} run --rm -T app python -m app.db upgrade head"
#: the app, kept running by the stack, is the migrate service (`dockwork init`'s choice for
#: a project with no migration service)
KEPT_APP = {
    "services": {
        "db": {},
        "app": {"healthcheck": {"test": ["CMD", "true"]}, "restart": "unless-stopped"},
    }
}


def test_up_migrates_first_when_the_stack_keeps_its_migrate_service_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKWORK_MIGRATE_SERVICE", "app")
    monkeypatch.setattr(Compose, "resolved", lambda self: KEPT_APP)
    c = mock(MIGRATE_IN_APP, UP)
    stack.up(c)
    assert ran(c) == [MIGRATE_IN_APP, UP]
    built = mock(f"{BASE} build", MIGRATE_IN_APP, UP)
    stack.up(built, build=True)
    assert ran(built) == [f"{BASE} build", MIGRATE_IN_APP, UP], "migrated in the new image"


@pytest.mark.parametrize(
    "migrate",
    [
        {"restart": "no"},
        {},
        {"healthcheck": {"disable": True}, "restart": "on-failure"},
        {"healthcheck": {"test": ["NONE"]}},
    ],
    ids=["one-shot", "maybe-one-shot", "no-kept", "check-none"],
)
def test_a_migrate_service_that_may_run_to_completion_is_left_to_the_stack(
    monkeypatch: pytest.MonkeyPatch, migrate: dict[str, Any]
) -> None:
    monkeypatch.setenv("DOCKWORK_MIGRATE_SERVICE", "migrate")
    resolved = {"services": {"migrate": migrate, **KEPT_APP["services"]}}
    monkeypatch.setattr(Compose, "resolved", lambda self: resolved)
    c = mock(UP)
    stack.up(c)
    assert ran(c) == [UP]


def test_a_failing_migration_stops_up_before_the_stack_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKWORK_MIGRATE_SERVICE", "app")
    monkeypatch.setattr(Compose, "resolved", lambda self: KEPT_APP)
    c = MockContext(run={MIGRATE_IN_APP: Result(exited=3)}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    assert excinfo.value.code == 3
    assert "not started" in str(excinfo.value.message)
    assert ran(c) == [MIGRATE_IN_APP]


def test_up_builds_a_missing_image_first_and_a_failed_build_starts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COMPOSE_COMPATIBILITY", raising=False)
    resolved = {"services": {"app": {"build": "."}, "worker": {"build": "."}, "db": {}}}
    monkeypatch.setattr(Compose, "resolved", lambda self: resolved)
    asked: list[list[str]] = []

    def inspect(argv: list[str], **kwargs: Any) -> runner.Result:  # noqa: ARG001 - run()'s
        asked.append(argv)
        return runner.Result(argv, 1 if "demo-worker" in argv else 0, "", "")

    monkeypatch.setattr(runner, "run", inspect)
    c = MockContext(run={f"{BASE} build worker": Result(exited=2)}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c)
    assert asked[0][-2:] == ["demo-app", "demo-worker"], "both images asked in one call first"
    assert excinfo.value.code == 2
    assert "building the image of worker failed (exit 2)" in str(excinfo.value.message)
    assert ran(c) == [f"{BASE} build worker"], "only the missing one is built; nothing started"


def test_up_build_builds_first_and_a_failed_build_starts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Compose, "resolved", lambda self: {"services": {"app": {"build": "."}}})
    built = mock(f"{BASE} build", UP)
    stack.up(built, build=True)
    assert ran(built) == [f"{BASE} build", UP]
    c = MockContext(run={f"{BASE} build": Result(exited=17)}, repeat=True)
    with pytest.raises(Exit) as excinfo:
        stack.up(c, build=True)
    assert excinfo.value.code == 17
    assert "building the images failed (exit 17)" in str(excinfo.value.message)
    assert ran(c) == [f"{BASE} build"], "nothing started"


def test_dev_follow_stops_on_ctrl_c_and_says_the_stack_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    follow = f"{BASE} logs --follow --tail 20"

    class CtrlC(MockContext):
        def run(self, command: str, **kwargs: Any) -> Result:  # noqa: ARG002 - invoke's signature
            if command == follow:
                raise KeyboardInterrupt
            return Result()

    with pytest.raises(Exit) as excinfo:
        stack.dev(CtrlC())
    assert excinfo.value.code == 130
    assert "stack is still running" in capsys.readouterr().err


def test_logs_rejects_unknown_service() -> None:
    with pytest.raises(Exit) as excinfo:
        stack.logs(mock(), service="nope")
    assert "unknown service(s): nope" in str(excinfo.value.message)
    assert excinfo.value.code == 1


def test_logs_exit_code_propagates() -> None:
    cmd = f"{BASE} logs --tail 5 app"
    c = MockContext(run={cmd: Result(exited=4)})
    with pytest.raises(Exit) as excinfo:
        stack.logs(c, service="app", tail=5)
    assert excinfo.value.code == 4


def test_shell_runs_when_not_running_and_execs_when_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = mock(f"{BASE} run --rm -T worker bash")
    stack.shell(c, service="worker")
    monkeypatch.setattr(
        Compose, "states", lambda self: [ServiceState("app", "x", "running", "healthy", 0)]
    )
    c2 = mock(f"{BASE} exec -T app bash")
    stack.shell(c2)
    assert ran(c) == [f"{BASE} run --rm -T worker bash"]
    assert ran(c2) == [f"{BASE} exec -T app bash"]


def test_restart_services() -> None:
    c = mock(f"{BASE} restart app worker")
    stack.restart(c, service="app worker")
    assert ran(c) == [
        shlex.join(
            [
                "docker",
                "compose",
                "-p",
                "demo",
                "-f",
                "compose.yaml",
                "-f",
                "compose.override.yaml",
                "restart",
                "app",
                "worker",
            ]
        )
    ]


def test_remainder_keeps_quoted_words_intact() -> None:
    c = MockContext()
    argv = ["inv", "test", "--", "-k", "users and not slow", "-x"]
    assert remainder_args(c, argv) == ["-k", "users and not slow", "-x"]
    c_joined = MockContext()
    c_joined.remainder = "-k 'a b'"  # type: ignore[misc]
    assert remainder_args(c_joined, ["inv", "test"]) == ["-k", "a b"]


def test_ci_runs_the_default_nox_sessions_like_ci_run() -> None:
    c = MockContext(run={"nox": Result(), "nox -R -s lint": Result()}, repeat=True)
    quality.ci(c)
    c.remainder = "-s lint"  # type: ignore[misc]
    quality.ci(c, reuse=True)
    assert ran(c) == ["nox", "nox -R -s lint"]
    ci_run = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "uv run nox" in ci_run, "CI runs the same default sessions"


def test_web_tasks_run_in_the_node_service_as_the_host_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Compose, "services", lambda self: ["app", "web"])
    one_off = f"{BASE} run --rm --no-deps -T --user {host_ids()} web"
    lint = f"{one_off} sh -c 'npm run lint && npm run typecheck'"
    c = mock(lint, f"{one_off} npm test", f"{one_off} npm run build")
    web.lint(c)
    web.test(c)
    web.build(c)
    assert ran(c) == [lint, f"{one_off} npm test", f"{one_off} npm run build"]


def test_web_tasks_without_a_web_service_say_so() -> None:
    with pytest.raises(Exit) as excinfo:
        web.lint(mock())
    assert "no 'web' service" in str(excinfo.value.message)
    assert excinfo.value.code != 0
