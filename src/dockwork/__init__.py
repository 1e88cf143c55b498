"""dockwork: a Python web service's developer workflow over Docker Compose.

Importing this package is cheap: it pulls in neither the Docker SDK nor SQLAlchemy, so
``inv --list`` stays fast. Heavy modules are imported by the functions that need them.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.2.0"
