"""The swarm, through the ``docker`` CLI (the same engine and context the user's ``docker``
reaches): its state, a stack's services and tasks, the migration job, convergence, and the
secrets and configs dockwork creates. Actions are shown as they run; queries are not.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockwork import runner
from dockwork.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dockwork.swarm.render import Object

#: the label on every secret and config dockwork creates for a stack
STACK_LABEL = "dev.dockwork.stack"
#: Docker's label on a stack's services, networks and volumes
NAMESPACE_LABEL = "com.docker.stack.namespace"
#: an update that ended in one of these did not go through
FAILED_UPDATES = frozenset({"rollback_completed", "rollback_paused", "paused"})
POLL = 0.5


def _json(argv: list[str], *, partial: bool = False) -> Any:
    """The command's JSON output; None when it failed, unless ``partial``: then what it
    printed anyway (``docker inspect`` prints the objects it found, then exits 1 for one
    that is gone)."""
    result = runner.run(argv, check=False)
    if not result.ok and not partial:
        return None
    text = result.stdout.strip()
    return json.loads(text) if text else None


def require_manager(timeout: float = 20) -> None:
    """This engine is a swarm manager; otherwise what to do about it."""
    result = runner.run(
        ["docker", "info", "--format", "{{json .Swarm}}"], check=False, timeout=timeout
    )
    if not result.ok:
        raise DeployError(
            f"the Docker engine does not answer ({result.stderr.strip() or 'no output'}). "
            "Start it, or point DOCKER_HOST (or the docker context) at the swarm's manager."
        )
    info = json.loads(result.stdout or "{}") or {}
    state = info.get("LocalNodeState") or "inactive"
    if state != "active":
        raise DeployError(
            f"this Docker engine is not part of a swarm (state: {state}). `docker swarm init` "
            "makes it a single-node swarm (add --advertise-addr <address> when it has "
            "several); then deploy again. Nothing was deployed."
        )
    if not info.get("ControlAvailable"):
        raise DeployError(
            "this Docker engine is a swarm worker, and only a manager deploys: run this on a "
            "manager node, or point DOCKER_HOST (or the docker context) at one."
        )


def manager_address() -> str:
    """The address the app's published port answers on, as this machine sees it: loopback
    when the manager is this machine, else the manager's address in the swarm (its
    ``--advertise-addr``)."""
    from dockwork.engine_probe import is_local_address  # noqa: PLC0415 - only after a deploy

    result = runner.run(["docker", "info", "--format", "{{.Swarm.NodeAddr}}"], check=False)
    addr = result.stdout.strip() if result.ok else ""
    return "127.0.0.1" if not addr or is_local_address(addr) else addr


def full_name(stack: str, service: str) -> str:
    """A stack service's name in the swarm."""
    return f"{stack}_{service}"


def services(stack: str) -> dict[str, dict[str, Any]]:
    """The stack's services (inspect output), by their name in the compose file."""
    listed = runner.run(
        [
            "docker",
            "service",
            "ls",
            "--filter",
            f"label={NAMESPACE_LABEL}={stack}",
            "--format",
            "{{.Name}}",
        ],
        check=False,
    )
    if not listed.ok:  # not "no services": a manager without a leader, an engine gone
        raise DeployError(
            f"`docker service ls` failed: {listed.stderr.strip() or 'no output'}. Nothing "
            "was rolled back or removed; `docker node ls` shows the swarm's state."
        )
    names = listed.stdout.split()
    if not names:
        return {}
    found = _json(["docker", "service", "inspect", *names]) or []
    return {s["Spec"]["Name"].removeprefix(f"{stack}_"): s for s in found}


def tasks(*services: str) -> list[dict[str, Any]]:
    """All tasks of the services (inspect output), newest first: two CLI calls however many
    services are asked about (a deploy's wait asks about all of them twice a second)."""
    ids = runner.run(
        ["docker", "service", "ps", "--no-trunc", "--quiet", *services], check=False
    ).stdout.split()
    if not ids:
        return []
    # a task pruned between the two calls must not empty every service's list
    found = _json(["docker", "inspect", *dict.fromkeys(ids)], partial=True) or []
    return sorted(found, key=lambda t: t.get("CreatedAt", ""), reverse=True)


