"""The Swarm stack file, rendered from the resolved compose file (``docker compose config``):
one definition, not a second set of hand-written files.

Pure: a resolved compose document and a :class:`Plan` in, a :class:`Rendered` out, no I/O.
What the rendering does to each service:

- ``build`` goes; services built from the project run the commit-tagged image instead.
- ``restart`` becomes ``deploy.restart_policy``; ``depends_on`` goes (Swarm has no start
  order: dockwork deploys the servers and runs the migration job first, and the app's own
  healthcheck and restart policy cover the rest).
- The migrate service becomes a one-off job (``mode: replicated-job``).
- The services built from the project (app, worker) get replicas (the app 2 by default),
  ``update_config`` (start-first, rollback on failure, a monitor window),
  ``rollback_config``, a restart policy and the configured limits; the others (servers on
  volumes) update stop-first, one at a time.
- Secrets: the compose file is resolved with a placeholder for each secret variable. A
  variable carrying it (``POSTGRES_PASSWORD``, or ``DATABASE_URL`` with the password inside)
  becomes a Docker secret holding the real value (named by an HMAC of it under the stack's
  key, which stays out of the repository), and the service reads it from
  ``/run/secrets/…``: services built from the project through ``<NAME>_FILE`` (the
  convention the official images follow too), other images through a wrapper of their
  entrypoint that reads the file into the variable. The value is never in the stack file.
- With ``routing = "proxy"`` (engines without IPVS, where Swarm's virtual IPs and ingress
  mesh do not work): every service resolves by DNS round robin (``endpoint_mode: dnsrr``),
  the app's port is published by an HAProxy service in host mode on every node (a global
  service), which finds the app's tasks through Docker's DNS and health-checks them.

A key the rendering cannot translate is an error naming it, never dropped in silence.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from dockwork.errors import DockworkError

#: service keys passed to the stack file as they are
PASSED = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "healthcheck",
        "volumes",
        "stop_grace_period",
        "stop_signal",
        "init",
        "user",
        "working_dir",
        "labels",
        "logging",
        "hostname",
        "ulimits",
        "sysctls",
        "cap_add",
        "cap_drop",
        "read_only",
        "dns",
        "dns_search",
        "extra_hosts",
        "tty",
        "stdin_open",
        "tmpfs",
        "deploy",
    }
)
#: service keys the rendering translates (or that have no meaning in a swarm)
TRANSLATED = frozenset(
    {"build", "depends_on", "restart", "ports", "networks", "expose", "pull_policy"}
)
#: the longest name Swarm takes for a secret or config
MAX_OBJECT_NAME = 64
#: the shortest key that may name secrets
MIN_KEY_BYTES = 16
#: why a key has no Swarm translation, for the error
UNSUPPORTED_HINTS = {
    "container_name": "Swarm names tasks itself",
    "network_mode": "services join the stack's overlay network",
    "privileged": "Swarm services cannot be privileged",
    "devices": "Swarm services cannot map devices",
    "links": "services reach each other by name on the stack network",
    "secrets": "declare secrets with deploy_secrets in [tool.dockwork]",
    "configs": "Swarm configs from the compose file are not rendered yet",
}
#: top-level keys the stack file keeps (``x-*`` extensions were merged by Compose)
TOP_LEVEL = frozenset({"name", "services", "volumes", "networks"})
SECRET_DIR = "/run/secrets"  # noqa: S105 - a directory, not a password
PROXY_SERVICE = "proxy"
PROXY_PORT = 8080
#: the proxy's readiness, on loopback inside its container: 200 once HAProxy has a live task
#: of the app behind it, 503 before. Its healthcheck asks it until the first 200, so Swarm
#: counts a new proxy as running only then and `deploy.up` returns when the published port
#: serves the app (a new proxy had answered 503 for its first seconds, while it resolved and
#: checked the tasks). Ready once, the proxy stays healthy while it runs: an outage of the
#: app (its /health failing) must not make Swarm restart the proxies, which would then refuse
#: connections instead of answering 503.
PROXY_READY = ("127.0.0.1", 8405, "/dockwork-ready")
#: bash's /dev/tcp (Debian-based images, the official one's default), or wget where there is
#: no bash (Alpine-based ones); the first 200 leaves a mark in the task's own /tmp. ``$$``:
#: `docker stack deploy` interpolates the stack file.
PROXY_PROBE = (
    "[ -e /tmp/dockwork-ready ] || {{ {{ "
    'bash -c \'exec 3<>/dev/tcp/{0}/{1} && printf "GET {2} HTTP/1.0\\r\\n\\r\\n" >&3 '
    '&& read -r -t 3 _ status _ <&3 && [ "$$status" = 200 ]\' 2>/dev/null '
    "|| wget -q -O /dev/null http://{0}:{1}{2}; }} && : > /tmp/dockwork-ready; }}"
).format(*PROXY_READY)


class RenderError(DockworkError):
    """The compose file has something the Swarm rendering cannot translate."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Object:
    """A Docker secret or config to create: its name carries a hash of its content, so a
    new value is a new object (Swarm objects are immutable) and the same value is reused."""

    name: str
    content: str = field(repr=False)
    #: the variable (secret) or the purpose (config) it is for
    what: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the rendering needs besides the resolved compose file."""

    stack: str
    tag: str
    #: secret variable → the placeholder the compose file was resolved with
    placeholders: dict[str, str] = field(default_factory=dict)
    #: secret variable → its real value (never printed)
    values: dict[str, str] = field(default_factory=dict, repr=False)
    registry: str = ""
    replicas: dict[str, int] = field(default_factory=dict)
    #: service → {"cpus": "1", "memory": "512M"}
    limits: dict[str, dict[str, str]] = field(default_factory=dict)
    routing: str = "mesh"
    monitor: float = 10
    app_service: str = "app"
    migrate_service: str = "migrate"
    proxy_image: str = "haproxy:3.0"
    #: image → (entrypoint, command) as the image defines them (for the secret wrapper)
    entrypoints: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    #: the stack's key naming its secrets (:mod:`dockwork.swarm.keys`; never printed)
    secret_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The stack file and what must exist before it is deployed."""

    stack: dict[str, Any]
    #: service → image for services built from the project (built and tagged by dockwork)
    images: dict[str, str]
    secrets: list[Object]
    configs: list[Object]
    #: the migration job's service name, if the project has one
    job: str | None
    #: the address the app answers on, when it publishes a port
    published: int | None


