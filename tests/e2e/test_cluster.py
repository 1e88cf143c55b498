"""`inv deploy.*` on a real three-node swarm (``nox -s cluster``), driven as a user drives a
remote cluster: a Docker context naming the manager, the images built on the manager's
engine and pushed to a registry, every node pulling what it runs. The nodes are engines in
containers on a network of this run's own (:mod:`tests.e2e.cluster_nodes`); the host
engine's swarm is never touched.

Under steady traffic through the proxy's port on the manager's address
(:mod:`tests.e2e.cluster_load`), measured and printed: a drain of a worker running app tasks,
a rolling update to a new commit, a release whose health fails (rolled back on every node),
and a worker's engine killed. The database is pinned to the node labelled ``db=true``; the
rows the app confirmed are counted in it before and after each.

The placement check's own unit tests are in tests/unit/test_swarm_placement.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from dockwork.swarm import keys
from tests.e2e.cluster_load import Traffic
from tests.e2e.cluster_nodes import REGISTRY, Cluster, new_cluster
from tests.e2e.conftest import copy_checkout
from tests.e2e.test_swarm import PASSWORD, assert_clean_failure, request
from tests.helpers import needs_docker

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# -- the cluster ----------------------------------------------------------------------------

#: the production stack's additions for this cluster (a file of deploy_files, as the docs
#: advise): the servers on volumes pinned to the node labelled db=true, the app kept off it
DEPLOY_FILE = """\
services:
  db:
    deploy:
      placement:
        constraints: [node.labels.db == true]
  cache:
    deploy:
      placement:
        constraints: [node.labels.db == true]
  app:
    deploy:
      placement:
        constraints: [node.labels.db != true]
"""
#: the port the proxy publishes on each node (each node is a network namespace of its own)
APP_PORT = 18000
DB_NODE_NAME = "node3"


@dataclass
class Measured:
    scenario: str
    sent: int
    failed: int
    converged: float
    rows_before: int
    rows_after: int
    note: str = ""


@dataclass
class ClusterDeployment:
    """A git checkout of the project, deployed to the cluster through a Docker context."""

    cluster: Cluster
    root: Path
    stack: str
    env: dict[str, str]
    commits: list[str] = field(default_factory=list)
    measured: list[Measured] = field(default_factory=list)

    def inv(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.env,
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
        git = ["git", "-C", str(self.root), "-c", "user.name=e2e", "-c", "user.email=e@e.test"]
        subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True, capture_output=True)
        head = subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.commits.append(head)
        return head

    @property
    def url(self) -> str:
        """The proxy's port on the manager's address in the cluster's network."""
        return f"http://{self.cluster.nodes['node1'].address}:{APP_PORT}"

    def image(self, commit: str) -> str:
        return f"{REGISTRY}/dockwork-{self.stack}-app:{commit}"

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"

    def spec_image(self, name: str) -> str:
        out = self.cluster.manager("service", "inspect", self.service(name), check=True).stdout
        return str(json.loads(out)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])

    def placed(self, name: str) -> dict[str, int]:
        """Hostname → the service's running tasks there."""
        counts: dict[str, int] = {}
        for task in self.cluster.running(self.service(name)):
            counts[task["Hostname"]] = counts.get(task["Hostname"], 0) + 1
        return counts

    def containers(self, name: str) -> dict[str, set[str]]:
        """Hostname → the images of the service's containers each node's own engine runs
        (what is really there, not the swarm's record)."""
        found: dict[str, set[str]] = {}
        for hostname in self.cluster.nodes:
            listed = self.cluster.on(
                hostname,
                "ps",
                "--filter",
                f"label=com.docker.swarm.service.name={self.service(name)}",
                "--format",
                "{{.Image}}",
            )
            if listed.returncode == 0 and listed.stdout.split():
                found[hostname] = {i.split("@", 1)[0] for i in listed.stdout.split()}
        return found

    def sql(self, query: str) -> str:
        """A query in the database, on the node that runs it (over its local socket)."""
        db = self.cluster.on(
            DB_NODE_NAME,
            "ps",
            "--quiet",
            "--filter",
            f"label=com.docker.swarm.service.name={self.service('db')}",
            check=True,
        ).stdout.split()
        assert len(db) == 1, f"one database container on {DB_NODE_NAME}: {db}"
        out = self.cluster.on(
            DB_NODE_NAME, "exec", db[0], "psql", "-U", "app", "-d", "app", "-tAc", query, check=True
        )
        return out.stdout.strip()

    def rows(self) -> int:
        return int(self.sql("SELECT count(*) FROM users"))

    def check_rows(self, before: int, traffic: Traffic) -> int:
        """Every user the app confirmed is in the database, nothing lost; the count."""
        after = self.rows()
        like = f"SELECT email FROM users WHERE email LIKE '{traffic.tag}-%'"  # noqa: S608 - ours
        emails = set(self.sql(like).split())
        missing = sorted(set(traffic.created) - emails)
        assert not missing, f"confirmed users missing from the database: {missing[:5]}"
        assert before + len(traffic.created) <= after, (before, after, traffic)
        assert after <= before + len(traffic.created) + len(traffic.unknown), (before, after)
        return after

    def wait(self, what: str, done: Any, timeout: float = 300) -> float:
        """Seconds until ``done()`` holds (polled); a failure naming ``what`` otherwise."""
        started = time.monotonic()
        while not done():
            if time.monotonic() - started > timeout:
                pytest.fail(f"{what}: not within {timeout:g}s")
            time.sleep(0.5)
        return time.monotonic() - started

    def record(self, measured: Measured, traffic: Traffic) -> None:
        self.measured.append(measured)
        print(  # noqa: T201 - the figures are the point (nox -s cluster shows them)
            f"\ncluster: {measured.scenario}: converged in {measured.converged:.1f}s; {traffic}; "
            f"rows {measured.rows_before} → {measured.rows_after}"
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three engines and a registry of this run's own, removed afterwards (every one)."""
    needs_docker()
    made = new_cluster()
    started = time.monotonic()
    try:
        made.create(
            os.environ.get("DIND_IMAGE", "docker:20.10-dind"),
            os.environ.get("REGISTRY_IMAGE", "registry:2"),
        )
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in made.timings.items())
        print(f"\ncluster: {made.run} ready in {time.monotonic() - started:.1f}s ({timings})")  # noqa: T201
        yield made
    finally:
        made.remove()
        left = made.leftovers()
        assert not left, f"the cluster left these behind: {left}"