def logs(service: str, tail: int = 30) -> str:
    """A service's last log lines (all its tasks)."""
    result = runner.run(
        ["docker", "service", "logs", "--no-task-ids", "--tail", str(tail), service],
        check=False,
        timeout=30,
    )
    return (result.stdout + result.stderr).strip()


def version(stack: str, service: str) -> int | None:
    """The service spec's version (None: no such service yet)."""
    found = services(stack).get(service)
    return None if found is None else int(found["Version"]["Index"])


def wait_job(stack: str, job: str, timeout: float) -> None:
    """Wait for the job's current run (Swarm runs a job again on every update of it); an
    error with its last log lines when it failed."""
    name = full_name(stack, job)
    deadline = time.monotonic() + timeout
    while True:
        service = services(stack).get(job)
        if service is None:
            raise DeployError(f"the migration job {name} was not created.")
        iteration = (service.get("JobStatus") or {}).get("JobIteration", {}).get("Index", 0)
        current = [
            t for t in tasks(name) if (t.get("JobIteration") or {}).get("Index", 0) == iteration
        ]
        states = {t["Status"]["State"] for t in current}
        if current and states <= {"complete"}:
            return
        failed = [t for t in current if t["Status"]["State"] in {"failed", "rejected"}]
        if failed:
            status = failed[0]["Status"]
            exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
            raise DeployError(
                f"the migration job {name} failed ({status.get('Err') or status['State']}"
                f"{f', exit code {exit_code}' if exit_code is not None else ''}); the app and "
                "worker were not updated: the running version keeps serving. Its last log "
                f"lines:\n{logs(name)}"
            )
        if time.monotonic() > deadline:
            raise DeployError(
                f"the migration job {name} did not finish within {timeout:g}s (tasks: "
                f"{', '.join(sorted(states)) or 'none yet'}); the app and worker were not "
                f"updated. `docker service ps {name}` shows why; its last log lines:\n"
                f"{logs(name)}"
            )
        time.sleep(POLL)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One service's progress towards its spec."""

    name: str
    running: int
    wanted: int
    update: str  # UpdateStatus.State of an update made by this deploy, else ""
    message: str = ""

    @property
    def converged(self) -> bool:
        return self.running == self.wanted and self.update not in {"updating", "rollback_started"}

    @property
    def failed(self) -> bool:
        return self.update in FAILED_UPDATES


#: what a release changes in a task: the fields compared to tell a task of the current spec
#: from one of the spec it is being updated from (the whole spec is not comparable: the
#: manager fills defaults into the service's copy, e.g. Runtime, StopGracePeriod)
_IDENTITY = ("Image", "Command", "Args", "Env", "Secrets", "Configs")


def _current(task: dict[str, Any], service: dict[str, Any]) -> bool:
    """The task runs the service's current spec (not the one it is being updated from)."""
    return _identity(task.get("Spec")) == _identity(service["Spec"].get("TaskTemplate"))


def _identity(spec: Any) -> str:
    container = (spec or {}).get("ContainerSpec") or {}
    picked: dict[str, Any] = {k: container.get(k) or None for k in _IDENTITY}
    for key in ("Secrets", "Configs"):
        picked[key] = sorted(
            (o.get("SecretName") or o.get("ConfigName") or "", (o.get("File") or {}).get("Name"))
            for o in picked[key] or []
        )
    picked["ForceUpdate"] = (spec or {}).get("ForceUpdate") or 0
    return json.dumps(picked, sort_keys=True)


def status(
    name: str, service: dict[str, Any], found: list[dict[str, Any]], *, updated: bool
) -> ServiceStatus:
    """Running tasks of the current spec (``found``: the service's tasks) against the
    replicas wanted; the update's state when ``updated`` (this deploy changed the spec)."""
    mode = service["Spec"].get("Mode") or {}
    if "Global" in mode:  # one task per eligible node: as many as the orchestrator wants
        wanted = len({t.get("NodeID") for t in found if t.get("DesiredState") == "running"})
    else:
        wanted = int((mode.get("Replicated") or {}).get("Replicas", 1))
    running = [
        t
        for t in found
        if t.get("DesiredState") == "running"
        and t["Status"]["State"] == "running"
        and _current(t, service)
    ]
    update = (service.get("UpdateStatus") or {}) if updated else {}
    return ServiceStatus(
        name, len(running), wanted, update.get("State", ""), update.get("Message", "")
    )


