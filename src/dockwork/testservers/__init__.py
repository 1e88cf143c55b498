"""Test servers (PostgreSQL, Redis) for a run: one interface, backends behind it.

This module is the package's face; its submodules never import from it:

- :mod:`.base`: :class:`Servers` (what a backend hands out) and the :class:`Backend` protocol;
- :mod:`.discovery`: which backend a run uses (dockwork's own external URLs, reused
  servers, a Docker engine);
- :mod:`.run`: one run's servers shared by its processes, started on first use;
- :mod:`.docker` (lifecycle), :mod:`.containers` (what runs), :mod:`.ownership` (whose it
  is), :mod:`.readiness` (a real query), :mod:`.external`, :mod:`.reuse_cache`.

"Test servers" are what tests talk to; "services" are Compose's.
"""

from __future__ import annotations

from dockwork.testservers.base import Backend, Servers
from dockwork.testservers.discovery import choice, discover, release
from dockwork.testservers.run import Run

__all__ = ["Backend", "Run", "Servers", "choice", "discover", "release"]
