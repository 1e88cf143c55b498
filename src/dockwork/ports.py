"""Host ports the stack publishes: which are free, which are taken, and by what.

Used before ``up`` (fail before starting anything) and by the doctor (one line each).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockwork import runner

if TYPE_CHECKING:
    from dockwork.compose import Compose

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

    def fix(self, env_file: str) -> str:
        """How to free the stack from the clash."""
        if self.variable:
            return f"set {self.variable} in {env_file} (or the environment) to a free port"
        return f"change the published port of service {self.service!r} in the compose files"

    def in_use_message(self, env_file: str) -> str:
        """What to tell the user when another program holds the port."""
        return (
            f"port {self.port} ({self.service}) is in use on {self.host_ip} by another program; "
            f"{self.fix(env_file)}, or stop that program."
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


def taken(compose: Compose, resolved: dict[str, Any], ours: set[int]) -> list[Published]:
    """Published ports another program holds (``ours``: those the stack itself publishes),
    each with the variable that sets it. Reads the compose files only, never the engine."""
    busy = [
        p for p in published(resolved) if p.port not in ours and not port_free(p.host_ip, p.port)
    ]
    if not busy:
        return []
    raw = compose.config().add_flag("--no-interpolate").add_option("--format", "json")
    variables = _variables(json.loads(runner.run(raw).stdout))
    return [dataclasses.replace(p, variable=variables.get((p.service, p.index))) for p in busy]


__all__ = ["Published", "port_free", "published", "taken"]
