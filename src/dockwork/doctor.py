"""`inv doctor` / `dockwork doctor`: is this machine ready for `inv dev`? One line per check.

Each check is a small function over what the earlier ones found; a check that raises
becomes a failed line naming the error, so the doctor itself never crashes, and every
engine query has a timeout (``engine_timeout``), so a hung engine is a line, not a hang.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockwork import envfile, ports, runner
from dockwork.compose import Compose, parse_ps
from dockwork.config import Config, load_config, shared_name
from dockwork.engine_probe import COMPOSE_HINT, INSTALL_HINT, START_HINT, Probe, probe
from dockwork.errors import DockworkError, describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
MARKS = {OK: "✔", WARN: "!", FAIL: "✘", SKIP: "-"}
DEFAULT_TIMEOUT = 20.0
#: a setting `dockwork init` could not tell, as it writes it: "# key = …  # … could not tell: …"
PLACEHOLDER = re.compile(r"^#\s*(\w+)\s*=\s*…\s*#\s*dockwork init could not tell:(.*)$")


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def blocking(self) -> bool:
        """A failure that stops `inv dev`."""
        return self.status == FAIL


@dataclass
class Findings:
    """What the checks learn, for the checks after them."""

    root: Path | None
    timeout: float = DEFAULT_TIMEOUT
    engine: Probe | None = None
    config: Config | None = None
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def compose(self) -> Compose | None:
        """The project's Compose, once the configuration loaded."""
        return Compose.from_config(self.config) if self.config is not None else None


def check_config(found: Findings) -> Iterator[Check]:
    """[tool.dockwork] loads and validates."""
    try:
        found.config = load_config(found.root)
    except DockworkError as exc:
        yield Check("[tool.dockwork]", FAIL, exc.message.splitlines()[0], "fix pyproject.toml")
        return
    found.timeout = found.config.engine_timeout
    files = ", ".join(found.config.compose_files)
    yield Check("[tool.dockwork]", OK, f"project {found.config.project_name!r}, files {files}")
    name = found.config.project_name
    if (own := shared_name(found.config)) is not None:
        first = os.path.relpath(found.config.compose_paths[0], found.config.root)
        yield Check(
            "project name",
            WARN,
            f"{name!r} is a generic name (Compose names a project after the directory of its "
            f"first compose file): any other project named {name!r} on this engine shares "
            "its containers and volumes, and its `down --volumes` deletes this one's data",
            f"give it a name of its own: `name: {own}` at the top of {first} (plain `docker "
            "compose` then uses it too); first `inv down` under the old name (its containers "
            "hold the ports; its volumes, kept, hold the data: `inv db.dump` to carry it over)",
        )


def check_docker(found: Findings) -> Iterator[Check]:
    """The CLI, the engine (which kind, through what) and Compose v2."""
    found.engine = engine = probe(found.timeout)
    if engine.docker is None:
        yield Check("docker CLI", FAIL, "not on PATH", INSTALL_HINT)
        return
    yield Check("docker CLI", OK, engine.docker)
    if engine.engine_ok:
        yield Check("engine", OK, f"{engine.kind} {engine.version} via {engine.host}")
    else:
        yield Check(
            "engine", FAIL, f"not reachable via {engine.host}: {engine.engine_error}", START_HINT
        )
    if engine.compose_ok:
        yield Check("compose", OK, f"Compose v{engine.compose_version}")
    else:
        yield Check("compose", FAIL, f"Compose v2 not found ({engine.compose_error})", COMPOSE_HINT)


def check_env_file(found: Findings) -> Iterator[Check]:
    """.env: present, created on first use in development, or required from the environment."""
    config = found.config
    if config is None:
        return
    env_file = envfile.env_path(config)
    example = envfile.example_path(config)
    if env_file.is_file():
        mode = env_file.stat().st_mode & 0o777
        if mode & 0o077:
            yield Check(
                ".env",
                WARN,
                f"{env_file.name} is readable by others (mode {mode:o})",
                f"chmod 600 {env_file.name}",
            )
        else:
            yield Check(".env", OK, env_file.name)
    elif not example.is_file():
        yield Check(".env", OK, f"not used (no {envfile.EXAMPLE_NAME})")
    elif config.development:
        yield Check(".env", WARN, "missing", f"`inv dev` creates it from {envfile.EXAMPLE_NAME}")
    else:
        yield Check(
            ".env",
            WARN,
            f"missing, and not created without {config.dev_override}",
            "set the variables the compose files need in the environment",
        )


def _resolve(found: Findings, config: Config) -> dict[str, Any] | str:
    """The resolved compose configuration, or the reason it cannot be resolved."""
    compose = Compose.from_config(config)
    example = envfile.example_path(config)
    if config.development and not envfile.env_path(config).is_file() and example.is_file():
        # what `inv dev` will see once it has created .env
        compose = dataclasses.replace(compose, env_file=str(example))
    argv = compose.config().add_option("--format", "json")
    result = runner.run(argv, check=False, timeout=found.timeout)
    if not result.ok:
        return (result.stderr.strip().splitlines() or ["invalid"])[-1]
    data = json.loads(result.stdout)
    return data if isinstance(data, dict) else {}


