"""The whole stack, driven through `inv` exactly as a user would, in a copy of the checkout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dockwork.testservers.docker import docker_available

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
#: another team's project, copied and adopted by test_adopt.py; not this suite's tests
collect_ignore = ["foreign"]
#: image tags of this test session's own: built from this checkout once, shared by its
#: stacks, never an older build left by another run (Compose builds only missing images)
IMAGE_TAG = f"e2e-{uuid.uuid4().hex[:10]}"
IMAGES = {
    "APP_IMAGE": f"dockwork-e2e-app:{IMAGE_TAG}",
    "APP_DEV_IMAGE": f"dockwork-e2e-app-dev:{IMAGE_TAG}",
}


@pytest.fixture(scope="session", autouse=True)
def _remove_session_images() -> Iterator[None]:
    """The session's images go when the session ends (their layers stay in the build cache)."""
    yield
    subprocess.run(
        ["docker", "image", "rm", "--force", *IMAGES.values()], capture_output=True, check=False
    )


@dataclass
class Stack:
    """A copy of the project with its own Compose project name and ephemeral host ports."""

    root: Path
    name: str
    env: dict[str, str]
    variant: str

    def inv(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run `inv ARGS` in the copy; output captured for assertions and failure messages."""
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"`inv {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Plain `docker compose` for this project (what a user could type)."""
        files = self.env.get("DOCKWORK_COMPOSE_FILES", "compose.yaml compose.override.yaml")
        return subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                self.name,
                *[arg for f in files.split() for arg in ("-f", f)],
                *args,
            ],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    def states(self) -> dict[str, dict[str, object]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        items = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {str(i["Service"]): i for i in items}

    def app_url(self) -> str:
        for pub in self.states()["app"]["Publishers"]:  # type: ignore[union-attr]
            if pub["PublishedPort"]:
                return f"http://127.0.0.1:{pub['PublishedPort']}"
        raise AssertionError("the app publishes no port")

    def containers(self) -> list[str]:
        out = subprocess.run(
            [
                "docker",
                "ps",
                "--all",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={self.name}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()


def copy_checkout(dest: Path) -> None:
    """The files a fresh clone would have (tracked + untracked, not ignored)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@contextlib.contextmanager
def make_stack(base: Path, variant: str) -> Iterator[Stack]:
    """A fresh copy of the project as its own stack (dev: with the override; prod:
    compose.yaml alone, the production images); everything removed afterwards."""
    if (reason := docker_available()) is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    name = f"dwe2e{uuid.uuid4().hex[:8]}"
    root = base / name
    root.mkdir()
    copy_checkout(root)
    env = {
        **os.environ,
        "DOCKWORK_PROJECT_NAME": name,
        # ephemeral host ports: never collides with a dev stack or another checkout
        "APP_PORT": "0",
        "DB_PORT": "0",
        "CACHE_PORT": "0",
        # images of this session's own, so a dev stack's images are never retagged
        **IMAGES,
        "DOCKWORK_WAIT_TIMEOUT": "240",
    }
    if variant == "prod":
        env["DOCKWORK_COMPOSE_FILES"] = "compose.yaml"
        # production never gets .env from .env.example: the secret comes from the environment
        env["POSTGRES_PASSWORD"] = f"e2e-{uuid.uuid4().hex}"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    s = Stack(root, name, env, variant)
    try:
        yield s
    finally:
        # interpolation needs a value even when the test never got as far as creating .env
        s.env.setdefault("POSTGRES_PASSWORD", "cleanup-only")
        s.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A stack of this test's own (parametrize indirectly with "dev" or "prod")."""
    with make_stack(tmp_path, getattr(request, "param", "dev")) as s:
        yield s


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A dev stack shared by a module's tests (each leaves it as it found it)."""
    with make_stack(tmp_path_factory.mktemp("stack"), "dev") as s:
        yield s
