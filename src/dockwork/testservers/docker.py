"""Test servers as Docker containers, owned and labelled so cleanup touches only ours.

Every container carries labels naming the project, the run, and the run's owner (see
:mod:`dockwork.testservers.ownership`). At start, containers of this project whose owner
is gone are removed; nothing unlabelled, foreign, reused, belonging to the dev stack or to
a live run is ever touched. Library errors (the Docker SDK, sockets) become one
:class:`~dockwork.errors.ProvisionError` here, where they enter.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockwork.errors import ProvisionError, boundary, describe
from dockwork.testservers import readiness, reuse_cache
from dockwork.testservers.base import Servers
from dockwork.testservers.containers import ContainerSpec, password_of
from dockwork.testservers.ownership import Owner, Verdict, lease, orphaned

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from docker import DockerClient
    from docker.models.containers import Container

LABEL = "dev.dockwork"
ROLE = "test-server"
LEASE_FILE = "/tmp/.dockwork-lease"  # noqa: S108 - inside the container
HINT = (
    "Check that the engine runs (`docker info`); the next run removes whatever this one "
    "left behind."
)


def connect(timeout: float = 120) -> tuple[DockerClient | None, str | None]:
    """A client whose engine answered a ping, or None and why not (one line)."""
    try:
        import docker  # noqa: PLC0415
    except ImportError:
        return None, "the `docker` Python package is not installed"
    try:
        client = docker.from_env(timeout=int(timeout))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return None, describe(exc)[:200]
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        client.close()
        return None, describe(exc)[:200]
    return client, None


def docker_available() -> str | None:
    """None when an engine answers; otherwise why not (one line)."""
    client, reason = connect()
    if client is not None:
        client.close()
    return reason


def _engine_time(value: str) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as a POSIX time."""
    head, _, rest = value.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(digits) :] or "+00:00"
    parsed = datetime.fromisoformat(f"{head}.{(digits or '0')[:6]}{zone}")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def heartbeat_age(client: DockerClient, container: Container) -> float | None:
    """Seconds since the owner's last heartbeat (or the container's creation), engine time."""
    import docker.errors  # noqa: PLC0415

    try:
        now = _engine_time(str(client.info()["SystemTime"]))
        try:
            stream, stat = container.get_archive(LEASE_FILE)
            b"".join(stream)  # drain the response
            last = _engine_time(str(stat["mtime"]))
        except docker.errors.NotFound:
            last = _engine_time(str(container.attrs["Created"]))
    except (docker.errors.APIError, KeyError, ValueError):
        return None
    return now - last


def beat(client: DockerClient, container_ids: Iterable[str]) -> None:
    """Renew the heartbeat of a live run's containers (their own clock: the engine's)."""
    for cid in container_ids:
        try:
            client.containers.get(cid).exec_run(["touch", LEASE_FILE])
        except Exception:  # noqa: BLE001, S112 - gone or busy: the next beat retries
            continue


def remove(client: DockerClient, container_ids: Iterable[str]) -> list[str]:
    """Kill and remove containers (volumes too); already gone is fine. Returns the failures."""
    import docker.errors  # noqa: PLC0415

    failed = []
    for cid in container_ids:
        try:
            client.api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # noqa: PLR2004 - removal already in progress elsewhere
                continue
            failed.append(f"{cid[:12]} ({describe(exc)})")
        except Exception as exc:  # noqa: BLE001 - the engine went away: report, don't crash
            failed.append(f"{cid[:12]} ({describe(exc)})")
    return failed


