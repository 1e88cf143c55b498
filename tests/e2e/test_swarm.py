"""`inv deploy.*` on a real single-node Docker Swarm, as a user would run it: a commit deployed
from nothing, a rolling update under load, a broken release rolled back, the stack removed
and deployed again over its volumes. One stack, deployed in turn by the tests of this module
(they run in order, on one xdist worker: ``--dist loadfile``).

The swarm: the engine's, when it is a manager; else this module makes the engine a
single-node swarm and leaves it again afterwards, when nothing else was deployed meanwhile
and no container runs (leaving a swarm breaks the DNS of running containers).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dockwork.swarm import keys
from tests.e2e.conftest import copy_checkout
from tests.helpers import needs_docker, remove_project_images

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.swarm]

#: a password with the characters that break naive quoting and interpolation
PASSWORD = "sw-Pa$$word-$HOME"


def docker(
    *args: str, check: bool = False, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, input=stdin, timeout=120
    )


def test_an_engine_that_is_not_a_swarm_gets_told_how_to_make_it_one(tmp_path: Path) -> None:
    """Runs first, before the module makes the engine a swarm (skipped when it is one)."""
    needs_docker()
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    if state != "inactive":
        pytest.skip(f"the engine is a swarm node already ({state})")
    copy_checkout(tmp_path)
    stack = f"dwsw{uuid.uuid4().hex[:8]}"
    # no secret in the environment either: whatever the engine, nothing can be deployed
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    env |= {"DOCKWORK_PROJECT_NAME": stack, "DOCKWORK_DEPLOY_TAG": "never-built"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "deploy.up"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert_clean_failure(proc, "not part of a swarm", "docker swarm init", "Nothing was deployed")
    assert not docker("image", "ls", "--quiet", "dockwork-app:never-built").stdout.strip()


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    """The engine as a swarm manager for the module's tests."""
    needs_docker()
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    node, _, manager = state.stdout.strip().partition(" ")
    created = False
    if node == "inactive":
        init = docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        # another run may have made it a swarm a moment ago: then it is theirs to leave
        created = init.returncode == 0
        if not created and "already part of a swarm" not in init.stderr:
            pytest.fail(f"`docker swarm init` failed: {init.stderr}")
    elif node != "active" or manager != "true":
        pytest.skip(f"the engine is a swarm node that is not a manager ({node}): deploys need one")
    yield
    if not created or docker("service", "ls", "--quiet").stdout.strip():
        return
    # leaving a swarm breaks name resolution in the containers then running on the engine
    # (20.10: their embedded DNS stops answering until their network is recreated): with
    # another run's stack or test servers up, the engine stays a swarm
    running = docker("ps", "--quiet").stdout.split()
    if running:
        print(  # noqa: T201 - shown with -s, and in the session's output
            f"\nswarm: the engine stays a swarm manager: leaving now would break name "
            f"resolution in the {len(running)} running container(s). `docker swarm leave "
            "--force` once they are gone."
        )
        return
    docker("swarm", "leave", "--force")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    """A git checkout of the project, deployed as a stack of its own."""

    root: Path
    stack: str
    port: int
    env: dict[str, str]
    commits: list[str] = field(default_factory=list)

    def inv(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.inv(*args)
        if proc.returncode != 0:
            pytest.fail(
                f"`inv {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def commit(self, message: str) -> str:
        git = [
            "git",
            "-C",
            str(self.root),
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.test",
        ]
        subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True, capture_output=True)
        head = subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.commits.append(head)
        return head

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service(self, name: str) -> dict[str, Any]:
        out = docker("service", "inspect", f"{self.stack}_{name}", check=True).stdout
        return json.loads(out)[0]  # type: ignore[no-any-return]

    def image(self, name: str) -> str:
        return str(self.service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])

    def running(self, name: str) -> list[dict[str, Any]]:
        """The service's running tasks."""
        ids = docker(
            "service",
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            f"{self.stack}_{name}",
        ).stdout.split()
        tasks = json.loads(docker("inspect", *ids).stdout) if ids else []
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def secrets(self) -> list[str]:
        """The names of the secrets dockwork created for the stack."""
        return sorted(
            docker(
                "secret",
                "ls",
                "--filter",
                f"label=dev.dockwork.stack={self.stack}",
                "--format",
                "{{.Name}}",
            ).stdout.split()
        )

    def job_runs(self) -> int:
        ids = docker("service", "ps", "--quiet", f"{self.stack}_migrate").stdout.split()
        return len(ids)


