"""`inv up` / `inv down` over the real stack: health, the worker round trip, persistence."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback only
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_sent(base: str, user_id: int, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, fetched = http("GET", f"{base}/api/users/{user_id}")
        if status == 200 and fetched["outbox"] and fetched["outbox"][0]["status"] == "sent":
            return
        assert time.monotonic() < deadline, f"the email was never sent: {fetched}"
        time.sleep(0.5)


def assert_redis_outage_loses_no_email(stack: Stack, base: str) -> None:
    """Redis stopped: a new user is still 201; Redis back: their email goes out."""
    assert stack.compose("stop", "cache").returncode == 0
    email = f"outage-{uuid.uuid4().hex[:8]}@example.test"
    status, user = http("POST", f"{base}/api/users", {"email": email, "name": "Outage"})
    assert status == 201, user
    assert user["outbox"][0]["status"] == "pending"
    assert stack.compose("start", "cache").returncode == 0
    wait_sent(base, user["id"], timeout=120)


def assert_forwarded_headers_are_not_trusted(stack: Stack, base: str) -> None:
    """A client cannot claim another address through X-Forwarded-For."""
    request = urllib.request.Request(f"{base}/api/users/424242")  # noqa: S310 - loopback
    request.add_header("X-Forwarded-For", "203.0.113.77")
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    time.sleep(0.5)
    logs = stack.compose("logs", "app").stdout
    line = next(x for x in logs.splitlines() if "/api/users/424242" in x)
    assert "203.0.113.77" not in line, line
    # the Redis outage above may have logged a failing (503) check: only the 200s stay out
    assert '"GET /health HTTP/1.1" 200' not in logs, "successful health checks stay out of the log"


@pytest.mark.parametrize("stack", ["dev", "prod"], indirect=True)
def test_up_round_trip_persistence_and_down(stack: Stack) -> None:
    up = stack.inv("up")
    assert "up --detach --wait" in up.stdout + up.stderr, "the compose command is echoed"
    states = stack.states()
    assert set(states) == {"db", "cache", "migrate", "app", "worker"}
    for service in ("db", "cache", "app", "worker"):
        assert (states[service]["State"], states[service]["Health"]) == ("running", "healthy"), (
            service
        )
    assert (states["migrate"]["State"], states["migrate"]["ExitCode"]) == ("exited", 0)
    if stack.variant == "dev":
        assert (stack.root / ".env").is_file(), "inv up creates .env from .env.example"
        bound = {p["URL"] for p in states["app"]["Publishers"] if p["PublishedPort"]}  # type: ignore[union-attr]
        assert bound == {"127.0.0.1"}, "the dev app (debug on) listens on loopback only"
    else:
        assert not (stack.root / ".env").exists(), "no development credentials in production"

    base = stack.app_url()
    assert http("GET", f"{base}/health") == (
        200,
        {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
    )
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.test"
    status, user = http("POST", f"{base}/api/users", {"email": email, "name": "E2E"})
    assert status == 201, user

    wait_sent(base, user["id"])

    if stack.variant == "prod":
        assert_redis_outage_loses_no_email(stack, base)
        assert_forwarded_headers_are_not_trusted(stack, base)
        uid = stack.compose("exec", "-T", "app", "id", "-u").stdout.strip()
        assert uid not in {"", "0"}, "the production image runs as a non-root user"
        tools = stack.compose(
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "command -v uv gcc cc pip-compile node npm npx; "
            "ls -d /root/.cache/uv /root/.npm /srv/web/node_modules 2>/dev/null; true",
        )
        assert tools.stdout.strip() == "", f"runtime stage carries build tools: {tools.stdout}"
        built = stack.compose("exec", "-T", "app", "ls", "/srv/web", "/srv/web/assets").stdout
        assert "index.html" in built, f"the built frontend is not in the image: {built}"
        assert ".js" in built, f"the built frontend is not in the image: {built}"
        names = ("dockwork", "invoke", "docker", "nox", "pytest")
        probe = f"import importlib.util as u; print([m for m in {names!r} if u.find_spec(m)])"
        toolkit = stack.compose("exec", "-T", "app", "python", "-c", probe).stdout.strip()
        assert toolkit == "[]", f"the production image carries the toolkit: {toolkit}"
        # SIGTERM: uvicorn finishes and exits 0 within the grace period (not killed: 137)
        assert stack.compose("stop", "app", "worker").returncode == 0
        for service in ("app", "worker"):
            assert stack.states()[service]["ExitCode"] == 0, f"{service} did not stop cleanly"

    stack.inv("down")
    assert stack.containers() == [], "inv down leaves no container of the project"
    stack.inv("up")
    status, again = http("GET", f"{stack.app_url()}/api/users/{user['id']}")
    assert status == 200
    assert again["email"] == email, "rows survive inv down + inv up (named volume)"
    assert again["outbox"][0]["status"] == "sent"

    stack.inv("down")
    assert stack.containers() == []


def test_unhealthy_service_fails_up_and_shows_its_logs(stack: Stack) -> None:
    broken = stack.root / "broken.yaml"
    broken.write_text(
        "services:\n"
        "  worker:\n"
        '    command: ["sh", "-c", "echo broken-worker-marker; exit 3"]\n'
        '    restart: "no"\n'
    )
    stack.env["DOCKWORK_COMPOSE_FILES"] = "compose.yaml compose.override.yaml broken.yaml"
    stack.env["DOCKWORK_WAIT_TIMEOUT"] = "60"
    result = stack.inv("up", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "failing: worker" in output
    assert "broken-worker-marker" in output, "the failing service's last log lines are shown"
    assert "Traceback" not in output


@pytest.mark.parametrize("stack", ["prod"], indirect=True)
def test_source_only_change_keeps_the_dependency_layer_cached(stack: Stack) -> None:
    # plain `docker compose`, as a user would run it after `cp .env.example .env`
    shutil.copyfile(stack.root / ".env.example", stack.root / ".env")
    stack.env["BUILDKIT_PROGRESS"] = "plain"
    first = stack.compose("build", "app")
    assert first.returncode == 0, first.stderr
    # unique content: BuildKit's cache is content-addressed, so a probe that an earlier run
    # already built would be (rightly) a cache hit
    probe = f'"""Probe {uuid.uuid4().hex}."""\n'
    (stack.root / "src" / "app" / "cache_probe.py").write_text(probe)
    second = stack.compose("build", "app")
    assert second.returncode == 0, second.stderr
    log = second.stdout + second.stderr
    steps = re.findall(r"^#(\d+) \[[^\]]*\] (.+)$", log, re.MULTILINE)
    cached = set(re.findall(r"^#(\d+) CACHED$", log, re.MULTILINE))
    by_text = {text: num for num, text in steps}
    deps = [n for t, n in by_text.items() if "uv sync --locked --only-group app" in t]
    app = [n for t, n in by_text.items() if t.startswith("COPY src/app")]
    assert deps, log
    assert app, log
    assert deps[0] in cached, "the locked dependency layer is rebuilt by a source change"
    assert app[0] not in cached, "the source layer is rebuilt"
