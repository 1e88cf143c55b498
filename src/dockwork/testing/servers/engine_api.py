"""A small client for the Docker Engine API: the calls the test servers need, over the
engine's socket (or plain/TLS TCP), with the standard library only.

The Docker SDK costs ~0.2 s to import (requests, urllib3, …), which a test session pays
before its first test; these few JSON calls cost ~1 ms each to prepare. Requests go to
unversioned paths: the engine answers with its own API version, so old and new engines
both work. Errors become :class:`ApiError` (status and the engine's message).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from dockwork.engine_probe import docker_host

DEFAULT_SOCKET = "/var/run/docker.sock"


class ApiError(Exception):
    """The engine answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.status = status
        self.explanation = message


@dataclass(frozen=True, slots=True)
class Answer:
    """An engine's answer, read whole."""

    status: int
    reason: str
    data: bytes
    headers: http.client.HTTPMessage

    def read(self) -> bytes:
        """The body."""
        return self.data

    def getheader(self, name: str) -> str | None:
        """A header's value, None when absent."""
        return self.headers.get(name)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Engine:
    """The engine DOCKER_HOST names (``unix://``, ``tcp://``; TLS per DOCKER_TLS_VERIFY)."""

    def __init__(self, host: str | None = None, *, timeout: float = 60) -> None:
        self.host = host if host is not None else (docker_host() or "")
        self.timeout = timeout
        parts = urlsplit(self.host or f"unix://{DEFAULT_SOCKET}")
        self._scheme = parts.scheme
        if parts.scheme == "unix":
            self._path = parts.path or DEFAULT_SOCKET
        elif parts.scheme in {"tcp", "http", "https"}:
            self._address = (parts.hostname or "127.0.0.1", parts.port or 2375)
        else:
            raise ApiError(
                0,
                f"DOCKER_HOST={self.host}: dockwork's test servers reach the engine over its "
                "socket or TCP; for an ssh:// engine, forward its socket (ssh -L) and point "
                "DOCKER_HOST at it",
            )

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "unix":
            return _UnixConnection(self._path, self.timeout)
        tls = self._scheme == "https" or os.environ.get("DOCKER_TLS_VERIFY", "") not in {"", "0"}
        if not tls:
            return http.client.HTTPConnection(*self._address, timeout=self.timeout)
        import ssl  # noqa: PLC0415 - TLS engines only; ssl costs ~30 ms to import

        certs = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
        return http.client.HTTPSConnection(*self._address, timeout=self.timeout, context=context)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Answer:
        """One call, read whole, its connection closed (a socket left open is a
        ResourceWarning in the tests of a project that runs them with -W error); the answer
        when its status is in ``ok``, else ApiError."""
        url = path + (f"?{urlencode(query)}" if query else "")
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn = self._connection()
        try:
            conn.request(method, url, body=payload, headers=headers)
            response = conn.getresponse()
            answer = Answer(response.status, response.reason, response.read(), response.msg)
        except OSError as exc:
            raise ApiError(
                0,
                f"the Docker engine at {self.host or DEFAULT_SOCKET} does not "
                f"answer: {type(exc).__name__}: {exc}",
            ) from exc
        finally:
            conn.close()
        if answer.status not in ok:
            try:
                message = str(json.loads(answer.data).get("message") or answer.data.decode())
            except ValueError:
                message = answer.data.decode(errors="replace").strip()
            raise ApiError(answer.status, message or answer.reason)
        return answer

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call whose answer is JSON (or nothing)."""
        response = self.request(method, path, **kwargs)
        data = response.read()
        return json.loads(data) if data else None

    # -- the calls ------------------------------------------------------------------------

    def ping(self) -> None:
        """The engine answers."""
        self.request("GET", "/_ping").read()

    def system_time(self) -> str:
        """The engine's clock (RFC 3339)."""
        return str(self.json("GET", "/info")["SystemTime"])

    def containers(self, labels: list[str], *, all_: bool = True) -> list[dict[str, Any]]:
        """Containers carrying every one of ``labels`` (``key=value``)."""
        query = {"all": "1" if all_ else "0", "filters": json.dumps({"label": labels})}
        return list(self.json("GET", "/containers/json", query=query) or [])

    def create(self, name: str, config: dict[str, Any]) -> str:
        """A new container; its id."""
        return str(self.json("POST", "/containers/create", query={"name": name}, body=config)["Id"])

    def start(self, cid: str) -> None:
        """Start it (already started is fine)."""
        self.request("POST", f"/containers/{quote(cid)}/start", ok=(204, 304)).read()

    def inspect(self, cid: str) -> dict[str, Any]:
        """Its state, configuration and network settings."""
        return dict(self.json("GET", f"/containers/{quote(cid)}/json"))

    def logs(self, cid: str, tail: int = 30) -> str:
        """Its last ``tail`` lines of output (stdout and stderr, in order)."""
        query = {"stdout": "1", "stderr": "1", "tail": str(tail)}
        raw = self.request("GET", f"/containers/{quote(cid)}/logs", query=query).read()
        return _demultiplex(raw).decode(errors="replace")

    def kill(self, cid: str) -> None:
        """SIGKILL; gone or already stopped is fine."""
        self.request("POST", f"/containers/{quote(cid)}/kill", ok=(204, 404, 409)).read()

    def remove(self, cid: str) -> None:
        """Kill and remove, volumes too; gone, or being removed by someone else, is fine."""
        query = {"force": "1", "v": "1"}
        self.request("DELETE", f"/containers/{quote(cid)}", query=query, ok=(204, 404, 409)).read()

    def wait(self, cid: str) -> int:
        """Until it exits; its exit code."""
        return int(self.json("POST", f"/containers/{quote(cid)}/wait")["StatusCode"])

    def exec(self, cid: str, argv: list[str]) -> None:
        """Run ``argv`` in it, detached (the heartbeat)."""
        created = self.json("POST", f"/containers/{quote(cid)}/exec", body={"Cmd": argv})
        self.request("POST", f"/exec/{created['Id']}/start", body={"Detach": True}).read()

    def file_mtime(self, cid: str, path: str) -> str | None:
        """A file's modification time in the container (engine clock), None if absent."""
        response = self.request(
            "HEAD", f"/containers/{quote(cid)}/archive", query={"path": path}, ok=(200, 404)
        )
        response.read()
        header = response.getheader("X-Docker-Container-Path-Stat")
        if response.status == 404 or not header:  # noqa: PLR2004
            return None
        return str(json.loads(base64.b64decode(header))["mtime"])

    def image(self, name: str) -> dict[str, Any] | None:
        """An image's inspection, None when it is not here."""
        try:
            return dict(self.json("GET", f"/images/{quote(name, safe='')}/json"))
        except ApiError as exc:
            if exc.status == 404:  # noqa: PLR2004
                return None
            raise

    def pull(self, name: str) -> None:
        """Pull an image (its progress is read and dropped; a failure raises)."""
        repo, _, tag = (
            name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        )
        response = self.request("POST", "/images/create", query={"fromImage": repo, "tag": tag})
        for line in response.read().splitlines():
            message = json.loads(line) if line.strip() else {}
            if "error" in message:
                raise ApiError(500, str(message["error"]))

    def commit(self, cid: str, repo: str, tag: str, changes: list[str]) -> str:
        """An image of the container as it is; its id."""
        query = {"container": cid, "repo": repo, "tag": tag, "changes": "\n".join(changes)}
        return str(self.json("POST", "/commit", query=query)["Id"])


def _demultiplex(raw: bytes) -> bytes:
    """The payload of a non-TTY log stream (8-byte frame headers) or raw output as it is."""
    out, i = bytearray(), 0
    while i + 8 <= len(raw) and raw[i] in {0, 1, 2} and raw[i + 1 : i + 4] == b"\0\0\0":
        size = int.from_bytes(raw[i + 4 : i + 8], "big")
        out += raw[i + 8 : i + 8 + size]
        i += 8 + size
    return bytes(out) if i else raw


__all__ = ["ApiError", "Engine"]
