"""Readiness = a real query over TCP in a deadline loop (``SELECT 1``, ``PING``).

A log line or an open port is not proof: the official postgres image starts, initialises,
stops and starts again, and a port published by Docker accepts connections before the
server behind it does.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

from dockwork import urls

Probe = Callable[[], None]


class GaveUpError(Exception):
    """A probe knows waiting longer cannot help (the server's process exited)."""


class NotReadyError(Exception):
    """A service did not answer before the deadline."""

    def __init__(self, service: str, timeout: float, last_error: BaseException | None) -> None:
        self.service = service
        self.last_error = last_error
        super().__init__(
            f"{service} did not answer within {timeout:.3g}s"
            + (f"; last error: {type(last_error).__name__}: {last_error}" if last_error else "")
        )


def postgres_probe(url: str, connect_timeout: float = 2.0) -> Probe:
    """Connect and run ``SELECT 1``."""

    def probe() -> None:
        import psycopg  # noqa: PLC0415

        timeout = max(1, int(connect_timeout))
        with psycopg.connect(urls.libpq(url), connect_timeout=timeout) as conn:
            conn.execute("SELECT 1").fetchone()

    return probe


def redis_probe(url: str, timeout: float = 2.0) -> Probe:
    """Send ``PING`` (after ``AUTH`` when the URL has a password) and expect ``+PONG``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379

    def probe() -> None:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if parts.password:
                user = unquote(parts.username or "default")
                sock.sendall(_resp("AUTH", user, unquote(parts.password)))
                _expect(sock, b"+OK")
            sock.sendall(b"PING\r\n")
            _expect(sock, b"+PONG")

    return probe


def tcp_probe(host: str, port: int, timeout: float = 2.0, hold: float = 0.2) -> Probe:
    """Connect, and the connection stays open for ``hold`` seconds (or the server speaks
    first): Docker's proxy accepts on a published port before anything listens behind it,
    and then closes the connection at once. For servers with no protocol dockwork knows."""

    def probe() -> None:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(hold)
            try:
                first = sock.recv(1)
            except TimeoutError:
                return  # open and quiet: a server waiting for its client to speak
            if not first:
                raise ConnectionError(f"{host}:{port} closed the connection at once")

    return probe


def _resp(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        data = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _expect(sock: socket.socket, prefix: bytes) -> None:
    reply = sock.recv(64)
    if not reply.startswith(prefix):
        raise ConnectionError(f"unexpected reply {reply[:40]!r}")


def wait_until_ready(
    name: str, probe: Probe, *, timeout: float, interval: float = 0.05, max_interval: float = 0.1
) -> float:
    """Run ``probe`` until it succeeds or ``timeout`` passes; return the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    last: BaseException | None = None
    delay = interval
    while True:
        try:
            probe()
        except GaveUpError as exc:
            raise NotReadyError(name, time.monotonic() - start, exc) from exc
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
        else:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise NotReadyError(name, timeout, last)
        time.sleep(delay)
        # a refused loopback connect costs next to nothing: poll often, notice readiness soon
        delay = min(delay * 1.5, max_interval)


def failures(probes: Mapping[str, Probe], *, timeout: float) -> dict[str, NotReadyError]:
    """Wait for every probe concurrently; the ones that never answered, by name."""

    def one(name: str, probe: Probe) -> NotReadyError | None:
        try:
            wait_until_ready(name, probe, timeout=timeout)
        except NotReadyError as exc:
            return exc
        return None

    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - off the import path

    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        futures = {name: pool.submit(one, name, probe) for name, probe in probes.items()}
        outcomes = {name: f.result() for name, f in futures.items()}
    return {name: error for name, error in outcomes.items() if error is not None}
