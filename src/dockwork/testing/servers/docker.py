"""Test servers as Docker containers, owned and labelled so cleanup touches only ours.

Every container carries labels naming the project, the run, and the run's owner (see
:mod:`dockwork.testing.servers.ownership`). At start, containers of this project whose owner
is gone are removed; nothing unlabelled, foreign, reused, belonging to the dev stack or to
a live run is ever touched. The engine is reached through :mod:`.engine_api` (no Docker
SDK on this path); its errors become one :class:`~dockwork.errors.ProvisionError` here.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockwork import kinds, runner
from dockwork.config import DEFAULT_SERVICE_TIMEOUT
from dockwork.errors import ProvisionError, describe
from dockwork.kinds import Endpoint, readiness
from dockwork.kinds.containers import LABEL, ContainerSpec, new_password, password_of
from dockwork.testing.servers import baking, reuse_cache
from dockwork.testing.servers.base import Servers
from dockwork.testing.servers.engine_api import ApiError, Engine
from dockwork.testing.servers.ownership import Owner, Verdict, lease, orphaned

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ROLE = "test-server"
LEASE_FILE = "/tmp/.dockwork-lease"  # noqa: S108 - inside the container
HINT = (
    "Check that the engine runs (`docker info`); the next run removes whatever this one "
    "left behind."
)


def connect(timeout: float = 60) -> tuple[Engine | None, str | None]:
    """An engine that answered a ping, or None and why not (one line)."""
    try:
        engine = Engine(timeout=timeout)
        engine.ping()
    except ApiError as exc:
        return None, exc.explanation
    return engine, None


def docker_available() -> str | None:
    """None when an engine answers; otherwise why not (one line)."""
    return connect(timeout=10)[1]


def engine_time(value: str | int) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, or Unix seconds) as a POSIX time."""
    if isinstance(value, int):
        return float(value)
    head, _, rest = value.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(digits) :] or "+00:00"
    parsed = datetime.fromisoformat(f"{head}.{(digits or '0')[:6]}{zone}")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def heartbeat_age(engine: Engine, container: dict[str, Any]) -> float | None:
    """Seconds since the owner's last heartbeat (or the container's creation), engine time."""
    try:
        now = engine_time(engine.system_time())
        mtime = engine.file_mtime(str(container["Id"]), LEASE_FILE)
        last = engine_time(mtime if mtime is not None else int(container["Created"]))
    except (ApiError, KeyError, ValueError):
        return None
    return now - last


def beat(engine: Engine, container_ids: Iterable[str]) -> None:
    """Renew the heartbeat of a live run's containers (their own clock: the engine's)."""
    for cid in container_ids:
        with contextlib.suppress(ApiError):  # gone or busy: the next beat retries
            engine.exec(cid, ["touch", LEASE_FILE])


def renew(container_ids: Sequence[str]) -> None:
    """Renew a live run's heartbeat in its containers (when the engine answers)."""
    engine, _ = connect(timeout=10)
    if engine is not None:
        beat(engine, container_ids)


def remove(engine: Engine, container_ids: Sequence[str]) -> list[str]:
    """Kill and remove containers, all at once; gone is fine. Returns the failures."""

    def one(cid: str) -> str | None:
        try:
            engine.remove(cid)
        except ApiError as exc:
            return f"{cid[:12]} ({exc.explanation})"
        return None

    if not container_ids:
        return []
    with ThreadPoolExecutor(max_workers=len(container_ids)) as pool:
        return [f for f in pool.map(one, container_ids) if f]


def release(container_ids: Sequence[str], *, wait: bool = True) -> None:
    """Remove a run's containers from any process of the run (one clear error if it can't).

    ``wait=False`` (a run's end) checks that the engine answers, then leaves the removal to
    a detached process: the run's own process exits at once instead of waiting ~0.2 s for
    the engine, and the containers are gone a moment later. Should that process fail, the
    containers' owner is gone, and the project's next run removes them.
    """
    if not container_ids:
        return
    engine, reason = connect(timeout=30)
    if engine is None:
        raise ProvisionError(
            f"could not remove the test containers {', '.join(c[:12] for c in container_ids)}: "
            f"{reason}. {HINT}"
        )
    if not wait:
        remover = subprocess.Popen(
            [sys.executable, "-m", "dockwork.testing.servers.docker", *container_ids],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the run; not signalled with its process group
        )
        runner.detach(remover)
        return
    failed = remove(engine, container_ids)
    if failed:
        raise ProvisionError(f"could not remove test containers: {'; '.join(failed)}. {HINT}")


