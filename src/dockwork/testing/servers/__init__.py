"""Test servers (PostgreSQL, Redis) for a run: one interface, backends behind it.

This module is the package's face; its submodules never import from it:

- :mod:`.base`: :class:`Servers` (what a backend hands out) and the :class:`Backend` protocol;
- :mod:`.discovery`: which backend a run uses (dockwork's own external URLs, reused
  servers, a Docker engine);
- :mod:`.testrun`: one run's servers shared by its processes, started on first use (or
  before the conftests, for ``test_env``);
- :mod:`.docker` (lifecycle), :mod:`.engine_api` (the engine's API), :mod:`.baking`
  (images with an initialised data directory), :mod:`.ownership` (whose it is),
  :mod:`.embedded`, :mod:`.external`, :mod:`.reuse_cache`, :mod:`.kept`.

What a kind of server is (its container spec, its readiness probe, its URL forms) lives
in :mod:`dockwork.kinds`, below the configuration.

The names are looked up when first used (PEP 562), so importing the package (the pytest
plugin does, in every pytest run) costs nothing until a run needs servers.

"Test servers" are what tests talk to; "services" are Compose's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockwork.testing.servers.base import Backend, Servers
    from dockwork.testing.servers.discovery import choice, discover, release
    from dockwork.testing.servers.testrun import Run

_WHERE = {
    "Backend": "base",
    "Servers": "base",
    "choice": "discovery",
    "discover": "discovery",
    "release": "discovery",
    "Run": "testrun",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = ["Backend", "Run", "Servers", "choice", "discover", "release"]
