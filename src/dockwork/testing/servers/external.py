"""Servers the user runs and names in dockwork's own settings: used, never started or stopped.

Only dockwork's own settings select them (per kind, :attr:`.kinds.Kind.url_setting`:
``DOCKWORK_TEST_DATABASE_URL`` / ``DOCKWORK_TEST_REDIS_URL``). The app's ``DATABASE_URL`` /
``REDIS_URL`` never do: they may name real data, and the tests write to the servers they get.

Compose services run as test servers have no such setting: they still come from Docker,
started by the backend given as ``services`` (their containers are the run's, released
with it), whichever servers the user names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockwork import kinds, urls
from dockwork.config import DEFAULT_SERVICE_TIMEOUT
from dockwork.errors import ProvisionError, describe
from dockwork.kinds import readiness
from dockwork.testing.servers.base import Servers

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dockwork.testing.servers.base import Backend


class ExternalBackend:
    """Servers given by the user: checked to answer, nothing to start or stop (but the
    compose services' containers, from ``services``)."""

    name = "external"

    def __init__(
        self,
        given: Mapping[str, str],
        *,
        service_timeout: float = DEFAULT_SERVICE_TIMEOUT,
        services: Backend | None = None,
    ) -> None:
        #: admin URLs by kind, as the tests get them
        self.given = {kind: kinds.of(kind).given_form(url) for kind, url in given.items()}
        # service_timeout, as for every test server (it was silently capped at 10 s)
        self.service_timeout = service_timeout
        self.services = services

    def start(self) -> Servers:
        """Check each answers a real query, then hand them out (or say which do not)."""
        probes = {}
        for name, url in self.given.items():
            kind = kinds.of(name)
            probes[name] = kind.probe(kinds.Endpoint.of_url(url, kind.default_port or 0))
        failed = readiness.failures(probes, timeout=self.service_timeout)
        if failed:
            lines = []
            for name, error in failed.items():
                url = self.given[name]
                cause = describe(error.last_error) if error.last_error else "no answer"
                lines.append(
                    f"the test {name} server named by {kinds.of(name).environment} "
                    f"({urls.mask(url)}) did not answer within {self.service_timeout:g}s "
                    f"({urls.mask_text(cause, url)})"
                )
            names = " / ".join(str(kinds.of(name).environment) for name in failed)
            raise ProvisionError(
                "; ".join(lines) + f". Start the server(s), fix {names}, or unset them to let "
                "dockwork start its own."
            )
        if self.services is None:
            return Servers.of(self.name, self.given, owned=False)
        # the compose services' containers: the run's own, released with it (LIFECYCLES)
        started = self.services.start()
        return Servers.of(
            self.name,
            self.given,
            owned=False,
            services=started.services,
            handles=started.handles,
            details=started.details,
        )

    def stop(self) -> None:
        """Nothing of the user's: only the compose services' containers, if any."""
        if self.services is not None:
            self.services.stop()


__all__ = ["ExternalBackend"]
