"""`inv deploy.up` with `deploy_routing = "mesh"` on an engine whose kernel has no IPVS (this
sandbox's) fails before anything is built or deployed, saying to use "proxy"; the verdict
over the probe's facts says "no IPVS" only where the kernel cannot have it.

The first tests need no engine; the last ones deploy to a single-node swarm made (and left)
by test_swarm.py's own fixtures.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from dockwork import runner
from dockwork.errors import DeployError
from dockwork.swarm import routing
from dockwork.swarm.routing import decide, parse
from tests.e2e import test_swarm

if TYPE_CHECKING:
    from tests.e2e.test_swarm import Deployment

# test_swarm.py's fixtures, unchanged: the engine made a swarm manager (and left again when
# this module made it one), a checkout deployed as a stack of its own (removed after)
swarm = test_swarm.swarm
deployment = test_swarm.deployment

# -- the verdict over the probe's facts ----------------------------------------------------

#: this sandbox: a kernel built without module support and without IPVS
SANDBOX = {
    "kernel": "6.18.44-fc-v509",
    "ip_vs_proc": "no",
    "ip_vs_sys": "no",
    "modules": "no",
    "sysfs": "yes",
    "genl": "missing",
}
#: a distribution's kernel with IPVS as a module, not loaded yet
MODULAR = {**SANDBOX, "kernel": "6.8.0-45-generic", "modules": "yes", "modules_disabled": "0"}


@pytest.mark.parametrize(
    ("facts", "ipvs"),
    [
        (SANDBOX, False),
        ({**SANDBOX, "genl": "unavailable"}, False),  # no Python in the image: same facts
        ({**MODULAR, "modules_disabled": "1"}, False),  # loading turned off
        # 5.16+ loads ip_vs when the family is asked for: still missing, it is not there
        (MODULAR, False),
        # loaded, or built in: any one sign is enough
        ({**MODULAR, "ip_vs_proc": "yes"}, True),
        ({**MODULAR, "ip_vs_sys": "yes"}, True),
        ({**MODULAR, "genl": "found"}, True),
        ({**SANDBOX, "ip_vs_sys": "yes"}, True),
        # not loaded yet, and nobody can say whether it can be: never "no"
        ({**MODULAR, "kernel": "5.15.0-1051-azure"}, None),  # before genl autoload
        ({**MODULAR, "kernel": "4.18.0-513.el8.x86_64"}, None),
        ({**MODULAR, "genl": "unavailable"}, None),  # the kernel was not asked
        ({**MODULAR, "genl": "error 1"}, None),
        ({**MODULAR, "genl": ""}, None),
        ({**MODULAR, "kernel": ""}, None),
        ({**SANDBOX, "sysfs": "no"}, None),  # not the kernel's own /sys (gVisor and the like)
        ({**SANDBOX, "modules": ""}, None),
        ({}, None),  # no output at all
    ],
)
def test_no_ipvs_only_where_the_kernel_cannot_have_it(
    facts: dict[str, str], ipvs: bool | None
) -> None:
    assert decide(facts).ipvs is ipvs


def test_the_verdict_says_whether_the_kernel_was_asked() -> None:
    assert decide(SANDBOX).asked
    assert decide(MODULAR | {"genl": "found"}).asked
    assert not decide(MODULAR | {"genl": "unavailable"}).asked
    assert "cannot load modules" in decide(SANDBOX).reason
    assert "modprobe ip_vs" in decide(MODULAR).reason


def test_the_probe_output_is_read_line_by_line() -> None:
    output = "kernel=6.1.0-26-amd64\nnoise\n=x\nip_vs_proc=no\ngenl=error 97\n"
    assert parse(output) == {"kernel": "6.1.0-26-amd64", "ip_vs_proc": "no", "genl": "error 97"}


def _runs(monkeypatch: pytest.MonkeyPatch, results: dict[str, runner.Result]) -> list[list[str]]:
    """``runner.run`` answering from ``results`` by the command's second word."""
    calls: list[list[str]] = []

    def run(argv: list[str], **_: object) -> runner.Result:
        calls.append(list(argv))
        return results[argv[1]]

    monkeypatch.setattr(runner, "run", run)
    return calls


def test_the_probe_runs_in_the_first_image_present_with_no_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    absent, present = runner.Result(("docker",), 1), runner.Result(("docker",), 0, "sha256:1")
    answers = iter([absent, present])
    ran = runner.Result(("docker",), 0, "\n".join(f"{k}={v}" for k, v in SANDBOX.items()))
    calls: list[list[str]] = []

    def run(argv: list[str], **_: object) -> runner.Result:
        calls.append(list(argv))
        return next(answers) if argv[1] == "image" else ran

    monkeypatch.setattr(runner, "run", run)
    assert routing.probe(["app:abc", "app:abc", "postgres:17", "redis:7"]).ipvs is False
    assert [c[-1] for c in calls[:2]] == ["app:abc", "postgres:17"]
    docker_run = calls[2]
    assert docker_run[:3] == ["docker", "run", "--rm"]
    assert docker_run[docker_run.index("--network") + 1] == "none"
    assert "postgres:17" in docker_run
    assert "--privileged" not in docker_run
    assert "--pull" not in docker_run  # never a pull: the image is there


