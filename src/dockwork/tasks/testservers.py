"""`inv test-servers.*`: the test servers kept between runs (``DOCKWORK_REUSE=1``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.tasks import task

from dockwork.config import load_config
from dockwork.tasks._base import clean_errors, say

if TYPE_CHECKING:
    from invoke.context import Context

    from dockwork.testing.servers.kept import Found


def _report(found: Found, verb: str) -> None:
    for note in found.notes:
        say(note)
    if not found.servers:
        say(f"no kept test servers of this project {verb}.", out=True)
        return
    for server in found.servers:
        print(server.describe(), flush=True)
    say(f"{len(found.servers)} kept test server(s) {verb}.", out=True)


@task(name="ls")
@clean_errors
def ls(c: Context) -> None:  # noqa: ARG001 - invoke passes the context
    """List this project's test servers kept between runs (embedded processes, containers)."""
    from dockwork.testing.servers import kept  # noqa: PLC0415

    _report(kept.find(load_config(require_compose_files=False)), "found")


@task
@clean_errors
def stop(c: Context) -> None:  # noqa: ARG001 - invoke passes the context
    """Stop and remove this project's kept test servers (never another project's)."""
    from dockwork.testing.servers import kept  # noqa: PLC0415

    _report(kept.stop(load_config(require_compose_files=False)), "stopped")
