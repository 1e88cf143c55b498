"""Shared test helpers."""

from __future__ import annotations

import os


def env_without_services() -> dict[str, str]:
    """This environment minus anything that would hand a child run ready-made services, so
    the child provisions its own (as a fresh `pytest` or `nox` would)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"}
        and not k.startswith(("DOCKWORK_TEST_", "PYTEST_"))
    }
