"""Host ports the stack publishes: which are free, which are taken, and by what.

Used before ``up`` (fail before starting anything), by the doctor (one line each), and
after ``up`` for the URL a service answers on (:func:`endpoint`).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockwork import engine_probe, runner

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dockwork.compose import Compose, ServiceState

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what Compose publishes on when no address is given
_PART = re.compile(r"\$\{[^}]*\}|[^:]+")
_VARIABLE = re.compile(r"\$\{?(\w+)")


@dataclass(frozen=True, slots=True)
class Published:
    """One published host port of a service, and the variable that sets it, if any."""

    service: str
    host_ip: str
    port: int
    #: position in the service's `ports` list (to find its variable in the raw file)
    index: int = 0
    variable: str | None = None
    #: the container of another stack that publishes the port, in words, when one does
    holder: str | None = None

    def fix(self, env_file: str) -> str:
        """How to free the stack from the clash."""
        if self.variable:
            return f"set {self.variable} in {env_file} (or the environment) to a free port"
        return f"change the published port of service {self.service!r} in the compose files"

    @property
    def by(self) -> str:
        """Who holds the port: a container (of which Compose project), else a program."""
        return self.holder or "another program"

    def in_use_message(self, env_file: str) -> str:
        """What to tell the user when another program holds the port."""
        stop = "stop it" if self.holder else "stop that program"
        return (
            f"port {self.port} ({self.service}) is in use on {self.host_ip} by {self.by}; "
            f"{self.fix(env_file)}, or {stop}."
        )


def port_free(host: str, port: int) -> bool:
    """False when another program holds ``host:port``; any other reason a bind fails here
    (an address this machine lacks, a privileged port) is for the engine to report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
    return True


def published(resolved: dict[str, Any]) -> list[Published]:
    """Fixed host ports in a resolved ``compose config`` (``0`` / unset: the engine picks)."""
    out = []
    for name, service in sorted((resolved.get("services") or {}).items()):
        for index, port in enumerate(service.get("ports") or []):
            value = str(port.get("published") or "")
            if value.isdigit() and int(value) > 0:
                host_ip = port.get("host_ip") or ANY_ADDRESS
                out.append(Published(name, host_ip, int(value), index))
    return out


def _variables(raw: dict[str, Any]) -> dict[tuple[str, int], str]:
    """(service, index) → the variable in that port's published part (uninterpolated)."""
    found: dict[tuple[str, int], str] = {}
    for name, service in (raw.get("services") or {}).items():
        for index, entry in enumerate(service.get("ports") or []):
            if isinstance(entry, dict):
                part = str(entry.get("published") or "")
            else:
                parts = _PART.findall(str(entry))
                part = parts[-2] if len(parts) >= 2 else ""  # noqa: PLR2004 - [ip:]published:target
            match = _VARIABLE.search(part)
            if match:
                found[(name, index)] = match.group(1)
    return found


def taken(
    compose: Compose, resolved: dict[str, Any], ours: set[int], timeout: float | None = None
) -> list[Published]:
    """Published ports another program holds (``ours``: those the stack itself publishes),
    each with the variable that sets it, and the container holding it when one of another
    stack does (the engine asked only then, within ``timeout``)."""
    busy = [
        p for p in published(resolved) if p.port not in ours and not port_free(p.host_ip, p.port)
    ]
    if not busy:
        return []
    raw = compose.config().add_flag("--no-interpolate").add_option("--format", "json")
    variables = _variables(json.loads(runner.run(raw).stdout))
    return [
        dataclasses.replace(
            p,
            variable=variables.get((p.service, p.index)),
            holder=_holder(p.host_ip, p.port, timeout),
        )
        for p in busy
    ]