@pytest.fixture(scope="module")
def deployment(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterDeployment]:
    """A copy of the checkout under git with the cluster's deploy file; a Docker context
    (in a Docker config directory of its own) naming the manager; the run's images."""
    stack = f"dwcl{uuid.uuid4().hex[:8]}"
    base = tmp_path_factory.mktemp("cluster")
    root = base / stack
    root.mkdir()
    copy_checkout(root)
    (root / "compose.cluster.yaml").write_text(DEPLOY_FILE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    config = base / "docker-config"
    config.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"DOCKER_HOST", "DOCKER_CONTEXT"}}
    env |= {"DOCKER_CONFIG": str(config)}
    # what a user types once: a context for the remote manager
    subprocess.run(
        ["docker", "context", "create", cluster.run, "--docker", f"host={cluster.docker_host}"],
        env=env,
        check=True,
        capture_output=True,
    )
    env |= {
        "DOCKER_CONTEXT": cluster.run,
        "DOCKWORK_PROJECT_NAME": stack,
        "APP_PORT": str(APP_PORT),
        "APP_IMAGE": f"dockwork-{stack}-app:latest",
        "POSTGRES_PASSWORD": PASSWORD,
        "DOCKWORK_DEPLOY_REGISTRY": REGISTRY,
        "DOCKWORK_DEPLOY_FILES": "compose.yaml compose.cluster.yaml",
        # no IPVS in the engines here: DNS round robin, host-mode ports, HAProxy
        "DOCKWORK_DEPLOY_ROUTING": "proxy",
        "DOCKWORK_DEPLOY_MONITOR": "3",
        "DOCKWORK_DEPLOY_TIMEOUT": "420",
        **cluster.images,  # PYTHON_IMAGE=registry:5000/…, POSTGRES_IMAGE=…, HAPROXY_IMAGE=…
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DOCKWORK_DEPLOY_TAG", "DOCKWORK_DEPLOY_STACK"):
        env.pop(name, None)
    d = ClusterDeployment(cluster, root, stack, env)
    d.commit("release 1")
    try:
        yield d
    finally:
        if d.measured:
            print("\ncluster: scenario | requests | failed | converged | rows before → after")  # noqa: T201
            for m in d.measured:
                print(  # noqa: T201
                    f"cluster: {m.scenario} | {m.sent} | {m.failed} | {m.converged:.1f}s | "
                    f"{m.rows_before} → {m.rows_after}{f' ({m.note})' if m.note else ''}"
                )
        shutil.rmtree(base, ignore_errors=True)
        (keys.key_dir() / f"{stack}.key").unlink(missing_ok=True)


@pytest.mark.e2e
@pytest.mark.swarm
def test_a_constraint_no_node_satisfies_is_refused_before_any_change(
    deployment: ClusterDeployment,
) -> None:
    """No node is labelled db=true yet: deploy.up names the constraint and changes nothing
    (no image built or pushed, no secret, no service)."""
    d = deployment
    proc = d.inv("deploy.up")
    assert_clean_failure(
        proc,
        "services.db: node.labels.db == true matches no node",
        "services.cache",
        "docker node update --label-add",
        "Nothing was deployed",
    )
    assert "docker compose" not in proc.stdout + proc.stderr, "nothing was built"
    manager = d.cluster.manager
    for kind in ("service", "secret", "config"):
        assert not manager(kind, "ls", "--quiet").stdout.split(), kind
    assert not any(r.startswith(f"dockwork-{d.stack}") for r in d.cluster.catalog())


@pytest.mark.e2e
@pytest.mark.swarm
def test_deploy_places_the_database_by_label_and_spreads_the_app(
    deployment: ClusterDeployment,
) -> None:
    d = deployment
    c = d.cluster
    c.manager("node", "update", "--label-add", "db=true", DB_NODE_NAME, check=True)
    started = time.monotonic()
    proc = d.ok("deploy.up")
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    print(f"\ncluster: first deploy (build on the manager, push, pulls) {took:.1f}s")  # noqa: T201
    assert f"docker push {d.image(d.commits[-1])}" in output
    assert f"http://{c.nodes['node1'].address}:{APP_PORT}" in output, "the manager's address"
    assert d.spec_image("app").startswith(d.image(d.commits[-1]))

    assert d.placed("db") == {DB_NODE_NAME: 1}
    assert d.placed("cache") == {DB_NODE_NAME: 1}
    volume = f"{d.stack}_db-data"
    volumes = {h: c.on(h, "volume", "ls", "--quiet").stdout.split() for h in c.nodes}
    assert [h for h, names in volumes.items() if volume in names] == [DB_NODE_NAME], volumes
    app = d.placed("app")
    assert sum(app.values()) == 2
    assert len(app) == 2, f"the app's replicas spread over two nodes: {app}"
    assert DB_NODE_NAME not in app
    assert set(d.placed("proxy")) == set(c.nodes), "a proxy on every node"
    # each node running the app pulled its image from the registry itself
    for hostname in app:
        pulled = c.on(hostname, "image", "ls", "--format", "{{.Repository}}").stdout.split()
        assert f"{REGISTRY}/dockwork-{d.stack}-app" in pulled, hostname

    for node in c.nodes.values():  # the proxy answers on every node's address
        url = f"http://{node.address}:{APP_PORT}/health"
        assert request("GET", url)[0] == 200, node.hostname
    status, user = request(
        "POST", f"{d.url}/api/users", {"email": "first@example.test", "name": "A"}
    )
    assert status == 201, user
    assert d.rows() == 1


@pytest.mark.e2e
@pytest.mark.swarm
def test_a_worker_drained_under_load_answers_every_request(deployment: ClusterDeployment) -> None:
    d = deployment
    c = d.cluster
    app = d.placed("app")
    workers = [h for h in app if h not in {"node1", DB_NODE_NAME}]
    assert workers, f"a worker runs app tasks: {app}"
    worker = workers[0]
    before = d.rows()
    with Traffic(d.url, tag=f"drain-{d.stack}", seconds=300) as traffic:
        time.sleep(2)
        c.manager("node", "update", "--availability", "drain", worker, check=True)
        took = d.wait(
            f"the app's tasks to leave {worker}",
            lambda: (p := d.placed("app")) and worker not in p and sum(p.values()) == 2,
        )
        time.sleep(2)
    after = d.check_rows(before, traffic)
    d.record(
        Measured(f"drain {worker}", traffic.sent, traffic.failed, took, before, after), traffic
    )
    assert traffic.failed == 0, str(traffic)
    assert worker not in d.placed("worker")
    c.manager("node", "update", "--availability", "active", worker, check=True)


@pytest.mark.e2e
@pytest.mark.swarm
def test_a_rolling_update_across_nodes_answers_every_request(
    deployment: ClusterDeployment,
) -> None:
    d = deployment
    api = d.root / "src" / "app" / "api.py"
    api.write_text(api.read_text() + "\n# release 2\n")
    tag = d.commit("release 2")
    before = d.rows()
    with Traffic(d.url, tag=f"update-{d.stack}", seconds=600) as traffic:
        started = time.monotonic()
        d.ok("deploy.up")
        took = time.monotonic() - started
        time.sleep(2)
    after = d.check_rows(before, traffic)
    d.record(Measured("rolling update", traffic.sent, traffic.failed, took, before, after), traffic)
    assert traffic.failed == 0, str(traffic)
    assert traffic.sent > took, f"at least one request a second: {traffic}"
    for name in ("app", "worker"):
        assert d.spec_image(name).startswith(d.image(tag)), name
        assert set().union(*d.containers(name).values()) == {d.image(tag)}, name
    print(f"cluster: after the update the app runs on {d.placed('app')}")  # noqa: T201


@pytest.mark.e2e
@pytest.mark.swarm
def test_a_release_failing_its_health_is_rolled_back_on_every_node(
    deployment: ClusterDeployment,
) -> None:
    d = deployment
    good = d.commits[-1]
    api = d.root / "src" / "app" / "api.py"
    source = api.read_text()
    marker = '    """200 when PostgreSQL and Redis both answer; 503 naming each that does not."""\n'
    assert marker in source
    broken = marker + (
        '    return Response({"status": "broken"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)\n'
    )
    api.write_text(source.replace(marker, broken))
    # the production healthcheck gives a new task 60 retries, 1 s apart, before Swarm counts it
    # failed; this release carries a shorter one (as test_swarm's does): what is proven is
    # the rollback on every node, not the retry count
    compose = d.root / "compose.yaml"
    text = compose.read_text()
    probe = "GET /health HTTP/1.0"
    head, sep, tail = text.partition(probe)
    assert sep, "the app's healthcheck is where the test expects it"
    compose.write_text(head + sep + tail.replace("retries: 60", "retries: 4", 1))
    d.commit("release 3: health always fails")
    before = d.rows()
    with Traffic(d.url, tag=f"rollback-{d.stack}", seconds=600) as traffic:
        started = time.monotonic()
        proc = d.inv("deploy.up")
        took = time.monotonic() - started
    after = d.check_rows(before, traffic)
    d.record(
        Measured("failed release rolled back", traffic.sent, traffic.failed, took, before, after),
        traffic,
    )
    assert_clean_failure(proc, "did not go through", "rolled back")
    assert traffic.failed == 0, f"the previous release kept answering: {traffic}"
    for name in ("app", "worker"):
        assert d.spec_image(name).startswith(d.image(good)), name
        # on every node, what its engine runs: the good release only, no mixed versions
        running = d.containers(name)
        assert running, name
        assert all(images == {d.image(good)} for images in running.values()), (name, running)
    subprocess.run(["git", "-C", str(d.root), "checkout", "-q", "HEAD~1"], check=True)
    d.commits.append(good)


@pytest.mark.e2e
@pytest.mark.swarm
def test_a_worker_lost_is_rescheduled_and_loses_no_row(deployment: ClusterDeployment) -> None:
    """A worker running app tasks has its engine killed (a power cut: no task is stopped
    gracefully); Swarm marks it down and starts its tasks elsewhere. The failed requests
    and how long they lasted are measured and printed; no confirmed row is lost."""
    d = deployment
    c = d.cluster
    app = d.placed("app")
    workers = [h for h in app if h not in {"node1", DB_NODE_NAME}]
    if not workers:  # the scheduler put both on the manager: spread them again, as a user would
        argv = ["service", "update", "--force", "--detach=false", d.service("app")]
        print(f"cluster: app on {app}; `docker {' '.join(argv)}` to spread it")  # noqa: T201
        c.manager(*argv, check=True, timeout=300)
        app = d.placed("app")
        workers = [h for h in app if h not in {"node1", DB_NODE_NAME}]
    assert workers, f"a worker runs app tasks: {app}"
    worker = workers[0]
    before = d.rows()
    with Traffic(d.url, tag=f"loss-{d.stack}", seconds=300) as traffic:
        time.sleep(2)
        killed = time.monotonic()
        subprocess.run(
            ["docker", "kill", c.nodes[worker].container], check=True, capture_output=True
        )
        down = d.wait(
            f"the manager to mark {worker} down",
            lambda: c.node_ls()[worker]["Status"]["State"] == "down",
        )
        d.wait(
            "the app's tasks to run elsewhere",
            lambda: (p := d.placed("app")) and worker not in p and sum(p.values()) == 2,
        )
        took = time.monotonic() - killed
        time.sleep(3)
    after = d.check_rows(before, traffic)
    count, span = traffic.disrupted
    note = (
        f"node down after {down:.1f}s; {count} requests failed or took over "
        f"{traffic.slow:g}s, within {span:.1f}s"
    )
    d.record(
        Measured(f"{worker} killed", traffic.sent, traffic.failed, took, before, after, note),
        traffic,
    )
    assert request("GET", f"{d.url}/health")[0] == 200
    assert traffic.failed <= traffic.sent * 0.05, f"most requests answered: {traffic}"
