"""One pytest process's share of the run's servers: its own database and Redis database.

Every process of a run (pytest alone, each xdist worker, the controller when the project
sets ``test_env``) gets a PostgreSQL database cloned from the migrated template and a
Redis logical database claimed for it alone, made on first use and given back by
:meth:`ProcessServers.close`. The fixtures, the ``test_env`` variables and the
pytest-databases names all hand out these same two.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dockwork import kinds
from dockwork.errors import PREFIX as _PREFIX
from dockwork.errors import DockworkError, describe, is_library_error, render
from dockwork.kinds import templates
from dockwork.testing import databases

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockwork.config import Config
    from dockwork.testing.servers.base import Servers
    from dockwork.testing.servers.testrun import Run


def worker_id() -> str:
    """This process's xdist worker id (``gw0`` …), or ``main``."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


class NotAskedError(DockworkError):
    """A test asked for a server kind the project's tests do not use."""

    def __init__(self, what: str, kind: str) -> None:
        super().__init__(
            f"a test asked for {what}, but this project's tests do not use it (test_services "
            f"in [tool.dockwork] has no {kind!r}). Add {kind!r} to test_services."
        )


class ProcessServers:
    """This process's database and Redis database, made on first use."""

    def __init__(self, run: Run, project: Config, worker: str | None = None) -> None:
        self.run = run
        self.project = project
        self.worker = worker or worker_id()
        self._servers: Servers | None = None
        self._database: templates.Database | None = None
        self._claim: databases.RedisClaim | None = None
        self._redis: templates.RedisDatabase | None = None
        self._admin: str | None = None

    def servers(self) -> Servers:
        """The run's servers (started by whichever process of the run asks first)."""
        if self._servers is None:
            self._servers = self.run.servers(self.project)
        return self._servers

    @property
    def database_name(self) -> str:
        """This process's database: named by the run and the worker, never reused."""
        return f"dw_{self.run.id}_{self.worker}".lower().replace("-", "_")

    def database(self) -> templates.Database:
        """This process's own database, cloned from the migrated template."""
        if self._database is not None:
            return self._database
        admin = self.servers().database_url
        if admin is None:
            raise NotAskedError("a PostgreSQL database", "postgres")
        project = self.project
        template = f"dw_tpl_{databases.fingerprint(project.template_paths())}"
        template_db = templates.Database.of(admin, template, project.database_scheme)
        spec = databases.TemplateSpec(
            template,
            project.migrate_command,
            project.root,
            project.database_url_env,
            project.database_scheme,
            # the migrations read their settings as the app does: from test_env's variables
            env=tuple(templates.render(project.test_env, postgres=template_db).items()),
        )
        databases.ensure_template(admin, spec)
        databases.clone(admin, template, self.database_name)
        self._admin = admin
        self._database = templates.Database.of(admin, self.database_name, project.database_scheme)
        return self._database

    def redis(self) -> templates.RedisDatabase:
        """This process's own Redis logical database: empty when claimed."""
        if self._redis is not None:
            return self._redis
        servers = self.servers()
        if servers.redis_url is None:
            raise NotAskedError("a Redis database", "redis")
        # a server dockwork started (reused ones too) holds only what tests wrote
        claim = databases.RedisClaim(
            servers.redis_url,
            owner=f"{self.run.id}-{self.worker}",
            dedicated=servers.backend != "external",
        )
        self._redis = templates.RedisDatabase.of(claim.acquire())
        self._claim = claim
        return self._redis

    def services(self) -> dict[str, templates.Service]:
        """The compose services run as test servers (the run's, shared by its processes);
        none asked for: nothing starts."""
        if not kinds.services(self.project.test_services):
            return {}
        return {
            name: templates.Service.of(name, where)
            for name, where in self.servers().services.items()
        }

    def environment(self) -> dict[str, str]:
        """``test_env`` filled in with this process's databases (made now if needed)."""
        used = templates.roots_used(self.project.test_env)
        services = kinds.services(used & set(self.project.test_services))
        return templates.render(
            self.project.test_env,
            postgres=self.database() if kinds.POSTGRES.name in used else None,
            redis=self.redis() if kinds.REDIS.name in used else None,
            services=self.services() if services else None,
        )

    def close(self) -> list[str]:
        """Drop the database, give the Redis database back; what failed, as dockwork lines
        (idempotent: a second call does nothing)."""
        errors: list[str] = []
        if self._database is not None and self._admin is not None:
            admin, name = self._admin, self._database.database
            self._database = None
            _note(
                errors, f"dropping the test database {name!r}", lambda: databases.drop(admin, name)
            )
        if self._claim is not None:
            claim, self._claim, self._redis = self._claim, None, None
            _note(errors, "releasing the test Redis database", claim.release)
        return errors


def _note(errors: list[str], what: str, action: Callable[[], object]) -> None:
    """Run a cleanup; a failure becomes a line in ``errors`` (the server may be gone)."""
    try:
        action()
    except DockworkError as exc:
        errors.append(render(exc))
    except Exception as exc:
        if not is_library_error(exc):
            raise
        errors.append(f"{_PREFIX}{what} failed: {describe(exc)}.")


__all__ = ["NotAskedError", "ProcessServers", "worker_id"]