class DockerBackend:
    """Test-server containers for one run (or reused across runs, opt-in)."""

    name = "docker"

    def __init__(
        self,
        project: str,
        specs: Sequence[ContainerSpec],
        *,
        reuse: bool = False,
        service_timeout: float = DEFAULT_SERVICE_TIMEOUT,
        bind: str = "127.0.0.1",
        host: str = "127.0.0.1",
        owner: Owner | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.project = project
        self.specs = tuple(specs)
        self.reuse = reuse
        self.service_timeout = service_timeout
        self.bind = bind
        self.host = host
        self.owner = owner or Owner.current()
        #: an unverifiable owner's servers are orphans after this long without a heartbeat
        self.lease_seconds = lease(service_timeout)
        self.run_id = f"{self.owner.pid}-{secrets.token_hex(4)}"
        self.engine = engine or Engine()
        self._owned: list[str] = []
        self.timings: dict[str, float] = {}
        #: containers of gone runs that :meth:`start` removed
        self.reaped: list[str] = []

    # -- labels and ownership ------------------------------------------------------------

    def labels(self, spec: ContainerSpec) -> dict[str, str]:
        """Labels naming project, configuration, and (per-run containers) run and owner."""
        labels = {
            f"{LABEL}.project": self.project,
            f"{LABEL}.role": ROLE,
            f"{LABEL}.service": spec.kind,
            f"{LABEL}.config": spec.config_hash(),
            f"{LABEL}.reuse": "1" if self.reuse else "0",
        }
        if not self.reuse:
            labels[f"{LABEL}.run"] = self.run_id
            labels |= self.owner.to_labels(f"{LABEL}.owner")
        return labels

    def reap_orphans(self) -> list[str]:
        """Remove this project's per-run containers whose owner is gone (or whose lease ran
        out where the owner cannot be checked); another run sweeping them too is fine."""
        labels = [f"{LABEL}.project={self.project}", f"{LABEL}.role={ROLE}", f"{LABEL}.reuse=0"]
        gone = []
        for container in self.engine.containers(labels):
            owner = Owner.from_labels(container.get("Labels") or {}, f"{LABEL}.owner")
            # the heartbeat is read only for owners that cannot be checked (cheap path first)
            unverifiable = owner is not None and owner.judge() is Verdict.UNVERIFIABLE
            age = heartbeat_age(self.engine, container) if unverifiable else None
            if orphaned(owner, age, self.lease_seconds):
                gone.append(container)
        remove(self.engine, [str(c["Id"]) for c in gone])
        return [str((c.get("Names") or ["?"])[0]).lstrip("/") for c in gone]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Servers:
        """Start the containers concurrently, wait for real answers; clean up on failure."""
        t0 = time.monotonic()
        try:
            self.reaped = self._engine_call(self.reap_orphans)
            with ThreadPoolExecutor(max_workers=max(1, len(self.specs))) as pool:
                started = list(
                    pool.map(lambda s: self._engine_call(self._container_for, s), self.specs)
                )
            self.timings["containers"] = time.monotonic() - t0
            endpoints = [
                Endpoint(
                    self.host,
                    ports,
                    spec.url(self.host, ports[spec.port], password) if spec.ports else None,
                )
                for (_, ports, password), spec in zip(started, self.specs, strict=True)
            ]
            self._engine_call(self._wait_ready, [cid for cid, _, _ in started], endpoints)
        except BaseException:
            self._stop_quietly()
            raise
        self.timings["total"] = time.monotonic() - t0
        names = {spec.kind: cid[:12] for (cid, _, _), spec in zip(started, self.specs, strict=True)}
        pairs = list(zip(self.specs, endpoints, strict=True))
        servers = Servers.of(
            self.name,
            {spec.kind: where.url for spec, where in pairs if where.url},
            services={
                spec.kind: {
                    "host": where.host,
                    "ports": {str(c): h for c, h in where.ports.items()},
                }
                for spec, where in pairs
                if where.url is None
            },
            owned=not self.reuse,
            handles=tuple(self._owned),
            details=names | {"run": self.run_id, "reaped": str(len(self.reaped))},
        )
        if self.reuse:
            reuse_cache.save(self.reuse_key(), servers)
        return servers

    def _engine_call(self, action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except ApiError as exc:
            raise ProvisionError(
                f"the Docker engine failed while starting the test servers: {exc.explanation}. "
                f"{HINT}"
            ) from exc

    def reuse_key(self) -> str:
        """Names the reused servers: project plus each configuration."""
        return f"{self.project}-{'-'.join(s.config_hash() for s in self.specs)}"

    def stop(self) -> None:
        """Remove the containers this run created (reused ones are kept); idempotent."""
        owned, self._owned = self._owned, []
        if owned:
            release(owned)

    def _stop_quietly(self) -> None:
        """Cleanup after a failed start: the start's own error is the one to show."""
        with contextlib.suppress(Exception):  # the next run reaps what this could not remove
            self.stop()

    # -- helpers -----------------------------------------------------------------------------

    def _image(self, spec: ContainerSpec) -> str:
        """The image to run (pulled if missing; baked where the spec says)."""
        found = self.engine.image(spec.image)
        if found is None:
            try:
                self.engine.pull(spec.image)
            except ApiError as exc:
                raise ProvisionError(
                    f"image {spec.image!r} for the test {spec.kind} is not present and could "
                    f"not be pulled ({exc.explanation}). {kinds.of(spec.kind).image_hint}"
                ) from exc
            found = self.engine.image(spec.image) or {}
        if not spec.baked:
            return spec.image
        labels = self.labels(spec) | {f"{LABEL}.service": "bake"}
        return baking.baked_image(self.engine, spec, str(found.get("Id", "")), labels)

    def _container_for(self, spec: ContainerSpec) -> tuple[str, dict[int, int], str]:
        """A started container for ``spec``: its id, host ports (by container port) and the
        server's password."""
        if self.reuse:
            return self._reused(spec)
        image = self._image(spec)
        password = new_password()
        name = f"dockwork-{self.project}-test-{spec.kind}-{self.run_id}"
        cid = self._create(spec, image, name, password)
        self._owned.append(cid)
        self.engine.start(cid)
        return cid, self._host_ports(cid, spec), password

    def _reused(self, spec: ContainerSpec) -> tuple[str, dict[int, int], str]:
        name = f"dockwork-{self.project}-{spec.kind}-{spec.config_hash()}"
        cid = self._named(spec, name)
        self.engine.start(cid)  # started already: fine
        config = self.engine.inspect(cid).get("Config") or {}
        password = password_of(spec, config.get("Env") or [], config.get("Cmd") or [])
        return cid, self._host_ports(cid, spec), password

    def _named(self, spec: ContainerSpec, name: str) -> str:
        """The id of the kept container ``name``, created now if missing. Another run may
        be creating it at this moment: the engine reserves the name before the container
        exists, so until that create returns ours gets 409 and the name's inspection 404.
        Look again until it is there (or create it, should the other create have failed)."""
        deadline = time.monotonic() + self.service_timeout
        image = None
        while True:
            try:
                return str(self.engine.inspect(name)["Id"])
            except ApiError as exc:
                if exc.status != 404:  # noqa: PLR2004
                    raise
            image = image or self._image(spec)
            try:
                return self._create(spec, image, name, new_password())
            except ApiError as conflict:  # another run is creating it (or just did)
                if conflict.status != 409 or time.monotonic() > deadline:  # noqa: PLR2004
                    raise
            time.sleep(0.05)

    def _create(self, spec: ContainerSpec, image: str, name: str, password: str) -> str:
        environment, command = spec.with_password(password)
        ports = [f"{port}/tcp" for port in spec.ports]
        host_config: dict[str, Any] = {
            "PortBindings": {port: [{"HostIp": self.bind, "HostPort": ""}] for port in ports},
            "Tmpfs": dict(spec.tmpfs),
        }
        if spec.shm_size:
            host_config["ShmSize"] = spec.shm_size
        config: dict[str, Any] = {
            "Image": image,
            "Env": [f"{k}={v}" for k, v in environment.items()],
            "Labels": self.labels(spec),
            "ExposedPorts": {port: {} for port in ports},
            "HostConfig": host_config,
        }
        if command:  # none: the image's own
            config["Cmd"] = command
        if spec.healthcheck:
            config["Healthcheck"] = dict(spec.healthcheck)
        if spec.entrypoint is not None:
            config["Entrypoint"] = list(spec.entrypoint)
        if spec.user:
            config["User"] = spec.user
        return self.engine.create(name, config)

    def _host_ports(self, cid: str, spec: ContainerSpec) -> dict[int, int]:
        deadline = time.monotonic() + 10
        while True:
            state = self.engine.inspect(cid)
            published = (state.get("NetworkSettings") or {}).get("Ports") or {}
            bindings = {port: published.get(f"{port}/tcp") for port in spec.ports}
            if all(bindings.values()):
                return {
                    port: int(found[0]["HostPort"]) for port, found in bindings.items() if found
                }
            exited = (state.get("State") or {}).get("Status") in {"exited", "dead"}
            if exited or time.monotonic() > deadline:
                missing = ", ".join(str(p) for p, found in bindings.items() if not found)
                raise ProvisionError(self._failure(cid, spec, f"it published no port {missing}"))
            time.sleep(0.05)

    def _probe(self, cid: str, spec: ContainerSpec, endpoint: Endpoint) -> readiness.Probe:
        """Its own healthcheck turning healthy, when the spec says so and the container has
        one; else its kind's probe (a real query)."""
        if spec.use_health and (self.engine.inspect(cid).get("State") or {}).get("Health"):
            return _healthy(self.engine, cid)
        return kinds.of(spec.kind).probe(endpoint)

    def _wait_ready(self, cids: list[str], endpoints: list[Endpoint]) -> None:
        probes = {
            spec.kind: _watch(self.engine, cid, self._probe(cid, spec, endpoint))
            for cid, spec, endpoint in zip(cids, self.specs, endpoints, strict=True)
        }
        t0 = time.monotonic()
        failed = readiness.failures(probes, timeout=self.service_timeout)
        if failed:
            kind, error = next(iter(failed.items()))
            index = [s.kind for s in self.specs].index(kind)
            raise ProvisionError(self._failure(cids[index], self.specs[index], str(error)))
        self.timings["ready"] = time.monotonic() - t0

    def _failure(self, cid: str, spec: ContainerSpec, why: str) -> str:
        try:
            state = str((self.engine.inspect(cid).get("State") or {}).get("Status"))
            logs = self.engine.logs(cid).rstrip()
        except ApiError as exc:
            state, logs = "unknown", f"(logs unavailable: {describe(exc)})"
        kind = kinds.of(spec.kind)
        image = kind.image_variable or f"the {spec.kind!r} service's image in the compose files"
        return (
            f"the test {spec.kind} (container {cid[:12]}, image {spec.image}, state {state}) "
            f"is not ready: {why}. Its last log lines:\n{logs or '(no output)'}\n"
            f"Check the image ({image}) and the engine; "
            f"DOCKWORK_SERVICE_TIMEOUT raises the deadline.{kind.not_ready_hint}"
        )


def _healthy(engine: Engine, cid: str) -> readiness.Probe:
    """The container's healthcheck says healthy (the engine's ``State.Health``)."""

    def probe() -> None:
        health = (engine.inspect(cid).get("State") or {}).get("Health") or {}
        status = health.get("Status")
        if status != "healthy":
            log = (health.get("Log") or [{}])[-1]
            output = str(log.get("Output") or "").strip()[-200:]
            raise ConnectionError(
                f"its healthcheck says {status}" + (f": {output}" if output else "")
            )

    return probe


def _watch(engine: Engine, cid: str, probe: readiness.Probe, every: float = 0.5) -> readiness.Probe:
    """``probe``, giving up at once when the container has stopped (no point waiting)."""
    checked = [0.0]

    def watched() -> None:
        try:
            probe()
        except Exception:
            now = time.monotonic()
            if now - checked[0] >= every:
                checked[0] = now
                state = engine.inspect(cid).get("State") or {}
                if state.get("Status") in {"exited", "dead"}:
                    code = state.get("ExitCode")
                    raise readiness.GaveUpError(f"its container exited with code {code}") from None
            raise

    return watched


__all__ = [
    "LABEL",
    "DockerBackend",
    "beat",
    "connect",
    "docker_available",
    "heartbeat_age",
    "release",
    "remove",
    "renew",
]


if __name__ == "__main__":  # the detached remover of release(wait=False)
    remove(Engine(), sys.argv[1:])
