"""Servers the user runs and names in dockwork's own settings: used, never started or stopped.

Only ``DOCKWORK_TEST_DATABASE_URL`` / ``DOCKWORK_TEST_REDIS_URL`` (``test_database_url`` /
``test_redis_url``) select them. The app's ``DATABASE_URL`` / ``REDIS_URL`` never do: they
may name real data, and the tests write to the servers they get.
"""

from __future__ import annotations

from dockwork import urls
from dockwork.errors import ProvisionError
from dockwork.testservers import readiness
from dockwork.testservers.base import Servers

SETTINGS = {"postgres": "DOCKWORK_TEST_DATABASE_URL", "redis": "DOCKWORK_TEST_REDIS_URL"}
#: a server that is supposed to be running already gets this long to answer
TIMEOUT = 10.0


class ExternalBackend:
    """Servers given by the user: checked to answer, nothing to start or stop."""

    name = "external"

    def __init__(self, database_url: str | None, redis_url: str | None) -> None:
        self.database_url = urls.libpq(database_url) if database_url else None
        self.redis_url = redis_url

    def start(self) -> Servers:
        """Check each answers a real query, then hand them out."""
        probes = {}
        if self.database_url:
            probes["postgres"] = readiness.postgres_probe(self.database_url)
        if self.redis_url:
            probes["redis"] = readiness.redis_probe(self.redis_url)
        try:
            readiness.wait_all(probes, timeout=TIMEOUT)
        except readiness.NotReadyError as exc:
            url = self.database_url if exc.service == "postgres" else self.redis_url
            cause = urls.mask_text(str(exc.last_error or "no answer"), url)
            raise ProvisionError(
                f"the test {exc.service} server named by {SETTINGS[exc.service]} "
                f"({urls.mask(url or '')}) did not answer within {TIMEOUT:g}s ({cause}). Start "
                f"it, fix {SETTINGS[exc.service]}, or unset it to let dockwork start one."
            ) from exc
        return Servers(self.name, self.database_url, self.redis_url, owned=False)

    def stop(self) -> None:
        """Nothing to do: dockwork did not start these."""


__all__ = ["SETTINGS", "ExternalBackend"]
