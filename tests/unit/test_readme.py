"""The README against the code: it stays short, its configuration table is `Config`'s
settings with the variables `Config` really reads, its task and session lists are the ones
that exist, and its links (and the docs pages') lead somewhere."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from dockwork import config as config_module
from dockwork.config import Config, load_config
from dockwork.tasks import namespace

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 250

#: Config fields that are not settings: no row in the table. A new field is a new setting,
#: and fails test_configuration_table_lists_every_setting until the README documents it.
INTERNAL = {
    "root",  # the project's directory: found from where dockwork runs, never set
}

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def section(title: str) -> list[str]:
    """The README's lines under the ``##`` heading that starts with ``title``."""
    lines: list[str] | None = None
    for line in prose(README.read_text(encoding="utf-8")):
        if line.startswith("## "):
            if lines is not None:
                break
            if line[3:].startswith(title):
                lines = []
        elif lines is not None:
            lines.append(line)
    assert lines is not None, f"the README has no '## {title}' section"
    return lines


def rows(lines: list[str]) -> list[list[str]]:
    """The body rows of the Markdown tables in ``lines`` (not their header), as cells."""
    body, previous = [], ""
    for line in (ln.strip() for ln in lines):
        if line.startswith("|") and previous.startswith("|"):  # a header is never second
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):  # the separator row
                body.append(cells)
        previous = line
    return body


def slugs(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(2).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def settings() -> set[str]:
    return {f.name for f in dataclasses.fields(Config)} - INTERNAL


def config_table() -> dict[str, list[str]]:
    """The configuration table: key → [environment, default, meaning]."""
    table: dict[str, list[str]] = {}
    for cells in rows(section("Configuration")):
        assert len(cells) == 4, f"not key | environment | default | meaning: {cells}"
        key = re.fullmatch(r"`(\w+)`", cells[0])
        assert key, f"one key per row, in backticks: {cells[0]!r}"
        assert key.group(1) not in table, f"{key.group(1)} has two rows"
        table[key.group(1)] = cells[1:]
    return table


def variables_read(name: str) -> set[str]:
    """The environment variables load_config reads for a setting (config.py's own rule)."""
    alias = config_module.ENV_ALIASES.get(name)
    return {config_module.ENV_PREFIX + name.upper(), *([alias] if alias else [])}


def test_readme_is_short() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"README.md has {lines} lines: move details to docs/"


def test_internal_fields_exist() -> None:
    assert {f.name for f in dataclasses.fields(Config)} >= INTERNAL


def test_configuration_table_lists_every_setting() -> None:
    documented = set(config_table())
    assert not settings() - documented, "settings the README's table lacks"
    assert not documented - settings(), "rows for settings Config does not have"


def test_each_row_names_the_variables_config_reads() -> None:
    for key, (environment, _, _) in config_table().items():
        named = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", environment))
        assert named == variables_read(key), f"{key}: the README says {environment!r}"


@pytest.mark.parametrize("name", sorted(config_module.ENV_ALIASES))
def test_an_alias_is_really_read(name: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dockwork]\nproject_name = "demo"\n')
    alias = config_module.ENV_ALIASES[name]
    image = "mirror.example/x:1"
    found = load_config(tmp_path, environ={alias: image}, require_compose_files=False)
    assert getattr(found, name) == image


def test_numeric_and_boolean_defaults_match() -> None:
    table = config_table()
    for field in dataclasses.fields(Config):
        if field.name not in table or not isinstance(field.default, bool | int | float):
            continue  # a missing row is test_configuration_table_lists_every_setting's
        value = field.default
        expected = str(value).lower() if isinstance(value, bool) else f"{value:g}"
        assert table[field.name][1].strip("`") == expected, f"{field.name}: default {value}"


def test_every_task_is_listed() -> None:
    listed = set(re.findall(r"`inv ([\w.-]+)", "\n".join(section("Tasks"))))
    tasks = set(namespace().task_names)
    assert not tasks - listed, "tasks the README's table lacks"
    assert not listed - tasks, "the README lists tasks that do not exist"


def nox_sessions() -> tuple[set[str], set[str]]:
    """The noxfile's sessions, and the default ones (read, not imported: importing the
    noxfile takes nox's environment lock)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    sessions, not_default = set(), set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if ast.unparse(target) != "nox.session":
                continue
            keywords = {k.arg: ast.literal_eval(k.value) for k in (call.keywords if call else [])}
            name = keywords.get("name", node.name)
            sessions.add(name)
            if keywords.get("default") is False:
                not_default.add(name)
    defaults = sessions - not_default
    for node in tree.body:  # nox.options.sessions, when set, names the defaults
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions":
            defaults = set(ast.literal_eval(node.value))
    return sessions, defaults


def test_every_nox_session_is_listed() -> None:
    sessions, defaults = nox_sessions()
    listed: dict[str, bool] = {}
    for cells in rows(section("Checks")):
        name = re.match(r"`([\w-]+)`", cells[0])
        assert name, f"a session row without a name: {cells}"
        listed[name.group(1)] = "not default" not in cells[0]
    assert set(listed) == sessions
    assert {n for n, default in listed.items() if default} == defaults


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_links_lead_to_files_and_headings() -> None:
    for page in markdown_files():
        text = "\n".join(re.sub(r"`[^`]*`", "", ln) for ln in prose(page.read_text("utf-8")))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: {target} leads to no file"
            if anchor and resolved.suffix == ".md":
                assert anchor in slugs(resolved), f"{page.name}: {target}: no such heading"


def test_readme_links_every_docs_page() -> None:
    targets = [t.partition("#")[0] for t in LINK.findall(README.read_text("utf-8"))]
    linked = {(ROOT / t).resolve() for t in targets if t.startswith("docs/")}
    assert linked  # the README leads to the details
    assert set(DOCS.glob("*.md")) - linked == set(), "docs pages the README does not link"
