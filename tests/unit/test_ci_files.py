"""CI files that cannot run here are at least valid, pinned, least-privilege, and agree
with the project (GitHub Actions workflow, pre-commit config)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_workflow_runs_the_same_nox_sessions_as_ci_run() -> None:
    workflow = load(WORKFLOW)
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert runs == ["uv run nox", "uv run nox -s cluster"]
    commands = [
        ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.startswith("uv run")
    ]
    assert commands == runs


def test_workflow_is_least_privilege_and_actions_are_pinned() -> None:
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    uses = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a SHA"
    # yaml reads `on:` as True
    assert set(workflow[True]) >= {"push", "pull_request"}


def test_uv_cache_is_enabled() -> None:
    workflow = load(WORKFLOW)
    setup = [
        s
        for job in workflow["jobs"].values()
        for s in job["steps"]
        if "setup-uv" in s.get("uses", "")
    ]
    assert setup
    assert setup[0]["with"]["enable-cache"] is True


def test_pre_commit_ruff_matches_the_locked_ruff() -> None:
    config = load(ROOT / ".pre-commit-config.yaml")
    (repo,) = config["repos"]
    assert repo["repo"].endswith("/ruff-pre-commit")
    assert {h["id"] for h in repo["hooks"]} == {"ruff-check", "ruff-format"}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (ruff,) = [p["version"] for p in lock["package"] if p["name"] == "ruff"]
    assert repo["rev"] == f"v{ruff}"
