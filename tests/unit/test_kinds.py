"""The registry of test-server kinds, and what follows from it: settings, specs, validation."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dockwork import compose_yaml, config, kinds
from dockwork.config import load_config
from dockwork.errors import ConfigError
from dockwork.kinds import containers, templates
from dockwork.kinds.containers import (
    ContainerSpec,
    duration,
    password_of,
    postgres_spec,
    redis_spec,
    service_spec,
)
from dockwork.testing.servers import embedded
from dockwork.testing.servers.base import Servers

if TYPE_CHECKING:
    from pathlib import Path


def test_every_kind_names_fields_and_starters_that_exist() -> None:
    fields = config._FIELDS  # the settings a kind may name
    for kind in kinds.KINDS.values():
        for setting in (kind.url_setting, kind.image_setting, kind.app_url_setting):
            assert setting in fields, (kind.name, setting)
        assert kind.servers_field in {f.name for f in Servers.__dataclass_fields__.values()}
        assert kind.embedded is not None
        assert callable(getattr(embedded, kind.embedded.binary)), kind.embedded.binary
        assert callable(getattr(embedded.EmbeddedBackend, kind.embedded.start))
        assert kind.spec(load_config_stub(), kind.name).kind == kind.name
    assert kinds.SERVICE.embedded is None  # the embedded backend cannot run an image
    assert kinds.SERVICE.url_setting is None  # a user's servers never stand in for one


def load_config_stub() -> config.Config:
    from pathlib import Path  # noqa: PLC0415

    return config.Config(root=Path("/nonexistent"))


def test_settings_follow_from_the_registry() -> None:
    assert config.TEST_SERVICES == ("postgres", "redis")
    assert kinds.POSTGRES.environment == "DOCKWORK_TEST_DATABASE_URL"
    assert kinds.REDIS.environment == "DOCKWORK_TEST_REDIS_URL"
    assert config.ENV_ALIASES["postgres_image"] == "POSTGRES_IMAGE"
    assert config.ENV_ALIASES["redis_image"] == "REDIS_IMAGE"
    assert kinds.of("postgres") is kinds.POSTGRES
    assert kinds.of("mailpit") is kinds.SERVICE
    assert kinds.services(["postgres", "mailpit", "redis"]) == ["mailpit"]
    assert kinds.builtin(["mailpit", "redis", "postgres"]) == ["redis", "postgres"]


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("postgres:17", "postgres"),
        ("${POSTGRES_IMAGE:-postgis/postgis:16}", "postgres"),
        ("timescale/timescaledb", "postgres"),
        ("valkey/valkey:8", "redis"),
        ("redis:7", "redis"),
        ("axllent/mailpit", None),
    ],
)
def test_compose_images_name_kinds(image: str, kind: str | None) -> None:
    assert compose_yaml.kind_of_image(image) == kind


def test_urls_go_to_the_servers_fields() -> None:
    servers = Servers.of(
        "docker",
        {"postgres": "postgresql://u:p@h:1/postgres", "redis": "redis://h:2/0"},
        services={"mailpit": {"host": "h", "ports": {"8025": 3}}},
    )
    assert servers.database_url == "postgresql://u:p@h:1/postgres"
    assert servers.redis_url == "redis://h:2/0"
    assert servers.url("redis") == "redis://h:2/0"
    assert servers.url("mailpit") is None
    assert servers.host_ports() == {"postgres": [1], "redis": [2], "mailpit": [3]}
    assert Servers.from_json(servers.to_json()) == servers
    assert "mailpit at h ports [3]" in servers.describe()


def test_the_built_in_specs_keep_their_credentials() -> None:
    pg = postgres_spec("postgres:17")
    environment, command = pg.with_password("s3cret")
    assert environment["POSTGRES_PASSWORD"] == "s3cret"
    assert (
        pg.url("127.0.0.1", 5000, "s3cret")
        == "postgresql://postgres:s3cret@127.0.0.1:5000/postgres"
    )
    assert password_of(pg, [f"{k}={v}" for k, v in environment.items()], command) == "s3cret"
    assert pg.shm_size > 0
    rd = redis_spec("redis:7")
    environment, command = rd.with_password("s3cret")
    assert command[-2:] == ["--requirepass", "s3cret"]
    assert rd.url("h", 1, "s3cret") == "redis://:s3cret@h:1/0"
    assert password_of(rd, [], command) == "s3cret"
    open_redis = redis_spec("redis:7", auth=False)
    assert open_redis.with_password("x")[1][-2:] == ["--protected-mode", "no"]
    assert open_redis.url("h", 1, "x") == "redis://h:1/0"


RESOLVED = {
    "image": "axllent/mailpit:v1",
    "command": ["serve", "--listen", "$$PORT"],
    "entrypoint": None,
    "environment": {"MP_MAX": "10", "UNSET": None, "LITERAL": "a$$b"},
    "ports": [
        {"target": 8025, "published": "8025", "protocol": "tcp"},
        {"target": 53, "protocol": "udp"},
    ],
    "expose": ["1025", "7000-7002/tcp", "9999/udp"],
    "healthcheck": {
        "test": ["CMD-SHELL", "wget -q -O- http://localhost:8025/ || exit 1"],
        "interval": "1m30s",
        "timeout": "500ms",
        "retries": 3,
        "start_period": "2s",
    },
    "tmpfs": ["/data:size=1m"],
}


def test_a_compose_service_becomes_a_spec() -> None:
    spec = service_spec("mailpit", RESOLVED, default_image="proj-mailpit")
    assert spec.kind == "mailpit"
    assert spec.image == "axllent/mailpit:v1"
    assert spec.command == ("serve", "--listen", "$PORT")  # Compose's escape undone
    assert spec.entrypoint is None
    assert spec.environment == {"MP_MAX": "10", "LITERAL": "a$b"}
    assert spec.ports == (8025, 1025, 7000, 7001, 7002)  # TCP only
    assert spec.tmpfs == {"/data": "size=1m"}
    assert spec.healthcheck == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost:8025/ || exit 1"],
        "Interval": 10**9,  # at most a second: readiness is not slept for
        "Timeout": 500 * 10**6,
        "Retries": 3,
        "StartPeriod": 2 * 10**9,
    }
    assert spec.use_health
    assert spec.with_password("ignored") == (dict(spec.environment), list(spec.command))
    assert spec.url("h", 1, "x") is None  # handed out as host and ports
    built = service_spec("worker", {"build": {"context": "."}}, default_image="proj-worker")
    assert built.image == "proj-worker"
    assert built.ports == ()
    assert built.healthcheck is None
    disabled = service_spec("x", {"image": "i", "healthcheck": {"disable": True}}, default_image="")
    assert disabled.healthcheck is None
    assert (
        spec.config_hash()
        != service_spec("mailpit", {**RESOLVED, "expose": []}, default_image="").config_hash()
    )


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1s", 10**9), ("1m30s", 90 * 10**9), ("250ms", 250 * 10**6), ("", 0), (None, 0)],
)
def test_durations(text: str | None, ns: int) -> None:
    assert duration(text) == ns


def test_a_service_for_templates_and_fixtures() -> None:
    service = templates.Service.of(
        "mailpit", {"host": "127.0.0.1", "ports": {"8025": 40001, "1025": 40002}}
    )
    assert service.ports == {8025: 40001, 1025: 40002}
    assert service.url(8025) == "http://127.0.0.1:40001"
    assert service.url(1025, scheme="smtp") == "smtp://127.0.0.1:40002"
    with pytest.raises(ConfigError, match=r"no container port 80 .*8025, 1025"):
        service.url(80)
    pairs = (
        ("SMTP", "{mailpit.host}:{mailpit.port_1025}"),
        ("API", "{mailpit.url_8025}/api"),
    )
    assert templates.render(pairs, services={"mailpit": service}) == {
        "SMTP": "127.0.0.1:40002",
        "API": "http://127.0.0.1:40001/api",
    }
    with pytest.raises(ConfigError, match="has 2 ports"):
        templates.render((("P", "{mailpit.port}"),), services={"mailpit": service})
    one = templates.Service("web", "::1", {80: 5})
    assert templates.render((("U", "{web.url}"),), services={"web": one}) == {"U": "http://[::1]:5"}


COMPOSE = """
services:
  db:
    image: postgres:17
  mailpit:
    image: axllent/mailpit
