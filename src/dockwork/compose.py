"""The Compose wrapper: every ``docker compose`` argv is built here, queries parsed to types."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from dockwork import envfile, runner
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
#: how long a service without a healthcheck must stay up after it started before `inv up`
#: takes it to be up: an app that fails at import (a missing setting, a bad module path)
#: exits within this on any machine
STEADY = 3.0


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


def awaited(services: Mapping[str, Any]) -> frozenset[str]:
    """The services another one depends on with ``service_completed_successfully``: they
    run to completion before it starts (a migrator, a prestart)."""
    return frozenset(
        dependency
        for service in services.values()
        for dependency, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    )


def one_shots(resolved: Mapping[str, Any]) -> frozenset[str]:
    """Services that run to completion rather than keep running, from a resolved ``compose
    config``: those another service depends on with ``service_completed_successfully``
    (Compose's own notion), and those without a healthcheck whose restart policy is
    written out as ``"no"`` or ``on-failure`` (a migrator nothing depends on). A service
    with neither a healthcheck nor a restart policy is taken to be long-running: that is
    Compose's default for servers too (a mail catcher, a dev server)."""
    services: Mapping[str, Any] = resolved.get("services") or {}
    found = set(awaited(services))
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


def _timestamp(text: str) -> float | None:
    """The engine's RFC 3339 time (``2026-11-30T22:10:01.123456789Z``, or with an offset
    such as ``+01:00``) as a Unix time; None when it is not one."""
    pattern = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)"
    match = re.fullmatch(pattern, text.strip())
    if match is None:
        return None
    zone = "+00:00" if match[3] == "Z" else match[3]
    try:
        when = datetime.fromisoformat(f"{match[1]}{zone}")
        return when.timestamp() + float(f"0.{match[2] or 0}")
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class _Life:
    """A container's restarts, status, exit code and last start (``docker inspect``)."""

    restarts: int
    status: str
    exit_code: int
    started: float | None


_LIFE_FORMAT = (
    "{{.Name}} {{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}}"
)


def _lifecycles(names: Sequence[str]) -> dict[str, _Life | None]:
    """Each container's :class:`_Life` (None: gone), in one ``docker inspect`` when all are
    there, else one per container."""

    def parse(output: str) -> dict[str, _Life]:
        found = {}
        for line in output.splitlines():
            parts = line.split()
            if len(parts) == len(_LIFE_FORMAT.split()) and parts[1].isdigit():
                code = int(parts[3]) if parts[3].lstrip("-").isdigit() else 0
                life = _Life(int(parts[1]), parts[2], code, _timestamp(parts[4]))
                found[parts[0].lstrip("/")] = life
        return found

    result = runner.run(["docker", "inspect", "--format", _LIFE_FORMAT, *names], check=False)
    found = parse(result.stdout) if result.ok else {}
    if len(found) < len(names):
        for name in names:
            if name not in found:
                one = runner.run(["docker", "inspect", "--format", _LIFE_FORMAT, name], check=False)
                found |= parse(one.stdout) if one.ok else {}
    return {name: found.get(name) for name in names}


def last_probes(names: Sequence[str], *, lines: int = 10) -> dict[str, str]:
    """What each container's healthcheck last answered, in words (``exit 1: …`` with the
    probe's last output lines), for the containers that have probed; one ``docker
    inspect``. A healthcheck that cannot run (a ``curl`` the image lacks) says so only here:
    the service's own logs look healthy."""
    if not names:
        return {}
    fmt = "{{.Name}}\t{{json .State.Health}}"
    result = runner.run(["docker", "inspect", "--format", fmt, *names], check=False)
    found = {}
    for line in result.stdout.splitlines():  # containers gone by now are just not there
        name, _, health = line.partition("\t")
        with contextlib.suppress(ValueError, TypeError, IndexError, KeyError, AttributeError):
            last = (json.loads(health) or {})["Log"][-1]
            output = str(last.get("Output") or "").strip().splitlines()[-lines:]
            said = "\n".join(output) or "(no output)"
            found[name.lstrip("/")] = f"exit {last.get('ExitCode')}: {said}"
    return found