def content_name(
    stack: str, what: str, content: str, *, secret: bool = False, key: bytes = b""
) -> str:
    """``<stack>_<what>_<hash>``: a new name for each new content. A secret's hash is an
    HMAC-SHA256 under ``key``, the stack's own random key kept outside the repository
    (:mod:`dockwork.swarm.keys`): the name, which anyone who can run ``docker secret ls``
    sees, cannot be checked against guesses of the value without that key. The same value
    under the same key keeps its name (no needless restart); a deploy from a machine with
    another key names it anew, which costs one rolling update of the services using it."""
    if secret:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError("a secret's name needs the stack's key (dockwork.swarm.keys)")
        message = f"dockwork:{stack}:{what}\0{content}".encode()
        digest = hmac.new(key, message, hashlib.sha256).hexdigest()[:12]
    else:
        digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    name = f"{stack}_{what.lower()}_{digest}"
    if len(name) > MAX_OBJECT_NAME:
        raise RenderError(
            f"the {'secret' if secret else 'config'} for {what} would be named {name!r}, "
            f"longer than the {MAX_OBJECT_NAME} characters Swarm takes: set a shorter "
            "deploy_stack."
        )
    return name


def image_ref(image: str, tag: str, registry: str = "") -> str:
    """``image`` with ``tag`` instead of its own tag, under ``registry`` when given."""
    name = image.rsplit("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: name.rfind(":")]
    return f"{registry.rstrip('/')}/{name}:{tag}" if registry else f"{name}:{tag}"


def render(resolved: dict[str, Any], plan: Plan) -> Rendered:
    """The stack file for ``resolved`` (``docker compose config --format json``)."""
    doc = copy.deepcopy(resolved)
    services: dict[str, dict[str, Any]] = doc.get("services") or {}
    _check(doc, services, plan)
    # the project's own services (app, worker) roll start-first; servers on volumes do not
    rolling = {n for n, s in services.items() if "build" in s and n != plan.migrate_service}
    secrets: dict[str, Object] = {}
    images: dict[str, str] = {}
    out_services: dict[str, dict[str, Any]] = {}
    published: int | None = None
    for name, service in services.items():
        out, port = _service(name, service, plan, secrets=secrets, images=images)
        out["deploy"] = _deploy(name, service, out, plan, rolling=name in rolling)
        out_services[name] = out
        if name == plan.app_service and port is not None:
            published = port

    configs: list[Object] = []
    if plan.routing == "proxy":
        if published is None:
            raise RenderError(
                f"routing through the proxy: the app service {plan.app_service!r} publishes no "
                "port in the compose files, so there is nothing for the proxy to serve."
            )
        text = haproxy_config(plan.app_service, _app_target(services[plan.app_service]))
        configs.append(Object(content_name(plan.stack, "haproxy", text), text, "haproxy.cfg"))
        out_services[PROXY_SERVICE] = _proxy_service(plan, configs[0], published)

    stack: dict[str, Any] = {"services": out_services}
    project = str(doc.get("name") or plan.stack)
    volumes = {k: _strip_name(k, v, project) for k, v in (doc.get("volumes") or {}).items()}
    networks = {
        k: _strip_name(k, v, project)
        for k, v in (doc.get("networks") or {}).items()
        if k != "default"
    }
    sections = {
        "volumes": volumes,
        "networks": networks,
        "secrets": {s.name: {"external": True} for s in secrets.values()},
        "configs": {c.name: {"external": True} for c in configs},
    }
    stack |= {key: value for key, value in sections.items() if value}
    _no_placeholder_left(stack, plan)
    job = plan.migrate_service if plan.migrate_service in services else None
    return Rendered(stack, images, list(secrets.values()), configs, job, published)


def _check(doc: dict[str, Any], services: dict[str, Any], plan: Plan) -> None:
    """What the rendering refuses before it starts, each naming the key."""
    for key in doc:
        if key not in TOP_LEVEL and not key.startswith("x-"):
            raise RenderError(
                f"the compose file's top-level `{key}` has no Swarm rendering in dockwork: "
                "remove it from the files deploy_files names, or deploy it yourself."
            )
    if not services:
        raise RenderError("the compose files define no services to deploy.")
    for setting, names in (("deploy_replicas", plan.replicas), ("deploy_limits", plan.limits)):
        for name in names:
            if name not in services:
                raise RenderError(
                    f"{setting} names {name!r}, which is not a service of the compose files "
                    f"({', '.join(sorted(services))})."
                )
    if plan.routing == "proxy" and plan.app_service not in services:
        raise RenderError(
            f"routing through the proxy needs the app service {plan.app_service!r}, which the "
            "compose files do not define (app_service in [tool.dockwork])."
        )


def _service(
    name: str,
    service: dict[str, Any],
    plan: Plan,
    *,
    secrets: dict[str, Object],
    images: dict[str, str],
) -> tuple[dict[str, Any], int | None]:
    """The service's keys for Swarm (its ``deploy`` apart); the port it publishes."""
    out: dict[str, Any] = {}
    for key, value in service.items():
        if value is None or key in TRANSLATED:
            continue
        if key not in PASSED:
            hint = UNSUPPORTED_HINTS.get(key, "Swarm has no equivalent dockwork renders")
            raise RenderError(
                f"services.{name}.{key} in the compose file cannot be rendered for Swarm "
                f"({hint}). Remove it from the files deploy_files names, or move it to a "
                "file only Compose reads."
            )
        out[key] = copy.deepcopy(value)
    built = "build" in service
    if built:
        if "image" not in service:
            raise RenderError(
                f"services.{name} is built but names no image: set `image:` so dockwork can "
                "tag and deploy what it builds."
            )
        images[name] = image_ref(service["image"], plan.tag, plan.registry)
        out["image"] = images[name]
    elif "image" not in service:
        raise RenderError(f"services.{name} has no image to deploy.")
    networks = service.get("networks") or {}
    if set(networks) - {"default"} or any(networks.values()):
        out["networks"] = copy.deepcopy(networks)  # aliases and other networks, as written
    port = _ports(name, service, plan, out)
    _environment(name, out, plan, built=built, secrets=secrets)
    return out, port


def _deploy(
    name: str, service: dict[str, Any], out: dict[str, Any], plan: Plan, *, rolling: bool
) -> dict[str, Any]:
    """The service's ``deploy`` section: what the compose file says, completed."""
    deploy: dict[str, Any] = out.pop("deploy", None) or {}
    if name == plan.migrate_service:
        deploy.setdefault("mode", "replicated-job")
        deploy.setdefault("restart_policy", {"condition": "none"})
        out.pop("healthcheck", None)
    else:
        conditions = {"no": "none", "on-failure": "on-failure"}
        condition = conditions.get(service.get("restart") or "no", "any")
        deploy.setdefault("restart_policy", {"condition": condition})
        deploy["restart_policy"].setdefault("delay", "1s")
        if str(deploy.get("mode", "replicated")).startswith("global"):
            if name in plan.replicas:
                raise RenderError(
                    f"deploy_replicas names {name!r}, a global service (one task per node)."
                )
        else:
            deploy.setdefault("replicas", 2 if name == plan.app_service else 1)
            deploy["replicas"] = plan.replicas.get(name, deploy["replicas"])
        if rolling:
            deploy.setdefault(
                "update_config",
                {
                    "parallelism": 1,
                    "order": "start-first",
                    "failure_action": "rollback",
                    "monitor": f"{plan.monitor:g}s",
                    "delay": "1s",
                },
            )
            deploy.setdefault(
                "rollback_config",
                {"parallelism": 1, "order": "start-first", "failure_action": "pause"},
            )
        else:  # a server on a volume: never two at once
            deploy.setdefault("update_config", {"order": "stop-first", "failure_action": "pause"})
    if name in plan.limits:
        deploy.setdefault("resources", {})["limits"] = dict(plan.limits[name])
    if plan.routing == "proxy":
        deploy["endpoint_mode"] = "dnsrr"
    return deploy


def _ports(name: str, service: dict[str, Any], plan: Plan, out: dict[str, Any]) -> int | None:
    """Ports as Swarm publishes them; the app's published port (the proxy's, if any)."""
    ports = service.get("ports") or []
    first: int | None = None
    rendered = []
    for entry in ports:
        published = entry.get("published")
        if published in (None, ""):
            continue
        try:
            number = int(str(published).split("-", 1)[0])
        except ValueError as exc:
            raise RenderError(
                f"services.{name}.ports: published port {published!r} is not a number."
            ) from exc
        if number == 0:
            raise RenderError(
                f"services.{name}.ports: port 0 (pick a free one) has no meaning in a swarm: "
                "set the variable that names the port (e.g. APP_PORT) to a fixed port."
            )
        first = first if first is not None else number
        if entry.get("host_ip") not in (None, "", "0.0.0.0", "::"):  # noqa: S104 - compared
            raise RenderError(
                f"services.{name}.ports: {entry['host_ip']}:{published} binds one address, "
                "and Swarm publishes on every interface of every node. Remove the address "
                "from the files deploy_files names (a firewall limits who reaches the port)."
            )
        item = {k: v for k, v in entry.items() if k in {"target", "protocol", "mode"}}
        item["published"] = number
        if plan.routing == "proxy":
            item["mode"] = "host"
        rendered.append(item)
    if name == plan.app_service and plan.routing == "proxy":
        return first  # the proxy publishes it
    if rendered:
        out["ports"] = rendered
    return first


def _app_target(service: dict[str, Any]) -> int:
    for entry in service.get("ports") or []:
        if entry.get("target"):
            return int(entry["target"])
    return 8000


def _environment(
    name: str, out: dict[str, Any], plan: Plan, *, built: bool, secrets: dict[str, Object]
) -> None:
    """Variables carrying a secret's placeholder read the real value from a secret file."""
    env: dict[str, Any] = out.get("environment") or {}
    mounts: list[dict[str, Any]] = []
    wrapped: dict[str, str] = {}
    for var, value in list(env.items()):
        if not isinstance(value, str):
            continue
        used = [s for s, p in plan.placeholders.items() if p in value]
        if not used:
            continue
        content = value.replace("$$", "$")  # the value as the service sees it
        for secret in used:
            content = content.replace(plan.placeholders[secret], plan.values[secret])
        obj = secrets.setdefault(
            f"{var}\0{content}",
            Object(
                content_name(plan.stack, var, content, secret=True, key=plan.secret_key),
                content,
                var,
            ),
        )
        target = f"{plan.stack}_{var.lower()}"
        mounts.append({"source": obj.name, "target": target})
        del env[var]
        if built:
            env[f"{var}_FILE"] = f"{SECRET_DIR}/{target}"
        else:
            wrapped[var] = f"{SECRET_DIR}/{target}"
    if mounts:
        out["environment"] = env
        out["secrets"] = mounts
    if wrapped:
        _wrap_entrypoint(name, out, plan, wrapped)


def _wrap_entrypoint(name: str, out: dict[str, Any], plan: Plan, files: dict[str, str]) -> None:
    """An image that cannot read ``<NAME>_FILE`` itself gets its entrypoint wrapped: a shell
    reads each secret file into its variable, then execs the image's own command."""
    image = out["image"]
    if image not in plan.entrypoints:
        raise RenderError(
            f"services.{name}: image {image} is not on this engine, and dockwork needs its "
            f"entrypoint to pass it the secret {', '.join(files)}. Pull it (docker pull {image})."
        )
    # the image's own words get $ escaped ($$: `docker stack deploy` interpolates the file);
    # the compose file's come escaped already
    image_entrypoint, image_command = (
        [a.replace("$", "$$") for a in part] for part in plan.entrypoints[image]
    )
    entrypoint = out.get("entrypoint") or image_entrypoint
    command = out.get("command") if out.get("command") is not None else image_command
    if isinstance(entrypoint, str):
        entrypoint = ["/bin/sh", "-c", entrypoint]
    if isinstance(command, str):
        command = ["/bin/sh", "-c", command]
    reads = "; ".join(f'export {var}="$$(cat {path})"' for var, path in sorted(files.items()))
    out["entrypoint"] = [
        "/bin/sh",
        "-c",
        f'set -e; {reads}; exec "$$@"',
        "dockwork-secrets",
        *entrypoint,
        *(command or []),
    ]
    out.pop("command", None)


def _proxy_service(plan: Plan, cfg: Object, published: int) -> dict[str, Any]:
    return {
        "image": plan.proxy_image,
        "configs": [{"source": cfg.name, "target": "/usr/local/etc/haproxy/haproxy.cfg"}],
        "ports": [
            {"target": PROXY_PORT, "published": published, "protocol": "tcp", "mode": "host"}
        ],
        "healthcheck": {
            "test": ["CMD-SHELL", PROXY_PROBE],
            # every 2 s: a first deploy waits at most that much more for the proxy, and an
            # idle node pays half the probes (the app's own healthcheck runs every second)
            "interval": "2s",
            "timeout": "3s",
            # not restarted while the app's first tasks start, however slow their pulls:
            # failures count only after the deploy's own default timeout
            "start_period": "300s",
            "retries": 3,
        },
        "deploy": {
            # one on every node, like the ingress mesh: the port answers on each node's
            # address, and a node drained or lost takes only its own proxy with it (a single
            # replica would move to another node, and its address with it)
            "mode": "global",
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "any", "delay": "1s"},
            # a port published in host mode cannot be bound twice on one node
            "update_config": {"order": "stop-first", "failure_action": "rollback"},
        },
    }


