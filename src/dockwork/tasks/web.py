"""The frontend's tasks, run in its Node service (no Node on the host): `inv web.install`,
`web.build`, `web.lint`, `web.test`.

The commands run as the host's uid/gid (files they write in the checkout stay yours) in a
one-off container of the service (``web_service``); its image's entrypoint is what makes
node_modules match package-lock.json.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from invoke.tasks import task

from dockwork.compose import host_ids
from dockwork.errors import UsageError
from dockwork.frontend import LINT, TEST, web_command
from dockwork.tasks._base import clean_errors, project, run

if TYPE_CHECKING:
    from collections.abc import Sequence

    from invoke.context import Context

BUILD = (("npm", "run", "build"),)


def _in_web(c: Context, commands: Sequence[Sequence[str]]) -> None:
    config, compose = project()
    every_profile = dataclasses.replace(compose, profiles=("*",))
    if config.web_service not in every_profile.services():
        raise UsageError(
            f"this project has no {config.web_service!r} service (web_service in "
            "[tool.dockwork]): the web tasks run the frontend's tools in it."
        )
    argv = compose.run(
        config.web_service, web_command(commands), no_deps=True, tty=False, user=host_ids()
    )
    run(c, argv, pty=False)


@task
@clean_errors
def install(c: Context) -> None:
    """Make the frontend's node_modules volume match package-lock.json."""
    _in_web(c, (("true",),))


@task
@clean_errors
def build(c: Context) -> None:
    """Build the frontend (typecheck, then vite build) into its dist/ directory."""
    _in_web(c, BUILD)


@task
@clean_errors
def lint(c: Context) -> None:
    """Lint and typecheck the frontend (biome check, tsc)."""
    _in_web(c, LINT)


@task
@clean_errors
def test(c: Context) -> None:
    """Run the frontend's unit tests (vitest)."""
    _in_web(c, TEST)
