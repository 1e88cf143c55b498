"""The ``dockwork`` command: ``dockwork --version``, ``dockwork init``, ``dockwork doctor``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dockwork import __version__
from dockwork.errors import DockworkError, render

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockwork",
        description="A Python web service's developer workflow over Docker Compose.",
    )
    parser.add_argument("--version", action="version", version=f"dockwork {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="write tasks.py, noxfile.py and [tool.dockwork], inferred from the compose files",
        description="Set up dockwork in a project that has a compose file. Writes only what "
        "is missing; says what it wrote and why, and what to fill in.",
    )
    init.add_argument("--force", action="store_true", help="rewrite files that exist")
    init.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the Python project, or a directory above it (default: the current directory)",
    )
    init.add_argument(
        "--compose",
        type=Path,
        nargs="+",
        default=(),
        metavar="FILE",
        help="the compose files to use (default: the set below the repository that runs the app)",
    )
    commands.add_parser(
        "doctor", help="check that this machine is ready for `inv dev` (like `inv doctor`)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit code is its result."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            from dockwork import scaffold  # noqa: PLC0415

            return scaffold.init(args.root, force=args.force, compose=args.compose)
        if args.command == "doctor":
            from dockwork import doctor  # noqa: PLC0415

            return doctor.main()
    except DockworkError as exc:
        print(render(exc), file=sys.stderr)
        return exc.exit_code
    _parser().print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover - `python -m dockwork.cli`
    sys.exit(main())
