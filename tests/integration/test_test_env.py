"""`test_env`: the test servers reach a suite that reads its settings at import time, in
split variables, with a `.env` file naming other servers, without a change to its tests.

The probe project is shaped like FastAPI's template before its DATABASE_URL switch:
settings built once at import from POSTGRES_SERVER/PORT/USER/PASSWORD/DB, an engine
made at import in the conftest, migrations that read the same settings, and a `.env` that
points at localhost:5432 (where no test server is).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest

from dockwork.config import load_config
from dockwork.errors import ConfigError
from tests.helpers import env_without_services, probe_project

if TYPE_CHECKING:
    from pathlib import Path

TEST_ENV = """
database_scheme = "postgresql+asyncpg"

[tool.dockwork.test_env]
POSTGRES_SERVER = "{postgres.host}"
POSTGRES_PORT = "{postgres.port}"
POSTGRES_USER = "{postgres.user}"
POSTGRES_PASSWORD = "{postgres.password}"
POSTGRES_DB = "{postgres.database}"
CACHE_URL = "{redis.url}"
"""
DOTENV = """
POSTGRES_SERVER=localhost
POSTGRES_PORT=5432
POSTGRES_USER=app
POSTGRES_PASSWORD=changethis
POSTGRES_DB=app
CACHE_URL=redis://localhost:6379/0
"""
SETTINGS = """
import os
from pathlib import Path

# like pydantic-settings: the process's environment wins over the .env file
for line in (Path(__file__).parent / ".env").read_text().split():
    key, _, value = line.partition("=")
    os.environ.setdefault(key, value)

class Settings:
    def __init__(self):
        self.dsn = (
            f"host={os.environ['POSTGRES_SERVER']} port={os.environ['POSTGRES_PORT']} "
            f"user={os.environ['POSTGRES_USER']} password={os.environ['POSTGRES_PASSWORD']} "
            f"dbname={os.environ['POSTGRES_DB']}"
        )
        self.cache_url = os.environ["CACHE_URL"]

settings = Settings()  # once, at import
"""
MIGRATE = """
import psycopg
from settings import settings
with psycopg.connect(settings.dsn) as conn:
    conn.execute("CREATE TABLE items (worker text)")
"""
CONFTEST = """
import psycopg, pytest
from settings import settings  # at import: the variables must be there already

CONNECTION = psycopg.connect(settings.dsn, autocommit=True)

@pytest.fixture
def db():
    return CONNECTION
"""
TESTS = """
import os, time, redis, pytest
from pathlib import Path

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

@pytest.mark.parametrize("n", range(4))
def test_the_app_settings_name_this_workers_own_database(db, dockwork_database, n):
    name = db.execute("SELECT current_database()").fetchone()[0]
    assert name == dockwork_database.database
    db.execute("INSERT INTO items VALUES (%s)", (WORKER,))
    workers = {r[0] for r in db.execute("SELECT worker FROM items").fetchall()}
    assert workers == {WORKER}  # no other process's rows: a database of its own
    assert dockwork_database.libpq_url.startswith("postgresql://")
    assert dockwork_database.url.startswith("postgresql+asyncpg://")
    Path("seen", f"{WORKER}-{name}").touch()
    time.sleep(0.2)

def test_redis_too(dockwork_redis):
    from settings import settings
    assert settings.cache_url == dockwork_redis.url
    client = redis.Redis.from_url(settings.cache_url)
    assert client.ping()
    assert client.dbsize() == 0 or client.exists("dockwork:test-database")
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    project = f"dwenv{uuid.uuid4().hex[:8]}"
    files = {
        ".env": DOTENV,
        "settings.py": SETTINGS,
        "migrate.py": MIGRATE,
        "conftest.py": CONFTEST,
        "test_probe.py": TESTS,
    }
    probe_project(tmp_path, project, files, extra=TEST_ENV)
    (tmp_path / "seen").mkdir()
    return tmp_path


def pytest_in(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # warnings are errors, as in a strict project: dockwork must not cause one
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            *args,
        ],
        cwd=where,
        env={**env_without_services(), "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_variables_are_set_before_the_conftest_is_imported(
    probe: Path, workers: tuple[str, ...]
) -> None:
    result = pytest_in(probe, *workers)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "5 passed" in out, out
    seen = [p.name.split("-", 1) for p in (probe / "seen").iterdir()]
    by_worker = dict(seen)
    assert len(by_worker) == len(seen), f"one database per process: {seen}"
    assert len(set(by_worker.values())) == len(by_worker), f"never shared: {seen}"


def test_a_template_naming_nothing_dockwork_gives_is_one_message(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dockwork]\ntest_services = ["postgres"]\n\n[tool.dockwork.test_env]\n'
        'DATABASE_HOST = "{postgres.hostname}"\n'
    )
    with pytest.raises(ConfigError, match=r"names \{postgres.hostname\}.*Known: \{postgres.url\}"):
        load_config(tmp_path, require_compose_files=False)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dockwork]\ntest_services = ["postgres"]\n\n[tool.dockwork.test_env]\n'
        'REDIS_URL = "{redis.url}"\n'
    )
    with pytest.raises(ConfigError, match="has no 'redis'"):
        load_config(tmp_path, require_compose_files=False)


def test_test_env_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dockwork]\ntest_services = ["postgres"]\n')
    config = load_config(
        tmp_path,
        environ={"DOCKWORK_TEST_ENV": "DB_HOST={postgres.host} DB_NAME={postgres.database}"},
        require_compose_files=False,
    )
    assert config.test_env == (("DB_HOST", "{postgres.host}"), ("DB_NAME", "{postgres.database}"))
