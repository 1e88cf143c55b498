"""[tool.dockwork] → Config: precedence, and one clear error per kind of mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockwork.config import Config, load_config, shared_name
from dockwork.errors import ConfigError


def make_project(
    tmp_path: Path, table: str = "", files: tuple[str, ...] = ("compose.yaml",)
) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.dockwork]\n{table}\n')
    for f in files:
        (tmp_path / f).write_text("services: {}\n")
    return tmp_path


def test_defaults_and_project_name_from_directory(tmp_path: Path) -> None:
    (tmp_path / "My_Proj").mkdir()
    root = make_project(tmp_path / "My_Proj", 'compose_files = ["compose.yaml"]')
    config = load_config(root, environ={})
    assert isinstance(config, Config)
    assert config.project_name == "my_proj"
    assert config.compose_files == ("compose.yaml",)
    assert config.app_service == "app"
    assert config.wait_timeout == 180


def test_found_from_a_subdirectory(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]')
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    assert load_config(sub, environ={}).root == tmp_path.resolve()


def test_precedence_argument_over_environment_over_pyproject(tmp_path: Path) -> None:
    make_project(
        tmp_path, 'compose_files = ["compose.yaml"]\nproject_name = "from-toml"\nwait_timeout = 30'
    )
    env = {"DOCKWORK_PROJECT_NAME": "from-env", "DOCKWORK_WAIT_TIMEOUT": "45"}
    assert load_config(tmp_path, environ={}).project_name == "from-toml"
    from_env = load_config(tmp_path, environ=env)
    assert (from_env.project_name, from_env.wait_timeout) == ("from-env", 45)
    from_arg = load_config(tmp_path, environ=env, overrides={"project_name": "from-arg"})
    assert from_arg.project_name == "from-arg"


def test_compose_project_name_variable_is_honoured_like_compose(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]')
    assert load_config(tmp_path, environ={"COMPOSE_PROJECT_NAME": "Other"}).project_name == "other"


def test_list_from_environment_is_split_like_a_shell(tmp_path: Path) -> None:
    make_project(tmp_path, "", files=("a.yaml", "b c.yaml"))
    config = load_config(tmp_path, environ={"DOCKWORK_COMPOSE_FILES": "a.yaml 'b c.yaml'"})
    assert config.compose_files == ("a.yaml", "b c.yaml")


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]\ncompose_file = "x.yaml"')
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ={})
    message = excinfo.value.message
    assert "unknown key `compose_file`" in message
    assert "compose_files" in message
    assert "wait_timeout" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('wait_timeout = "soon"', "`wait_timeout` must be an integer"),
        ("wait_timeout = 0", "greater than 0"),
        ('compose_files = "compose.yaml"', "`compose_files` must be a list of strings"),
        ("app_service = 3", "`app_service` must be a string"),
        ("migrate_command = [1, 2]", "`migrate_command` must be a list of strings"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, line: str, expected: str) -> None:
    make_project(tmp_path, line)
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ={})
    assert expected in excinfo.value.message
    assert excinfo.value.exit_code == 2


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]')
    with pytest.raises(ConfigError, match="DOCKWORK_WAIT_TIMEOUT"):
        load_config(tmp_path, environ={"DOCKWORK_WAIT_TIMEOUT": "ten"})


def test_missing_compose_file_is_named(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml", "gone.yaml"]')
    with pytest.raises(ConfigError, match=r"gone\.yaml"):
        load_config(tmp_path, environ={})
    # a caller that does not run Compose (the pytest plugin) can skip that check
    assert (
        load_config(tmp_path, environ={}, require_compose_files=False).compose_files[1]
        == "gone.yaml"
    )


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dockwork\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, environ={})


def test_no_pyproject_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no pyproject\.toml"):
        load_config(Path("/"), environ={})


def test_this_repository_config_is_valid() -> None:
    config = load_config(Path(__file__).parent, environ={})
    assert config.compose_files == ("compose.yaml", "compose.override.yaml")
    assert all(p.is_file() for p in config.compose_paths)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DOCKWORK_PROJECT_NAME": "My Proj"}, "not a valid Compose project name"),
        (
            {"DOCKWORK_SERVICE_TIMEOUT": "60s"},
            "DOCKWORK_SERVICE_TIMEOUT: `service_timeout` must be a number greater than 0",
        ),
        (
            {"DOCKWORK_WAIT_TIMEOUT": "-5"},
            "DOCKWORK_WAIT_TIMEOUT: `wait_timeout` must be an integer greater than 0",
        ),
        ({"DOCKWORK_ENGINE_TIMEOUT": "nan"}, "`engine_timeout` must be a number greater than 0"),
        ({"DOCKWORK_REUSE": "maybe"}, "`reuse` must be a boolean"),
        (
            {"DOCKWORK_POSTGRES_INIT": "magic"},
            "`postgres_init` must be one of baked, direct, entrypoint",
        ),
        ({"DOCKWORK_TEST_SERVICES": "postgres mysql"}, "`test_services` names 'mysql'"),
        ({"DOCKWORK_DATABASE_SCHEME": "mysql"}, "`database_scheme` must be one of"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]')
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=env)
    assert expected in excinfo.value.message
    assert excinfo.value.exit_code == 2


def test_empty_compose_files_is_an_error(tmp_path: Path) -> None:
    make_project(tmp_path, "compose_files = []")
    with pytest.raises(ConfigError, match="`compose_files` is empty"):
        load_config(tmp_path, environ={})


def test_knobs_read_once_from_their_variables(tmp_path: Path) -> None:
    make_project(tmp_path, 'compose_files = ["compose.yaml"]\npostgres_image = "pg:toml"')
    config = load_config(
        tmp_path,
        environ={
            "DOCKWORK_REUSE": "1",
            "DOCKWORK_SERVICE_TIMEOUT": "2.5",
            "POSTGRES_IMAGE": "pg:contract",
            "REDIS_IMAGE": "redis:contract",
            "DOCKWORK_TEST_DATABASE_URL": "postgresql://u:p@h/db",
        },
    )
    assert config.reuse is True
    assert config.service_timeout == 2.5
    assert (config.postgres_image, config.redis_image) == ("pg:contract", "redis:contract")
    assert config.test_database_url == "postgresql://u:p@h/db"
    # dockwork's own name wins over the contract's
    both = {"POSTGRES_IMAGE": "pg:contract", "DOCKWORK_POSTGRES_IMAGE": "pg:dockwork"}
    assert load_config(tmp_path, environ=both).postgres_image == "pg:dockwork"
    assert load_config(tmp_path, environ={}).postgres_image == "pg:toml"


def test_development_means_the_override_is_in_use(tmp_path: Path) -> None:
    make_project(tmp_path, "", files=("compose.yaml", "compose.override.yaml"))
    assert load_config(tmp_path, environ={}).development
    prod = load_config(tmp_path, environ={"DOCKWORK_COMPOSE_FILES": "compose.yaml"})
    assert not prod.development


def test_an_env_made_before_the_example_grew_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockwork import envfile  # noqa: PLC0415

    root = make_project(
        tmp_path,
        'compose_files = ["compose.yaml", "compose.override.yaml"]',
        files=("compose.yaml", "compose.override.yaml"),
    )
    example = "# dev\nPOSTGRES_PASSWORD=x\nCOMPOSE_PROFILES=web\nWEB_PORT=1\n"
    (root / ".env.example").write_text(example)
    (root / ".env").write_text("POSTGRES_PASSWORD=mine\nexport EXTRA=1\n")
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    monkeypatch.setenv("WEB_PORT", "5174")  # set where Compose also looks: not lacking
    config = load_config(root, environ={})
    assert envfile.behind_example(config) == ["COMPOSE_PROFILES"]
    (root / ".env").write_text("POSTGRES_PASSWORD=mine\nCOMPOSE_PROFILES=\n")
    assert envfile.behind_example(config) == []
    production = load_config(root, environ={"DOCKWORK_COMPOSE_FILES": "compose.yaml"})
    (root / ".env").write_text("")
    assert envfile.behind_example(production) == [], "production never gets the example's"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DOCKWORK_DEPLOY_STACK": "shop.prod"}, "stack name 'shop.prod'"),
        ({"DOCKWORK_DEPLOY_STACK": "shop-"}, "stack name 'shop-'"),
        ({"DOCKWORK_DEPLOY_ROUTING": "ipvs"}, "`deploy_routing` must be one of"),
        ({"DOCKWORK_DEPLOY_REPLICAS": "worker=many"}, "`deploy_replicas` entry 'worker=many'"),
        ({"DOCKWORK_DEPLOY_LIMITS": "app.disk=1G"}, "`deploy_limits` entry 'app.disk=1G'"),
    ],
)
def test_deploy_settings_are_checked_when_loaded(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    make_project(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(tmp_path, environ=environ)


def test_a_project_name_swarm_refuses_only_stops_the_deploy_tasks(tmp_path: Path) -> None:
    from dockwork.config import check_stack_name  # noqa: PLC0415

    make_project(tmp_path, 'compose_files = ["compose.yaml"]')
    config = load_config(tmp_path, environ={"DOCKWORK_PROJECT_NAME": "shop_"})
    assert config.stack == "shop_", "Compose takes it: the other tasks run"
    with pytest.raises(ConfigError, match="deploy_stack"):
        check_stack_name(config)
    ok = load_config(
        tmp_path, environ={"DOCKWORK_PROJECT_NAME": "shop_", "DOCKWORK_DEPLOY_STACK": "shop"}
    )
    check_stack_name(ok)


def test_the_project_is_found_from_the_repository_root_and_from_inside(tmp_path: Path) -> None:
    """FastAPI's template: a workspace pyproject at the root (no [tool.dockwork]), compose
    files beside it, the Python project in backend/."""
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["backend"]\n')
    (tmp_path / "compose.yml").write_text("services: {}\n")
    backend = tmp_path / "backend"
    (backend / "app").mkdir(parents=True)
    (backend / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.dockwork]\ncompose_files = ["../compose.yml"]\n'
    )
    for start in (tmp_path, backend, backend / "app"):
        config = load_config(start, environ={})
        assert config.root == backend.resolve()
        assert config.compose_paths[0].resolve() == (tmp_path / "compose.yml").resolve()


def test_two_projects_below_is_one_message(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    for name in ("api", "worker"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text("[tool.dockwork]\n")
    with pytest.raises(ConfigError, match=r"several projects below .*: api, worker"):
        load_config(tmp_path, environ={})


def test_the_test_header_says_when_the_servers_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``test_env`` they start before the conftests are imported, not on first use."""
    import dataclasses  # noqa: PLC0415

    from dockwork import engine_probe  # noqa: PLC0415
    from dockwork.testing.servers.discovery import Decision, choice  # noqa: PLC0415

    monkeypatch.setattr(engine_probe, "describe_host", lambda: "the default socket")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.dockwork]\ntest_services = ["postgres"]\n'
    )
    config = load_config(tmp_path, environ={}, require_compose_files=False)
    docker = Decision(backend="docker", why="an engine answers")
    assert choice(config, docker).endswith(", started on first use")
    early = dataclasses.replace(config, test_env=(("DATABASE_URL", "{postgres.url}"),))
    assert choice(early, docker).endswith(", started before the tests (test_env)")
    constants = dataclasses.replace(config, test_env=(("APP_ENV", "test"),))
    assert choice(constants, docker).endswith(", started on first use"), "names no server"


