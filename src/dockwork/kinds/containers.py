"""What runs in a test-server container: image, command, port, environment.

A spec holds no secret: the password a container gets is added when it is created, so
the spec's hash (which keys reused containers) is the same from run to run.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

#: the prefix of every label dockwork puts on what it creates for tests
LABEL = "dev.dockwork"
PG_USER = PG_DB = "postgres"
REDIS_DATABASES = 64
#: a test Redis: nothing written to disk, enough logical databases for the workers
REDIS_EPHEMERAL = ("--save", "", "--appendonly", "no", "--databases", str(REDIS_DATABASES))
PASSWORD_VARIABLE = "POSTGRES_PASSWORD"  # noqa: S105 - a variable's name, not a password
PG_DATA = "/run/dockwork-pg/data"
#: a test PostgreSQL's admin URL (its maintenance database)
PG_URL = f"postgresql://{PG_USER}:{{password}}@{{host}}:{{port}}/{PG_DB}"
PG_SHM = 256 * 1024 * 1024
#: where a baked image keeps its initialised data directory: beside the official image's
#: VOLUME (/var/lib/postgresql/data), whose contents an image commit would not keep
BAKED_DATA = "/var/lib/postgresql/dockwork-data"
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
    'pw="$(dirname "$PGDATA")/pw" && printf "%s\\n" "$POSTGRES_PASSWORD" > "$pw" && '
    'initdb --username=postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 '
    '--encoding=UTF8 --locale=C --no-sync --no-instructions >/dev/null && rm -f "$pw" && '
    'echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf" && '
    'exec postgres -c listen_addresses=* "$@"'
)
#: run once, in a container that is then committed as the baked image. The role gets no
#: password here: over TCP nobody can log in until a container sets its own (below), so
#: the image (shared by every project on the engine) holds no secret at all
PG_BAKE = (
    'mkdir -p "$PGDATA" && initdb --username=postgres --auth=trust --encoding=UTF8 --locale=C '
    "--no-sync --no-instructions >/dev/null && "
    "printf 'local all all trust\\nhost all all all scram-sha-256\\n' > \"$PGDATA/pg_hba.conf\""
)
#: start a baked image's server and give the role this container's own password, through
#: the container-local socket as soon as the server takes connections (psql interpolates
#: the password as a quoted literal); the readiness probe logs in with it over TCP
#: The baked data directory is copied onto a tmpfs first (~40 MB, tens of ms): written in
#: place, on the image's overlay filesystem, each file PostgreSQL first changes is copied up
#: whole, and a per-worker `CREATE DATABASE … TEMPLATE` took 130-320 ms instead of ~25.
PG_BAKED_START = (
    f'cp -a {BAKED_DATA} "$PGDATA" || exit 1; '
    'postgres -c unix_socket_directories=/tmp "$@" & pid=$!; '
    "trap 'kill -INT $pid' INT; trap 'kill -TERM $pid' TERM; "
    "until printf '%s\\n' \"ALTER ROLE postgres PASSWORD :'pw';\" | "
    'psql -X -q -h /tmp -U postgres -d postgres -v ON_ERROR_STOP=1 -v pw="$POSTGRES_PASSWORD" '
    ">/dev/null 2>&1; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.02; done; "
    "wait $pid; status=$?; wait $pid 2>/dev/null; exit $status"
)


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What to run for one test server (the fields below ``auth`` are what differs between
    kinds: the registry's spec functions fill them in, the Docker backend just follows)."""

    #: the test server's name in ``test_services``: a kind's ("postgres"), or a compose
    #: service's (see :mod:`dockwork.kinds`)
    kind: str
    image: str
    command: tuple[str, ...]
    #: its container ports, each published on a free host port (the first is the URL's)
    ports: tuple[int, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    #: run from an image with the data directory initialised in it (see ``baking``)
    baked: bool = False
    #: the server asks for a password (a Redis for pytest-databases' RedisService, which
    #: carries none, does not; it still listens on loopback only)
    auth: bool = True
    #: the server's password goes in this variable, or after this command-line flag
    password_variable: str | None = None
    password_flag: str | None = None
    #: added to the command of a server that takes no password (``auth`` False)
    open_flags: tuple[str, ...] = ()
    #: its admin URL, over {host}, {port} and {password} ("": handed out as host and ports)
    url_format: str = ""
    #: the same without a password
    open_url_format: str = ""
    #: bytes of /dev/shm (0: the engine's default)
    shm_size: int = 0
    #: the engine's Healthcheck (Test, Interval, Timeout, Retries, StartPeriod in ns)
    healthcheck: Mapping[str, Any] | None = None
    #: readiness is the container's own healthcheck turning healthy, when it has one
    #: (its image's or ``healthcheck``); otherwise the kind's probe
    use_health: bool = False

    @property
    def port(self) -> int:
        """The port its URL names."""
        return self.ports[0]

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
                self.baked,
                self.auth,
                self.ports,
                self.healthcheck,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def with_password(self, password: str) -> tuple[dict[str, str], list[str]]:
        """The environment and command a container of this spec gets, password included."""
        environment, command = dict(self.environment), list(self.command)
        if not self.auth:  # published from a container: not loopback inside it
            return environment, [*command, *self.open_flags]
        if self.password_variable:
            environment[self.password_variable] = password
        if self.password_flag:
            command += [self.password_flag, password]
        return environment, command

    def url(self, host: str, port: int, password: str) -> str | None:
        """Where a container of this spec answers (an admin URL for PostgreSQL); None for
        a server handed out as host and ports."""
        template = self.url_format if self.auth else self.open_url_format
        return template.format(host=host, port=port, password=password) if template else None


def new_password() -> str:
    """A fresh password for a test server: 24 URL-safe characters, never starting with "-".
    A server's command line takes a word starting with "--" for its next option: Redis
    started with ``--requirepass --x…`` saw the flag without a value and refused to start
    (one start in about 4,096)."""
    while True:
        password = secrets.token_urlsafe(18)
        if not password.startswith("-"):
            return password


def password_of(spec: ContainerSpec, env: list[str], command: list[str]) -> str:
    """Read back the password a container was created with (for reused containers)."""
    if spec.password_flag and spec.password_flag in command:
        return command[command.index(spec.password_flag) + 1]
    if spec.password_variable:
        prefix = spec.password_variable + "="
        return next((e.removeprefix(prefix) for e in env if e.startswith(prefix)), "")
    return ""


def postgres_spec(image: str, init: str = "baked") -> ContainerSpec:
    """PostgreSQL tuned for tests: no fsync, UTF-8, password auth over TCP.

    ``init`` (``postgres_init``): "baked" starts the server on a data directory initialised
    once into a derived image (a cold start is create + start + ready); "direct" runs
    ``initdb`` + ``postgres`` in each container, data on tmpfs; "entrypoint" uses the
    image's own entrypoint, for images without ``initdb``/``postgres`` on PATH or a
    ``postgres`` user.
    """
    flags = tuple(arg for setting in PG_SETTINGS for arg in ("-c", setting))
    if init == "baked":
        return ContainerSpec(
            kind="postgres",
            image=image,
            entrypoint=("sh", "-c", PG_BAKED_START, "postgres"),
            command=("-D", PG_DATA, "-c", "listen_addresses=*", *flags),
            user="postgres",
            ports=(5432,),
            environment={"PGDATA": PG_DATA},
            baked=True,
            password_variable=PASSWORD_VARIABLE,
            url_format=PG_URL,
            shm_size=PG_SHM,
            tmpfs={"/run/dockwork-pg": "rw,mode=1777"},
        )
    if init == "entrypoint":
        return ContainerSpec(
            kind="postgres",
            image=image,
            command=("postgres", *flags),
            ports=(5432,),
            password_variable=PASSWORD_VARIABLE,
            url_format=PG_URL,
            shm_size=PG_SHM,
            environment={
                "POSTGRES_USER": PG_USER,
                "POSTGRES_DB": PG_DB,
                "PGDATA": "/var/lib/postgresql/data",
                # UTF-8 whatever the image's defaults: initdb follows LANG, the official
                # image also passes POSTGRES_INITDB_ARGS
                "LANG": "C.UTF-8",
                "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --no-sync",
                "POSTGRES_HOST_AUTH_METHOD": "scram-sha-256",
            },
            tmpfs={"/var/lib/postgresql/data": "rw"},
        )
    return ContainerSpec(
        kind="postgres",
        image=image,
        entrypoint=("sh", "-c", PG_DIRECT_START, "postgres"),
        command=flags,
        user="postgres",
        ports=(5432,),
        environment={"PGDATA": PG_DATA},
        password_variable=PASSWORD_VARIABLE,
        url_format=PG_URL,
        shm_size=PG_SHM,
        tmpfs={"/run/dockwork-pg": "rw,mode=1777"},
    )


def redis_spec(image: str, *, auth: bool = True) -> ContainerSpec:
    """Redis without persistence, with enough logical databases for many workers."""
    return ContainerSpec(
        auth=auth,
        kind="redis",
        image=image,
        command=(
            "redis-server",
            *REDIS_EPHEMERAL,
        ),
        ports=(6379,),
        password_flag="--requirepass",  # noqa: S106 - a flag's name, not a password
        open_flags=("--protected-mode", "no"),
        url_format="redis://:{password}@{host}:{port}/0",
        open_url_format="redis://{host}:{port}/0",
    )


#: a Go duration's parts, as Compose writes healthcheck times ("1m30s", "500ms")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
NANOSECONDS["h"] = 60 * NANOSECONDS["m"]
#: a test server's healthcheck runs at least this often (ns): readiness is checked, never
#: slept for, and a compose file's interval (30 s by default) is made for a running stack
HEALTH_INTERVAL = 10**9


def duration(text: object) -> int:
    """Nanoseconds of a Go duration ("1m30s"), as the engine takes them (0 when unset)."""
    if isinstance(text, int | float):
        return int(text)
    found = DURATION.findall(str(text or ""))
    return int(sum(float(number) * NANOSECONDS[unit] for number, unit in found))


def _literal(text: object) -> str:
    """A value of ``docker compose config``'s output as Compose would pass it on: its output
    is itself a compose file, so a literal ``$`` stays escaped as ``$$`` there."""
    return str(text).replace("$$", "$")


def _ports(service: Mapping[str, Any]) -> tuple[int, ...]:
    """A compose service's TCP container ports: its ``ports:`` targets and ``expose:``."""
    found = [
        int(entry["target"])
        for entry in service.get("ports") or []
        if isinstance(entry, dict) and str(entry.get("protocol") or "tcp") == "tcp"
    ]
    for entry in service.get("expose") or []:
        text, _, protocol = str(entry).partition("/")
        if protocol not in {"", "tcp"}:
            continue
        first, _, last = text.partition("-")
        found += range(int(first), int(last or first) + 1)
    return tuple(dict.fromkeys(found))


def _healthcheck(service: Mapping[str, Any]) -> dict[str, Any] | None:
    """A compose healthcheck as the engine takes it (None: none, or disabled)."""
    given = service.get("healthcheck") or {}
    test = given.get("test")
    if given.get("disable") or not test or list(test)[:1] == ["NONE"]:
        return None
    test = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    test = [test[0], *map(_literal, test[1:])]
    interval = duration(given.get("interval")) or 30 * 10**9
    out: dict[str, Any] = {"Test": list(test), "Interval": min(interval, HEALTH_INTERVAL)}
    for key, name in (("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if given.get(key):
            out[name] = duration(given[key])
    if given.get("retries"):
        out["Retries"] = int(given["retries"])
    return out


def service_spec(name: str, service: Mapping[str, Any], *, default_image: str) -> ContainerSpec:
    """A service of the compose files (as ``docker compose config`` resolves it) as a test
    server: its image, command, entrypoint, user, environment and healthcheck, each of its
    TCP container ports published on a free host port. Its volumes, networks and
    dependencies are not carried over: it runs alone, with nothing of the stack's."""
    environment = {
        str(k): _literal(v) for k, v in (service.get("environment") or {}).items() if v is not None
    }

    def argv(key: str) -> tuple[str, ...] | None:
        value = service.get(key)
        if value is None:
            return None
        words = shlex.split(value) if isinstance(value, str) else value
        return tuple(map(_literal, words))

    return ContainerSpec(
        kind=name,
        image=str(service.get("image") or default_image),
        command=argv("command") or (),
        entrypoint=argv("entrypoint"),
        user=_literal(service["user"]) if service.get("user") else None,
        ports=_ports(service),
        environment=environment,
        tmpfs=dict(str(entry).partition(":")[::2] for entry in service.get("tmpfs") or []),
        auth=False,
        healthcheck=_healthcheck(service),
        use_health=True,
    )


__all__ = [
    "ContainerSpec",
    "duration",
    "new_password",
    "password_of",
    "postgres_spec",
    "redis_spec",
    "service_spec",
]
