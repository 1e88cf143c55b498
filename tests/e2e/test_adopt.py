"""Adoption, proven on a foreign project: a Flask + SQLAlchemy 2.0 + psycopg 3 + plain
Alembic shop (services web / postgres / migrations, flat layout, PostgreSQL only) sets
dockwork up from its wheel, exactly as the README's "Adopt dockwork in your project" says,
and every task and session works on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import NOT_THE_ADOPTERS
from tests.helpers import gone, needs_docker, remove_project_images

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
FOREIGN = Path(__file__).with_name("foreign")
REFERENCE = ("app", "litestar", "saq", "asyncpg", "advanced_alchemy", "faker")


class Shop:
    """The foreign project in a temp dir, driven with uv as its team would."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCKWORK_", "UV_PROJECT", "VIRTUAL_ENV", "NOX", "PYTEST_"))
            and k not in NOT_THE_ADOPTERS
        } | {"DOCKWORK_PROJECT_NAME": name, "WEB_PORT": "0"}

    def run(self, *argv: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def containers(self, *labels: str) -> list[str]:
        filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
        out = subprocess.run(
            ["docker", "ps", "-aq", *filters], capture_output=True, text=True, check=True
        )
        return out.stdout.split()


@pytest.fixture
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Shop]:
    needs_docker()
    name = f"shop{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    shutil.copytree(FOREIGN, root)
    s = Shop(root, name)
    # built (once per run) only where the engine answers
    s.wheel = request.getfixturevalue("dockwork_wheel")  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        subprocess.run(
            ["docker", "compose", "-p", name, "down", "--volumes", "--timeout", "0"],
            cwd=root,
            env={**s.env, "SHOP_DB_PASSWORD": "cleanup"},
            capture_output=True,
            check=False,
        )
        subprocess.run(
            ["docker", "image", "rm", "-f", "flaskshop:dev"], capture_output=True, check=False
        )
        remove_project_images(name)


def test_a_foreign_project_adopts_dockwork_from_its_wheel(shop: Shop) -> None:
    # 1. install: the toolkit alone, with its nox integration
    shop.run("uv", "add", "--dev", f"dockwork[nox] @ {shop.wheel.as_uri()}")  # type: ignore[attr-defined]
    present = shop.run(
        "uv",
        "run",
        "python",
        "-c",
        "import importlib.util as u, json; "
        f"print(json.dumps([m for m in {REFERENCE!r} if u.find_spec(m)]))",
    )
    assert json.loads(present.stdout) == [], "nothing of the reference service is installed"

    # 2. dockwork init: inferred from the compose files, PostgreSQL only
    init = shop.run("uv", "run", "dockwork", "init")
    assert "test_services = ['postgres']" in init.stdout, init.stdout
    table = (shop.root / "pyproject.toml").read_text()
    assert 'app_service = "web"' in table
    assert 'migrate_service = "migrations"' in table
    assert 'database_url_env = "SHOP_DATABASE_URL"' in table
    assert 'database_scheme = "postgresql+psycopg"' in table
    assert (shop.root / "tasks.py").is_file()
    assert (shop.root / "noxfile.py").is_file()
    again = shop.run("uv", "run", "dockwork", "init")
    assert "unchanged tasks.py" in again.stdout, "init is idempotent"
    example = shop.root / ".env.example"
    assert example.read_text().rstrip().endswith("SHOP_DB_PASSWORD="), "a placeholder to fill in"
    example.write_text(
        example.read_text().replace("SHOP_DB_PASSWORD=", "SHOP_DB_PASSWORD=dev-only")
    )
    shop.run("uv", "run", "dockwork", "--version")

    # 3. the tasks
    listed = shop.run("uv", "run", "inv", "--list")
    assert "db.revision" in listed.stdout
    doctor = shop.run("uv", "run", "inv", "doctor")
    assert "ready for `inv dev`" in doctor.stdout
    shop.run("uv", "run", "inv", "up")
    port = shop.run("docker", "compose", "-p", shop.name, "port", "web", "5000").stdout.strip()
    with urllib.request.urlopen(f"http://{port}/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}, "the shop answers"
    shop.run("uv", "run", "inv", "migrate")
    unchanged = shop.run("uv", "run", "inv", "db.revision", "-m", "nothing")
    assert "nothing was written" in unchanged.stdout
    assert sorted(p.name for p in (shop.root / "migrations" / "versions").glob("*.py")) == [
        "0001_items.py"
    ]
    models = shop.root / "models.py"
    models.write_text(
        models.read_text() + "    price: Mapped[int | None] = mapped_column(nullable=True)\n"
    )
    revision = shop.run("uv", "run", "inv", "db.revision", "-m", "add price")
    match = re.search(r"new migration: (\S+\.py)", revision.stdout)
    assert match, revision.stdout
    assert "add_column" in (shop.root / match.group(1)).read_text()
    shop.run("uv", "run", "inv", "db.upgrade")
    shop.run("uv", "run", "inv", "db.check")
    assert "1 row" in shop.run("uv", "run", "inv", "db.psql", "-c", "select 1").stdout

    # 4. the tests, with the plugin, through nox as CI runs them: PostgreSQL only, in the
    #    project's URL scheme; then asked for Redis too, by pytest itself, it gets one
    nox = shop.run("uv", "run", "nox", "-s", "tests")
    assert "Session tests was successful" in nox.stdout + nox.stderr
    assert "1 passed" in nox.stdout + nox.stderr, nox.stdout + nox.stderr
    both = shop.run(
        "uv", "run", "pytest", "-q", DOCKWORK_TEST_SERVICES="postgres redis", check=False
    )
    assert "a project without Redis gets no Redis" in both.stdout, "asked for Redis, it gets one"
    assert gone(shop.name), "the runs removed their servers"

    # 5. down, data and all, confirmed
    shop.run("uv", "run", "inv", "down", "--volumes", "--yes")
    assert shop.containers(f"com.docker.compose.project={shop.name}") == []
