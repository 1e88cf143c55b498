"""The Swarm rendering: a resolved compose document in, a stack file out (pure, no engine)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from dockwork.swarm.render import (
    Plan,
    RenderError,
    content_name,
    haproxy_config,
    placeholder,
    render,
    to_yaml,
)

PASSWORD = "s3cret-Pa$word"
HOLDER = placeholder("POSTGRES_PASSWORD", "abc123")
#: the stack's key (dockwork.swarm.keys makes a random one per stack and machine)
KEY = bytes(range(32))


def resolved() -> dict[str, Any]:
    """What `docker compose config --format json` gives for a project like ours."""
    url = f"postgresql+asyncpg://app:{HOLDER}@db:5432/app"
    return {
        "name": "shop",
        "services": {
            "db": {
                "image": "postgres:17",
                "environment": {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": HOLDER},
                "volumes": [{"type": "volume", "source": "db-data", "target": "/data"}],
                "healthcheck": {"test": ["CMD", "pg_isready"]},
                "restart": "unless-stopped",
            },
            "migrate": {
                "build": {"context": "."},
                "image": "shop-app:latest",
                "command": ["alembic", "upgrade", "head"],
                "environment": {"DATABASE_URL": url},
                "depends_on": {"db": {"condition": "service_healthy"}},
                "restart": "no",
            },
            "app": {
                "build": {"context": "."},
                "image": "shop-app:latest",
                "environment": {"DATABASE_URL": url, "LOG_LEVEL": "info"},
                "ports": [{"target": 8000, "published": "8000", "protocol": "tcp"}],
                "depends_on": {"migrate": {"condition": "service_completed_successfully"}},
                "restart": "unless-stopped",
            },
            "worker": {
                "build": {"context": "."},
                "image": "shop-app:latest",
                "environment": {"DATABASE_URL": url},
                "restart": "unless-stopped",
            },
        },
        "volumes": {"db-data": {"name": "shop_db-data"}},
        "networks": {"default": {"name": "shop_default"}},
    }


def plan(**changes: Any) -> Plan:
    base: dict[str, Any] = {
        "stack": "shop",
        "tag": "0123456789ab",
        "placeholders": {"POSTGRES_PASSWORD": HOLDER},
        "values": {"POSTGRES_PASSWORD": PASSWORD},
        "entrypoints": {"postgres:17": (["docker-entrypoint.sh"], ["postgres"])},
        "secret_key": KEY,
    }
    return Plan(**(base | changes))


def test_built_services_run_the_commit_tagged_image_and_lose_compose_only_keys() -> None:
    out = render(resolved(), plan())
    services = out.stack["services"]
    assert out.images == dict.fromkeys(("migrate", "app", "worker"), "shop-app:0123456789ab")
    for name, service in services.items():
        assert not {"build", "depends_on", "restart"} & set(service), name
    assert services["app"]["image"] == "shop-app:0123456789ab"
    assert services["db"]["image"] == "postgres:17"
    assert out.job == "migrate"
    assert services["migrate"]["deploy"]["mode"] == "replicated-job"
    assert services["migrate"]["deploy"]["restart_policy"] == {"condition": "none"}
    assert out.published == 8000
    assert "name" not in out.stack["volumes"]["db-data"], "Swarm names volumes <stack>_<name>"


def test_the_app_rolls_start_first_and_back_on_failure_servers_stop_first() -> None:
    services = render(resolved(), plan(monitor=7)).stack["services"]
    app = services["app"]["deploy"]
    assert app["replicas"] == 2
    assert app["update_config"]["order"] == "start-first"
    assert app["update_config"]["failure_action"] == "rollback"
    assert app["update_config"]["monitor"] == "7s"
    assert app["restart_policy"]["condition"] == "any"
    assert services["worker"]["deploy"]["replicas"] == 1
    assert services["db"]["deploy"]["update_config"]["order"] == "stop-first"


def test_replicas_and_limits_from_the_settings() -> None:
    out = render(resolved(), plan(replicas={"worker": 3}, limits={"app": {"memory": "256M"}}))
    assert out.stack["services"]["worker"]["deploy"]["replicas"] == 3
    assert out.stack["services"]["app"]["deploy"]["resources"] == {"limits": {"memory": "256M"}}


def test_secrets_become_docker_secrets_and_never_appear_in_the_stack_file() -> None:
    out = render(resolved(), plan())
    text = to_yaml(out.stack)
    assert PASSWORD not in text
    assert HOLDER not in text
    app = out.stack["services"]["app"]
    assert "DATABASE_URL" not in app["environment"]
    assert app["environment"]["DATABASE_URL_FILE"] == "/run/secrets/shop_database_url"
    assert app["environment"]["LOG_LEVEL"] == "info"
    by_var = {s.what: s for s in out.secrets}
    assert by_var["DATABASE_URL"].content == f"postgresql+asyncpg://app:{PASSWORD}@db:5432/app"
    assert by_var["POSTGRES_PASSWORD"].content == PASSWORD
    # one secret per distinct value: app, worker and migrate share the URL's
    assert len(out.secrets) == 2
    assert set(out.stack["secrets"]) == {s.name for s in out.secrets}
    # the image that cannot read *_FILE gets its entrypoint wrapped, its own command kept
    db = out.stack["services"]["db"]
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert db["entrypoint"][:2] == ["/bin/sh", "-c"]
    assert 'POSTGRES_PASSWORD="$$(cat /run/secrets/shop_postgres_password)"' in db["entrypoint"][2]
    assert db["entrypoint"][-2:] == ["docker-entrypoint.sh", "postgres"]


def test_a_secret_name_changes_with_its_value_and_does_not_reveal_it() -> None:
    first = {s.what: s.name for s in render(resolved(), plan()).secrets}
    again = {s.what: s.name for s in render(resolved(), plan()).secrets}
    other = {
        s.what: s.name
        for s in render(resolved(), plan(values={"POSTGRES_PASSWORD": "another"})).secrets
    }
    assert first == again, "the same value reuses the secret"
    assert first["POSTGRES_PASSWORD"] != other["POSTGRES_PASSWORD"]


def scrypt_name(stack: str, what: str, value: str) -> str:
    """The name dockwork gave a secret before: a hash of the value alone (stack and variable
    are public), which anyone who sees `docker secret ls` could test guesses against."""
    salt = f"dockwork:{stack}:{what}".encode()
    digest = hashlib.scrypt(value.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16)
    return f"{stack}_{what.lower()}_{digest.hex()[:12]}"


def test_a_secret_name_cannot_be_computed_from_the_value_alone() -> None:
    name = content_name("shop", "POSTGRES_PASSWORD", PASSWORD, secret=True, key=KEY)
    assert name.startswith("shop_postgres_password_")
    assert name != scrypt_name("shop", "POSTGRES_PASSWORD", PASSWORD)
    assert name != content_name("shop", "POSTGRES_PASSWORD", PASSWORD), "not the plain hash"
    other_key = bytes(range(1, 33))
    assert name != content_name("shop", "POSTGRES_PASSWORD", PASSWORD, secret=True, key=other_key)
    assert name == content_name("shop", "POSTGRES_PASSWORD", PASSWORD, secret=True, key=KEY)
    rendered = {s.what: s.name for s in render(resolved(), plan()).secrets}
    assert rendered["POSTGRES_PASSWORD"] == name
    elsewhere = {s.what: s.name for s in render(resolved(), plan(secret_key=other_key)).secrets}
    assert elsewhere["POSTGRES_PASSWORD"] != name, "another machine's key: another name"
    with pytest.raises(ValueError, match="key"):
        content_name("shop", "POSTGRES_PASSWORD", PASSWORD, secret=True)
    with pytest.raises(ValueError, match="key"):
        render(resolved(), plan(secret_key=b""))


def test_proxy_routing_publishes_through_haproxy_in_host_mode() -> None:
    out = render(resolved(), plan(routing="proxy", proxy_image="haproxy:3.0"))
    services = out.stack["services"]
    assert "ports" not in services["app"], "the proxy publishes the app's port"
    assert services["app"]["deploy"]["endpoint_mode"] == "dnsrr"
    proxy = services["proxy"]
    assert proxy["ports"][0]["published"] == 8000
    assert proxy["ports"][0]["mode"] == "host"
    assert out.configs[0].content == haproxy_config("app", 8000)
    assert "server-template" in out.configs[0].content
    assert "tasks.app:8000" in out.configs[0].content
    # healthy (so counted as running, so `deploy.up` returns) only once it has a live task
    # of the app behind it: its healthcheck asks its own loopback-only readiness frontend
    assert "monitor fail if { nbsrv(app) lt 1 }" in out.configs[0].content
    assert "bind 127.0.0.1:8405" in out.configs[0].content
    test = proxy["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert "/dev/tcp/127.0.0.1/8405" in test[1]
    assert "GET /dockwork-ready" in test[1]
    assert '"$$status" = 200' in test[1], "escaped for `docker stack deploy`"
    # ready once, healthy while it runs: an outage of the app does not restart the proxies
    assert test[1].startswith("[ -e /tmp/dockwork-ready ] || ")
    assert test[1].endswith("&& : > /tmp/dockwork-ready; }")
    assert proxy["healthcheck"]["start_period"] == "300s"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["services"]["app"].update(privileged=True), "services.app.privileged"),
        (lambda d: d["services"]["db"].update(container_name="x"), "services.db.container_name"),
        (lambda d: d["services"]["app"].pop("image"), "names no image"),
        (lambda d: d["services"]["app"]["ports"][0].update(published="0"), "port 0"),
        (lambda d: d.update(include=[]), "top-level `include`"),
    ],
)
def test_what_cannot_be_rendered_is_an_error_naming_it(change: Any, named: str) -> None:
    doc = copy.deepcopy(resolved())
    change(doc)
    with pytest.raises(RenderError, match=named.replace(".", r"\.")) as info:
        render(doc, plan())
    assert info.value.exit_code == 2


def test_settings_naming_unknown_services_are_errors() -> None:
    with pytest.raises(RenderError, match="deploy_replicas names 'wokrer'"):
        render(resolved(), plan(replicas={"wokrer": 2}))
    doc = resolved()
    del doc["services"]["app"]["ports"]
    with pytest.raises(RenderError, match="publishes no port"):
        render(doc, plan(routing="proxy"))


def test_an_image_whose_entrypoint_is_unknown_cannot_get_a_secret() -> None:
    with pytest.raises(RenderError, match="postgres:17 is not on this engine"):
        render(resolved(), plan(entrypoints={}))


def test_deploy_commands_pin_images_unless_a_registry_resolves_them() -> None:
    from pathlib import Path  # noqa: PLC0415

    from dockwork.config import Config  # noqa: PLC0415
    from dockwork.tasks.deploy import _deploy_argv  # noqa: PLC0415

    local = Config(root=Path("/p"), project_name="shop")
    assert _deploy_argv(local, Path("/t/stack.yaml")) == [
        *("docker", "stack", "deploy", "--detach=true", "--resolve-image", "never"),
        *("--compose-file", "/t/stack.yaml", "shop"),
    ]
    pushed = Config(root=Path("/p"), project_name="shop", deploy_registry="reg.example/team")
    argv = _deploy_argv(pushed, Path("/t/stack.yaml"))
    assert argv[5:8] == ["always", "--with-registry-auth", "--compose-file"]


def test_a_port_bound_to_one_address_is_refused_not_published_everywhere() -> None:
    doc = resolved()
    doc["services"]["db"]["ports"] = [
        {"target": 5432, "published": "5432", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    with pytest.raises(RenderError, match=r"services\.db\.ports: 127\.0\.0\.1:5432"):
        render(doc, plan())


def test_service_networks_and_aliases_are_kept() -> None:
    doc = resolved()
    doc["services"]["app"]["networks"] = {"default": {"aliases": ["api"]}, "edge": None}
    doc["networks"]["edge"] = {"name": "shop_edge"}
    out = render(doc, plan()).stack
    assert out["services"]["app"]["networks"] == {"default": {"aliases": ["api"]}, "edge": None}
    assert out["networks"] == {"edge": {}}
    assert "networks" not in out["services"]["worker"]


def test_a_global_service_gets_no_replica_count() -> None:
    doc = resolved()
    doc["services"]["worker"]["deploy"] = {"mode": "global"}
    deploy = render(doc, plan()).stack["services"]["worker"]["deploy"]
    assert deploy["mode"] == "global"
    assert "replicas" not in deploy
    with pytest.raises(RenderError, match="global service"):
        render(doc, plan(replicas={"worker": 2}))


def test_a_stack_name_too_long_for_its_secret_names_is_refused() -> None:
    with pytest.raises(RenderError, match="shorter deploy_stack"):
        render(resolved(), plan(stack="s" * 40))
