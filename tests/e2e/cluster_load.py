"""Traffic for the cluster tests: requests at a steady rate to one address (a node's, where
the proxy publishes the app), bounded in count and in time, every answer recorded with when
it came, and a share of them writes (``POST /api/users``) whose rows are checked afterwards.

Like ``test_swarm.Load``, with what a cluster's faults need on top: the requests leave at
the rate whatever the answers do (open loop: a request hanging on a dead node does not hold
back the next ones, so the requests sent during a node's loss are counted, not skipped);
when failures happened and how slow the answers were (how long a node's loss disrupts
them); which writes were confirmed (a row the app said it committed must be in the database
afterwards).
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field


@dataclass
class Traffic:
    """``rate`` requests a second to ``base`` until stopped, or ``limit`` requests, or
    ``seconds``: reads of ``read_path``, and every ``write_every``-th one a new user; at most
    ``parallel`` of them outstanding at once."""

    base: str
    tag: str
    rate: float = 20
    write_every: int = 5
    limit: int = 12_000
    seconds: float = 600
    timeout: float = 10
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    #: (seconds since the start, what went wrong) of each failed request
    failures: list[tuple[float, str]] = field(default_factory=list)
    #: the emails of the users the app answered 201 for
    created: list[str] = field(default_factory=list)
    #: writes with no answer (a timeout, a reset): committed or not, nobody knows
    unknown: list[str] = field(default_factory=list)
    read_path: str = "/health"
    elapsed: float = 0.0
    #: (seconds since the start, seconds it took, answered well) of each request
    timings: list[tuple[float, float, bool]] = field(default_factory=list)
    #: an answer slower than this counts as disrupted (not failed) in :attr:`disrupted`
    slow: float = 1.0
    parallel: int = 64

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = self._start = time.monotonic()
        interval = 1 / self.rate
        slots = threading.BoundedSemaphore(self.parallel)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for sent in range(1, self.limit + 1):
                due = start + (sent - 1) * interval
                if self._stop.wait(max(0.0, due - time.monotonic())) or due - start > self.seconds:
                    break
                slots.acquire()  # more than `parallel` outstanding: the rate drops, and shows
                at = time.monotonic() - start
                if sent % self.write_every == 0:
                    job = pool.submit(self._write, f"{self.tag}-{sent}@example.test", at)
                else:
                    job = pool.submit(self._read, at)
                job.add_done_callback(lambda _: slots.release())
        self.elapsed = time.monotonic() - start

    def _read(self, at: float) -> None:
        try:
            with urllib.request.urlopen(  # noqa: S310 - the run's own test hosts
                self.base + self.read_path, timeout=self.timeout
            ) as response:
                self._answer(str(response.status), at, ok=response.status == 200)
        except urllib.error.HTTPError as exc:
            self._answer(str(exc.code), at, ok=False)
        except OSError as exc:
            self._answer(type(exc).__name__, at, ok=False)

    def _write(self, email: str, at: float) -> None:
        body = json.dumps({"email": email, "name": "Cluster"}).encode()
        request = urllib.request.Request(  # noqa: S310 - the run's own test hosts
            self.base + "/api/users", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                ok = response.status == 201
                self._answer(f"POST {response.status}", at, ok=ok)
                if ok:
                    with self._lock:
                        self.created.append(email)
        except urllib.error.HTTPError as exc:
            self._answer(f"POST {exc.code}", at, ok=False)
            if exc.code >= 500:
                with self._lock:
                    self.unknown.append(email)
        except OSError as exc:
            self._answer(f"POST {type(exc).__name__}", at, ok=False)
            with self._lock:
                self.unknown.append(email)

    def _answer(self, what: str, at: float, *, ok: bool) -> None:
        took = time.monotonic() - self._start - at
        with self._lock:
            self.answers[what] += 1
            if not ok:
                self.failures.append((at, what))
                self.failures.sort()
            self.timings.append((at, took, ok))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # no new request; those outstanding are waited for (their timeout)
        self._thread.join(timeout=self.timeout + 30)

    @property
    def sent(self) -> int:
        return sum(self.answers.values())

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def disrupted(self) -> tuple[int, float]:
        """Requests that failed or answered slower than :attr:`slow`, and the seconds from the
        first of them being sent to the last one ending."""
        spans = [(at, at + took) for at, took, ok in self.timings if took > self.slow or not ok]
        if not spans:
            return 0, 0.0
        return len(spans), max(end for _, end in spans) - min(at for at, _ in spans)

    @property
    def slowest(self) -> float:
        return max((took for _, took, ok in self.timings if ok), default=0.0)

    def __str__(self) -> str:
        where = (
            f", failures from {self.failures[0][0]:.1f}s to {self.failures[-1][0]:.1f}s"
            if self.failures
            else ""
        )
        count, span = self.disrupted
        slow = f", {count} failed or slower than {self.slow:g}s over {span:.1f}s" if count else ""
        return (
            f"{self.sent} requests in {self.elapsed:.1f}s ({len(self.created)} users created), "
            f"answers {dict(self.answers)}{where}; slowest answer {self.slowest:.2f}s{slow}"
        )


__all__ = ["Traffic"]
