"""What every test-server backend hands out, and the interface it implements."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from dockwork import kinds, urls

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Servers:
    """Where the test servers answer, and what to remove when the run is over.

    ``database_url`` is an admin URL (libpq form) of a PostgreSQL server, on its maintenance
    database; ``redis_url`` a Redis server. Either is None when the project did not ask for
    it (which field carries which kind: :mod:`dockwork.kinds`). ``services`` holds the compose
    services run as test servers: name → ``{"host": …, "ports": {container port: host
    port}}`` (JSON keys: strings). ``handles`` name what the backend started (container
    ids, process ids), so any process of the run can release them; ``owned`` is False for
    servers the user named.
    """

    backend: str
    database_url: str | None = None
    redis_url: str | None = None
    owned: bool = True
    handles: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, backend: str, found: Mapping[str, str], **rest: Any) -> Servers:
        """Servers handing out ``found`` (admin URLs by kind)."""
        fields = kinds.servers_fields(found)
        return cls(
            backend,
            database_url=fields.get("database_url"),
            redis_url=fields.get("redis_url"),
            **rest,
        )

    def url(self, kind: str) -> str | None:
        """The admin URL of a kind handed out as one (None: not asked for, or no URL)."""
        name = kinds.of(kind).servers_field
        return getattr(self, name) if name else None

    def urls(self) -> dict[str, str]:
        """Admin URLs by kind, of the kinds this run has."""
        return {k: url for k in kinds.KINDS if (url := self.url(k))}

    def host_ports(self) -> dict[str, list[int]]:
        """The ports each test server answers on, by name (what a reused one must still
        publish)."""
        found = {kind: [urlsplit(url).port or 0] for kind, url in self.urls().items()}
        for name, where in self.services.items():
            found[name] = [int(port) for port in (where.get("ports") or {}).values()]
        return found

    def describe(self) -> str:
        """One line for headers and logs, passwords masked."""
        where = [f"{kind} at {urls.mask(url)}" for kind, url in self.urls().items()]
        for name, ports in self.host_ports().items():
            if name in self.services:
                where.append(f"{name} at {self.services[name].get('host')} ports {ports}")
        return f"{self.backend}: {', '.join(where) or 'no servers'}"

    def to_json(self) -> str:
        """Serialised, for the other processes of the run."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Servers:
        """Read back :meth:`to_json`."""
        data = json.loads(text)
        data["handles"] = tuple(data.get("handles") or ())
        data["services"] = data.get("services") or {}
        return cls(**data)


class Backend(Protocol):
    """Starts test servers, hands out their URLs, and removes what it started."""

    name: str

    def start(self) -> Servers:
        """Start (or find) the servers and wait until each answers a real query."""
        ...

    def stop(self) -> None:
        """Remove everything this backend started; safe to call twice."""
        ...


class Lifecycle(Protocol):
    """What any process of a run can do with the servers a backend started, knowing only
    their handles: a backend module that starts servers has these two functions."""

    def release(self, handles: Sequence[str], *, wait: bool = True) -> None:
        """Stop and remove them (``wait=False``: may finish after this returns)."""
        ...

    def renew(self, handles: Sequence[str]) -> None:
        """Renew their heartbeat: their owner still lives."""
        ...


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._beat = beat
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dockwork-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Begin beating."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next interval
                continue

    def stop(self) -> None:
        """Stop beating (returns at once)."""
        self._stopped.set()


__all__ = ["Backend", "Heartbeat", "Lifecycle", "Servers"]