def roll_back_changed(stack: str, names: Iterable[str], before: dict[str, int]) -> list[str]:
    """Roll back each of ``names`` this deploy changed (its image, command, environment,
    secrets or configs) that Swarm did not roll back itself: after a failed update, the
    previous release runs everywhere, not the app's old version beside the new worker."""
    found = services(stack)
    rolled = []
    for name in names:
        service = found.get(name)
        if service is None or before.get(name) in (None, int(service["Version"]["Index"])):
            continue
        if (service.get("UpdateStatus") or {}).get("State", "").startswith("rollback"):
            continue
        previous = (service.get("PreviousSpec") or {}).get("TaskTemplate")
        if previous is None or _identity(previous) == _identity(service["Spec"]["TaskTemplate"]):
            continue
        argv = ["docker", "service", "rollback", "--detach", full_name(stack, name)]
        result = runner.run(argv, show=True, check=False)
        if not result.ok:
            raise DeployError(
                f"rolling back {full_name(stack, name)} failed too "
                f"({result.stderr.strip() or 'no output'}): it runs the new release. "
                f"`inv deploy.rollback -s {name}` tries again."
            )
        rolled.append(name)
    return rolled


def has_previous(service: dict[str, Any]) -> bool:
    """The service has a previous spec that differs from the current one in what a release
    changes (a redeploy of the same release leaves the same spec as the previous one)."""
    previous = (service.get("PreviousSpec") or {}).get("TaskTemplate")
    return previous is not None and _identity(previous) != _identity(
        service["Spec"].get("TaskTemplate")
    )


def in_use(stack: str, kind: str) -> set[str]:
    """Names of the secrets (or configs) the stack's services use, or used in their previous
    spec (what a rollback would need)."""
    key, name_key = ("Secrets", "SecretName") if kind == "secret" else ("Configs", "ConfigName")
    names: set[str] = set()
    for service in services(stack).values():
        for spec in (service.get("Spec"), service.get("PreviousSpec")):
            container = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
            names.update(o.get(name_key, "") for o in container.get(key) or [])
    return names - {""}


@dataclass(frozen=True, slots=True)
class Mount:
    """A volume (by its name on the engine) or a host path a container mounts."""

    kind: str  # "volume" or "path"
    source: str
    writable: bool = True
    #: for a Compose project's container: the project, and which container
    project: str = ""
    container: str = ""

    def __str__(self) -> str:
        return f"{'volume' if self.kind == 'volume' else 'host path'} {self.source}"


def stack_mounts(stack: str, rendered: dict[str, Any]) -> list[Mount]:
    """The volumes (named as the engine will name them) and host paths the services of the
    rendered stack file mount."""
    declared = rendered.get("volumes") or {}
    names = {}
    for key, declaration in declared.items():
        value = declaration or {}
        # kept by the rendering: an external volume's name, a name the compose file gives
        default = key if value.get("external") else f"{stack}_{key}"
        names[key] = str(value.get("name") or default)
    found: dict[tuple[str, str], Mount] = {}
    for service in (rendered.get("services") or {}).values():
        for entry in service.get("volumes") or []:
            if not isinstance(entry, dict) or not entry.get("source"):
                continue  # anonymous volumes, tmpfs: nobody else's
            writable = not entry.get("read_only")
            if entry.get("type") == "bind":
                mount = Mount("path", posixpath.normpath(str(entry["source"])), writable)
            elif entry.get("type", "volume") == "volume":
                source = str(entry["source"])
                mount = Mount("volume", names.get(source, f"{stack}_{source}"), writable)
            else:
                continue
            key = (mount.kind, mount.source)
            if key not in found or mount.writable:
                found[key] = mount
    return list(found.values())


