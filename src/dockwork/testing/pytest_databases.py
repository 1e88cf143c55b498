"""pytest-databases' fixture names, served by dockwork's servers (``pytest_databases = true``).

A suite written on pytest-databases loads its fixtures with ``pytest_plugins =
["pytest_databases.docker.postgres", …]``. With ``pytest_databases = true`` in
``[tool.dockwork]``, right after each of those modules is registered, dockwork registers
fixtures of the same names behind it (a plugin registered later wins), so the tests get
this process's own database and Redis database on dockwork's servers, and no
pytest-databases container starts. Covered:

- ``postgres_service`` (a ``PostgresService``: host, port, user, password, database — this
  xdist worker's own, migrated), ``postgres_host``, ``postgres_port``, ``postgres_user``,
  ``postgres_password``; ``postgres_connection`` (pytest-databases' own) then connects to it;
- ``redis_service`` (a ``RedisService``: host, port, db — this worker's own logical
  database), ``redis_host``, ``redis_port``. pytest-databases' Redis has no password, so
  with this setting dockwork's test Redis has none either (it still listens on loopback,
  on a random port).

Not covered: the per-version fixtures (``postgres_16_service``, ``pgvector_service``, …),
other engines (MySQL, …), and fixtures a conftest defines itself (a conftest always wins
over plugins); those keep starting pytest-databases' containers.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

#: pytest-databases' modules dockwork stands in for, and the fixtures standing in
MODULES = {
    "pytest_databases.docker.postgres": "postgres",
    "pytest_databases.docker.redis": "redis",
}


def service(cls: type[Any], **fields: Any) -> Any:
    """One of pytest-databases' service dataclasses; ``container`` (0.18+) is None: no
    container of pytest-databases' runs."""
    names = {f.name for f in dataclasses.fields(cls)}
    if "container" in names:
        fields["container"] = None
    return cls(**{k: v for k, v in fields.items() if k in names})


#: the module of dockwork's stand-ins for each kind (module-level fixtures: pytest
#: deprecates session-scoped fixtures defined as methods of a plugin object)
FIXTURES = {
    "postgres": "dockwork.testing._pytest_databases_postgres",
    "redis": "dockwork.testing._pytest_databases_redis",
}


def stand_in(module: str, manager: pytest.PytestPluginManager) -> None:
    """Register dockwork's fixtures behind pytest-databases' ``module`` (once)."""
    kind = MODULES.get(module)
    name = f"dockwork-pytest-databases-{kind}"
    if kind is None or manager.has_plugin(name):
        return
    manager.register(importlib.import_module(FIXTURES[kind]), name=name)


__all__ = ["MODULES", "service", "stand_in"]
