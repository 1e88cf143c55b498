"""Can the swarm's engine route ``deploy_routing = "mesh"``? Asked before anything is deployed.

Swarm's virtual IPs and its ingress routing mesh are IPVS in the engine's kernel. Without
it, services are created and their tasks start, but nothing reaches a service by its name
(the migration job's "No route to host" to the database) nor through a published port.

The kernel asked is the engine's, wherever ``DOCKER_HOST`` or the docker context points:
one short-lived container (``docker run --rm``, no network, no capabilities, an image
already on the engine, never pulled) reports what that kernel shows it:

- IPVS present: ``/proc/net/ip_vs`` (every network namespace has it once the module is
  in), ``/sys/module/ip_vs`` (loaded or built in), or the generic netlink family ``IPVS``
  resolving (asked the way the engine itself asks, from Python when the image has it);
- IPVS impossible: none of those, and the kernel cannot load modules (no ``/proc/modules``,
  or ``kernel.modules_disabled = 1``), or it can and asking for the family did not load
  ``ip_vs`` (Linux 5.16 and later load it on that request, as ``modprobe`` would);
- otherwise (an older kernel where the module is not loaded yet, a probe that cannot run)
  nobody can tell from here: a warning, and the deploy goes on.

A module that is merely not loaded yet is never taken for a missing one: the engine loads
it the first time it needs it (``modprobe ip_vs``). Only the engine the CLI talks to (a
manager) is asked, not every node of the swarm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockwork import runner
from dockwork.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from dockwork.swarm.render import Rendered

#: the label on the probe's container
PROBE_LABEL = "dev.dockwork.probe"
#: from this Linux version on, asking generic netlink for the IPVS family loads ip_vs
#: ("ipvs: autoload ipvs on genl access", 5.16)
AUTOLOAD = (5, 16)
DOCS = "docs/cluster.md#routing"

#: asks the kernel's generic netlink controller for the IPVS family (CTRL_CMD_GETFAMILY):
#: "found", "missing" (ENOENT) or "error …"; needs no privilege
GENL = r"""
import errno, socket, struct
try:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    s.settimeout(5)
    name = b"IPVS\0"
    attr = struct.pack("=HH", 4 + len(name), 2) + name + b"\0" * (-len(name) % 4)
    body = struct.pack("=BBH", 3, 1, 0) + attr
    s.send(struct.pack("=IHHII", 16 + len(body), 16, 1, 1, 0) + body)
    reply = s.recv(65536)
    kind = struct.unpack_from("=H", reply, 4)[0]
    code = -struct.unpack_from("=i", reply, 16)[0] if kind == 2 else 0
    found = "found" if kind == 16 else "missing" if code == errno.ENOENT else "error %s" % code
    print("genl=" + found)
except Exception as exc:
    print("genl=error %s" % exc.__class__.__name__)
