"""The app's access-log filter: healthcheck noise out, every real request in."""

from __future__ import annotations

import logging

import pytest

from app.main import QuietHealthChecks, quiet_health_checks


def access(path: str, status: int) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", status),
        None,
    )


@pytest.mark.parametrize(
    ("path", "status", "kept"),
    [
        ("/health", 200, False),
        ("/health?probe=1", 200, False),
        ("/health", 503, True),  # a failing health check is news
        ("/api/users", 200, True),
        ("/healthz", 200, True),
        ("/api/health", 200, True),
    ],
)
def test_only_successful_health_checks_are_dropped(path: str, status: int, kept: bool) -> None:
    assert QuietHealthChecks().filter(access(path, status)) is kept


def test_other_records_pass_and_the_filter_is_installed_once() -> None:
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert QuietHealthChecks().filter(plain)
    quiet_health_checks()
    quiet_health_checks()
    installed = logging.getLogger("uvicorn.access").filters
    assert sum(isinstance(f, QuietHealthChecks) for f in installed) == 1
