"""The noxfile `dockwork init` writes and this repository's own noxfile are tied: every
session the template has, this repository has too, calling the same noxtools helpers, so
a change to one that the other misses fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from dockwork import scaffold

ROOT = Path(__file__).resolve().parents[2]


def sessions(source: str) -> dict[str, set[str]]:
    """Each nox session function → the ``noxtools.*`` names it calls."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and any(
            "session" in ast.unparse(d) for d in node.decorator_list
        ):
            found[node.name] = {
                ast.unparse(call.func).removeprefix("noxtools.")
                for call in ast.walk(node)
                if isinstance(call, ast.Call) and ast.unparse(call.func).startswith("noxtools.")
            }
    return found


def test_the_template_sessions_are_this_repositorys() -> None:
    template = sessions(
        scaffold.NOXFILE_HEAD.format(sessions=["compose", "tests"]) + scaffold.NOXFILE_MIGRATIONS
    )
    ours = sessions((ROOT / "noxfile.py").read_text())
    assert set(template) == {"compose", "tests", "migrations"}
    for name, helpers in template.items():
        assert name in ours, f"the template's {name} session is not in noxfile.py"
        assert helpers <= ours[name], f"{name}: template calls {helpers}, noxfile.py {ours[name]}"
