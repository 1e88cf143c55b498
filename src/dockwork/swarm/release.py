"""What a deploy is made of, gathered before anything changes: the images' tag (the
commit), the secrets' values, the resolved compose file, and the rendered stack; then the
images built (and pushed) under that tag.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as _random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockwork import runner
from dockwork.compose import Compose
from dockwork.engine_probe import compose_problem
from dockwork.errors import CommandError, DeployError, ProgramNotFoundError
from dockwork.swarm import keys
from dockwork.swarm.render import Plan, Rendered, image_ref, placeholder, render

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dockwork.config import Config

#: compose's env file when the project names none: deploys never read the development .env
NO_ENV_FILE = os.devnull


@dataclass(frozen=True, slots=True)
class Release:
    """A rendered deploy, ready to build and apply."""

    tag: str
    rendered: Rendered
    #: the placeholders the compose file was resolved with (for building it the same way)
    placeholders: dict[str, str]


def commit_tag(root: Path) -> str:
    """The checkout's commit (12 hex digits), ``-dirty-<hash>`` with uncommitted changes
    (a hash of them: the same changes give the same tag)."""

    def git(*args: str) -> runner.Result:
        return runner.run(["git", "-C", str(root), *args], check=False)

    try:
        head = git("rev-parse", "--short=12", "HEAD")
    except ProgramNotFoundError:
        head = None
    if head is None or not head.ok:
        raise DeployError(
            f"{root} is not a git checkout with a commit, and the images are tagged with the "
            "commit they were built from. Commit, or set deploy_tag (DOCKWORK_DEPLOY_TAG) to "
            "the tag to use."
        )
    status = git("status", "--porcelain", "--untracked-files=all").stdout
    if not status.strip():
        return head.stdout.strip()
    digest = hashlib.sha256(git("diff", "HEAD", "--binary").stdout.encode())
    for line in sorted(status.splitlines()):
        if line.startswith("??"):
            path = root / line[3:]
            digest.update(line.encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return f"{head.stdout.strip()}-dirty-{digest.hexdigest()[:8]}"


def secret_values(names: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """Each secret's value: ``NAME`` in the environment, or the file ``NAME_FILE`` names;
    every missing one named in a single error, before anything was changed."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        if environ.get(name):
            values[name] = environ[name]
            continue
        path = environ.get(f"{name}_FILE")
        if path:
            try:
                values[name] = Path(path).read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise DeployError(
                    f"{name}_FILE names {path}, which cannot be read ({exc.strerror}). Point "
                    "it at the file holding the secret."
                ) from exc
            if values[name]:
                continue
        missing.append(name)
    if missing:
        listed = ", ".join(missing)
        raise DeployError(
            f"no value for the secret(s) {listed} (deploy_secrets): export each one, or "
            f"{', '.join(f'{m}_FILE' for m in missing)} naming a file that holds it. Nothing "
            "was deployed."
        )
    return values


def deploy_compose(config: Config, extra: tuple[str, ...] = ()) -> Compose:
    """Compose over the deploy files, never with the development .env."""
    return Compose(
        config.stack,
        (*config.deploy_files, *extra),
        project_directory=str(config.root),
        env_file=config.env_file or NO_ENV_FILE,
    )


def resolve(config: Config, placeholders: Mapping[str, str]) -> dict[str, Any]:
    """``docker compose config --format json`` of the deploy files, with each secret
    variable set to its placeholder (the real value never enters Compose's output)."""
    missing = [f for f in config.deploy_files if not (config.root / f).is_file()]
    if missing:
        raise DeployError(
            f"deploy_files names {', '.join(missing)}, which is not in {config.root}. Set "
            "deploy_files to the compose files of the production stack."
        )
    argv = deploy_compose(config).command("config", "--format", "json")
    result = runner.run(argv, check=False, env=dict(placeholders), cwd=config.root)
    if not result.ok:
        if (problem := compose_problem(argv)) is not None:
            raise problem
        raise DeployError(
            f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}. "
            "Set the variables the compose files need in the environment (deploys never "
            "read .env)."
        )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def entrypoints(resolved: Mapping[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Entrypoint and command of each image the compose files run (not built here) that is
    on this engine: what the secret wrapper needs to exec."""
    images = sorted(
        {s["image"] for s in (resolved.get("services") or {}).values() if "build" not in s}
    )
    out: dict[str, tuple[list[str], list[str]]] = {}
    for image in images:
        result = runner.run(
            ["docker", "image", "inspect", "--format", "{{json .Config}}", image], check=False
        )
        if result.ok:
            cfg = json.loads(result.stdout) or {}
            out[image] = (list(cfg.get("Entrypoint") or []), list(cfg.get("Cmd") or []))
    return out


def prepare(config: Config, environ: Mapping[str, str] | None = None) -> Release:
    """Everything checked and rendered; nothing changed yet."""
    env = os.environ if environ is None else environ
    tag = config.deploy_tag or commit_tag(config.root)
    values = secret_values(config.deploy_secrets, env)
    nonce = _random.token_hex(6)
    placeholders = {name: placeholder(name, nonce) for name in config.deploy_secrets}
    resolved = resolve(config, placeholders)
    plan = Plan(
        stack=config.stack,
        tag=tag,
        placeholders=placeholders,
        values=values,
        registry=config.deploy_registry,
        replicas=config.replicas(),
        limits=config.limits(),
        routing=config.deploy_routing,
        monitor=config.deploy_monitor,
        app_service=config.app_service,
        migrate_service=config.migrate_service,
        proxy_image=config.deploy_proxy_image,
        entrypoints=entrypoints(resolved),
        # made on the first deploy from this machine (in the user's cache, never the repo)
        secret_key=keys.secret_key(config.stack) if config.deploy_secrets else b"",
    )
    return Release(tag, render(resolved, plan), placeholders)


def build_commands(config: Config, release: Release, override: Path) -> list[list[str]]:
    """``docker compose build`` of the services built from the project, tagged with the
    release's tag (an override file names the images), then ``docker push`` of each image
    when a registry is configured."""
    compose = deploy_compose(config, (str(override),))
    argv = [list(compose.build(sorted(release.rendered.images)))]
    if config.deploy_registry:
        argv += [["docker", "push", ref] for ref in sorted(set(release.rendered.images.values()))]
    return argv


def build(config: Config, release: Release) -> None:
    """Build (and push) the images; the compose command is shown as it runs."""
    if not release.rendered.images:
        return
    override = {"services": {name: {"image": ref} for name, ref in release.rendered.images.items()}}
    with tempfile.TemporaryDirectory(prefix="dockwork-deploy-") as tmp:
        path = Path(tmp) / "images.json"  # JSON is YAML: Compose reads it as a compose file
        path.write_text(json.dumps(override))
        for argv in build_commands(config, release, path):
            try:
                runner.run(
                    argv,
                    capture=False,
                    show=True,
                    env=dict(release.placeholders),
                    cwd=config.root,
                )
            except CommandError as exc:
                raise DeployError(
                    f"`{' '.join(exc.argv)}` failed (exit {exc.returncode}): the images were "
                    "not built or pushed, nothing was deployed."
                ) from exc


__all__ = [
    "Release",
    "build",
    "build_commands",
    "commit_tag",
    "deploy_compose",
    "entrypoints",
    "image_ref",
    "prepare",
    "resolve",
    "secret_values",
]
