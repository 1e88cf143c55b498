"""The Compose wrapper: every ``docker compose`` argv is built here, queries parsed to types."""

from __future__ import annotations

import functools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from dockwork import runner
from dockwork.errors import DockworkError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

    from dockwork.config import Config


#: Compose's line for a container it could not create or start
CREATE_FAILED = re.compile(r"Container (\S+)\s+Error", re.MULTILINE)
#: Compose's line when a container it waited for (`up --wait`) had stopped: Compose 2.x
#: fails on it even for exit code 0, unless another service depends on it completing
EXITED = re.compile(r"^container (\S+) exited \((-?\d+)\)\s*$", re.MULTILINE)
#: how a container stands once `up` has returned: see :meth:`ServiceState.verdict`
Verdict = Literal["ok", "pending", "failed", "waiting"]


class Command(list[str]):
    """An argv under construction; ``None`` options are skipped, flags added when true."""

    def add_flag(self, name: str, value: bool = True) -> Self:
        """Append ``name`` when ``value`` is true."""
        if value:
            self.append(name)
        return self

    def add_option(self, name: str, value: object | None) -> Self:
        """Append ``name value`` unless ``value`` is None; a list repeats the option."""
        if value is None:
            return self
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            self.extend([name, str(v)])
        return self

    def add_args(self, args: Iterable[str]) -> Self:
        """Append positional arguments."""
        self.extend(args)
        return self


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One container as ``docker compose ps --format json`` reports it."""

    service: str
    name: str
    state: str
    health: str
    exit_code: int
    publishers: tuple[tuple[int, int, str], ...] = ()

    @property
    def healthy(self) -> bool:
        """Running, and healthy where the service has a healthcheck."""
        return self.state == "running" and self.health in {"", "healthy"}

    @property
    def completed(self) -> bool:
        """A one-shot service (migrate) that finished successfully."""
        return self.state == "exited" and self.exit_code == 0

    @property
    def waiting(self) -> bool:
        """Created but never started: waiting on a dependency (unless its start failed)."""
        return self.state == "created"

    def verdict(self, *, one_shot: bool) -> Verdict:
        """How this container stands after ``up`` returned. A one-shot (see
        :func:`one_shots`) is pending until it exits, and fine only when it exits 0; any
        other service must keep running, healthy where it has a healthcheck (a container
        that reports a health status, say from its image's HEALTHCHECK, is taken to be
        long-running). ``waiting``: created, never started (its dependency is to blame)."""
        running: Verdict = "ok"
        if self.health == "starting" or (one_shot and not self.health):
            running = "pending"
        elif self.health == "unhealthy":
            running = "failed"
        by_state: dict[str, Verdict] = {
            "exited": "ok" if self.exit_code == 0 else "failed",
            "dead": "failed",
            # the engine restarts it under its policy (a one-shot on-failure retrying, a
            # server whose dependency was not ready yet): judged once it runs or stops
            "restarting": "pending",
            "running": running,
            "created": "waiting",
        }
        return by_state.get(self.state, "ok")  # paused, removing: someone else's doing

    def describe(self) -> str:
        """The container's state in words, for a failure message."""
        if self.state == "exited":
            return f"exited with code {self.exit_code}"
        if self.state == "restarting":
            return "keeps restarting"
        if self.state == "running" and self.health in {"unhealthy", "starting"}:
            return "is unhealthy" if self.health == "unhealthy" else "is not healthy yet"
        if self.state == "created":
            return "was created but never started"
        return "is still running" if self.state == "running" else f"is {self.state}"

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> ServiceState:
        """Parse one ``ps`` entry."""
        publishers = tuple(
            (int(p.get("PublishedPort") or 0), int(p.get("TargetPort") or 0), str(p.get("URL", "")))
            for p in item.get("Publishers") or ()
        )
        return cls(
            service=str(item.get("Service", "")),
            name=str(item.get("Name", "")),
            state=str(item.get("State", "")),
            health=str(item.get("Health", "")),
            exit_code=int(item.get("ExitCode") or 0),
            publishers=publishers,
        )


def parse_ps(output: str) -> list[ServiceState]:
    """Parse ``ps --format json``: a JSON array (older Compose) or one object per line."""
    text = output.strip()
    if not text:
        return []
    if text.startswith("["):
        items = json.loads(text)
    else:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [ServiceState.from_json(i) for i in items]


def has_healthcheck(service: Mapping[str, Any]) -> bool:
    """A resolved service has a healthcheck that runs (given, not disabled, not ``NONE``)."""
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test not in (["NONE"], "NONE")