"""
#: POSIX sh (any image with a shell): one ``key=value`` line per fact, then the netlink
#: question in Python when the image has it
SCRIPT = r"""
fact() { if [ -e "$2" ]; then echo "$1=yes"; else echo "$1=no"; fi; }
{ read -r v < /proc/sys/kernel/osrelease; } 2>/dev/null && echo "kernel=$v"
fact ip_vs_proc /proc/net/ip_vs
fact ip_vs_sys /sys/module/ip_vs
fact modules /proc/modules
set -- /sys/module/*
fact sysfs "$1"
{ read -r v < /proc/sys/kernel/modules_disabled; } 2>/dev/null && echo "modules_disabled=$v"
for p in python3 python; do
  if command -v "$p" >/dev/null 2>&1; then exec "$p" -c "$DOCKWORK_GENL"; fi
done
echo genl=unavailable
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the probe's facts say about IPVS in the engine's kernel."""

    #: True: it is there; False: it cannot be; None: nobody can tell from these facts
    ipvs: bool | None
    reason: str
    #: the kernel was asked through netlink (the image had Python)
    asked: bool = False


def parse(output: str) -> dict[str, str]:
    """The probe's ``key=value`` lines (anything else ignored)."""
    pairs = (line.partition("=") for line in output.splitlines())
    return {key.strip(): value.strip() for key, eq, value in pairs if eq and key.strip()}


def _version(kernel: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", kernel)
    return (int(found[1]), int(found[2])) if found else None


def decide(facts: Mapping[str, str]) -> Verdict:
    """The verdict over the probe's facts: "no IPVS" only when the kernel cannot have it."""
    genl = facts.get("genl", "")
    asked = genl in {"found", "missing"}
    kernel = facts.get("kernel") or "unknown"
    version = _version(kernel)
    if "yes" in (facts.get("ip_vs_proc"), facts.get("ip_vs_sys")) or genl == "found":
        return Verdict(ipvs=True, reason=f"IPVS is in the engine's kernel ({kernel})", asked=asked)
    if facts.get("sysfs") != "yes" or facts.get("modules") not in {"yes", "no"}:
        # no /sys/module, or no answer at all: not the kernel's own view (gVisor, a probe
        # cut short)
        reason = "the probe could not see the engine's kernel"
    elif facts["modules"] == "no":
        return Verdict(
            ipvs=False,
            reason=f"its kernel ({kernel}) has no IPVS and cannot load modules",
            asked=asked,
        )
    elif facts.get("modules_disabled") == "1":
        return Verdict(
            ipvs=False,
            reason=f"its kernel ({kernel}) has no IPVS loaded and module loading is disabled",
            asked=asked,
        )
    elif genl == "missing" and version is not None and version >= AUTOLOAD:
        return Verdict(
            ipvs=False,
            reason=f"its kernel ({kernel}) has no IPVS loaded, and asking for it did not load "
            "the ip_vs module (if the engine's host has it, `modprobe ip_vs` there and deploy "
            "again)",
            asked=asked,
        )
    else:
        reason = f"IPVS is not loaded in its kernel ({kernel}), and whether it can be is unknown"
        if genl.startswith("error"):
            reason += f" (netlink: {genl})"
    return Verdict(ipvs=None, reason=reason, asked=asked)


def probe(images: Iterable[str], timeout: float = 20) -> Verdict:
    """Run the probe on the engine with the first of ``images`` that is on it."""
    image = next(
        (
            i
            for i in dict.fromkeys(images)
            if runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", i], check=False).ok
        ),
        None,
    )
    if image is None:
        reason = "none of the stack's images is on the engine to run the probe in"
        return Verdict(ipvs=None, reason=reason)
    argv = ["docker", "run", "--rm", "--network", "none", "--cap-drop", "ALL"]
    argv += ["--security-opt", "no-new-privileges", "--log-driver", "none"]
    argv += ["--label", f"{PROBE_LABEL}=routing", "--env", f"DOCKWORK_GENL={GENL}"]
    argv += ["--entrypoint", "sh", image, "-c", SCRIPT]
    result = runner.run(argv, check=False, timeout=timeout)
    if not result.ok:
        last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        return Verdict(ipvs=None, reason=f"the probe did not run in {image}: {last}")
    return decide(parse(result.stdout))


def check(
    images: Iterable[str],
    timeout: float,
    say: Callable[[str], None],
    *,
    again: bool = False,
) -> bool:
    """Refuse mesh routing when the engine's kernel cannot have IPVS; warn when that cannot
    be told. With ``again`` (another image will be there later), a probe that could not ask
    the kernel warns nothing and returns True: ask again with that image."""
    verdict = probe(images, timeout)
    if verdict.ipvs is False:
        raise DeployError(message(verdict.reason))
    if verdict.ipvs is None:
        if again and not verdict.asked:
            return True
        say(
            f'warning: could not tell whether the engine can route deploy_routing = "mesh" '
            f"({verdict.reason}); deploying anyway. If services cannot reach each other ("
            f'"No route to host"), set deploy_routing = "proxy" ({DOCS}).'
        )
    return False


def check_stack(rendered: Rendered, timeout: float, say: Callable[[str], None]) -> list[str]:
    """:func:`check` with the stack's images that are on the engine (the ones built from the
    project first: they have Python); the built images to ask again with once they are
    built, when none of those present could ask the kernel."""
    built = sorted(set(rendered.images.values()))
    others = [s["image"] for s in rendered.stack["services"].values() if s.get("image")]
    return built if check([*built, *others], timeout, say, again=bool(built)) else []


def message(reason: str) -> str:
    """The one paragraph for an engine without IPVS."""
    return (
        'deploy_routing is "mesh" (the default): Swarm\'s virtual IPs and ingress routing '
        f"mesh, which need IPVS in the kernel of the swarm's engines, and the engine this "
        f"deploy talks to has none: {reason}. Deployed like this, no service would reach "
        'another by its name ("No route to host", first in the migration job) and the app\'s '
        "published port would not answer. Set "
        '`deploy_routing = "proxy"` under [tool.dockwork] in pyproject.toml (or '
        "DOCKWORK_DEPLOY_ROUTING=proxy): services resolve by DNS round robin and an HAProxy "
        f"service publishes the app's port ({DOCS}). Nothing was deployed. (`inv deploy.up "
        "--no-check-routing` skips this check.)"
    )


__all__ = ["Verdict", "check", "check_stack", "decide", "message", "parse", "probe"]
