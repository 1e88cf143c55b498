"""Errors dockwork shows to people: one paragraph saying what is wrong and what to do."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


class DockworkError(Exception):
    """A failure with a message meant for the user; tasks turn it into a clean exit."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        """The user-facing text."""
        return str(self.args[0])


class ConfigError(DockworkError):
    """``[tool.dockwork]`` or an override is invalid."""

    exit_code = 2


class EngineError(DockworkError):
    """Docker, its engine or Compose v2 is missing or unreachable."""

    exit_code = 3


class CommandError(DockworkError):
    """A command exited non-zero; carries its argv, exit code and captured output."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip()
        tail = "\n".join(detail.splitlines()[-20:])
        message = f"`{shlex.join(self.argv)}` failed with exit code {returncode}"
        if tail:
            message += f":\n{tail}"
        super().__init__(message, exit_code=returncode if 0 < returncode < 256 else 1)  # noqa: PLR2004