def one_shots(resolved: Mapping[str, Any]) -> frozenset[str]:
    """Services that run to completion rather than keep running, from a resolved ``compose
    config``: those another service depends on with ``service_completed_successfully``
    (Compose's own notion), and those without a healthcheck whose restart policy is
    written out as ``"no"`` or ``on-failure`` (a migrator nothing depends on). A service
    with neither a healthcheck nor a restart policy is taken to be long-running: that is
    Compose's default for servers too (a mail catcher, a dev server)."""
    services: Mapping[str, Any] = resolved.get("services") or {}
    found = {
        dependency
        for service in services.values()
        for dependency, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    }
    for name, service in services.items():
        has_check = has_healthcheck(service)
        deploy_policy = ((service.get("deploy") or {}).get("restart_policy") or {}).get("condition")
        restart = str(service.get("restart") or "")
        runs_once = restart == "no" or restart.startswith("on-failure")
        if not restart:  # Compose falls back on deploy.restart_policy
            runs_once = deploy_policy in {"none", "on-failure"}
        if runs_once and not has_check:
            found.add(name)
    return frozenset(found)


def completed_only(output: str) -> bool:
    """True when the only complaint of a failed ``up --wait`` (its ``output``) is containers
    that exited with code 0: Compose 2.x's ``--wait`` fails on a one-shot that finished
    successfully unless another service depends on it."""
    codes = [int(code) for _, code in EXITED.findall(output)]
    return bool(codes) and not any(codes)


@dataclass(frozen=True, slots=True)
class Settled:
    """The stack after :meth:`Compose.settle`: the containers, and the services that failed
    or were still pending (a one-shot running, a healthcheck starting) at the deadline."""

    states: tuple[ServiceState, ...]
    failed: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()


def _env_entries(env: Mapping[str, str | None] | None) -> list[str]:
    """``--env`` values: ``NAME=value``, or the name alone (the value from our environment)."""
    return [k if v is None else f"{k}={v}" for k, v in (env or {}).items()]


@functools.cache
def _resolved(argv: tuple[str, ...]) -> dict[str, Any]:
    data = json.loads(runner.run(argv).stdout)
    return data if isinstance(data, dict) else {}


def host_ids() -> str | None:
    """``uid:gid`` of this process (None where the platform has none, e.g. Windows)."""
    getuid = getattr(os, "getuid", None)
    getgid = getattr(os, "getgid", None)
    return f"{getuid()}:{getgid()}" if getuid is not None and getgid is not None else None


