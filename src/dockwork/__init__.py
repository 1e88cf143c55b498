"""dockwork: a Python web service's developer workflow over Docker Compose.

Importing this package is cheap: it pulls in neither the Docker SDK nor SQLAlchemy, so
``inv --list`` stays fast. Heavy modules are imported by the functions that need them.
"""

from __future__ import annotations

__all__ = ["__version__"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    __version__: str
else:

    def __getattr__(name: str) -> str:
        """``__version__``: the installed distribution's (from the git tag at build time, see
        pyproject.toml), read on first use only, so importing dockwork stays cheap."""
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            return version(__name__)
        except PackageNotFoundError:  # a source tree on sys.path that was never installed
            return "0.0.0+unknown"