def haproxy_config(service: str, port: int) -> str:
    """HAProxy in front of ``service``: its tasks from Docker's DNS (``tasks.<service>``),
    each health-checked on /health; a request a stopping task refuses is retried on another."""
    return f"""\
# rendered by dockwork (deploy routing = "proxy"): do not edit, it is replaced on deploy
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

resolvers docker
    nameserver dns 127.0.0.11:53
    resolve_retries 3
    timeout resolve 500ms
    timeout retry 500ms
    hold valid 1s
    hold other 1s
    hold refused 1s
    hold nx 1s
    hold timeout 1s
    hold obsolete 1s

frontend app
    bind :{PROXY_PORT}
    default_backend app

frontend ready
    # the proxy's healthcheck: 200 once a task of the app is up behind it, 503 before
    bind {PROXY_READY[0]}:{PROXY_READY[1]}
    monitor-uri {PROXY_READY[2]}
    monitor fail if {{ nbsrv(app) lt 1 }}

backend app
    option httpchk GET /health
    http-check expect status 200
    # a slow answer on a loaded machine is not a dead task: three failed checks of up to 3 s
    # take a task out (a stopping one refuses connections at once: those are retried above)
    timeout check 3s
    default-server check inter 1s fall 3 rise 2 resolvers docker init-addr none
    server-template {service} 16 tasks.{service}:{port}
"""