#: Compose's label on the containers, volumes and networks of a project
COMPOSE_LABEL = "com.docker.compose.project"


def compose_mounts() -> tuple[list[Mount], dict[str, str]]:
    """What Compose projects use on this engine: the volumes and host paths their
    containers mount (running or stopped: a stopped one starts again on the same data), and
    the volumes Compose created (volume → project), in use or not."""
    label = COMPOSE_LABEL
    fmt = f'{{{{.Name}}}}\t{{{{.Label "{label}"}}}}'
    listed = runner.run(
        ["docker", "ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}"],
        check=False,
    )
    volumes = runner.run(
        ["docker", "volume", "ls", "--filter", f"label={label}", "--format", fmt],
        check=False,
    )
    for result in (listed, volumes):
        if not result.ok:
            cause = " ".join(result.stderr.split()) or "no output"
            raise DeployError(
                f"`{shlex.join(result.argv)}` failed ({cause}), so "
                "whether a Compose project uses the stack's volumes cannot be checked. Nothing "
                "was deployed."
            )
    created = dict(line.split("\t", 1) for line in volumes.stdout.splitlines() if "\t" in line)
    ids = listed.stdout.split()
    if not ids:
        return [], created
    inspected = runner.run(["docker", "container", "inspect", *ids], check=False)
    try:  # a container removed meanwhile fails the command, the others are still printed
        containers = json.loads(inspected.stdout or "null")
    except json.JSONDecodeError:
        containers = None
    if not isinstance(containers, list):
        raise DeployError(
            f"`docker container inspect` of the Compose projects' containers failed "
            f"({' '.join(inspected.stderr.split()) or 'no output'}). Nothing was deployed."
        )
    mounts = []
    for container in containers:
        project = ((container.get("Config") or {}).get("Labels") or {}).get(label, "?")
        state = (container.get("State") or {}).get("Status", "")
        name = f"{str(container.get('Name', '')).lstrip('/')}, {state}".strip(", ")
        for m in container.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                kind, source = "volume", str(m["Name"])
            elif m.get("Type") == "bind" and m.get("Source"):
                kind, source = "path", posixpath.normpath(str(m["Source"]))
            else:
                continue
            mounts.append(Mount(kind, source, bool(m.get("RW", True)), project, name))
    return mounts, created


#: host directories that hold sockets and devices, not data: sharing one (the engine's own
#: socket, mounted by a proxy of each kind) is not two servers writing one data directory
RUNTIME_DIRS = ("/run", "/var/run", "/dev", "/proc", "/sys")


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def shared_data(
    wanted: Iterable[Mount], used: Iterable[Mount], created: dict[str, str]
) -> list[str]:
    """Of the stack's mounts, those a Compose project's container writes or would write
    (the same volume; the same host path, or one inside the other), or the volumes a Compose
    project created: each with the project and container. Read-only on either side is not
    sharing a data directory: one server writes it."""
    used = list(used)
    shared = []
    for mount in wanted:
        if mount.kind == "path" and any(_within(mount.source, d) for d in RUNTIME_DIRS):
            continue
        users = sorted(
            {
                f"Compose project {u.project}: container {u.container}"
                for u in used
                if u.kind == mount.kind
                and mount.writable
                and u.writable
                and (
                    u.source == mount.source
                    if mount.kind == "volume"
                    else _within(u.source, mount.source) or _within(mount.source, u.source)
                )
            }
        )
        if mount.kind == "volume" and mount.writable and mount.source in created and not users:
            users = [f"created by Compose project {created[mount.source]}"]
        if users:
            shared.append(f"{mount} ({'; '.join(users)})")
    return shared


def stack_volumes(stack: str, *, removed: bool = False) -> list[str]:
    """The names of the stack's volumes (Swarm labels them with the stack); an error naming
    the cause when they cannot be listed (``removed``: after the stack was removed)."""
    argv = ["docker", "volume", "ls", "--quiet", "--filter", f"label={NAMESPACE_LABEL}={stack}"]
    listed = runner.run(argv, check=False, timeout=60)
    if not listed.ok:
        done = (
            "The stack's services, secrets and configs were removed; its volumes were not"
            if removed
            else "Nothing was removed"
        )
        raise DeployError(
            f"the volumes of stack {stack!r} could not be listed: `{shlex.join(argv)}` failed "
            f"({' '.join(listed.stderr.split()) or f'exit code {listed.returncode}'}). {done}: "
            "run `inv deploy.rm --volumes --yes` again once the engine answers."
        )
    return listed.stdout.split()


