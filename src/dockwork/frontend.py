"""The frontend's checks as commands: what `inv web.*` and the nox `web` session run in the
Node service (shared by both, so neither imports the other)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

LINT = (("npm", "run", "lint"), ("npm", "run", "typecheck"))
TEST = (("npm", "test"),)


def web_command(commands: Sequence[Sequence[str]]) -> list[str]:
    """One argv running ``commands`` in turn, stopping at the first that fails."""
    if len(commands) == 1:
        return list(commands[0])
    return ["sh", "-c", " && ".join(shlex.join(c) for c in commands)]


__all__ = ["LINT", "TEST", "web_command"]
