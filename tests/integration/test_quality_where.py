"""`inv test` runs pytest in the app's container only where that runs the project's tests
on databases of their own: the image has pytest and dockwork (its plugin), and the service
mounts the test paths from here. Otherwise it says why and runs on the host (real engine,
real Compose; the image's `pytest` is a stand-in that says where it ran)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.test_stack_tasks import Tiny, tiny_project

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.docker

DOCKERFILE = """\
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
RUN printf '#!/bin/sh\\necho "pytest ran as $0"\\n' > /usr/local/bin/pytest \\
 && chmod +x /usr/local/bin/pytest
ARG WITH_DOCKWORK=0
RUN if [ "$WITH_DOCKWORK" = 1 ]; then \\
      d="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/dockwork" \\
      && mkdir -p "$d" && touch "$d/__init__.py"; fi
"""

COMPOSE = """\
services:
  app:
    build:
      context: .
      args:
        PYTHON_IMAGE: ${PYTHON_IMAGE}
        WITH_DOCKWORK: "%(dockwork)s"
    command: ["sleep", "infinity"]
    environment:
      DATABASE_URL: postgresql://app:secret@db:5432/app
%(volumes)s"""


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Tiny]:
    with tiny_project(tmp_path, "where") as t:
        (t.root / "tests").mkdir()
        (t.root / "Dockerfile").write_text(DOCKERFILE)
        yield t


@pytest.mark.parametrize(
    ("dockwork", "volumes", "where"),
    [
        ("1", "    volumes: ['.:/app']\n", "container"),
        ("0", "    volumes: ['.:/app']\n", "dockwork is not in the 'app' image"),
        ("1", "    volumes: ['./src:/app/src']\n", "tests is not mounted into the 'app' service"),
        ("1", "", "tests is not mounted into the 'app' service"),
        # the project mounted, but not where it is in the container (container_workdir)
        ("1", "    volumes: ['.:/src']\n", "tests is not mounted into the 'app' service"),
    ],
    ids=["all-there", "no-dockwork", "tests-not-mounted", "nothing-mounted", "elsewhere"],
)
def test_inv_test_runs_in_the_container_only_where_it_tests_this_checkout_safely(
    tiny: Tiny, dockwork: str, volumes: str, where: str
) -> None:
    (tiny.root / "compose.yaml").write_text(COMPOSE % {"dockwork": dockwork, "volumes": volumes})
    (tiny.root / "src").mkdir()
    result = tiny.inv("test")
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    if where == "container":
        assert result.returncode == 0, output
        assert "pytest runs in the 'app' container" in output, output
        assert "pytest ran as /usr/local/bin/pytest" in output, output
        return
    assert where in output, output
    assert "running pytest on the host through uv" in output, output
    assert "pytest ran as /usr/local/bin/pytest" not in output, output
    assert "uv run -- pytest" in output, "the host's command is echoed"