def test_a_generic_project_name_is_warned_with_a_name_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockwork.doctor import WARN, Findings, check_config  # noqa: PLC0415

    for name in ("DOCKWORK_PROJECT_NAME", "COMPOSE_PROJECT_NAME", "DOCKWORK_COMPOSE_FILES"):
        monkeypatch.delenv(name, raising=False)  # doctor reads the environment

    shop = tmp_path / "Flask-Shop"
    files = ("deploy/docker/compose.yaml",)
    (shop / "deploy" / "docker").mkdir(parents=True)
    make_project(shop, 'compose_files = ["deploy/docker/compose.yaml"]', files)
    config = load_config(shop, environ={})
    assert config.project_name == "docker", "Compose's own rule: the file's directory"
    assert shared_name(config, environ={}) == "flask-shop", "the nearest non-generic directory"
    found = Findings(root=shop)
    warned = [c for c in check_config(found) if c.name == "project name"]
    assert [c.status for c in warned] == [WARN]
    assert "name: flask-shop` at the top of deploy/docker/compose.yaml" in warned[0].fix

    # compose files beside the Python project (both below the repository): the walk goes up
    # to where they meet
    (tmp_path / "repo" / "backend").mkdir(parents=True)
    (tmp_path / "repo" / "docker").mkdir()
    (tmp_path / "repo" / "docker" / "compose.yaml").write_text("services: {}\n")
    beside = make_project(
        tmp_path / "repo" / "backend", 'compose_files = ["../docker/compose.yaml"]', ()
    )
    assert shared_name(load_config(beside, environ={}), environ={}) == "repo"

    # a name given, whatever it is, is left alone: the compose file's `name:`, the
    # setting, the environment
    assert shared_name(config, environ={"COMPOSE_PROJECT_NAME": "docker"}) is None
    (shop / files[0]).write_text("name: shop\nservices: {}\n")
    assert shared_name(load_config(shop, environ={}), environ={}) is None
    assert [c for c in check_config(Findings(root=shop)) if c.name == "project name"] == []
    (shop / files[0]).write_text("services: {}\n")
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'project_name = "docker"\n')
    assert shared_name(load_config(shop, environ={}), environ={}) is None
    (tmp_path / "docker").mkdir()  # its own directory generic too: nothing better to offer
    make_project(tmp_path / "docker", 'compose_files = ["compose.yaml"]')
    assert load_config(tmp_path / "docker", environ={}).project_name == "docker"
    generic = load_config(tmp_path / "docker", environ={})
    assert shared_name(generic, environ={}) == "<a-name-of-its-own>"