def _strip_name(key: str, value: dict[str, Any] | None, project: str) -> dict[str, Any]:
    """A volume or network as the stack names it (``<stack>_<key>``), not as Compose did
    (``<project>_<key>``); an external one, or one the compose file names itself
    (``name:``), keeps its name."""
    value = dict(value or {})
    if value.get("external"):
        return value
    if value.get("name") == f"{project}_{key}":
        value.pop("name")
    if not value.get("ipam"):
        value.pop("ipam", None)
    return value


def _no_placeholder_left(stack: dict[str, Any], plan: Plan) -> None:
    """A secret used where no file can carry it (a command line, a label) is an error."""
    for path, text in _strings(stack, ""):
        for secret, placeholder in plan.placeholders.items():
            if placeholder in text:
                raise RenderError(
                    f"{path.lstrip('.')} in the compose file uses the secret {secret}, where a "
                    "Docker secret cannot reach (only environment variables can be read from "
                    f"{SECRET_DIR}). Pass it through an environment variable instead."
                )


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def to_yaml(stack: dict[str, Any]) -> str:
    """The stack file's text. Compose's output keeps ``$$`` (a literal ``$``) as it is,
    which is what ``docker stack deploy``, interpolating again, needs."""
    import yaml  # noqa: PLC0415

    header = "# rendered by dockwork from the compose files: `inv deploy.render` prints it\n"
    return header + yaml.safe_dump(stack, sort_keys=False, default_flow_style=False)


def placeholder(var: str, nonce: str) -> str:
    """The value a secret variable gets while the compose file is resolved."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise RenderError(f"deploy_secrets: {var!r} is not an environment variable name.")
    return f"dockwork-secret-{var}-{nonce}"


__all__ = [
    "Object",
    "Plan",
    "RenderError",
    "Rendered",
    "content_name",
    "haproxy_config",
    "image_ref",
    "placeholder",
    "render",
    "to_yaml",
]