def versions(stack: str) -> dict[str, int]:
    """Each service's spec version: compared after a deploy, it tells what was updated."""
    return {n: int(s["Version"]["Index"]) for n, s in services(stack).items()}


def wait_converged(
    stack: str,
    names: Iterable[str],
    timeout: float,
    say: Callable[[str], None],
    *,
    before: dict[str, int] | None = None,
    rollback: bool = False,
) -> list[ServiceStatus]:
    """Wait until every service runs its wanted replicas of its current spec (healthy:
    Swarm counts a task with a healthcheck as running only once it passes). An update this
    deploy made (its version moved from ``before``) that was rolled back or paused is an
    error naming the service; with ``rollback`` (an asked-for rollback) that is the goal."""
    wanted = list(names)
    previous = before or {}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        found = services(stack)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise DeployError(f"service(s) {', '.join(missing)} of stack {stack} do not exist.")
        by_service: dict[str, list[dict[str, Any]]] = {}
        for task in tasks(*(full_name(stack, n) for n in wanted)):
            by_service.setdefault(task.get("ServiceID", ""), []).append(task)
        states = [
            status(
                n,
                found[n],
                by_service.get(found[n]["ID"], []),
                updated=previous.get(n) != int(found[n]["Version"]["Index"]),
            )
            for n in wanted
        ]
        settled = all(s.converged or s.failed for s in states)
        failed = [
            s for s in states if s.failed and not (rollback and s.update == "rollback_completed")
        ]
        if failed and settled:
            detail = "; ".join(f"{s.name}: {s.update} ({s.message})" for s in failed)
            raise DeployError(
                f"the update did not go through: {detail}. Swarm rolled back to the previous "
                "version, which keeps serving. `inv deploy.logs -s SERVICE` shows why the new "
                "tasks failed."
            )
        if settled and all(s.converged for s in states):
            return states
        line = ", ".join(
            f"{s.name} {s.running}/{s.wanted}{f' ({s.update})' if s.update else ''}"
            for s in states
            if not s.converged
        )
        if line != last:
            say(f"waiting: {line}")
            last = line
        if time.monotonic() > deadline:
            raise DeployError(
                f"the stack did not converge within {timeout:g}s: {line}. `inv deploy.ps` "
                "shows the tasks and their errors."
            )
        time.sleep(POLL)


def wait_gone(stack: str, timeout: float = 120) -> None:
    """Wait until the stack's containers have stopped and its networks are gone (``docker
    stack rm`` returns before they are); then remove the stopped containers Swarm leaves
    behind (a finished job's), so the volumes can go and a new deploy does not collide."""
    label = f"label={NAMESPACE_LABEL}={stack}"
    deadline = time.monotonic() + timeout
    while True:
        running = runner.run(
            ["docker", "ps", "--quiet", "--filter", label], check=False
        ).stdout.split()
        networks = runner.run(
            ["docker", "network", "ls", "--quiet", "--filter", label], check=False
        ).stdout.split()
        if not running and not networks:
            break
        if time.monotonic() > deadline:
            raise DeployError(
                f"stack {stack}'s containers or networks are still there after {timeout:g}s "
                f"({len(running)} running, {len(networks)} networks): `docker ps --filter "
                f"{label}` shows them."
            )
        time.sleep(POLL)
    stopped = runner.run(
        ["docker", "ps", "--all", "--quiet", "--filter", label], check=False
    ).stdout.split()
    if stopped:
        runner.run(["docker", "rm", "--force", *stopped], check=False)


def objects(kind: str, stack: str) -> list[str]:
    """Names of the secrets or configs dockwork created for the stack."""
    return runner.run(
        ["docker", kind, "ls", "--filter", f"label={STACK_LABEL}={stack}", "--format", "{{.Name}}"],
        check=False,
    ).stdout.split()