"""


def project(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.dockwork]\ncompose_files = ["compose.yaml"]\n{extra}'
    )
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    return tmp_path


def test_test_services_may_name_compose_services(tmp_path: Path) -> None:
    found = load_config(project(tmp_path, 'test_services = ["postgres", "mailpit"]'), environ={})
    assert found.test_services == ("postgres", "mailpit")


def test_a_name_that_is_neither_is_one_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(project(tmp_path, 'test_services = ["postgres", "mailhog"]'), environ={})
    message = excinfo.value.message
    assert "`test_services` names 'mailhog'" in message
    assert "postgres, redis" in message
    assert "db, mailpit" in message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{mailpit.hostname}", "of the compose service 'mailpit' dockwork gives"),
        ("{web.host}", r"names \{web.host\}, which dockwork does not provide.*\{mailpit.host\}"),
    ],
)
def test_templates_naming_services_are_checked(
    tmp_path: Path, template: str, expected: str
) -> None:
    extra = f'test_services = ["mailpit"]\n\n[tool.dockwork.test_env]\nX = "{template}"\n'
    with pytest.raises(ConfigError, match=expected):
        load_config(project(tmp_path, extra), environ={})


def test_templates_may_name_services(tmp_path: Path) -> None:
    extra = (
        'test_services = ["mailpit"]\n\n[tool.dockwork.test_env]\n'
        'SMTP_PORT = "{mailpit.port_1025}"\nAPI = "{mailpit.url_8025}"\nH = "{mailpit.host}"\n'
    )
    assert len(load_config(project(tmp_path, extra), environ={}).test_env) == 3


def test_the_embedded_backend_refuses_services_by_name() -> None:
    assert embedded.unsupported(["postgres", "redis"]) is None
    error = embedded.unsupported(["postgres", "mailpit"])
    assert error is not None
    assert "'mailpit'" in error.message
    assert "Docker backend" in error.message
    assert "mailpit" not in (embedded.missing(["mailpit"]) or "")


def test_the_registry_costs_no_client_library() -> None:
    probe = (
        "import sys\n"
        "import dockwork.config, dockwork.kinds, dockwork.compose_yaml\n"
        "heavy = {'psycopg', 'redis', 'yaml', 'docker'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_spec_without_ports_or_command_is_the_images_own() -> None:
    spec = ContainerSpec(kind="x", image="i", command=(), ports=())
    assert spec.with_password("p") == ({}, [])


def test_a_new_password_never_reads_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # `redis-server --requirepass --x…` takes --x… for the next option and refuses to start
    drawn = iter(["--starts-like-a-flag", "-another", "fine-Password_1"])
    monkeypatch.setattr(containers.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert containers.new_password() == "fine-Password_1"
