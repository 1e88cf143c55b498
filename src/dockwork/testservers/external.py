"""Servers the user runs and names in dockwork's own settings: used, never started or stopped.

Only ``DOCKWORK_TEST_DATABASE_URL`` / ``DOCKWORK_TEST_REDIS_URL`` (``test_database_url`` /
``test_redis_url``) select them. The app's ``DATABASE_URL`` / ``REDIS_URL`` never do: they
may name real data, and the tests write to the servers they get.
"""

from __future__ import annotations

from dockwork import urls
from dockwork.errors import ProvisionError, describe
from dockwork.testservers import readiness
from dockwork.testservers.base import Servers

SETTINGS = {"postgres": "DOCKWORK_TEST_DATABASE_URL", "redis": "DOCKWORK_TEST_REDIS_URL"}
#: a server that is supposed to be running already gets this long to answer (at most)
TIMEOUT = 10.0


class ExternalBackend:
    """Servers given by the user: checked to answer, nothing to start or stop."""

    name = "external"

    def __init__(
        self, database_url: str | None, redis_url: str | None, *, timeout: float = TIMEOUT
    ) -> None:
        self.database_url = urls.libpq(database_url) if database_url else None
        self.redis_url = redis_url
        self.timeout = min(timeout, TIMEOUT)

    def start(self) -> Servers:
        """Check each answers a real query, then hand them out (or say which do not)."""
        given = {"postgres": self.database_url, "redis": self.redis_url}
        probes = {
            kind: (readiness.postgres_probe if kind == "postgres" else readiness.redis_probe)(url)
            for kind, url in given.items()
            if url
        }
        failed = readiness.failures(probes, timeout=self.timeout)
        if failed:
            lines = []
            for kind, error in failed.items():
                url = given[kind] or ""
                cause = describe(error.last_error) if error.last_error else "no answer"
                lines.append(
                    f"the test {kind} server named by {SETTINGS[kind]} ({urls.mask(url)}) did "
                    f"not answer within {self.timeout:g}s ({urls.mask_text(cause, url)})"
                )
            names = " / ".join(SETTINGS[kind] for kind in failed)
            raise ProvisionError(
                "; ".join(lines) + f". Start the server(s), fix {names}, or unset them to let "
                "dockwork start its own."
            )
        return Servers(self.name, self.database_url, self.redis_url, owned=False)

    def stop(self) -> None:
        """Nothing to do: dockwork did not start these."""


__all__ = ["SETTINGS", "ExternalBackend"]