def release(container_ids: Sequence[str]) -> None:
    """Remove a run's containers from any process of the run (one clear error if it can't)."""
    if not container_ids:
        return
    client, reason = connect(timeout=30)
    if client is None:
        raise ProvisionError(
            f"could not remove the test containers {', '.join(c[:12] for c in container_ids)}: "
            f"the Docker engine does not answer ({reason}). {HINT}"
        )
    try:
        failed = remove(client, container_ids)
    finally:
        client.close()
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
        service_timeout: float = 60,
        bind: str = "127.0.0.1",
        host: str = "127.0.0.1",
        owner: Owner | None = None,
        client: DockerClient | None = None,
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
        self._client: DockerClient | None = client
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

    @property
    def client(self) -> DockerClient:
        """A client for the engine (DOCKER_HOST / the default socket)."""
        if self._client is None:
            import docker  # noqa: PLC0415

            self._client = docker.from_env(timeout=120)
        return self._client

    def reap_orphans(self) -> list[str]:
        """Remove this project's per-run containers whose owner is gone (or whose lease ran
        out where the owner cannot be checked); another run sweeping them too is fine."""
        filters = {
            "label": [f"{LABEL}.project={self.project}", f"{LABEL}.role={ROLE}", f"{LABEL}.reuse=0"]
        }
        gone = []
        for container in self.client.containers.list(all=True, filters=filters):
            owner = Owner.from_labels(container.labels, f"{LABEL}.owner")
            # the heartbeat is read only for owners that cannot be checked (cheap path first)
            unverifiable = owner is not None and owner.judge() is Verdict.UNVERIFIABLE
            age = heartbeat_age(self.client, container) if unverifiable else None
            if orphaned(owner, age, self.lease_seconds):
                gone.append(container)
        remove(self.client, [c.id for c in gone])
        return [str(c.name) for c in gone]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Servers:
        """Start the containers concurrently, wait for real answers; clean up on failure."""
        t0 = time.monotonic()
        try:
            with boundary(
                ProvisionError, "the Docker engine failed while starting the test servers", HINT
            ):
                self.reaped = self.reap_orphans()
                with ThreadPoolExecutor(max_workers=len(self.specs)) as pool:
                    started = list(pool.map(self._container_for, self.specs))
                self.timings["containers"] = time.monotonic() - t0
                found = {
                    spec.kind: spec.url(self.host, self._host_port(c, spec), password)
                    for (c, password), spec in zip(started, self.specs, strict=True)
                }
                self._wait_ready([c for c, _ in started], found)
        except BaseException:
            self._stop_quietly()
            raise
        self.timings["total"] = time.monotonic() - t0
        servers = Servers(
            self.name,
            database_url=found.get("postgres"),
            redis_url=found.get("redis"),
            owned=not self.reuse,
            handles=tuple(self._owned),
            details={
                spec.kind: str(c.name) for (c, _), spec in zip(started, self.specs, strict=True)
            }
            | {"run": self.run_id},
        )
        if self.reuse:
            reuse_cache.save(self.reuse_key(), servers)
        return servers

    def reuse_key(self) -> str:
        """Names the reused servers: project plus each configuration."""
        return f"{self.project}-{'-'.join(s.config_hash() for s in self.specs)}"

    def stop(self) -> None:
        """Remove the containers this run created (reused ones are kept); idempotent."""
        owned, self._owned = self._owned, []
        try:
            if owned:
                release(owned)
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _stop_quietly(self) -> None:
        """Cleanup after a failed start: the start's own error is the one to show."""
        with contextlib.suppress(Exception):  # the next run reaps what this could not remove
            self.stop()

    # -- helpers -----------------------------------------------------------------------------

    def _container_for(self, spec: ContainerSpec) -> tuple[Container, str]:
        if self.reuse:
            return self._reused(spec)
        password = secrets.token_urlsafe(18)
        name = f"dockwork-{self.project}-test-{spec.kind}-{self.run_id}"
        container = self._create(spec, name, password)
        self._owned.append(str(container.id))
        container.start()
        return container, password

    def _reused(self, spec: ContainerSpec) -> tuple[Container, str]:
        import docker.errors  # noqa: PLC0415

        name = f"dockwork-{self.project}-{spec.kind}-{spec.config_hash()}"
        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound:
            try:
                container = self._create(spec, name, secrets.token_urlsafe(18))
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # noqa: PLR2004 - another run created it first
                    raise
                container = self.client.containers.get(name)
        if container.status != "running":
            try:
                container.start()
            except docker.errors.APIError as exc:  # a concurrent run started it: fine
                if exc.status_code != 304:  # noqa: PLR2004
                    raise
        config = container.attrs.get("Config") or {}
        return container, password_of(spec, config.get("Env") or [], config.get("Cmd") or [])

    def _create(self, spec: ContainerSpec, name: str, password: str) -> Container:
        import docker.errors  # noqa: PLC0415

        environment, command = spec.with_password(password)
        kwargs: dict[str, Any] = {
            "command": command,
            "name": name,
            "detach": True,
            "labels": self.labels(spec),
            "environment": environment,
            "ports": {f"{spec.port}/tcp": (self.bind, None)},
            "tmpfs": dict(spec.tmpfs),
            "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "user": spec.user,
            "shm_size": "256m" if spec.kind == "postgres" else None,
        }
        try:
            return self.client.containers.create(spec.image, **kwargs)
        except docker.errors.ImageNotFound:
            variable = "POSTGRES_IMAGE" if spec.kind == "postgres" else "REDIS_IMAGE"
            try:
                self.client.images.pull(spec.image)
            except docker.errors.APIError as exc:
                raise ProvisionError(
                    f"image {spec.image!r} for the test {spec.kind} is not present and could "
                    f"not be pulled ({exc.explanation or exc}). Pull it, or set {variable} to an "
                    "image you have."
                ) from exc
            return self.client.containers.create(spec.image, **kwargs)

    def _host_port(self, container: Container, spec: ContainerSpec) -> int:
        deadline = time.monotonic() + 10
        while True:
            container.reload()
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{spec.port}/tcp")
            if bindings:
                return int(bindings[0]["HostPort"])
            if container.status == "exited" or time.monotonic() > deadline:
                raise ProvisionError(self._failure(container, spec, "it published no port"))
            time.sleep(0.05)

    def _wait_ready(self, containers: list[Container], found: dict[str, str]) -> None:
        probes = {
            spec.kind: _watch(container, _probe_for(spec.kind, found[spec.kind]))
            for container, spec in zip(containers, self.specs, strict=True)
        }
        t0 = time.monotonic()
        try:
            readiness.wait_all(probes, timeout=self.service_timeout)
        except readiness.NotReadyError as exc:
            index = [s.kind for s in self.specs].index(exc.service)
            raise ProvisionError(
                self._failure(containers[index], self.specs[index], str(exc))
            ) from exc
        self.timings["ready"] = time.monotonic() - t0

    def _failure(self, container: Container, spec: ContainerSpec, why: str) -> str:
        try:
            container.reload()
            state = container.status
            logs = container.logs(tail=30).decode(errors="replace").rstrip()
        except Exception as exc:  # noqa: BLE001
            state, logs = "unknown", f"(logs unavailable: {describe(exc)})"
        return (
            f"the test {spec.kind} (container {container.name}, image {spec.image}, state "
            f"{state}) is not ready: {why}. Its last log lines:\n{logs or '(no output)'}\n"
            "Check the image (POSTGRES_IMAGE / REDIS_IMAGE) and the engine; "
            "DOCKWORK_SERVICE_TIMEOUT raises the deadline; DOCKWORK_POSTGRES_INIT=entrypoint "
            "starts PostgreSQL through its image's entrypoint."
        )


def _probe_for(kind: str, url: str) -> readiness.Probe:
    return readiness.redis_probe(url) if kind == "redis" else readiness.postgres_probe(url)


def _watch(container: Container, probe: readiness.Probe, every: float = 0.5) -> readiness.Probe:
    """``probe``, giving up at once when the container has stopped (no point waiting)."""
    checked = [0.0]

    def watched() -> None:
        try:
            probe()
        except Exception:
            now = time.monotonic()
            if now - checked[0] >= every:
                checked[0] = now
                container.reload()
                if container.status in {"exited", "dead"}:
                    code = container.attrs.get("State", {}).get("ExitCode")
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
]
