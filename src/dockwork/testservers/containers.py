"""What runs in a test-server container: image, command, port, environment.

A spec holds no secret: the password a container gets is added when it is created, so
the spec's hash (which keys reused containers) is the same from run to run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
PG_BAKED_START = (
    'postgres -c unix_socket_directories=/tmp "$@" & pid=$!; '
    "trap 'kill -INT $pid' INT; trap 'kill -TERM $pid' TERM; "
    "until printf '%s\\n' \"ALTER ROLE postgres PASSWORD :'pw';\" | "
    'psql -X -q -h /tmp -U postgres -d postgres -v ON_ERROR_STOP=1 -v pw="$POSTGRES_PASSWORD" '
    ">/dev/null 2>&1; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.02; done; "
    "wait $pid; status=$?; wait $pid 2>/dev/null; exit $status"
)


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What to run for one kind of test server."""

    kind: str
    image: str
    command: tuple[str, ...]
    port: int
    environment: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    #: run from an image with the data directory initialised in it (see ``baking``)
    baked: bool = False
    #: the server asks for a password (a Redis for pytest-databases' RedisService, which
    #: carries none, does not; it still listens on loopback only)
    auth: bool = True

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
            ]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def with_password(self, password: str) -> tuple[dict[str, str], list[str]]:
        """The environment and command a container of this spec gets, password included."""
        if self.kind == "redis":
            if not self.auth:  # published from a container: not loopback inside it
                return dict(self.environment), [*self.command, "--protected-mode", "no"]
            return dict(self.environment), [*self.command, "--requirepass", password]
        return {**self.environment, PASSWORD_VARIABLE: password}, list(self.command)

    def url(self, host: str, port: int, password: str) -> str:
        """Where a container of this spec answers (an admin URL for PostgreSQL)."""
        if self.kind == "redis":
            if not self.auth:
                return f"redis://{host}:{port}/0"
            return f"redis://:{password}@{host}:{port}/0"
        return f"postgresql://{PG_USER}:{password}@{host}:{port}/{PG_DB}"


def password_of(spec: ContainerSpec, env: list[str], command: list[str]) -> str:
    """Read back the password a container was created with (for reused containers)."""
    if spec.kind == "redis":
        if "--requirepass" in command:
            return command[command.index("--requirepass") + 1]
        return ""
    prefix = PASSWORD_VARIABLE + "="
    return next((e.removeprefix(prefix) for e in env if e.startswith(prefix)), "")


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
            command=("-D", BAKED_DATA, "-c", "listen_addresses=*", *flags),
            user="postgres",
            port=5432,
            environment={"PGDATA": BAKED_DATA},
            baked=True,
        )
    if init == "entrypoint":
        return ContainerSpec(
            kind="postgres",
            image=image,
            command=("postgres", *flags),
            port=5432,
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
        port=5432,
        environment={"PGDATA": PG_DATA},
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
        port=6379,
    )


__all__ = ["ContainerSpec", "password_of", "postgres_spec", "redis_spec"]