def check_compose_files(found: Findings) -> Iterator[Check]:
    """The compose files resolve, and every service name dockwork is configured with exists."""
    if found.config is None or found.engine is None or found.engine.docker is None:
        return
    resolved = _resolve(found, found.config)
    if isinstance(resolved, str):
        yield Check(
            "compose files", FAIL, resolved, "fix the compose files or the variables they need"
        )
        return
    found.resolved = resolved
    services = resolved.get("services") or {}
    yield Check("compose files", OK, f"valid ({len(services)} services)")
    config = found.config
    for key in ("app_service", "db_service", "migrate_service"):
        name = getattr(config, key)
        if name not in services:
            yield Check(
                f"service {name!r}",
                FAIL,
                f"`{key}` names a service the compose files do not define",
                f"set `{key}` in [tool.dockwork] to one of: {', '.join(sorted(services))}",
            )


def check_ports(found: Findings) -> Iterator[Check]:
    """Each published host port: free, ours, or held by another program (and its variable)."""
    compose = found.compose
    if not found.resolved or compose is None or found.config is None:
        return
    ours: set[int] = set()
    if found.engine is not None and found.engine.engine_ok:
        result = runner.run(compose.ps(json_format=True), check=False, timeout=found.timeout)
        if result.ok:
            ours = {p for s in parse_ps(result.stdout) for p, _, _ in s.publishers}
    busy = {
        (p.service, p.port): p for p in ports.taken(compose, found.resolved, ours, found.timeout)
    }
    env_name = envfile.env_path(found.config).name
    for p in ports.published(found.resolved):
        name = f"port {p.port} ({p.service})"
        if p.port in ours:
            yield Check(name, OK, "in use by this stack")
        elif (p.service, p.port) in busy:
            held = busy[(p.service, p.port)]
            fix = held.fix(env_name) + (" (or stop that container)" if held.holder else "")
            yield Check(name, FAIL, f"in use on {p.host_ip} by {held.by}", fix)
        else:
            yield Check(name, OK, f"free on {p.host_ip}")


def check_images(found: Findings) -> Iterator[Check]:
    """Images the stack pulls (not builds): present, or where they would come from."""
    services = (found.resolved.get("services") or {}).values()
    images = sorted({str(s["image"]) for s in services if s.get("image") and not s.get("build")})
    for image in images:
        if found.engine is None or not found.engine.engine_ok:
            yield Check(f"image {image}", SKIP, "needs the engine")
            continue
        argv = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
        present = runner.run(argv, check=False, timeout=found.timeout)
        if present.ok:
            yield Check(f"image {image}", OK, "present")
        elif present.timed_out:
            yield Check(f"image {image}", FAIL, present.stderr, START_HINT)
        else:
            yield Check(
                f"image {image}",
                WARN,
                "not present; pulled on first `inv dev`",
                "needs registry access, or set the *_IMAGE variable to an image you have",
            )


def check_settings(found: Findings) -> Iterator[Check]:
    """Settings `dockwork init` left open, and the paths the settings name."""
    config = found.config
    if config is None:
        return
    pyproject = config.root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    given = set(tomllib.loads(text).get("tool", {}).get("dockwork", {}))
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("["):
            in_table = line.startswith("[tool.dockwork")
        match = PLACEHOLDER.match(line) if in_table else None
        if match and match.group(1) not in given:  # filled in on another line: done
            yield Check(
                f"setting {match.group(1)}",
                FAIL,
                f"not set: {match.group(2).strip()}",
                f"fill it in: {pyproject.name} line {number}",
            )
    for path in config.test_paths:
        if not (config.root / path).exists():
            yield Check(
                "test_paths",
                FAIL,
                f"{path!r} does not exist under {config.root}",
                "set `test_paths` in [tool.dockwork] to where the tests are",
            )
    if "postgres" in config.test_services:
        try:
            config.template_paths()
        except DockworkError as exc:
            yield Check("template_inputs", FAIL, exc.message.split(". ")[0], "see the message")


def _probe_script(argv: Sequence[str]) -> str:
    """A shell line that exits 0 when ``argv``'s program (or ``python -m`` module) is there."""
    if Path(argv[0]).name.startswith("python") and "-m" in argv[:-1]:
        module = argv[list(argv).index("-m") + 1].replace("'", "")
        code = f"import importlib.util as u, sys; sys.exit(0 if u.find_spec('{module}') else 1)"
        return f"{shlex.quote(argv[0])} -c {shlex.quote(code)}"
    return f"command -v {shlex.quote(argv[0])}"