def create_objects(kind: str, stack: str, wanted: list[Object]) -> None:
    """Create the secrets (or configs) that do not exist yet; the value goes through stdin,
    never on a command line."""
    present = set(objects(kind, stack))
    for obj in wanted:
        if obj.name in present:
            continue
        argv = ["docker", kind, "create", "--label", f"{STACK_LABEL}={stack}"]
        argv += ["--label", f"dev.dockwork.for={obj.what}", obj.name, "-"]
        runner.run(argv, show=True, stdin=obj.content)


def prune_objects(kind: str, stack: str, keep: Iterable[str]) -> None:
    """Remove the stack's secrets (or configs) no longer used; one still in use by a task
    (an old one, until it stops) stays for the next deploy to remove."""
    unused = sorted(set(objects(kind, stack)) - set(keep) - in_use(stack, kind))
    if unused:
        runner.run(["docker", kind, "rm", *unused], check=False)


#: a constraint's key as swarmkit takes it (manager/constraint/constraint.go)
_CONSTRAINT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]+$")
#: its operators, tried in this order (as swarmkit does)
_OPERATORS = ("==", "!=")


@dataclass(frozen=True, slots=True)
class Node:
    """What a placement constraint can match on a swarm node (``docker node inspect``)."""

    id: str
    hostname: str
    role: str = "worker"
    os: str = "linux"
    arch: str = "x86_64"
    labels: dict[str, str] = field(default_factory=dict)
    engine_labels: dict[str, str] = field(default_factory=dict)
    addr: str = ""
    #: "ready", "down", … (Status.State) and "active", "pause", "drain" (Spec.Availability)
    state: str = "ready"
    availability: str = "active"

    @property
    def usable(self) -> bool:
        """Swarm can start a task on it now."""
        return self.state == "ready" and self.availability == "active"

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> Node:
        spec = data.get("Spec") or {}
        description = data.get("Description") or {}
        platform = description.get("Platform") or {}
        status = data.get("Status") or {}
        return cls(
            id=str(data.get("ID", "")),
            hostname=str(description.get("Hostname", "")),
            role=str(spec.get("Role", "worker")),
            os=str(platform.get("OS", "")),
            arch=str(platform.get("Architecture", "")),
            labels=dict(spec.get("Labels") or {}),
            engine_labels=dict((description.get("Engine") or {}).get("Labels") or {}),
            addr=str(status.get("Addr", "")),
            state=str(status.get("State", "")),
            availability=str(spec.get("Availability", "")),
        )

    def __str__(self) -> str:
        how = "" if self.usable else f", {self.state}/{self.availability}"
        return f"{self.hostname or self.id[:12]} ({self.role}{how})"


@dataclass(frozen=True, slots=True)
class Constraint:
    """One placement constraint, ``key == value`` or ``key != value``."""

    text: str
    key: str
    equal: bool
    value: str

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """As swarmkit parses it; an error naming what is wrong (swarmkit would refuse the
        service halfway through a deploy)."""
        for operator in _OPERATORS:
            if operator not in text:
                continue
            key, value = (part.strip() for part in text.split(operator, 1))
            if not _CONSTRAINT_KEY.match(key) or not value:
                break
            return cls(text, key, operator == "==", value)
        raise DeployError(
            f"the placement constraint {text!r} is not `<key> == <value>` or `<key> != "
            "<value>` (keys: node.id, node.hostname, node.role, node.platform.os, "
            "node.platform.arch, node.labels.<label>, engine.labels.<label>). Nothing was "
            "deployed."
        )

    def matches(self, node: Node) -> bool:
        """Swarm's rule: the node's value equals the constraint's, ignoring case (a label
        the node does not have is the empty string); ``!=`` is the opposite. A key Swarm
        does not know matches no node."""
        key = self.key.lower()
        values: dict[str, str] = {
            "node.id": node.id,
            "node.hostname": node.hostname,
            "node.role": node.role,
            "node.platform.os": node.os,
            "node.platform.arch": node.arch,
        }
        if key in values:
            found = values[key]
        elif key == "node.ip":
            return self._ip_matches(node.addr)
        elif key.startswith("node.labels.") and len(key) > len("node.labels."):
            found = node.labels.get(self.key[len("node.labels.") :], "")  # label: case kept
        elif key.startswith("engine.labels.") and len(key) > len("engine.labels."):
            found = node.engine_labels.get(self.key[len("engine.labels.") :], "")
        else:
            return False
        return (found.casefold() == self.value.casefold()) == self.equal

    def _ip_matches(self, addr: str) -> bool:
        import ipaddress  # noqa: PLC0415 - only for this rare key

        try:
            network = ipaddress.ip_network(self.value, strict=False)
            inside = bool(addr) and ipaddress.ip_address(addr) in network
        except ValueError:
            return False
        return inside == self.equal


