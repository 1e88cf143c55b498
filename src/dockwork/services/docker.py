"""Test services as Docker containers, owned and labelled so cleanup touches only ours.

Every container carries labels naming the project, the owning run, its pid (and the pid's
start time, so a recycled pid is not mistaken for a live owner) and the host. At start,
containers of this project whose owner process is gone are removed; nothing unlabelled,
foreign, or belonging to the dev stack is ever touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockwork.services import ProvisionError, Services, readiness, reuse_cache

if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker import DockerClient
    from docker.models.containers import Container

LABEL = "dev.dockwork"
ROLE = "test-service"
DEFAULT_POSTGRES_IMAGE = "postgres:17"
DEFAULT_REDIS_IMAGE = "redis:7"
# The image's defaults: with user and database both "postgres" its entrypoint skips a
# CREATE DATABASE during init. Throwaway server, published on loopback only.
PG_USER = PG_DB = "postgres"
PG_PASSWORD = "dockwork"  # noqa: S105
REDIS_DATABASES = 64


def connect() -> tuple[DockerClient | None, str | None]:
    """A client whose engine answered a ping, or None and why not (one line)."""
    try:
        import docker  # noqa: PLC0415
    except ImportError:
        return None, "the `docker` Python package is not installed"
    try:
        client = docker.from_env(timeout=120)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        client.close()
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return client, None


def docker_available() -> str | None:
    """None when an engine answers; otherwise why not (one line)."""
    client, reason = connect()
    if client is not None:
        client.close()
    return reason


def process_start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:  # noqa: PTH123
            stat = f.read()
    except OSError:
        return ""
    # the command name (field 2) may contain spaces; fields after it are space-separated
    return stat.rsplit(")", 1)[1].split()[19]


def owner_alive(pid: int, start_time: str) -> bool:
    """True when ``pid`` runs and (where known) is the same process that created the label."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start_time or process_start_time(pid) in {"", start_time}


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What to run for one service."""

    service: str
    image: str
    command: tuple[str, ...]
    port: int
    environment: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None

    def config_hash(self) -> str:
        """Identifies the configuration, for reusing containers across runs."""
        blob = json.dumps(
            [
                self.image,
                self.command,
                sorted(self.environment.items()),
                sorted(self.tmpfs.items()),
                self.entrypoint,
                self.user,
            ]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


PG_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    # lets a reused server be recognised without asking the engine
    "cluster_name=dockwork-test",
)
#: initialise and start in one go, as the image's postgres user: the image's entrypoint
#: instead starts a temporary server, creates the database, stops and starts again
#: (~0.3-0.4 s more). "$@" carries the settings. C collation works on every image.
PG_DIRECT_START = (
    "initdb --username=postgres --auth=trust --encoding=UTF8 --locale=C --no-sync "
    '--no-instructions >/dev/null && echo "host all all all trust" >> "$PGDATA/pg_hba.conf" '
    '&& exec postgres -c listen_addresses=* "$@"'
)


def postgres_spec(image: str, init: str = "direct") -> ContainerSpec:
    """PostgreSQL tuned for tests: no fsync, data on tmpfs, UTF-8, trust auth on loopback.

    ``init="entrypoint"`` (DOCKWORK_POSTGRES_INIT) uses the image's own entrypoint, for
    images that do not carry ``initdb``/``postgres`` on PATH and a ``postgres`` user.
    """
    flags = tuple(arg for setting in PG_SETTINGS for arg in ("-c", setting))
    if init == "entrypoint":
        return ContainerSpec(
            service="postgres",
            image=image,
            command=("postgres", *flags),
            port=5432,
            environment={
                "POSTGRES_USER": PG_USER,
                "POSTGRES_PASSWORD": PG_PASSWORD,
                "POSTGRES_DB": PG_DB,
                "PGDATA": "/var/lib/postgresql/data",
                # UTF-8 whatever the image's defaults: initdb follows LANG, the official
                # image also passes POSTGRES_INITDB_ARGS
                "LANG": "C.UTF-8",
                "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --no-sync",
                "POSTGRES_HOST_AUTH_METHOD": "trust",
            },
            tmpfs={"/var/lib/postgresql/data": "rw"},
        )
    if init != "direct":
        raise ProvisionError(
            f"DOCKWORK_POSTGRES_INIT must be 'direct' or 'entrypoint', not {init!r}."
        )
    return ContainerSpec(
        service="postgres",
        image=image,
        entrypoint=("sh", "-c", PG_DIRECT_START, "postgres"),
        command=flags,
        user="postgres",
        port=5432,
        environment={"PGDATA": "/run/dockwork-pg/data"},
        tmpfs={"/run/dockwork-pg": "rw,mode=1777"},
    )


def redis_spec(image: str) -> ContainerSpec:
    """Redis without persistence, with enough logical databases for many workers."""
    return ContainerSpec(
        service="redis",
        image=image,
        command=(
            "redis-server",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            str(REDIS_DATABASES),
        ),
        port=6379,
    )


class DockerBackend:
    """PostgreSQL and Redis containers for one run (or reused across runs, opt-in)."""

    name = "docker"

    def __init__(
        self,
        project: str,
        *,
        reuse: bool = False,
        environ: Mapping[str, str] | None = None,
        startup_timeout: float | None = None,
        postgres: ContainerSpec | None = None,
        redis: ContainerSpec | None = None,
        client: DockerClient | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.project = project
        self.reuse = reuse
        self.run_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.startup_timeout = startup_timeout or float(env.get("DOCKWORK_SERVICE_TIMEOUT", 60))
        self.specs = (
            postgres
            or postgres_spec(
                env.get("POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE,
                env.get("DOCKWORK_POSTGRES_INIT") or "direct",
            ),
            redis or redis_spec(env.get("REDIS_IMAGE") or DEFAULT_REDIS_IMAGE),
        )
        self._client: DockerClient | None = client
        self._owned: list[Container] = []
        self.timings: dict[str, float] = {}
        #: containers of dead runs that :meth:`start` removed
        self.reaped: list[str] = []

    # -- labels and ownership ------------------------------------------------------------

    def labels(self, spec: ContainerSpec) -> dict[str, str]:
        """Labels naming project, owner and configuration."""
        pid = os.getpid()
        labels = {
            f"{LABEL}.project": self.project,
            f"{LABEL}.role": ROLE,
            f"{LABEL}.service": spec.service,
            f"{LABEL}.config": spec.config_hash(),
            f"{LABEL}.host": socket.gethostname(),
            f"{LABEL}.reuse": "1" if self.reuse else "0",
        }
        if not self.reuse:
            labels |= {
                f"{LABEL}.run": self.run_id,
                f"{LABEL}.pid": str(pid),
                f"{LABEL}.pid-start": process_start_time(pid),
            }
        return labels

    @property
    def client(self) -> DockerClient:
        """A client for the engine (DOCKER_HOST / the default socket)."""
        if self._client is None:
            import docker  # noqa: PLC0415

            self._client = docker.from_env(timeout=120)
        return self._client

    def reap_orphans(self) -> list[str]:
        """Remove this project's per-run test containers whose owner process is gone."""
        removed = []
        filters = {
            "label": [f"{LABEL}.project={self.project}", f"{LABEL}.role={ROLE}", f"{LABEL}.reuse=0"]
        }
        host = socket.gethostname()
        for container in self.client.containers.list(all=True, filters=filters):
            labels = container.labels
            if labels.get(f"{LABEL}.host") != host:
                continue  # another machine's run sharing this engine: not ours to judge
            try:
                pid = int(labels.get(f"{LABEL}.pid", ""))
            except ValueError:
                continue
            if owner_alive(pid, labels.get(f"{LABEL}.pid-start", "")):
                continue
            container.remove(force=True, v=True)
            removed.append(container.name)
        return removed

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Services:
        """Start both containers concurrently and wait for real answers; clean up on failure."""
        t0 = time.monotonic()
        self.reaped = self.reap_orphans()
        try:
            with ThreadPoolExecutor(max_workers=len(self.specs)) as pool:
                containers = list(pool.map(self._container_for, self.specs))
            self.timings["containers"] = time.monotonic() - t0
            ports = [self._host_port(c, s) for c, s in zip(containers, self.specs, strict=True)]
            pg_port, redis_port = ports
            db_url = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{pg_port}/{PG_DB}"
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            self._wait_ready(containers, db_url, redis_url)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        services = Services(
            db_url,
            redis_url,
            self.name,
            {"postgres": containers[0].name, "redis": containers[1].name, "run": self.run_id},
        )
        if self.reuse:
            reuse_cache.save(self.reuse_key(), services)
        return services

    def reuse_key(self) -> str:
        """Names the reused pair: project plus both configurations."""
        return f"{self.project}-{'-'.join(s.config_hash() for s in self.specs)}"

    def stop(self) -> None:
        """Remove the containers this run created (reused ones are kept); idempotent."""
        owned, self._owned = self._owned, []
        for container in owned:
            try:
                container.remove(force=True, v=True)
            except Exception as exc:
                if "No such container" not in str(exc) and "404" not in str(exc):
                    raise
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- helpers -----------------------------------------------------------------------------

    def _container_for(self, spec: ContainerSpec) -> Container:
        if self.reuse:
            return self._reused(spec)
        container = self._create(
            spec, name=f"dockwork-{self.project}-test-{spec.service}-{self.run_id}"
        )
        self._owned.append(container)
        container.start()
        return container

    def _reused(self, spec: ContainerSpec) -> Container:
        import docker.errors  # noqa: PLC0415

        name = f"dockwork-{self.project}-{spec.service}-{spec.config_hash()}"
        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound:
            try:
                container = self._create(spec, name=name)
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
        return container

    def _create(self, spec: ContainerSpec, name: str | None) -> Container:
        import docker.errors  # noqa: PLC0415

        kwargs: dict[str, Any] = {
            "command": list(spec.command),
            "name": name,
            "detach": True,
            "labels": self.labels(spec),
            "environment": dict(spec.environment),
            "ports": {f"{spec.port}/tcp": ("127.0.0.1", None)},
            "tmpfs": dict(spec.tmpfs),
            "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "user": spec.user,
            "shm_size": "256m" if spec.service == "postgres" else None,
        }
        try:
            return self.client.containers.create(spec.image, **kwargs)
        except docker.errors.ImageNotFound:
            variable = "POSTGRES_IMAGE" if spec.service == "postgres" else "REDIS_IMAGE"
            try:
                self.client.images.pull(spec.image)
            except docker.errors.APIError as exc:
                raise ProvisionError(
                    f"image {spec.image!r} for the test {spec.service} is not present and could "
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

    def _wait_ready(self, containers: list[Container], db_url: str, redis_url: str) -> None:
        probes = {
            "postgres": _watch(containers[0], readiness.postgres_probe(db_url)),
            "redis": _watch(containers[1], readiness.redis_probe(redis_url)),
        }
        t0 = time.monotonic()
        try:
            readiness.wait_all(probes, timeout=self.startup_timeout)
        except readiness.NotReadyError as exc:
            index = [s.service for s in self.specs].index(exc.service)
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
            state, logs = "unknown", f"(logs unavailable: {exc})"
        return (
            f"the test {spec.service} (container {container.name}, image {spec.image}, state "
            f"{state}) is not ready: {why}. Its last log lines:\n{logs or '(no output)'}\n"
            "Check the image (POSTGRES_IMAGE / REDIS_IMAGE) and the engine; "
            "DOCKWORK_SERVICE_TIMEOUT raises the deadline; DOCKWORK_POSTGRES_INIT=entrypoint "
            "starts PostgreSQL through its image's entrypoint."
        )


def _remove(container: Container) -> None:
    """Kill and remove, volumes included; already gone is fine."""
    import docker.errors  # noqa: PLC0415

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # noqa: PLR2004 - removal already in progress
            raise


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