def _here(argv: Sequence[str], root: Path) -> bool:
    """``argv``'s program (or module) is where the test template's migrations run: here."""
    if Path(argv[0]).name.startswith("python") and "-m" in argv[:-1]:
        module = argv[list(argv).index("-m") + 1]
        paths = [str(root), str(root / "src")]
        code = f"import importlib.util as u, sys; sys.exit(0 if u.find_spec({module!r}) else 1)"
        env = {"PYTHONPATH": os.pathsep.join(paths)}
        return runner.run([sys.executable, "-c", code], check=False, cwd=root, env=env).ok
    return (
        shutil.which(argv[0], path=os.environ.get("PATH")) is not None or (root / argv[0]).is_file()
    )


def check_migrations(found: Findings) -> Iterator[Check]:
    """The migration program exists where it runs: here (the test template) and in the
    migration service's image (`inv migrate`, `inv db.*`)."""
    config = found.config
    if config is None:
        return
    argv = config.migrate_command
    shown = shlex.join(argv)
    if "postgres" in config.test_services:
        if _here(argv, config.root):
            yield Check("migrations here", OK, f"`{shown}` (the tests' template runs it)")
        else:
            yield Check(
                "migrations here",
                FAIL,
                f"`{argv[0]}` of migrate_command is not installed here, where the tests' "
                "template is migrated",
                f"add it to the project's dev dependencies (`uv add --dev {argv[0]}`), or fix "
                "`migrate_command`",
            )
    from dockwork import migrations  # noqa: PLC0415

    get = lambda key: getattr(config, key)  # noqa: E731 - the settings, by name
    unset = [
        f"{step.key} (inv {step.task})"
        for name, step in migrations.STEPS.items()
        if migrations.template(get, name) is None
    ]
    if unset:
        yield Check(
            "migration commands",
            WARN,
            f"not set for migration_tool = {config.migration_tool!r}: {', '.join(unset)}",
            "set each in [tool.dockwork] (its argv; [] if the tool has none)",
        )
    if "postgres" in config.test_services and migrations.versions_dir(config) is None:
        yield Check(
            "migration versions",
            WARN,
            "no single `versions` directory under template_inputs: `inv db.revision` cannot "
            "tell where new revisions belong",
            "set `migration_versions` in [tool.dockwork] to that directory",
        )
    services = found.resolved.get("services") or {}
    service = services.get(config.migrate_service)
    compose = found.compose
    if service is None or compose is None or found.engine is None or not found.engine.engine_ok:
        return
    image = compose.image_name(config.migrate_service, service)
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    if not runner.run(inspect, check=False, timeout=found.timeout).ok:
        yield Check(
            f"migrations in {config.migrate_service}",
            SKIP,
            f"image {image} not built yet; `inv dev` builds it (run `inv doctor` again then)",
        )
        return
    # the image alone, no network: a `compose run` would create the project's network and,
    # with the stack down, leave it behind (the engine's address pools are finite)
    workdir = str(service.get("working_dir") or "")
    argv_run = [
        "docker", "run", "--rm", "--network", "none", "--entrypoint", "sh",
        *(["--workdir", workdir] if workdir else []),
        image, "-c", _probe_script(argv),
    ]  # fmt: skip
    result = runner.run(argv_run, check=False, timeout=max(found.timeout, 60))
    if result.ok:
        yield Check(f"migrations in {config.migrate_service}", OK, f"`{argv[0]}` is there")
    else:
        yield Check(
            f"migrations in {config.migrate_service}",
            FAIL,
            f"`{argv[0]}` of migrate_command is not in service {config.migrate_service!r}",
            "install it in that image, or set `migrate_service` to the service that has it",
        )


CHECKS: tuple[Callable[[Findings], Iterator[Check]], ...] = (
    check_config,
    check_docker,
    check_env_file,
    check_compose_files,
    check_ports,
    check_images,
    check_settings,
    check_migrations,
)


def run_checks(root: Path | None = None) -> list[Check]:
    """Every check, in order; a check that raises is a failed line, never a crash."""
    found = Findings(root)
    checks: list[Check] = []
    for check in CHECKS:
        try:
            checks.extend(check(found))
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
            label = (check.__doc__ or check.__name__).split(":")[0].split(",")[0]
            checks.append(Check(label.strip().rstrip("."), FAIL, describe(exc), "report this"))
    return checks


def render(checks: list[Check]) -> str:
    """A table: mark, check, detail, fix."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        line = f"{MARKS[c.status]} {c.name:<{width}}  {c.detail}"
        if c.fix and c.status in {FAIL, WARN}:
            line += f"\n  {'':<{width}}  → {c.fix}"
        lines.append(line)
    blocking = [c.name for c in checks if c.blocking]
    lines.append("")
    lines.append(
        f"{len(blocking)} problem(s) block `inv dev`: {', '.join(blocking)}"
        if blocking
        else "ready for `inv dev`"
    )
    return "\n".join(lines)


def main(root: Path | None = None) -> int:
    """Print the report; the exit code is 1 when something blocks `inv dev`."""
    checks = run_checks(root)
    print(render(checks))  # noqa: T201 - the report is the interface
    return 1 if any(c.blocking for c in checks) else 0


__all__ = ["Check", "main", "render", "run_checks"]
