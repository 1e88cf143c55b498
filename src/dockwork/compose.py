"""The Compose wrapper: every ``docker compose`` argv is built here, queries parsed to types."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from dockwork import runner
from dockwork.errors import DockworkError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dockwork.config import Config


#: Compose's line for a container it could not create or start
CREATE_FAILED = re.compile(r"Container (\S+)\s+Error", re.MULTILINE)


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


def _env_entries(env: Mapping[str, str | None] | None) -> list[str]:
    """``--env`` values: ``NAME=value``, or the name alone (the value from our environment)."""
    return [k if v is None else f"{k}={v}" for k, v in (env or {}).items()]


@functools.cache
def _resolved(argv: tuple[str, ...]) -> dict[str, Any]:
    data = json.loads(runner.run(argv).stdout)
    return data if isinstance(data, dict) else {}


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
            project_directory=None if at_root else str(config.root),
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

    def require_services(self, names: Iterable[str]) -> None:
        """A clear error when a name is not a service of this project."""
        known = self.services()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DockworkError(
                f"unknown service(s): {', '.join(unknown)}. This project's services are: "
                f"{', '.join(known)}."
            )