def request(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Load:
    """About 20 requests a second against ``url`` until stopped: the counts of each answer."""

    def __init__(self, url: str, rate: float = 20) -> None:
        self.url, self.interval = url, 1 / rate
        self.answers: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.seconds = 0.0

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:  # noqa: S310
                    self.answers[str(response.status)] += 1
            except urllib.error.HTTPError as exc:
                self.answers[str(exc.code)] += 1
            except OSError as exc:
                self.answers[type(exc).__name__] += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        self.seconds = time.monotonic() - start

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def failures(self) -> int:
        return sum(n for answer, n in self.answers.items() if answer != "200")

    def __str__(self) -> str:
        total = sum(self.answers.values())
        return f"{total} requests in {self.seconds:.1f}s, answers {dict(self.answers)}"


def wait_sent(base: str, user_id: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, user = request("GET", f"{base}/api/users/{user_id}")
        if status == 200 and user["outbox"] and all(m["status"] == "sent" for m in user["outbox"]):
            return
        time.sleep(0.5)
    pytest.fail(f"the worker did not send user {user_id}'s welcome email within {timeout}s")


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Non-zero, no traceback, the message names what is wrong."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output


@pytest.fixture(scope="module")
def deployment(
    swarm: None,  # noqa: ARG001 - the swarm must exist first
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """A copy of the checkout under git (the images are tagged with its commit), a stack
    name, images and a port of its own; the stack, its volumes, secrets and images removed
    afterwards."""
    stack = f"dwsw{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("swarm") / stack
    root.mkdir()
    copy_checkout(root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    port = free_port()
    env = {
        **os.environ,
        "DOCKWORK_PROJECT_NAME": stack,
        "APP_PORT": str(port),
        # images of this stack's own: removing them never touches another run's
        "APP_IMAGE": f"dockwork-{stack}-app:latest",
        "POSTGRES_PASSWORD": PASSWORD,
        # the sandbox's engine has no IPVS (no virtual IPs, no ingress mesh)
        "DOCKWORK_DEPLOY_ROUTING": os.environ.get("DOCKWORK_TEST_SWARM_ROUTING", "proxy"),
        "DOCKWORK_DEPLOY_MONITOR": "3",
        "DOCKWORK_DEPLOY_TIMEOUT": "420",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DOCKWORK_DEPLOY_TAG", "DOCKWORK_DEPLOY_STACK"):
        env.pop(name, None)
    d = Deployment(root, stack, port, env)
    d.commit("release 1")
    try:
        yield d
    finally:
        d.inv("deploy.rm", "--volumes", "--yes")
        images = docker("image", "ls", "--quiet", f"dockwork-{stack}-app").stdout.split()
        if images:
            docker("image", "rm", "--force", *set(images))
        remove_project_images(stack)  # the builds that lost the shared tag to another service
        shutil.rmtree(root, ignore_errors=True)
        (keys.key_dir() / f"{stack}.key").unlink(missing_ok=True)


def test_bad_input_changes_nothing(deployment: Deployment) -> None:
    d = deployment
    no_secret = {k: v for k, v in d.env.items() if k != "POSTGRES_PASSWORD"}
    assert_clean_failure(
        d.inv("deploy.up", env=no_secret), "POSTGRES_PASSWORD", "Nothing was deployed"
    )

    compose = d.root / "compose.yaml"
    original = compose.read_text()
    compose.write_text(original.replace("  worker:\n", "  worker:\n    privileged: true\n", 1))
    try:
        proc = d.inv("deploy.up", "--no-build")
        assert_clean_failure(proc, "services.worker.privileged")
        assert proc.returncode == 2
        assert_clean_failure(d.inv("deploy.render"), "services.worker.privileged")
    finally:
        compose.write_text(original)

    # a Compose project's database volume of the same name: never a second server on it
    volume = f"{d.stack}_db-data"
    docker(
        "volume", "create", "--label", f"com.docker.compose.project={d.stack}", volume, check=True
    )
    try:
        proc = d.inv("deploy.up", "--no-build")
        assert_clean_failure(proc, volume, "deploy_stack", "Nothing was deployed")
    finally:
        docker("volume", "rm", volume, check=True)

    assert_clean_failure(d.inv("deploy.ps"), d.stack)
    assert_clean_failure(d.inv("deploy.rm", "--volumes"), "--yes")
    assert not docker(
        "service", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={d.stack}"
    ).stdout.strip()
    assert not docker(
        "secret", "ls", "--quiet", "--filter", f"label=dev.dockwork.stack={d.stack}"
    ).stdout.strip()


def test_a_volume_or_host_path_a_compose_project_uses_is_refused(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The stack's compose file keeps a volume's own `name:`, an `external` volume, a bind
    mount: each one a Compose project's container (running, then stopped) also mounts is
    refused before anything changes, naming it and the project; never two servers on one
    data directory."""
    d = deployment
    project = f"dwswc{uuid.uuid4().hex[:8]}"
    named = f"{project}-pgdata"  # Compose creates it (`name:`), labelled with its project
    external = f"{project}-ext"  # made outside Compose: only the container tells
    data = d.root / "pgdata"  # the stack's `./pgdata`, bound by the project too
    data.mkdir()
    docker("volume", "create", external, check=True)
    legacy = tmp_path / project
    legacy.mkdir()
    (legacy / "compose.yaml").write_text(
        f"""\
services:
  db:
    image: {os.environ.get("POSTGRES_IMAGE", "postgres:17")}
    entrypoint: ["sleep", "infinity"]
    stop_signal: SIGKILL
    volumes:
      - pgdata:/var/lib/postgresql/data
      - ext:/srv/ext
      - {data}:/srv/pgdata
volumes:
  pgdata:
    name: {named}
  ext:
    name: {external}
    external: true
"""
    )
    legacy_compose = ["compose", "-p", project, "--project-directory", str(legacy)]
    compose = d.root / "compose.yaml"
    original = compose.read_text()
    volume = "      - db-data:/var/lib/postgresql/data\n"
    declared = "volumes:\n  db-data:\n"
    assert volume in original
    assert declared in original
    variants = {
        f"volume {named}": original.replace(declared, f"{declared}    name: {named}\n"),
        f"volume {external}": original.replace(
            declared, f"{declared}    name: {external}\n    external: true\n"
        ),
        f"host path {data}": original.replace(
            volume, "      - ./pgdata:/var/lib/postgresql/data\n"
        ),
    }
    try:
        docker(*legacy_compose, "up", "--detach", check=True)
        for state in ("running", "exited"):
            if state == "exited":
                docker(*legacy_compose, "stop", check=True)
            for shared, text in variants.items():
                compose.write_text(text)
                proc = d.inv("deploy.up", "--no-build")
                assert_clean_failure(
                    proc, shared, f"Compose project {project}", state, "Nothing was deployed"
                )
        # the project gone (its containers removed, Compose's own volume with them), an
        # external volume only the stack uses passes the check: here deploy.up stops at the
        # next step, the images not built yet (--no-build)
        docker(*legacy_compose, "down", "--volumes", check=True)
        compose.write_text(variants[f"volume {external}"])
        proc = d.inv("deploy.up", "--no-build")
        assert_clean_failure(proc, "is not on this engine")
        assert "Compose project" not in proc.stdout + proc.stderr
    finally:
        compose.write_text(original)
        docker(*legacy_compose, "down", "--volumes")
        docker("volume", "rm", external)
        shutil.rmtree(data, ignore_errors=True)
    assert not docker(
        "service", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={d.stack}"
    ).stdout.strip()
    assert not docker(
        "secret", "ls", "--quiet", "--filter", f"label=dev.dockwork.stack={d.stack}"
    ).stdout.strip()


def test_deploy_from_nothing(deployment: Deployment) -> None:
    d = deployment
    started = time.monotonic()
    proc = d.ok("deploy.up")
    print(f"\nswarm: first deploy (build included) {time.monotonic() - started:.1f}s")  # noqa: T201
    output = proc.stdout + proc.stderr
    assert "docker stack deploy" in output, "the swarm commands are echoed"
    assert f"is up at {d.commits[-1]}" in output
    assert d.image("app") == f"dockwork-{d.stack}-app:{d.commits[-1]}"
    assert len(d.running("app")) == 2
    for service in ("worker", "db", "cache", "proxy"):
        assert len(d.running(service)) == 1, service
    assert d.job_runs() == 1, "the migration job ran once"

    assert request("GET", f"{d.url}/health") == (
        200,
        {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
    )
    status, user = request(
        "POST", f"{d.url}/api/users", {"email": f"{d.stack}@example.test", "name": "Swarm"}
    )
    assert status == 201, user
    wait_sent(d.url, user["id"])

    # the secret: in a Docker secret only, never in the service specs or the stack file
    # (`docker stack deploy` would have turned a leaked "$$" into "$": look for the start)
    for service in ("db", "app", "worker", "migrate"):
        assert "sw-Pa" not in json.dumps(d.service(service)), service
    rendered = d.ok("deploy.render").stdout
    assert "sw-Pa" not in rendered
    assert "DATABASE_URL_FILE: /run/secrets/" in rendered
    secrets = d.secrets()
    assert len(secrets) == 2, secrets  # POSTGRES_PASSWORD and the DATABASE_URL built from it
    # named by an HMAC under the stack's key, kept in the user's cache, not the repository:
    # not by a hash of the value alone, which `docker secret ls` would let anyone test
    key = keys.key_dir() / f"{d.stack}.key"
    assert key.stat().st_mode & 0o777 == 0o600
    salt = f"dockwork:{d.stack}:POSTGRES_PASSWORD".encode()
    old = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16).hex()[:12]
    assert f"{d.stack}_postgres_password_{old}" not in secrets
    assert not list(d.root.rglob("*.key")), "the key stays out of the checkout"


def test_rolling_update_under_load_answers_every_request(deployment: Deployment) -> None:
    d = deployment
    status, users = request("GET", f"{d.url}/api/users/1")
    assert status == 200, users
    api = d.root / "src" / "app" / "api.py"
    api.write_text(api.read_text() + "\n# release 2\n")
    tag = d.commit("release 2")
    runs = d.job_runs()
    secrets = d.secrets()
    db_tasks = [t["ID"] for t in d.running("db")]
    with Load(f"{d.url}/api/users/1") as load:
        started = time.monotonic()
        d.ok("deploy.up")
        took = time.monotonic() - started
        time.sleep(2)
    print(f"\nswarm: rolling update {took:.1f}s; {load}")  # noqa: T201
    assert load.failures == 0, str(load)
    # the whole update under load (a loaded machine answers fewer than 20 a second)
    assert load.seconds >= took, str(load)
    assert sum(load.answers.values()) > took, f"at least one request a second: {load}"
    assert d.image("app") == f"dockwork-{d.stack}-app:{tag}"
    assert d.image("worker") == f"dockwork-{d.stack}-app:{tag}"
    assert all(t["Spec"]["ContainerSpec"]["Image"].endswith(tag) for t in d.running("app"))
    assert d.job_runs() == runs + 1, "the migrations ran once for the release"
    # the same secret values keep their names: the database was not restarted for them
    assert d.secrets() == secrets
    assert [t["ID"] for t in d.running("db")] == db_tasks


def test_a_release_failing_its_healthcheck_is_rolled_back(deployment: Deployment) -> None:
    d = deployment
    good = d.commits[-1]
    api = d.root / "src" / "app" / "api.py"
    source = api.read_text()
    broken = re.sub(
        r'(    """200 when PostgreSQL and Redis both answer; 503 naming each that does not\."""\n)',
        r'\1    return Response({"status": "broken"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)\n',
        source,
    )
    assert broken != source
    api.write_text(broken)
    # The production healthcheck gives a new task 60 retries, 1 s apart, before Swarm counts it
    # failed; this release carries its own, shorter one, so the test waits seconds, not a
    # minute, for the same rollback (what is proven is the rollback, not the retry count).
    compose = d.root / "compose.yaml"
    text = compose.read_text()
    probe = "GET /health HTTP/1.0"
    head, sep, tail = text.partition(probe)
    assert sep, "the app's healthcheck is where the test expects it"
    compose.write_text(head + sep + tail.replace("retries: 60", "retries: 4", 1))
    d.commit("release 3: health always fails")
    with Load(f"{d.url}/health") as load:
        started = time.monotonic()
        proc = d.inv("deploy.up")
        took = time.monotonic() - started
    print(f"\nswarm: failed release detected and rolled back in {took:.1f}s; {load}")  # noqa: T201
    assert_clean_failure(proc, "did not go through", "app", "rolled back")
    assert d.image("app") == f"dockwork-{d.stack}-app:{good}"
    assert d.image("worker") == f"dockwork-{d.stack}-app:{good}", "the worker is rolled back too"
    assert load.failures == 0, f"the previous release kept answering: {load}"
    assert len(d.running("app")) == 2
    assert all(t["Spec"]["ContainerSpec"]["Image"].endswith(good) for t in d.running("app"))
    subprocess.run(["git", "-C", str(d.root), "checkout", "-q", "HEAD~1"], check=True)
    d.commits.append(good)


def test_rm_keeps_the_data_and_a_new_deploy_finds_it(deployment: Deployment) -> None:
    """Also while a task still holds the stack's network: Swarm then refuses to remove it
    (what a loaded manager does with a task it has not yet stopped) and `deploy.rm` asks
    again until it can. Here a service of the test's holds it until the retry is seen."""
    d = deployment
    status, before = request("GET", f"{d.url}/api/users/1")
    assert status == 200
    guest = f"{d.stack}-guest"
    network = f"{d.stack}_default"
    image = d.image("app")
    # a service on the network holds it from its creation on (its task need not run yet)
    docker("service", "create", "--detach", "--quiet", "--name", guest, "--network", network,
           "--stop-grace-period", "1s", "--restart-condition", "none", image, "sleep", "600",
           check=True)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "deploy.rm"],
        cwd=d.root,
        env=d.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = threading.Timer(600, proc.kill)  # a hung engine fails the test, not the run
    deadline.start()
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        for line in proc.stdout:
            seen.append(line)
            if "asking again" in line:
                docker("service", "rm", guest, check=True)
                break
        rest, _ = proc.communicate()
        output = "".join(seen) + rest
        assert proc.returncode == 0, output
    finally:
        deadline.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        docker("service", "rm", guest)
    assert "asking again" in output, "the network was held: the first `docker stack rm` fails"
    assert output.count("docker stack rm") >= 2, output
    label = f"label=com.docker.stack.namespace={d.stack}"
    assert not docker("service", "ls", "--quiet", "--filter", label).stdout.strip()
    assert not docker(
        "secret", "ls", "--quiet", "--filter", f"label=dev.dockwork.stack={d.stack}"
    ).stdout.strip()
    volumes = docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
    assert f"{d.stack}_db-data" in volumes

    d.ok("deploy.up", "--no-build")  # the images of this commit are there already
    assert request("GET", f"{d.url}/api/users/1") == (200, before)


class FaultyEngine:
    """A socket in front of the engine's that passes every request on, except those
    matching ``refuse``, which get the error an engine gives (500, its JSON message): a fault
    of the engine's answer, everything else real."""

    def __init__(self, upstream: str, path: Path, refuse: str) -> None:
        self.upstream, self.path, self.refuse = upstream, path, re.compile(refuse)
        self.refused: list[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def __enter__(self) -> FaultyEngine:
        self._server.bind(str(self.path))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        """One request a connection (asked with `Connection: close`), so each is seen."""
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            if self.refuse.match(lines[0]):
                self.refused.append(lines[0])
                body = json.dumps({"message": "volume listing refused: fault injected"}).encode()
                client.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                return
            kept = [ln for ln in lines if not ln.lower().startswith("connection:")]
            request = "\r\n".join([*kept, "Connection: close", "", ""]).encode("latin-1")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
                engine.connect(self.upstream)
                engine.sendall(request + rest)
                threading.Thread(target=self._pipe, args=(client, engine), daemon=True).start()
                self._pipe(engine, client)

    @staticmethod
    def _pipe(source: socket.socket, dest: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                dest.sendall(chunk)
        except OSError:
            return


def test_rm_of_the_volumes_fails_when_they_cannot_be_listed(deployment: Deployment) -> None:
    """The engine refuses to list volumes: `deploy.rm --volumes --yes` says so and exits
    non-zero, having removed nothing (never "done" with the data still there)."""
    d = deployment
    host = docker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}").stdout.strip()
    host = os.environ.get("DOCKER_HOST") or host
    if not host.startswith("unix://"):
        pytest.skip(f"the engine is not on a local socket ({host})")
    label = f"label=com.docker.stack.namespace={d.stack}"
    volumes = docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
    assert f"{d.stack}_db-data" in volumes
    services = docker("service", "ls", "--quiet", "--filter", label).stdout.split()
    assert services
    # a short path: a socket's may not be longer than 107 bytes
    with tempfile.TemporaryDirectory(prefix="dwsw") as short:
        sock = Path(short) / "engine.sock"
        refuse = r"GET /v[\d.]+/volumes(\?| )"
        with FaultyEngine(host.removeprefix("unix://"), sock, refuse) as engine:
            faulty = {**d.env, "DOCKER_HOST": f"unix://{sock}"}
            proc = d.inv("deploy.rm", "--volumes", "--yes", env=faulty)
    assert engine.refused, "the volumes were asked for"
    assert_clean_failure(proc, "could not be listed", "fault injected", "Nothing was removed")
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("dockwork:")]
    assert len(said) == 1, proc.stdout + proc.stderr
    assert docker("volume", "ls", "--quiet", "--filter", label).stdout.split() == volumes
    assert docker("service", "ls", "--quiet", "--filter", label).stdout.split() == services
