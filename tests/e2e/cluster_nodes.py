"""A three-node Docker Swarm made of engines in containers, and a registry beside them, for
the cluster tests (``nox -s cluster``): created for one run, on a network of its own, every
container, volume and network labelled with the run and removed afterwards by that label.
The host engine's own swarm state is never touched: every swarm command goes to the engines
inside the containers.

- ``DIND_IMAGE`` engines as nodes (node1 the manager, node2 and node3 workers), started with
  the flags the sandbox documents (no ``--privileged``: all capabilities but
  CAP_SYS_RESOURCE), each with a volume on /var/lib/docker (nested containers fail on the
  container's own filesystem) and ``--insecure-registry=registry:5000``. The manager's API
  is published on 127.0.0.1 (``--host=tcp://0.0.0.0:2375`` inside): this machine drives the
  cluster through it, the way a user drives a remote manager (``DOCKER_HOST`` or a context).
- ``REGISTRY_IMAGE`` on the same network as ``registry`` (how the nodes pull:
  ``registry:5000/…``) and published on 127.0.0.1 (how this machine pushes the base
  images: a loopback registry counts as insecure by default, so plain HTTP is allowed).
- The images the stack runs but does not build (PostgreSQL, Redis, HAProxy) and the build's
  base images (Python, Node) are pushed to the registry once per run; every node pulls what
  it runs from there, as nodes pull from Docker Hub or a company registry.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

#: the label on everything a run creates; its value is the run's name
LABEL = "dev.dockwork.test.cluster"
#: the name the nodes know the registry by (they trust it over plain HTTP)
REGISTRY = "registry:5000"
#: the images the stack and its build use, by the variable that names each (sandbox README)
BASE_IMAGES = {
    "PYTHON_IMAGE": "python:3.12-slim-bookworm",
    "NODE_IMAGE": "node:22-bookworm-slim",
    "POSTGRES_IMAGE": "postgres:17",
    "REDIS_IMAGE": "redis:7",
    "HAPROXY_IMAGE": "haproxy:3.0",
}
#: of those, what the manager needs in its own image store: the build's bases (the 20.10
#: engine's BuildKit does not use --insecure-registry, so it cannot pull them from an HTTP
#: registry: the engine pulls them first) and the images whose entrypoint dockwork reads
MANAGER_PULLS = ("PYTHON_IMAGE", "NODE_IMAGE", "POSTGRES_IMAGE")
ENGINE_TIMEOUT = 90


def host_docker(
    *args: str, check: bool = False, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``docker`` CLI against this machine's engine (never DOCKER_HOST from a test)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DOCKER_HOST", "DOCKER_CONTEXT"}}
    proc = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        input=stdin,
        env=env,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"`docker {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


@dataclass
class NodeBox:
    """One engine in a container: its container, its hostname in the swarm, its address."""

    container: str
    hostname: str
    address: str = ""


@dataclass
class Cluster:
    """The run's nodes and registry (see the module's docstring)."""

    run: str
    nodes: dict[str, NodeBox] = field(default_factory=dict)
    manager_port: int = 0
    registry_port: int = 0
    #: variable → the image's name as the nodes pull it (registry:5000/…)
    images: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def network(self) -> str:
        return f"{self.run}-net"

    @property
    def registry(self) -> str:
        return f"{self.run}-registry"

    @property
    def docker_host(self) -> str:
        """The manager's API as this machine reaches it."""
        return f"tcp://127.0.0.1:{self.manager_port}"

    def manager(
        self, *args: str, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The ``docker`` CLI against the manager, as the user's CLI would reach it."""
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"}
        env["DOCKER_HOST"] = self.docker_host
        proc = subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout, env=env
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"`docker {' '.join(args)}` on the manager: {proc.stderr.strip()}")
        return proc

    def on(
        self, hostname: str, *args: str, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The ``docker`` CLI inside one node (its own engine, not the swarm's view)."""
        proc = host_docker("exec", self.nodes[hostname].container, "docker", *args, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"`docker {' '.join(args)}` on {hostname}: {proc.stderr.strip()}")
        return proc

    # -- creation ---------------------------------------------------------------------------

    def create(self, dind_image: str, registry_image: str) -> None:
        """Network, registry, three engines; the swarm formed; the base images pushed."""
        started = time.monotonic()
        label = f"{LABEL}={self.run}"
        host_docker("network", "create", "--label", label, self.network, check=True)
        host_docker(
            "run", "--detach", "--name", self.registry, "--label", label,
            "--network", self.network, "--network-alias", "registry",
            "--publish", "127.0.0.1::5000", registry_image,
            check=True,
        )  # fmt: skip
        for index in (1, 2, 3):
            hostname = f"node{index}"
            container = f"{self.run}-{hostname}"
            volume = f"{container}-docker"
            host_docker("volume", "create", "--label", label, volume, check=True)
            manager = index == 1
            argv = [
                "run", "--detach", "--name", container, "--label", label,
                "--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--volume", f"{volume}:/var/lib/docker",
                "--network", self.network, "--hostname", hostname,
            ]  # fmt: skip
            if manager:
                argv += ["--publish", "127.0.0.1::2375"]
            argv += [dind_image, f"--insecure-registry={REGISTRY}"]
            if manager:
                argv.append("--host=tcp://0.0.0.0:2375")
            host_docker(*argv, check=True)
            self.nodes[hostname] = NodeBox(container, hostname)
        self.manager_port = self._published(self.nodes["node1"].container, "2375")
        self.registry_port = self._published(self.registry, "5000")
        for box in self.nodes.values():
            inspected = json.loads(host_docker("inspect", box.container, check=True).stdout)
            networks = inspected[0]["NetworkSettings"]["Networks"]
            box.address = networks[self.network]["IPAddress"]
        self._wait_engines()
        self.timings["engines"] = time.monotonic() - started
        self._form_swarm()
        self.timings["swarm"] = time.monotonic() - started - self.timings["engines"]
        mark = time.monotonic()
        self._push_base_images()
        self.timings["base images"] = time.monotonic() - mark

    def _published(self, container: str, port: str) -> int:
        out = host_docker("port", container, port, check=True).stdout
        return int(out.split()[0].rsplit(":", 1)[1])

    def _wait_engines(self) -> None:
        """Each engine answers (the manager through its published port too)."""
        deadline = time.monotonic() + ENGINE_TIMEOUT
        for hostname in self.nodes:
            while self.on(hostname, "info", "--format", "{{.ID}}").returncode != 0:
                if time.monotonic() > deadline:
                    logs = host_docker("logs", "--tail", "20", self.nodes[hostname].container)
                    raise RuntimeError(f"{hostname}'s engine did not start: {logs.stderr}")
                time.sleep(0.5)
        while self.manager("version", "--format", "{{.Server.Version}}").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the manager does not answer on {self.docker_host}")
            time.sleep(0.5)

    def _form_swarm(self) -> None:
        """node1 initialises the swarm on its address in the network; the others join."""
        first = self.nodes["node1"]
        self.manager("swarm", "init", "--advertise-addr", first.address, check=True)
        token = self.manager("swarm", "join-token", "--quiet", "worker", check=True)
        for hostname in ("node2", "node3"):
            self.on(
                hostname, "swarm", "join", "--token", token.stdout.strip(),
                f"{first.address}:2377", check=True,
            )  # fmt: skip
        self.wait_nodes(ready=3)

    def wait_nodes(self, ready: int, timeout: float = 120) -> None:
        """Until the manager counts ``ready`` nodes Ready."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.manager("node", "ls", "--format", "{{.Status}}").stdout.split()
            if states.count("Ready") == ready:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready} ready nodes expected, the manager lists {states}")
            time.sleep(0.5)

    def _push_base_images(self) -> None:
        """Each base image pushed to the registry (through 127.0.0.1) under its own name,
        then pulled by the manager where the build or dockwork needs it locally."""

        def push(variable: str) -> None:
            source = os.environ.get(variable) or BASE_IMAGES[variable]
            if host_docker("image", "inspect", source).returncode != 0:
                host_docker("pull", source, check=True, timeout=900)
            local = f"127.0.0.1:{self.registry_port}/{source}"
            host_docker("tag", source, local, check=True)
            try:
                host_docker("push", "--quiet", local, check=True, timeout=900)
            finally:
                host_docker("image", "rm", local)  # the tag only: the image stays
            self.images[variable] = f"{REGISTRY}/{source}"
            if variable in MANAGER_PULLS:
                self.manager("pull", "--quiet", self.images[variable], check=True, timeout=600)

        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(push, v) for v in BASE_IMAGES]:
                future.result()

    def catalog(self) -> list[str]:
        """The repositories in the registry (asked through 127.0.0.1)."""
        import urllib.request  # noqa: PLC0415

        url = f"http://127.0.0.1:{self.registry_port}/v2/_catalog"
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.loads(response.read())["repositories"])

    # -- the swarm's view -----------------------------------------------------------------

    def node_ls(self) -> dict[str, dict[str, Any]]:
        """The manager's view of the nodes (``docker node inspect``), by hostname."""
        ids = self.manager("node", "ls", "--quiet", check=True).stdout.split()
        found = json.loads(self.manager("node", "inspect", *ids, check=True).stdout)
        return {n["Description"]["Hostname"]: n for n in found}

    def tasks(self, service: str) -> list[dict[str, Any]]:
        """The service's tasks Swarm wants running, with the hostname of their node."""
        ids = self.manager(
            "service", "ps", "--quiet", "--no-trunc", "--filter", "desired-state=running", service
        ).stdout.split()
        tasks = json.loads(self.manager("inspect", *ids).stdout) if ids else []
        names = {n["ID"]: host for host, n in self.node_ls().items()}
        for task in tasks:
            task["Hostname"] = names.get(task.get("NodeID", ""), "?")
        return list(tasks)

    def running(self, service: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks(service) if t["Status"]["State"] == "running"]

    # -- removal ----------------------------------------------------------------------------

    def remove(self) -> None:
        """Everything labelled with this run: the containers, their volumes, the network."""
        label = f"label={LABEL}={self.run}"
        containers = host_docker("ps", "--all", "--quiet", "--filter", label).stdout.split()
        if containers:
            host_docker("rm", "--force", "--volumes", *containers)
        volumes = host_docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
        if volumes:
            host_docker("volume", "rm", "--force", *volumes)
        networks = host_docker("network", "ls", "--quiet", "--filter", label).stdout.split()
        if networks:
            host_docker("network", "rm", *networks)

    def leftovers(self) -> list[str]:
        """What of this run is still on this machine's engine (nothing, after remove)."""
        label = f"label={LABEL}={self.run}"
        found = []
        for kind in (["ps", "--all"], ["volume", "ls"], ["network", "ls"]):
            found += host_docker(*kind, "--quiet", "--filter", label).stdout.split()
        tags = host_docker("image", "ls", "--format", "{{.Repository}}").stdout.split()
        found += [t for t in tags if t.startswith(f"127.0.0.1:{self.registry_port}/")]
        return found


def new_cluster() -> Cluster:
    return Cluster(f"dwcl{uuid.uuid4().hex[:8]}")


__all__ = ["BASE_IMAGES", "LABEL", "REGISTRY", "Cluster", "NodeBox", "host_docker", "new_cluster"]
