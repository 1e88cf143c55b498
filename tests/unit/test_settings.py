"""The reference app's settings: the environment, or files holding secrets (``*_FILE``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from croniter import croniter

from app.settings import Settings
from app.worker import sweep_cron

if TYPE_CHECKING:
    from pathlib import Path


def test_urls_can_come_from_secret_files(tmp_path: Path) -> None:
    url = tmp_path / "database_url"
    url.write_text("postgresql://app:p%40ss@db:5432/app\n")
    settings = Settings.from_env(
        {"DATABASE_URL_FILE": str(url), "REDIS_URL": "redis://cache:6379/1"}
    )
    assert settings.database_url == "postgresql+asyncpg://app:p%40ss@db:5432/app"
    assert settings.redis_url == "redis://cache:6379/1"


def test_a_value_and_a_file_for_one_setting_is_an_error(tmp_path: Path) -> None:
    url = tmp_path / "redis_url"
    url.write_text("redis://a:6379/0")
    with pytest.raises(ValueError, match="both REDIS_URL and REDIS_URL_FILE"):
        Settings.from_env({"REDIS_URL": "redis://b:6379/0", "REDIS_URL_FILE": str(url)})


def test_the_outbox_sweep_interval_is_whole_seconds_of_a_minute() -> None:
    assert Settings.from_env({}).outbox_sweep_seconds == 5
    assert Settings.from_env({"OUTBOX_SWEEP_SECONDS": " 1 "}).outbox_sweep_seconds == 1
    for bad in ("0", "60", "2.5", "-1", "soon"):
        with pytest.raises(ValueError, match=r"OUTBOX_SWEEP_SECONDS is .*1 to 59"):
            Settings.from_env({"OUTBOX_SWEEP_SECONDS": bad})


def test_the_worker_sweeps_on_its_interval() -> None:
    for seconds in (1, 5, 15):
        schedule = croniter(sweep_cron(seconds), 0)  # SAQ's own schedule parser
        first, second = schedule.get_next(float), schedule.get_next(float)
        assert second - first == seconds