def nodes() -> list[Node]:
    """The swarm's nodes (asked of a manager)."""
    listed = runner.run(["docker", "node", "ls", "--quiet"], check=False)
    found = _json(["docker", "node", "inspect", *listed.stdout.split()]) if listed.ok else None
    if not listed.ok or not isinstance(found, list):
        raise DeployError(
            "the swarm's nodes could not be listed (`docker node ls`: "
            f"{listed.stderr.strip() or 'no output'}), so the placement constraints cannot be "
            "checked. Nothing was deployed."
        )
    return [Node.from_inspect(n) for n in found]


def placement_problems(stack: dict[str, Any], found: list[Node]) -> list[str]:
    """For each service of the stack file whose placement constraints no node satisfies
    (or only nodes that are down or drained): the service, the constraint(s) and the nodes.
    Constraints are checked together, as Swarm does (every one must hold on one node)."""
    problems = []
    for name, service in (stack.get("services") or {}).items():
        placement = ((service.get("deploy") or {}).get("placement")) or {}
        texts = [str(c) for c in placement.get("constraints") or []]
        if not texts:
            continue
        constraints = [Constraint.parse(t) for t in texts]
        eligible = [n for n in found if all(c.matches(n) for c in constraints)]
        if any(n.usable for n in eligible):
            continue
        if eligible:
            problems.append(
                f"services.{name}: {' and '.join(texts)} matches only "
                f"{', '.join(map(str, eligible))}, where Swarm starts no task"
            )
            continue
        alone = [c.text for c in constraints if not any(c.matches(n) for n in found)]
        named = alone or texts
        what = "matches no node" if len(named) == 1 else "match no node together"
        problems.append(f"services.{name}: {' and '.join(named)} {what}")
    return problems


def check_placement(stack: dict[str, Any]) -> None:
    """Every placement constraint of the stack file is satisfied by a node that can run a
    task now: otherwise an error naming the service, the constraint and the nodes, before
    anything changed (Swarm would leave the task pending and the deploy would wait for it
    until its timeout)."""
    wanted = any(
        ((s.get("deploy") or {}).get("placement") or {}).get("constraints")
        for s in (stack.get("services") or {}).values()
    )
    if not wanted:
        return
    found = nodes()
    problems = placement_problems(stack, found)
    if problems:
        listed = "; ".join(
            f"{n} labels {n.labels or '{}'}" for n in sorted(found, key=lambda n: n.hostname)
        )
        raise DeployError(
            f"{'; '.join(problems)}. The swarm's nodes: {listed}. Label a node (`docker node "
            "update --label-add KEY=VALUE NODE`) or change the constraint in the files "
            "deploy_files names. Nothing was deployed."
        )


__all__ = [
    "Constraint",
    "Mount",
    "Node",
    "ServiceStatus",
    "check_placement",
    "compose_mounts",
    "create_objects",
    "full_name",
    "has_previous",
    "in_use",
    "logs",
    "manager_address",
    "nodes",
    "objects",
    "placement_problems",
    "prune_objects",
    "require_manager",
    "roll_back_changed",
    "services",
    "shared_data",
    "stack_mounts",
    "stack_volumes",
    "status",
    "tasks",
    "version",
    "versions",
    "wait_converged",
    "wait_gone",
    "wait_job",
]