def _engine_time() -> float:
    """The engine's clock (a remote engine's may differ from this machine's); this
    machine's when the engine does not say."""
    result = runner.run(["docker", "info", "--format", "{{.SystemTime}}"], check=False)
    return (_timestamp(result.stdout) if result.ok else None) or time.time()


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

    def service(self, name: str) -> dict[str, Any] | None:
        """Service ``name`` as :meth:`resolved` gives it; None when the files have none."""
        found = (self.resolved().get("services") or {}).get(name)
        return found if isinstance(found, dict) else None

    def image_name(self, service: str, spec: Mapping[str, Any] | None = None) -> str:
        """The image ``service`` runs: the one it names, else the one Compose builds for it,
        ``<project>-<service>`` (``_`` under ``COMPOSE_COMPATIBILITY``, as Compose reads it
        from the environment or the env file). ``spec``: the service as the caller resolved
        it (else :meth:`resolved`'s)."""
        if spec is None:
            spec = self.service(service) or {}
        if spec.get("image"):
            return str(spec["image"])
        return f"{self.project_name}{'_' if self._compatibility() else '-'}{service}"

    def _compatibility(self) -> bool:
        value = os.environ.get("COMPOSE_COMPATIBILITY")
        if value is None:
            base = Path(self.project_directory or Path(self.files[0]).parent)
            env = Path(self.env_file) if self.env_file else base / ".env"
            value = envfile.values(env).get("COMPOSE_COMPATIBILITY")
        # Go's strconv.ParseBool, as Compose reads it
        return (value or "").strip() in {"1", "t", "T", "TRUE", "true", "True"}

    def unbuilt(self) -> list[str]:
        """The services Compose would build as ``up`` starts: those built from a Dockerfile
        whose image is not on the engine yet, and those whose ``pull_policy`` is ``build``
        (built at every ``up``). One ``docker image inspect`` of the images when all are
        there (the services of a project often share one), one per image otherwise.
        A service that also names an ``image`` is one Compose pulls first, and builds only
        when the pull fails: see :meth:`pulls_first`."""
        services = self.resolved().get("services") or {}
        built = {name: s for name, s in services.items() if s.get("build")}
        always = sorted(n for n, s in built.items() if s.get("pull_policy") == "build")
        images = {name: self.image_name(name) for name in built if name not in always}
        if not images:
            return always

        def present(*names: str) -> bool:
            argv = ["docker", "image", "inspect", "--format", "{{.Id}}", *names]
            return runner.run(argv, check=False).ok

        if present(*sorted(set(images.values()))):
            return always
        found = {image: present(image) for image in set(images.values())}
        return sorted([*always, *(name for name, image in images.items() if not found[image])])

    def pulls_first(self, service: str) -> bool:
        """Compose pulls this service's image before building it (it names an image, and its
        ``pull_policy`` is neither ``build`` nor ``never``): a published image is used when
        there is one."""
        spec = self.service(service) or {}
        return bool(spec.get("image")) and spec.get("pull_policy") not in {"build", "never"}

    def pull(self, services: Sequence[str]) -> Command:
        """``pull --ignore-pull-failures services``: what ``up`` does first for an image it
        may also build."""
        return self.command("pull", "--ignore-pull-failures").add_args(services)

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

    def unsteady(
        self, states: Iterable[ServiceState], one_shot: Collection[str], within: float = STEADY
    ) -> list[str]:
        """Services without a healthcheck that did not stay up through their first
        ``within`` seconds. Compose (and :meth:`settle`) take such a service to be up the
        moment it runs, so an app crashing at its start would pass. One restart is allowed
        (a server whose dependency was not ready yet): it is then watched through ``within``
        seconds from its new start; a second restart, a container stuck restarting, or one
        that exited non-zero, fails. Waits only for what remains of those seconds since each
        container started, by the engine's clock; nothing when there is no such service."""
        watched = {
            s.name: s.service
            for s in states
            if s.state == "running" and not s.health and s.service not in one_shot
        }
        if not watched:
            return []
        baseline = _lifecycles(list(watched))
        restarted: set[str] = set()
        bad: set[str] = set()
        while baseline:
            now = _engine_time()
            waits = [
                within
                if life is None or life.status != "running" or life.started is None
                # a negative age (the engine's clock read before the start) waits in full
                else within - max(0.0, now - life.started)
                for life in baseline.values()
            ]
            time.sleep(min(within, max(0.0, *waits)))
            current = _lifecycles(list(baseline))
            again: dict[str, _Life | None] = {}
            for name, before in baseline.items():
                life = current.get(name)
                if life is None or before is None:
                    bad.add(name)  # removed meanwhile: not up
                elif life.status in {"exited", "dead"} and life.exit_code != 0:
                    bad.add(name)
                elif life.restarts > before.restarts or life.status == "restarting":
                    if name in restarted:
                        bad.add(name)
                    else:
                        restarted.add(name)
                        again[name] = life
            baseline = again
        return sorted({watched[name] for name in bad})

    def require_services(self, names: Iterable[str]) -> None:
        """A clear error when a name is not a service of this project."""
        known = self.services()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DockworkError(
                f"unknown service(s): {', '.join(unknown)}. This project's services are: "
                f"{', '.join(known)}."
            )