@dataclass(frozen=True, slots=True)
class Compose:
    """``docker compose`` for one project: global options built in one place."""

    project_name: str
    files: tuple[str, ...]
    project_directory: str | None = None
    env_file: str | None = None
    profiles: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config, cwd: Path | None = None) -> Compose:
        """The project's Compose; paths stay short when run from the project root."""
        at_root = (cwd or Path.cwd()).resolve() == config.root
        return cls(
            project_name=config.project_name,
            files=config.compose_files if at_root else tuple(map(str, config.compose_paths)),
            # Compose's own default: the first file's directory (where it reads .env and
            # resolves relative paths), which need not be the Python project's
            project_directory=None if at_root else str(config.compose_dir),
            env_file=config.env_file,
            profiles=config.profiles,
        )

    def command(self, *subcommand: str) -> Command:
        """``docker compose <global options> <subcommand…>``."""
        cmd = Command(["docker", "compose"])
        cmd.add_option("-p", self.project_name)
        cmd.add_option("-f", list(self.files))
        cmd.add_option("--project-directory", self.project_directory)
        cmd.add_option("--env-file", self.env_file)
        cmd.add_option("--profile", list(self.profiles) or None)
        return cmd.add_args(subcommand)

    # -- builders for the commands dockwork runs ---------------------------------------

    def build(self, services: Sequence[str] = ()) -> Command:
        """``build [services]``."""
        return self.command("build").add_args(services)

    def up(
        self,
        services: Sequence[str] = (),
        *,
        detach: bool = True,
        wait: bool = True,
        wait_timeout: int | None = None,
        build: bool = False,
        remove_orphans: bool = True,
    ) -> Command:
        """``up`` (detached and waiting for health by default)."""
        cmd = self.command("up")
        cmd.add_flag("--detach", detach).add_flag("--wait", wait)
        cmd.add_option("--wait-timeout", wait_timeout if wait else None)
        cmd.add_flag("--build", build).add_flag("--remove-orphans", remove_orphans)
        return cmd.add_args(services)

    def down(self, *, volumes: bool = False, remove_orphans: bool = True) -> Command:
        """``down`` (volumes kept unless asked)."""
        cmd = self.command("down")
        return cmd.add_flag("--volumes", volumes).add_flag("--remove-orphans", remove_orphans)

    def logs(
        self, services: Sequence[str] = (), *, follow: bool = False, tail: int | None = None
    ) -> Command:
        """``logs [-f] [--tail N] [services]``."""
        cmd = self.command("logs").add_flag("--follow", follow).add_option("--tail", tail)
        return cmd.add_args(services)

    def ps(self, *, all_: bool = True, json_format: bool = False) -> Command:
        """``ps`` (stopped containers included by default)."""
        cmd = self.command("ps").add_flag("--all", all_)
        return cmd.add_option("--format", "json" if json_format else None)

    def exec(
        self,
        service: str,
        argv: Sequence[str],
        *,
        tty: bool = True,
        user: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Command:
        """``exec service argv`` in the running container (``env`` as for :meth:`run`)."""
        cmd = self.command("exec").add_flag("-T", not tty).add_option("--user", user)
        cmd.add_option("--env", _env_entries(env) or None)
        return cmd.add_args([service, *argv])

    def run(
        self,
        service: str,
        argv: Sequence[str] = (),
        *,
        rm: bool = True,
        no_deps: bool = False,
        tty: bool = True,
        user: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Command:
        """``run --rm service argv`` (starting its dependencies unless ``no_deps``).

        An ``env`` value of None passes the name alone (``--env NAME``): Compose takes the
        value from the caller's environment, so it never shows in the echoed command.
        """
        cmd = self.command("run").add_flag("--rm", rm).add_flag("--no-deps", no_deps)
        cmd.add_flag("-T", not tty).add_option("--user", user)
        cmd.add_option("--env", _env_entries(env) or None)
        return cmd.add_args([service, *argv])

    def restart(self, services: Sequence[str] = ()) -> Command:
        """``restart [services]``."""
        return self.command("restart").add_args(services)

    def config(self, *, quiet: bool = False, services: bool = False) -> Command:
        """``config [-q] [--services]``."""
        return self.command("config").add_flag("--quiet", quiet).add_flag("--services", services)

    # -- queries (captured and parsed) -------------------------------------------------

    def states(self) -> list[ServiceState]:
        """The project's containers, parsed."""
        return parse_ps(runner.run(self.ps(json_format=True)).stdout)

    def services(self) -> list[str]:
        """The services the compose files define."""
        return runner.run(self.config(services=True)).stdout.split()

    def volumes(self) -> list[str]:
        """The project's existing named volumes (what ``down --volumes`` would delete)."""
        label = f"label=com.docker.compose.project={self.project_name}"
        argv = ["docker", "volume", "ls", "--quiet", "--filter", label]
        return sorted(runner.run(argv).stdout.split())

    def resolved(self) -> dict[str, Any]:
        """The merged, interpolated configuration (``config --format json``), asked once per
        process: a task reads it several times, and the files do not change under it."""
        return _resolved(tuple(self.config().add_option("--format", "json")))

    def failing(self, output: str = "") -> list[str]:
        """Services whose container failed: exited non-zero, dead, unhealthy, never started
        because its own start failed (an address, a port), or not even created (Compose
        says so in ``output``, the ``up`` it ran) — not those only waiting on a dependency."""
        states = self.states()
        bad = {s.service for s in states if not (s.healthy or s.completed or s.waiting)}
        prefix = f"{self.project_name}-"
        for name in CREATE_FAILED.findall(output):
            if name.startswith(prefix):  # <project>-<service>-<index>
                bad.add(name.removeprefix(prefix).rsplit("-", 1)[0])
        waiting = [s for s in states if s.waiting]
        if waiting:
            argv = [
                "docker",
                "inspect",
                "--format",
                "{{json .State.Error}}",
                *(s.name for s in waiting),
            ]
            errors = runner.run(argv, check=False).stdout.splitlines()
            for state, error in zip(waiting, errors, strict=False):
                if error.strip() not in {"", '""', "null"}:
                    bad.add(state.service)
        return sorted(bad)

    def one_shots(self) -> frozenset[str]:
        """The services that run to completion (see :func:`one_shots`)."""
        return one_shots(self.resolved())

    def settle(
        self,
        one_shot: Collection[str],
        timeout: float,
        *,
        poll: float = 0.5,
        on_wait: Callable[[Sequence[str]], object] | None = None,
    ) -> Settled:
        """After ``up``: wait (at most ``timeout`` seconds, polling ``ps``) until every
        one-shot has exited and every other service is running and healthy; stop at the
        first failure (a container that exited non-zero, died or is unhealthy). Services
        only waiting on a dependency count as neither. ``on_wait`` is told the pending
        services once, when there is something to wait for."""
        deadline = time.monotonic() + timeout
        told = False
        while True:
            states = self.states()
            verdicts = [(s, s.verdict(one_shot=s.service in one_shot)) for s in states]
            failed = sorted({s.service for s, v in verdicts if v == "failed"})
            pending = sorted({s.service for s, v in verdicts if v == "pending"})
            if failed or not pending or time.monotonic() >= deadline:
                return Settled(tuple(states), tuple(failed), tuple(pending))
            if on_wait is not None and not told:
                on_wait(pending)
                told = True
            time.sleep(poll)

    def require_services(self, names: Iterable[str]) -> None:
        """A clear error when a name is not a service of this project."""
        known = self.services()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DockworkError(
                f"unknown service(s): {', '.join(unknown)}. This project's services are: "
                f"{', '.join(known)}."
            )