def _holder(host_ip: str, port: int, timeout: float | None) -> str | None:
    """The container publishing host ``port``, in words (``container X of Compose project
    Y``), when the engine answers and one does; None otherwise (another program)."""
    if engine_probe.remote_engine():
        return None  # its containers publish on another machine, not this one's ports
    fmt = '{{.Names}}\t{{.Label "com.docker.compose.project"}}\t{{.Ports}}'
    argv = ["docker", "ps", "--filter", f"publish={port}", "--format", fmt]
    result = runner.run(argv, check=False, timeout=timeout or 20.0)
    for line in result.stdout.splitlines() if result.ok else []:
        name, project, published = [*line.split("\t"), "", ""][:3]
        # the filter matches the port on any address: the clash needs ours or an any-address
        wanted = {f"{a}:{port}->" for a in (host_ip, ANY_ADDRESS, "::", "[::]")}
        if name and (host_ip == ANY_ADDRESS or any(w in published for w in wanted)):
            return f"container {name}" + (f" of Compose project {project}" if project else "")
    return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a service answers on this machine: one of its own published ports."""

    service: str
    host: str
    port: int
    #: the container port it publishes
    target: int
    #: the service's other published container ports
    others: tuple[int, ...] = ()
    #: why this port was picked, when the compose files leave it open
    note: str = ""

    @property
    def url(self) -> str:
        """``http://host:port`` (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _healthcheck_text(service: Mapping[str, Any]) -> str:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = check.get("test") or ""
    return " ".join(map(str, test)) if isinstance(test, list) else str(test)


def _choose(name: str, targets: Sequence[int], service: Mapping[str, Any]) -> tuple[int, str]:
    """The container port that serves HTTP among several the service publishes: the one
    marked ``app_protocol: http(s)``, else the one its healthcheck probes, else the first
    in its ``ports:`` (with a note saying so)."""
    if len(targets) == 1:
        return targets[0], ""
    http = {
        int(p.get("target") or 0)
        for p in service.get("ports") or []
        if str(p.get("app_protocol") or "").lower() in {"http", "https"}
    }
    marked = [t for t in targets if t in http]
    if len(marked) == 1:
        return marked[0], ""
    check = _healthcheck_text(service)
    probed = [t for t in marked or targets if re.search(rf"(?<!\d){t}(?!\d)", check)]
    if len(probed) == 1:
        return probed[0], ""
    first = (probed or marked or targets)[0]
    return first, (
        f"{name} publishes container ports {', '.join(map(str, targets))}; the URL is the "
        f"first in its `ports:` ({first}). To show another, list it first or mark it "
        "`app_protocol: http` (the long `ports:` syntax)."
    )


def _host(url: str) -> str:
    """An address to open from this machine for a publisher's address."""
    if url in {"", ANY_ADDRESS}:
        return "127.0.0.1"
    return "::1" if url == "::" else url


def endpoint(
    name: str, resolved: Mapping[str, Any], states: Iterable[ServiceState]
) -> Endpoint | str:
    """The URL service ``name`` answers on: its own published port (the engine's choice
    where the compose files leave the host port open), picked among several by
    :func:`_choose`; or, when there is none, why (a sentence)."""
    service = (resolved.get("services") or {}).get(name)
    if service is None:
        return f"{name!r} is not a service of this project"
    live: dict[int, list[tuple[int, str]]] = {}  # container port -> (host port, address)
    running = False
    for state in states:
        if state.service == name:
            running = running or state.state == "running"
            for port, target, url in state.publishers:
                if port:
                    live.setdefault(target, []).append((port, url))
    if not running:
        return f"{name} is not running"
    declared = [
        int(p.get("target") or 0)
        for p in service.get("ports") or []
        if str(p.get("protocol") or "tcp") == "tcp"
    ]
    targets = list(dict.fromkeys(t for t in declared if t in live)) or sorted(live)
    if not targets:
        return f"{name} publishes no port on this machine (its compose service has no `ports:`)"
    target, note = _choose(name, targets, service)
    # an address of its own first, then IPv4's any-address before IPv6's
    port, url = sorted(live[target], key=lambda p: (p[1] in {"", ANY_ADDRESS, "::"}, ":" in p[1]))[
        0
    ]
    others = tuple(t for t in targets if t != target)
    return Endpoint(name, _host(url), port, target, others, note)


def answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Something serves behind ``host:port``: it sends bytes back to an HTTP request (any
    status, any protocol that answers), or keeps the connection open while it works on it
    (a slow first page). A connection alone proves nothing: Docker's proxy accepts on a
    published port whether or not anything listens in the container, then closes it at
    once."""
    shown = f"[{host}]" if ":" in host else host
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(f"GET / HTTP/1.0\r\nHost: {shown}:{port}\r\n\r\n".encode())
            try:
                return bool(conn.recv(1))
            except TimeoutError:
                return True  # accepted and kept open: a server busy with the request
    except OSError:
        return False


__all__ = ["Endpoint", "Published", "answers", "endpoint", "port_free", "published", "taken"]
