"""The release path holds together without building anything: the version comes from the
git tag, the release workflow runs the same `nox -s package` as everyone (a default
session), only its publish job can mint an OIDC token, and the changelog has its
Unreleased section. (`nox -s package` itself builds, installs and runs the wheel.)"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

import dockwork

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
SHA_PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(RELEASE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(job: str) -> list[dict[str, Any]]:
    found = workflow()["jobs"][job]["steps"]
    assert isinstance(found, list)
    return found


def test_the_version_is_the_installed_distributions() -> None:
    assert dockwork.__version__ == importlib.metadata.version("dockwork")
    Version(dockwork.__version__)  # PEP 440, or this raises


def test_the_version_comes_from_the_git_tag_not_the_source() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in pyproject["project"]["dynamic"]
    assert "version" not in pyproject["project"]
    assert any(r.startswith("hatch-vcs") for r in pyproject["build-system"]["requires"])
    hatch_version = pyproject["tool"]["hatch"]["version"]
    assert hatch_version["source"] == "vcs"
    Version(hatch_version["fallback-version"])
    init = (ROOT / "src" / "dockwork" / "__init__.py").read_text(encoding="utf-8")
    assert not re.search(r"^__version__\s*=", init, re.MULTILINE), "a version written by hand"


def test_importing_dockwork_imports_nothing_else() -> None:
    """`import dockwork` stays free: the version's metadata is read when asked for."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import dockwork\n"
        "print(sorted(set(sys.modules) - before - {'__future__'}))\n"
        "dockwork.__version__\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["['dockwork']", "True"], result.stdout


def test_release_runs_on_version_tags_only() -> None:
    # yaml reads `on:` as True
    assert workflow()[True] == {"push": {"tags": ["v*"]}}


def test_release_builds_with_the_package_session_and_the_tags_version() -> None:
    build = steps("build")
    (checkout,) = [s for s in build if "actions/checkout@" in s.get("uses", "")]
    assert checkout["with"]["fetch-depth"] == 0, "hatch-vcs needs history and tags"
    (run,) = [s["run"].strip() for s in build if "run" in s]
    argv = shlex.split(run)
    assert argv[:6] == ["uv", "run", "nox", "-s", "package", "--"]
    options = dict(zip(argv[6::2], argv[7::2], strict=True))
    assert options == {"--out-dir": "dist", "--expect-version": "${GITHUB_REF_NAME#v}"}
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    for option in options:
        assert f'add_argument("{option}"' in noxfile, f"nox -s package has no {option}"
    (upload,) = [s for s in build if "actions/upload-artifact@" in s.get("uses", "")]
    (download,) = [s for s in steps("publish") if "actions/download-artifact@" in s.get("uses", "")]
    assert upload["with"]["path"].rstrip("/") == options["--out-dir"]
    assert download["with"]["name"] == upload["with"]["name"]
    assert download["with"]["path"].rstrip("/") == "dist"  # the publish action's default


def test_only_the_publish_job_can_mint_an_id_token() -> None:
    release = workflow()
    assert release["permissions"] == {"contents": "read"}
    jobs = release["jobs"]
    assert "id-token" not in jobs["build"].get("permissions", {})
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["needs"] == "build"
    assert publish["environment"]["name"] == "pypi"
    # it runs nothing of the repository's: it downloads the built files and uploads them
    assert not [s for s in publish["steps"] if "run" in s]
    (pypi,) = [s for s in publish["steps"] if "pypa/gh-action-pypi-publish@" in s.get("uses", "")]
    assert not {"password", "user"} & set(pypi.get("with", {})), "trusted publishing: no token"


def test_release_actions_are_pinned_to_commits() -> None:
    uses = [s["uses"] for job in workflow()["jobs"].values() for s in job["steps"] if "uses" in s]
    assert len(uses) == 5
    for ref in uses:
        assert SHA_PINNED.fullmatch(ref), f"{ref} is not pinned to a SHA"


def test_the_package_session_is_a_default_session_with_a_docstring() -> None:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    (defaults,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and ast.unparse(node.targets[0]) == "nox.options.sessions"
        and isinstance(node.value, ast.List)
    ]
    assert "package" in [ast.literal_eval(e) for e in defaults.elts]
    (session,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "package"]
    assert [d for d in session.decorator_list if ast.unparse(d).startswith("nox.session")]
    assert "dockwork --version" in (ast.get_docstring(session) or "")


def test_changelog_starts_with_unreleased_in_keep_a_changelog_form() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in text
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    for heading in headings[1:]:
        match = re.fullmatch(r"\[(\S+)\] - \d{4}-\d{2}-\d{2}", heading)
        assert match, f"{heading!r} is not '[X.Y.Z] - YYYY-MM-DD'"
        Version(match.group(1))
    kinds = set(re.findall(r"^### (.+)$", text, re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^- ", unreleased, re.MULTILINE), "the Unreleased section is empty"
