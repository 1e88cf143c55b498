"""`inv doctor`: what stands between this machine and `inv dev`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.exceptions import Exit
from invoke.tasks import task

if TYPE_CHECKING:
    from invoke.context import Context


@task
def doctor(c: Context) -> None:  # noqa: ARG001 - invoke passes the context
    """Check docker, the engine, Compose, ports, images, config and .env; non-zero if blocked."""
    from dockwork.doctor import main  # noqa: PLC0415

    code = main()
    if code:
        raise Exit(code=code)