def test_a_probe_that_cannot_run_warns_and_the_deploy_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = "docker: Error response from daemon: OCI runtime create failed: no sh."
    _runs(
        monkeypatch,
        {
            "image": runner.Result(("docker",), 0, "sha256:1"),
            "run": runner.Result(("docker",), 127, "", refused),
        },
    )
    said: list[str] = []
    assert routing.check(["app:abc"], 20, said.append) is False
    assert len(said) == 1
    assert said[0].startswith("warning: could not tell")
    assert "no sh" in said[0]
    assert 'deploy_routing = "proxy"' in said[0]


def test_no_image_to_probe_with_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    _runs(monkeypatch, {"image": runner.Result(("docker",), 1, "", "No such image")})
    said: list[str] = []
    assert routing.check(["app:abc"], 20, said.append) is False
    assert "none of the stack's images" in said[0]


def test_an_image_without_python_asks_again_with_the_built_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facts = {**MODULAR, "genl": "unavailable"}
    _runs(
        monkeypatch,
        {
            "image": runner.Result(("docker",), 0, "sha256:1"),
            "run": runner.Result(("docker",), 0, "\n".join(f"{k}={v}" for k, v in facts.items())),
        },
    )
    said: list[str] = []
    assert routing.check(["postgres:17"], 20, said.append, again=True) is True
    assert not said  # nothing to say yet: the app's image asks next
    assert routing.check(["postgres:17"], 20, said.append) is False
    assert said[0].startswith("warning:")


def test_no_ipvs_is_one_paragraph_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    _runs(
        monkeypatch,
        {
            "image": runner.Result(("docker",), 0, "sha256:1"),
            "run": runner.Result(("docker",), 0, "\n".join(f"{k}={v}" for k, v in SANDBOX.items())),
        },
    )
    with pytest.raises(DeployError) as caught:
        routing.check(["app:abc"], 20, print)
    text = caught.value.message
    assert "\n" not in text
    for needle in (
        "IPVS",
        'deploy_routing = "proxy"',
        "[tool.dockwork]",
        "DOCKWORK_DEPLOY_ROUTING=proxy",
        "docs/cluster.md#routing",
        "Nothing was deployed",
        "--no-check-routing",
    ):
        assert needle in text


# -- on the real engine: fails fast, deploys nothing ----------------------------------------


def _kernel_cannot_have_ipvs() -> bool:
    """This engine's kernel has no IPVS and cannot load it (no module support), read
    without dockwork: the premise of the tests below."""
    image = os.environ.get("POSTGRES_IMAGE", "postgres:17")
    script = "test ! -e /proc/net/ip_vs && test ! -e /sys/module/ip_vs && test ! -e /proc/modules"
    result = test_swarm.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script
    )
    return result.returncode == 0


def _nothing_of(stack: str) -> None:
    for kind in ("service", "network"):
        listed = test_swarm.docker(
            kind, "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack}"
        )
        assert not listed.stdout.strip(), f"{kind}s of {stack}: {listed.stdout}"
    for kind in ("secret", "config"):
        listed = test_swarm.docker(
            kind, "ls", "--quiet", "--filter", f"label=dev.dockwork.stack={stack}"
        )
        assert not listed.stdout.strip(), f"{kind}s of {stack}: {listed.stdout}"


@pytest.mark.e2e
@pytest.mark.swarm
def test_mesh_routing_without_ipvs_fails_before_anything_is_built_or_deployed(
    deployment: Deployment,
) -> None:
    if not _kernel_cannot_have_ipvs():
        pytest.skip("the engine's kernel has IPVS, or may load it: a mesh deploy would work")
    d = deployment
    mesh = {**d.env, "DOCKWORK_DEPLOY_ROUTING": "mesh"}
    began = time.monotonic()
    proc = d.inv("deploy.up", env=mesh)
    took = time.monotonic() - began
    print(f"\nrouting check: deploy.up refused in {took:.1f}s")  # noqa: T201 - shown with -s
    test_swarm.assert_clean_failure(
        proc,
        "IPVS",
        'deploy_routing = "proxy"',
        "DOCKWORK_DEPLOY_ROUTING=proxy",
        "docs/cluster.md#routing",
        "Nothing was deployed",
    )
    assert "No route to host" not in proc.stdout  # no migration job ever ran
    assert "docker compose" not in proc.stderr  # nothing was built
    assert not test_swarm.docker("image", "ls", "--quiet", f"dockwork-{d.stack}-app").stdout.strip()
    _nothing_of(d.stack)


@pytest.mark.e2e
@pytest.mark.swarm
def test_the_check_is_skipped_for_proxy_routing_or_when_asked(deployment: Deployment) -> None:
    """Both go on to the next step: here `--no-build` finding no image, before any change."""
    d = deployment
    for env, args in (
        (d.env, ()),  # routing "proxy": the fixture's
        ({**d.env, "DOCKWORK_DEPLOY_ROUTING": "mesh"}, ("--no-check-routing",)),
    ):
        proc = d.inv("deploy.up", "--no-build", *args, env=env)
        test_swarm.assert_clean_failure(proc, "is not on this engine")
        assert "IPVS" not in proc.stdout + proc.stderr
    _nothing_of(d.stack)
