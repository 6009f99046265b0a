"""The docker run launcher across the filters.

dagster_instance: the DockerRunLauncher section of dagster.yaml (its keys, the
read-only pgpass file and CA certificate run containers get instead of the
password in their environment, the registry password kept out of the file,
grpc locations alone beside the Docker socket); dagster_docker_pgpass: the
line of that pgpass file; dagster_workspace: the run image of a deployed code location (`image`,
or `image_build` for one the role builds); dagster_deployment: a docker
launcher needs its database over TCP.
"""

from __future__ import annotations

import copy
import re

import dagster_instance
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from dagster_deployment import dagster_deployment as deployment
from dagster_instance import dagster_instance as instance
from dagster_instance import run_launcher_section
from dagster_workspace import dagster_code_location_servers as servers
from dagster_workspace import dagster_workspace as workspace
from test_dagster_instance import DEFAULT_SETTINGS

# ================================================================ dagster_instance

# The settings the dagster role passes with its defaults (PostgreSQL over the local socket).
BASE_SETTINGS = {**copy.deepcopy(DEFAULT_SETTINGS), "docker_run_files": {}}

SECRET = "s3cr3t-registry-password"
REGISTRY = {"url": "registry.example.net", "username": "robot", "password": SECRET}
FULL_DOCKER = {
    "image": "registry.example.net/etl:1.4",
    "networks": ["dagster", "warehouse"],
    "env_vars": ["MODE=prod", "API_TOKEN"],
    "container_kwargs": {"auto_remove": True, "mem_limit": "2g", "labels": {"team": "data"}},
    "registry": REGISTRY,
}
DOCKER_SECTION = {"module": "dagster_docker", "class": "DockerRunLauncher"}


def settings(docker=None, **changes):
    """BASE_SETTINGS with the docker launcher and `docker` as dagster_docker_launcher."""
    result = copy.deepcopy(BASE_SETTINGS)
    result["run_launcher"] = "docker"
    result["docker"] = copy.deepcopy(docker) if docker is not None else {}
    result.update(changes)
    return result


RUN_FILES = {"pgpass": "/etc/dagster-docker-run/pgpass", "ca_cert": "/etc/dagster-docker-run/postgresql-ca.crt"}
CA_FILE = "/etc/dagster/postgresql-ca.crt"
TLS = {"sslmode": "verify-full", "sslrootcert": CA_FILE, "channel_binding": "require"}
# What the role adds for PostgreSQL over TCP: the password variable empty, libpq pointed at the file.
RUN_ENV = ["DAGSTER_PG_PASSWORD=", "PGPASSFILE=/run/dagster/pgpass"]
RUN_VOLUMES = [
    "/etc/dagster-docker-run/pgpass:/run/dagster/pgpass:ro",
    f"/etc/dagster-docker-run/postgresql-ca.crt:{CA_FILE}:ro",
]


def tcp(docker=None, **changes):
    """The docker launcher with PostgreSQL over TCP (verify-full): the role's run files are mounted."""
    result = settings(docker, docker_run_files=copy.deepcopy(RUN_FILES), **changes)
    result["postgres"]["host"] = "db1.example.net"
    result["postgres"]["params"] = dict(TLS)
    return result


# ---------------------------------------------------------------- accepted


def test_the_default_launcher_is_dagsters_default_run_launcher():
    expected = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    assert run_launcher_section({"run_launcher": "default"}) == expected
    assert instance(BASE_SETTINGS)["run_launcher"] == expected


@pytest.mark.parametrize("docker", [{}, None], ids=["empty-map", "null"])
def test_docker_without_config_names_the_class_and_has_no_config(docker):
    given = settings()
    given["docker"] = docker
    assert run_launcher_section(given) == DOCKER_SECTION
    assert instance(given)["run_launcher"] == DOCKER_SECTION
    assert "config" not in instance(given)["run_launcher"]


def test_docker_without_config_or_forwarded_variables_has_no_config():
    assert run_launcher_section({"run_launcher": "docker"}) == DOCKER_SECTION


def test_docker_config_is_carried_with_the_registry_password_from_the_environment():
    section = instance(settings(FULL_DOCKER))["run_launcher"]
    assert section == {
        **DOCKER_SECTION,
        "config": {
            **FULL_DOCKER,
            "registry": {
                "url": "registry.example.net",
                "username": "robot",
                "password": {"env": "DAGSTER_DOCKER_REGISTRY_PASSWORD"},
            },
        },
    }


def test_a_single_network_is_carried():
    section = run_launcher_section(settings({"image": "etl:1", "network": "dagster"}))
    assert section["config"] == {"image": "etl:1", "network": "dagster"}


# (the user's env_vars or None when unset, the env_vars dagster.yaml gets)
RUN_ENV_CASES = {
    "unset": (None, RUN_ENV),
    "empty": ([], RUN_ENV),
    "other-names": (["MODE=prod", "API_TOKEN"], ["MODE=prod", "API_TOKEN", *RUN_ENV]),
    "prefix-is-another-name": (["DAGSTER_PG_PASSWORD_OLD"], ["DAGSTER_PG_PASSWORD_OLD", *RUN_ENV]),
}


@pytest.mark.parametrize(("env_vars", "expected"), list(RUN_ENV_CASES.values()), ids=list(RUN_ENV_CASES))
def test_run_containers_get_the_password_variable_empty_and_the_pgpass_file(env_vars, expected):
    docker = {"image": "etl:1"} if env_vars is None else {"image": "etl:1", "env_vars": env_vars}
    config = instance(tcp(docker))["run_launcher"]["config"]
    assert config["env_vars"] == expected
    assert config["container_kwargs"] == {"volumes": RUN_VOLUMES}
    assert config["image"] == "etl:1"


def test_the_run_files_alone_make_a_config():
    assert run_launcher_section(tcp()) == {
        **DOCKER_SECTION,
        "config": {"env_vars": RUN_ENV, "container_kwargs": {"volumes": RUN_VOLUMES}},
    }


def test_the_users_volumes_come_first_and_other_kwargs_stay():
    given = tcp({"container_kwargs": {"volumes": ["/srv/data:/data:ro"], "mem_limit": "1g"}})
    kwargs = run_launcher_section(given)["config"]["container_kwargs"]
    assert kwargs == {"volumes": ["/srv/data:/data:ro", *RUN_VOLUMES], "mem_limit": "1g"}


def test_the_ca_certificate_is_mounted_where_sslrootcert_names_it():
    given = tcp()
    given["postgres"]["params"]["sslrootcert"] = "/srv/pki/db-ca.pem"
    volumes = run_launcher_section(given)["config"]["container_kwargs"]["volumes"]
    assert volumes == [RUN_VOLUMES[0], "/etc/dagster-docker-run/postgresql-ca.crt:/srv/pki/db-ca.pem:ro"]


@pytest.mark.parametrize("params", [{"sslmode": "require"}, {}], ids=["require", "no-params"])
def test_without_sslrootcert_only_the_pgpass_file_is_mounted(params):
    given = tcp()
    given["postgres"]["params"] = params
    assert run_launcher_section(given)["config"]["container_kwargs"]["volumes"] == RUN_VOLUMES[:1]


def test_the_tcp_storage_reads_the_variable_the_containers_get_empty():
    result = instance(tcp({"image": "etl:1"}))
    password_env = result["storage"]["postgres"]["postgres_db"]["password"]["env"]
    assert f"{password_env}=" in result["run_launcher"]["config"]["env_vars"]
    assert password_env not in result["run_launcher"]["config"]["env_vars"]


def test_the_default_launcher_mounts_nothing():
    given = copy.deepcopy(BASE_SETTINGS)
    given["docker_run_files"] = copy.deepcopy(RUN_FILES)
    assert run_launcher_section(given) == {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}


@pytest.mark.parametrize(
    "env_vars",
    [["DAGSTER_PG_PASSWORD"], ["A", "DAGSTER_PG_PASSWORD=from-the-user"], ["PGPASSFILE=/tmp/x"]],
    ids=["password-by-name", "password-with-value", "pgpassfile"],
)
def test_the_password_variables_may_not_be_forwarded(filter_error, assert_field, env_vars):
    for given in (tcp({"env_vars": env_vars}), settings({"env_vars": env_vars})):
        message = filter_error(instance, given)
        assert_field(message, "dagster_docker_launcher.env_vars")
        assert "read-only pgpass file" in message and "docker inspect" in message
        assert "from-the-user" not in message


@pytest.mark.parametrize(
    ("volumes", "problem"),
    [
        ({"/a": {"bind": "/a"}}, "must be a list"),
        (["/a"], "must be a list"),
        (["/srv/pass:/run/dagster/pgpass:ro"], "mounts over /run/dagster/pgpass"),
        ([f"/srv/ca.pem:{CA_FILE}"], f"mounts over {CA_FILE}"),
    ],
    ids=["a-map", "no-target", "over-the-pgpass", "over-the-ca"],
)
def test_volumes_that_the_role_cannot_extend_are_refused(filter_error, assert_field, volumes, problem):
    message = filter_error(instance, tcp({"container_kwargs": {"volumes": volumes}}))
    assert_field(message, "dagster_docker_launcher.container_kwargs.volumes")
    assert problem in message


@pytest.mark.parametrize(
    ("run_files", "field"),
    [("ABC", "docker_run_files"), ({"ca_cert": "/x"}, "docker_run_files.pgpass"), ({"pgpass": "x"}, "docker_run_files.pgpass")],
    ids=["not-a-map", "no-pgpass", "relative"],
)
def test_bad_run_files_are_rejected(filter_error, assert_field, run_files, field):
    given = tcp()
    given["docker_run_files"] = run_files
    assert_field(filter_error(run_launcher_section, given), field)


# ---------------------------------------------------------------- no user code beside the Docker socket

MODULE = {"name": "etl", "type": "module", "module": "etl.definitions"}
FILE = {"name": "adhoc", "type": "file", "file": "/srv/adhoc/defs.py"}
GRPC = {"name": "etl", "type": "grpc", "host": "code1", "port": 4000}


@pytest.mark.parametrize(
    ("locations", "field"),
    [([MODULE], "dagster_code_locations[0].type"), ([GRPC, FILE], "dagster_code_locations[1].type")],
    ids=["module", "file-second"],
)
def test_module_and_file_locations_are_refused_with_the_docker_launcher(filter_error, assert_field, locations, field):
    for given in (settings(code_locations=locations), tcp(code_locations=locations)):
        message = filter_error(instance, given)
        assert_field(message, field)
        assert "Docker socket" in message and "grpc" in message


def test_the_example_location_is_refused_with_the_docker_launcher(filter_error, assert_field):
    message = filter_error(instance, tcp(example_location=True))
    assert_field(message, "dagster_example_location")
    assert "Docker socket" in message


def test_grpc_locations_pass_with_the_docker_launcher():
    assert instance(tcp(code_locations=[GRPC, {**GRPC, "name": "b"}]))["run_launcher"]["class"] == "DockerRunLauncher"


def test_module_locations_pass_with_the_default_launcher():
    given = copy.deepcopy(BASE_SETTINGS)
    given.update(code_locations=[MODULE, FILE], example_location=True)
    assert instance(given)["run_launcher"]["class"] == "DefaultRunLauncher"


# ---------------------------------------------------------------- dagster_docker_pgpass

POSTGRES = {"host": "db1.example.net", "port": 5432, "database": "dagster", "user": "dagster"}


def test_the_pgpass_line_names_the_connection_and_escapes_colons_and_backslashes():
    line = dagster_instance.dagster_docker_pgpass(POSTGRES, "a:b\\c")
    assert line == "db1.example.net:5432:dagster:dagster:a\\:b\\\\c\n"


@pytest.mark.parametrize("password", ["", None, "two\nlines"], ids=["empty", "none", "newline"])
def test_a_password_unfit_for_pgpass_is_refused_without_echo(filter_error, assert_field, password):
    message = filter_error(dagster_instance.dagster_docker_pgpass, POSTGRES, password)
    assert_field(message, "dagster_postgres_password")
    assert "two" not in message


def test_a_pgpass_line_needs_the_whole_connection(filter_error, assert_field):
    assert_field(filter_error(dagster_instance.dagster_docker_pgpass, {**POSTGRES, "host": ""}, "pw"), "dagster_postgres")


def test_the_registry_password_is_written_nowhere():
    result = instance(tcp(FULL_DOCKER))
    registry = result["run_launcher"]["config"]["registry"]
    assert registry == {
        "url": "registry.example.net",
        "username": "robot",
        "password": {"env": dagster_instance.DOCKER_REGISTRY_PASSWORD_ENV},
    }
    assert dagster_instance.DOCKER_REGISTRY_PASSWORD_ENV == "DAGSTER_DOCKER_REGISTRY_PASSWORD"
    for text in (str(result), repr(result), yaml.safe_dump(result), yaml.safe_dump(result["run_launcher"])):
        assert SECRET not in text
    assert SECRET not in str(run_launcher_section(settings({"registry": REGISTRY})))


def test_the_settings_are_not_modified():
    given = tcp(FULL_DOCKER)
    before = copy.deepcopy(given)
    result = instance(given)
    assert given == before
    assert given["docker"]["registry"]["password"] == SECRET
    assert given["docker"]["env_vars"] == ["MODE=prod", "API_TOKEN"]
    # The result shares nothing with the settings either.
    config = result["run_launcher"]["config"]
    config["env_vars"].append("CHANGED")
    config["networks"].append("CHANGED")
    config["container_kwargs"]["labels"]["team"] = "CHANGED"
    config["registry"]["url"] = "CHANGED"
    assert given == before


def test_extra_config_may_not_replace_the_docker_config(filter_error):
    given = settings({"image": "etl:1"}, extra_config={"run_launcher": {"config": {"image": "other:2"}}})
    message = filter_error(instance, given)
    assert message.startswith("dagster_extra_config.run_launcher.config.image:"), message
    assert "dagster_docker_launcher" in message


# ---------------------------------------------------------------- rejected

# name -> (dagster_docker_launcher, the field the message must begin with)
DOCKER_ERRORS = {
    "not-a-map": (["image"], "dagster_docker_launcher"),
    "not-a-map-string": ("etl:1", "dagster_docker_launcher"),
    "auto-remove-at-top-level": ({"auto_remove": True}, "dagster_docker_launcher.auto_remove"),
    "mem-limit-at-top-level": ({"mem_limit": "2g"}, "dagster_docker_launcher.mem_limit"),
    "volumes-at-top-level": ({"image": "etl:1", "volumes": ["/a:/a"]}, "dagster_docker_launcher.volumes"),
    "network-and-networks": ({"network": "a", "networks": ["b"]}, "dagster_docker_launcher.network"),
    "network-and-empty-networks": ({"network": "a", "networks": []}, "dagster_docker_launcher.network"),
    "image-empty": ({"image": ""}, "dagster_docker_launcher.image"),
    "image-blank": ({"image": "   "}, "dagster_docker_launcher.image"),
    "image-not-string": ({"image": 1}, "dagster_docker_launcher.image"),
    "image-null": ({"image": None}, "dagster_docker_launcher.image"),
    "network-empty": ({"network": ""}, "dagster_docker_launcher.network"),
    "network-list": ({"network": ["a"]}, "dagster_docker_launcher.network"),
    "networks-string": ({"networks": "dagster"}, "dagster_docker_launcher.networks"),
    "networks-empty-item": ({"networks": ["dagster", ""]}, "dagster_docker_launcher.networks"),
    "networks-int-item": ({"networks": [1]}, "dagster_docker_launcher.networks"),
    "networks-map": ({"networks": {"dagster": {}}}, "dagster_docker_launcher.networks"),
    "env-vars-string": ({"env_vars": "A=1"}, "dagster_docker_launcher.env_vars"),
    "env-vars-map": ({"env_vars": {"A": "1"}}, "dagster_docker_launcher.env_vars"),
    "env-vars-int-item": ({"env_vars": ["A", 1]}, "dagster_docker_launcher.env_vars"),
    "env-vars-leading-digit": ({"env_vars": ["1A=x"]}, "dagster_docker_launcher.env_vars"),
    "env-vars-no-name": ({"env_vars": ["=x"]}, "dagster_docker_launcher.env_vars"),
    "env-vars-empty-item": ({"env_vars": [""]}, "dagster_docker_launcher.env_vars"),
    "env-vars-dash": ({"env_vars": ["MY-VAR=1"]}, "dagster_docker_launcher.env_vars"),
    "env-vars-leading-space": ({"env_vars": [" A"]}, "dagster_docker_launcher.env_vars"),
    "container-kwargs-list": ({"container_kwargs": ["auto_remove"]}, "dagster_docker_launcher.container_kwargs"),
    "container-kwargs-string": ({"container_kwargs": "auto_remove=true"}, "dagster_docker_launcher.container_kwargs"),
    "container-kwargs-image": ({"container_kwargs": {"image": "etl:1"}}, "dagster_docker_launcher.container_kwargs.image"),
    "container-kwargs-environment": (
        {"container_kwargs": {"environment": {"A": "1"}}},
        "dagster_docker_launcher.container_kwargs.environment",
    ),
    "container-kwargs-network": (
        {"container_kwargs": {"auto_remove": True, "network": "dagster"}},
        "dagster_docker_launcher.container_kwargs.network",
    ),
    "registry-not-a-map": ({"registry": "registry.example.net"}, "dagster_docker_launcher.registry"),
    "registry-empty": ({"registry": {}}, "dagster_docker_launcher.registry"),
    "registry-without-password": (
        {"registry": {"url": "registry.example.net", "username": "robot"}},
        "dagster_docker_launcher.registry",
    ),
    "registry-without-url": ({"registry": {"username": "robot", "password": SECRET}}, "dagster_docker_launcher.registry"),
    "registry-unknown-key": ({"registry": {**REGISTRY, "email": "a@b"}}, "dagster_docker_launcher.registry"),
    "registry-url-empty": ({"registry": {**REGISTRY, "url": ""}}, "dagster_docker_launcher.registry.url"),
    "registry-username-null": ({"registry": {**REGISTRY, "username": None}}, "dagster_docker_launcher.registry.username"),
    "registry-password-empty": ({"registry": {**REGISTRY, "password": ""}}, "dagster_docker_launcher.registry.password"),
    "registry-password-map": (
        {"registry": {**REGISTRY, "password": {"env": "X"}}},
        "dagster_docker_launcher.registry.password",
    ),
}


@pytest.mark.parametrize(("docker", "field"), list(DOCKER_ERRORS.values()), ids=list(DOCKER_ERRORS))
def test_bad_docker_config_is_rejected_naming_the_field(filter_error, assert_field, docker, field):
    given = settings()
    given["docker"] = copy.deepcopy(docker)
    assert_field(filter_error(run_launcher_section, given), field)
    assert_field(filter_error(instance, given), field)


@pytest.mark.parametrize("launcher", ["k8s", "Docker", "DockerRunLauncher", "", None, True])
def test_the_launcher_must_be_default_or_docker(launcher):
    given = settings()
    given["run_launcher"] = launcher
    with pytest.raises(AnsibleFilterError, match=r"^dagster_run_launcher: must be one of default, docker, got "):
        instance(given)
    with pytest.raises(AnsibleFilterError, match=r"^dagster_run_launcher: "):
        run_launcher_section({"run_launcher": launcher})


def test_auto_remove_at_the_top_level_points_at_container_kwargs():
    with pytest.raises(
        AnsibleFilterError,
        match=r"^dagster_docker_launcher\.auto_remove: .*set container_kwargs\.auto_remove",
    ):
        instance(settings({"auto_remove": True}))


def test_another_unknown_key_lists_the_allowed_keys_and_container_kwargs():
    with pytest.raises(AnsibleFilterError) as excinfo:
        instance(settings({"mem_limit": "2g"}))
    message = str(excinfo.value)
    assert message.startswith("dagster_docker_launcher.mem_limit: is not a DockerRunLauncher setting"), message
    assert "allowed: " + ", ".join(dagster_instance.DOCKER_LAUNCHER_KEYS) in message
    assert "go in container_kwargs" in message


@pytest.mark.parametrize(
    ("key", "instead"),
    [
        ("image", "use image instead"),
        ("environment", "use env_vars instead"),
        ("network", "use network or networks instead"),
    ],
)
def test_a_refused_container_kwarg_names_the_setting_to_use(key, instead):
    with pytest.raises(AnsibleFilterError, match=rf"^dagster_docker_launcher\.container_kwargs\.{key}: .*{instead}"):
        instance(settings({"container_kwargs": {key: "x"}}))


def test_a_rejected_registry_does_not_echo_the_password(filter_error):
    for bad in ({**REGISTRY, "url": ""}, {**REGISTRY, "email": "a@b"}, {"password": SECRET}):
        assert SECRET not in filter_error(instance, settings({"registry": bad}))


def test_a_rejection_leaves_the_settings_alone(filter_error):
    given = tcp({**FULL_DOCKER, "container_kwargs": {"image": "x"}})
    before = copy.deepcopy(given)
    filter_error(instance, given)
    assert given == before


# ---------------------------------------------------------------- against dagster-docker itself


def test_the_launcher_keys_are_dagster_dockers():
    from dagster_docker import utils  # noqa: PLC0415 - in the tool venv (requirements-tools.txt)
    assert set(dagster_instance.DOCKER_LAUNCHER_KEYS) == set(utils.DOCKER_CONFIG_SCHEMA)


@pytest.mark.parametrize("key", sorted(dagster_instance.DOCKER_KWARGS_REFUSED))
def test_the_refused_container_kwargs_are_those_dagster_docker_refuses(key):
    from dagster_docker import utils  # noqa: PLC0415 - in the tool venv (requirements-tools.txt)
    utils.validate_docker_config(None, None, {"auto_remove": True})
    with pytest.raises(Exception, match=key):
        utils.validate_docker_config(None, None, {key: "x"})


@pytest.mark.parametrize(
    "given",
    [settings(), tcp(FULL_DOCKER), tcp({"image": "etl:1", "network": "dagster", "env_vars": ["MODE=x"]})],
    ids=["no-config", "full", "single-network"],
)
def test_the_config_passes_the_docker_run_launchers_schema(monkeypatch, given):
    from dagster._config import process_config, resolve_to_config_type
    from dagster_docker import DockerRunLauncher

    # The services' environment file holds the registry password.
    monkeypatch.setenv("DAGSTER_DOCKER_REGISTRY_PASSWORD", "stand-in")
    config = run_launcher_section(given).get("config", {})
    result = process_config(resolve_to_config_type(DockerRunLauncher.config_type()), config)
    assert result.success, [error.message for error in result.errors]


# ================================================================ dagster_workspace

from locations import ADDRESSES  # noqa: E402
from locations import DEPLOYED as _DEPLOYED  # noqa: E402

DEPLOYED = {**_DEPLOYED, "source": {"directory": "/srv/src/etl"}}
EXTERNAL = {"name": "vendor", "type": "grpc", "host": "vendor.example.net", "port": 4000}
BUILD = {"name": "registry.example.net/etl", "base": "python:3.12-slim"}
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _without(location, key):
    return {k: v for k, v in location.items() if k != key}


def _second(**changes):
    """A second deployed location on code1, its own name and port, with changes; a value None removes the key."""
    entry = {**DEPLOYED, "name": "b", "port": 4001}
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def test_a_location_without_an_image_gets_an_empty_image_and_no_build():
    (server,) = servers([DEPLOYED], "code1", ADDRESSES)
    assert server["image"] == ""
    assert server["image_build"] is None


@pytest.mark.parametrize(
    "image",
    [
        "etl",
        "etl:1.4",
        "etl:latest",
        "team/etl:2024-01-01",
        "registry.example.net/etl:1.4",
        "registry.example.net:5000/team/etl:v1.4.0-rc_1",
        "localhost:5000/etl",
        "python:3.12-slim",
        "my_org__x/etl-jobs.v2",
        f"etl@{DIGEST}",
        f"registry.example.net/etl:1.4@{DIGEST}",
    ],
)
def test_an_image_reference_is_accepted_and_given_to_the_server(image):
    location = {**DEPLOYED, "image": image}
    (server,) = servers([location], "code1", ADDRESSES)
    assert server["image"] == image
    assert server["image_build"] is None
    assert workspace([location], addresses=ADDRESSES) == {
        "load_from": [{"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}}]
    }


@pytest.mark.parametrize(
    "build",
    [
        BUILD,
        {"name": "etl", "base": "python:3.12-slim"},
        {"name": "localhost:5000/team/etl", "base": "localhost:5000/python"},
        {"name": "my-org/etl_jobs", "base": f"python@{DIGEST}"},
    ],
    ids=["registry", "bare-name", "registry-port", "digest-base"],
)
def test_an_image_build_is_accepted_and_given_to_the_server(build):
    location = {**DEPLOYED, "image_build": build}
    (server,) = servers([location], "code1", ADDRESSES)
    assert server["image_build"] == build
    assert server["image"] == ""
    assert workspace([location], addresses=ADDRESSES) == {
        "load_from": [{"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}}]
    }


@pytest.mark.parametrize(
    "source",
    [{"directory": "/srv/src/etl"}, {"git": "https://git.example.net/etl.git", "version": "v1.4.0"}, {"pip": "etl==1.4"}],
    ids=["directory", "git", "pip"],
)
def test_an_image_build_takes_any_source_kind(source):
    (server,) = servers([{**DEPLOYED, "source": source, "image_build": BUILD}], "code1", ADDRESSES)
    assert server["image_build"] == BUILD
    assert server["source"]["kind"] in source


def test_image_and_image_build_may_differ_between_locations():
    locations = [
        {**DEPLOYED, "image": "registry.example.net/etl:1.4"},
        _second(image_build=BUILD),
        {**DEPLOYED, "name": "c", "port": 4002},
        {**DEPLOYED, "name": "d", "deploy_to": "code2", "image": "other:1"},
        EXTERNAL,
    ]
    result = servers(locations, "code1", ADDRESSES)
    assert [(s["name"], s["image"], s["image_build"]) for s in result] == [
        ("etl", "registry.example.net/etl:1.4", None),
        ("b", "", BUILD),
        ("c", "", None),
    ]
    assert len(workspace(locations, addresses=ADDRESSES)["load_from"]) == 5


def test_the_image_build_is_a_copy():
    location = {**DEPLOYED, "image_build": dict(BUILD)}
    before = copy.deepcopy(location)
    (server,) = servers([location], "code1", ADDRESSES)
    server["image_build"]["name"] = "changed"
    assert location == before


# (the second entry of the list, the field the message must name after "dagster_code_locations[1] ('b')."
IMAGE_ERRORS = {
    "image-and-image-build": (_second(image="etl:1", image_build=BUILD), "image"),
    "image-with-space": (_second(image="Bad Image"), "image"),
    "image-empty": (_second(image=""), "image"),
    "image-upper-case": (_second(image="ETL:1"), "image"),
    "image-upper-case-path": (_second(image="registry.example.net/Team/etl:1"), "image"),
    "image-empty-tag": (_second(image="etl:"), "image"),
    "image-bad-tag": (_second(image="etl:-x"), "image"),
    "image-short-digest": (_second(image="etl@sha256:abc"), "image"),
    "image-trailing-slash": (_second(image="etl/"), "image"),
    "image-trailing-newline": (_second(image="etl:1\n"), "image"),
    "image-registry-dot-path": (_second(image="./etl:1"), "image"),
    "image-registry-leading-dash": (_second(image="-x/etl:1"), "image"),
    "image-build-name-trailing-newline": (_second(image_build={**BUILD, "name": "etl\n"}), "image_build.name"),
    "image-not-string": (_second(image=3), "image"),
    "image-list": (_second(image=["etl:1"]), "image"),
    "image-map": (_second(image={"name": "etl"}), "image"),
    "image-build-string": (_second(image_build="registry.example.net/etl"), "image_build"),
    "image-build-list": (_second(image_build=["etl", "python:3.12"]), "image_build"),
    "image-build-name-with-tag": (
        _second(image_build={**BUILD, "name": "registry.example.net/etl:1.4"}),
        "image_build.name",
    ),
    "image-build-name-with-latest": (_second(image_build={**BUILD, "name": "etl:latest"}), "image_build.name"),
    "image-build-name-with-digest": (_second(image_build={**BUILD, "name": f"etl@{DIGEST}"}), "image_build.name"),
    "image-build-name-upper-case": (_second(image_build={**BUILD, "name": "ETL"}), "image_build.name"),
    "image-build-name-space": (_second(image_build={**BUILD, "name": "my etl"}), "image_build.name"),
    "image-build-name-empty": (_second(image_build={**BUILD, "name": ""}), "image_build.name"),
    "image-build-name-missing": (_second(image_build=_without(BUILD, "name")), "image_build.name"),
    "image-build-name-not-string": (_second(image_build={**BUILD, "name": 1}), "image_build.name"),
    "image-build-base-missing": (_second(image_build=_without(BUILD, "base")), "image_build.base"),
    "image-build-base-empty": (_second(image_build={**BUILD, "base": ""}), "image_build.base"),
    "image-build-base-bad": (_second(image_build={**BUILD, "base": "Python 3.12"}), "image_build.base"),
    "image-build-base-not-string": (_second(image_build={**BUILD, "base": ["python"]}), "image_build.base"),
    "image-build-empty": (_second(image_build={}), "image_build.name"),
    "image-build-unknown-key": (_second(image_build={**BUILD, "tag": "1.4"}), "image_build.tag"),
    "image-build-unknown-key-context": (_second(image_build={**BUILD, "context": "/srv"}), "image_build.context"),
    "image-build-without-source": (_second(image_build=BUILD, source=None), "image_build"),
}


def _assert_location_field(message, field):
    pattern = re.escape("dagster_code_locations[1] ('b').") + re.escape(field) + ": "
    assert re.match(pattern, message), f"expected a message about {field!r}, got {message!r}"


@pytest.mark.parametrize(("entry", "field"), list(IMAGE_ERRORS.values()), ids=list(IMAGE_ERRORS))
def test_bad_image_settings_are_rejected_naming_index_name_and_field(filter_error, entry, field):
    _assert_location_field(filter_error(workspace, [DEPLOYED, entry], addresses=ADDRESSES), field)
    _assert_location_field(filter_error(servers, [DEPLOYED, entry], "code1", ADDRESSES), field)
    # The list is checked as a whole: a host that does not run the entry rejects it too.
    _assert_location_field(filter_error(servers, [DEPLOYED, entry], "code2", ADDRESSES), field)


def test_image_and_image_build_together_name_both():
    with pytest.raises(AnsibleFilterError, match=r"^dagster_code_locations\[0\] \('etl'\)\.image: .*image_build"):
        workspace([{**DEPLOYED, "image": "etl:1", "image_build": BUILD}], addresses=ADDRESSES)


def test_an_image_build_without_a_source_asks_for_one():
    with pytest.raises(
        AnsibleFilterError, match=r"^dagster_code_locations\[0\] \('etl'\)\.image_build: needs a source"
    ):
        servers([_without({**DEPLOYED, "image_build": BUILD}, "source")], "code1", ADDRESSES)


def test_an_unknown_image_build_key_lists_the_allowed_ones():
    with pytest.raises(AnsibleFilterError, match=r"\.image_build\.tag: .*\(allowed: base, name\)"):
        workspace([{**DEPLOYED, "image_build": {**BUILD, "tag": "1"}}], addresses=ADDRESSES)


@pytest.mark.parametrize(
    ("key", "value"), [("image", "etl:1"), ("image_build", BUILD)], ids=["image", "image-build"]
)
def test_image_keys_need_deploy_to(key, value):
    with pytest.raises(AnsibleFilterError, match=rf"^dagster_code_locations\[0\] \('vendor'\)\.{key}: .*need deploy_to"):
        workspace([{**EXTERNAL, key: value}])


@pytest.mark.parametrize(
    "location",
    [
        {"name": "m", "type": "module", "module": "m", "image": "etl:1"},
        {"name": "f", "type": "file", "file": "/srv/defs.py", "image_build": BUILD},
    ],
    ids=["module", "file"],
)
def test_image_keys_are_not_keys_of_python_locations(filter_error, location):
    key = "image" if "image" in location else "image_build"
    assert filter_error(workspace, [location]).startswith(f"dagster_code_locations[0] ({location['name']!r}).{key}:")


# ================================================================ dagster_deployment

LOCATIONS = [{"name": "etl", "type": "grpc", "port": 4000, "deploy_to": "code1", "module": "etl"}]
DOCKER_OVER_TCP = {"dagster_run_launcher": "docker", "dagster_postgres_host": "db1.example.net"}


@pytest.mark.parametrize(
    "socket",
    [None, "/run/postgresql", "/var/run/postgresql", "/tmp"],
    ids=["unset-is-the-default-socket", "default-socket", "var-run", "tmp"],
)
def test_docker_with_a_socket_database_is_rejected_naming_the_host(filter_error, assert_field, socket):
    variables = {"dagster_run_launcher": "docker"}
    if socket is not None:
        variables["dagster_postgres_host"] = socket
    message = filter_error(deployment, {"web1": variables}, {"dagster_instance": ["web1"]})
    assert_field(message, "dagster_run_launcher")
    assert "docker on web1" in message
    assert f"database at {socket or '/run/postgresql'} (the host's own socket or loopback);" in message
    assert "dagster_postgres_host" in message


@pytest.mark.parametrize("server", ["localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]"])
def test_docker_with_a_loopback_database_is_rejected(filter_error, assert_field, server):
    variables = {"dagster_run_launcher": "docker", "dagster_postgres_host": server}
    message = filter_error(deployment, {"web1": variables}, {"dagster_instance": ["web1"]})
    assert_field(message, "dagster_run_launcher")
    assert f"database at {server} " in message


def test_the_socket_rejection_reads_field_first():
    with pytest.raises(AnsibleFilterError, match=r"^dagster_run_launcher: docker on web1 .*/run/postgresql"):
        deployment({"web1": {"dagster_run_launcher": "docker"}}, {"dagster_instance": ["web1"]})


@pytest.mark.parametrize("server", ["db1.example.net", "10.0.0.5", "fd00::5"])
def test_docker_with_a_tcp_database_passes(server):
    hostvars = {"web1": {"dagster_run_launcher": "docker", "dagster_postgres_host": server}}
    assert deployment(hostvars, {"dagster_instance": ["web1"]}) == {f"{server}:5432/dagster": "web1"}


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"dagster_run_launcher": "default"},
        {"dagster_run_launcher": "default", "dagster_postgres_host": "/var/run/postgresql"},
    ],
    ids=["all-defaults", "default-launcher", "default-launcher-other-socket"],
)
def test_the_default_launcher_with_a_socket_passes(variables):
    result = deployment({"aio": variables}, {"dagster_instance": ["aio"]})
    assert list(result.values()) == ["aio"]
    assert list(result)[0].startswith("aio:/")


def test_only_the_instance_host_with_the_socket_is_named(filter_error):
    hostvars = {
        "web1": {**DOCKER_OVER_TCP, "dagster_code_locations": LOCATIONS},
        "web2": {"dagster_run_launcher": "docker", "dagster_code_locations": LOCATIONS},
        "web3": {"dagster_code_locations": LOCATIONS},
        "code1": {"dagster_code_locations": LOCATIONS},
    }
    groups = {"dagster_instance": ["web1", "web2", "web3"], "dagster_code_locations": ["code1"]}
    message = filter_error(deployment, hostvars, groups)
    assert message.startswith("dagster_run_launcher: docker on web2 "), message
    assert "web1" not in message and "web3" not in message


def test_hosts_outside_the_instance_group_are_not_checked():
    hostvars = {
        "web1": {**DOCKER_OVER_TCP, "dagster_code_locations": LOCATIONS},
        "code1": {"dagster_run_launcher": "docker", "dagster_code_locations": LOCATIONS},
    }
    groups = {"dagster_instance": ["web1"], "dagster_code_locations": ["code1"]}
    assert deployment(hostvars, groups) == {"db1.example.net:5432/dagster": "web1"}



@pytest.mark.parametrize(
    ("docker", "field"),
    [
        ({"auto_remove": True}, "dagster_docker_launcher.auto_remove"),
        ({"env_vars": ["FOO\n"]}, "dagster_docker_launcher.env_vars"),
        ({"container_kwargs": {"environment": {}}}, "dagster_docker_launcher.container_kwargs.environment"),
        ({1: "x", "image": "etl:1"}, "dagster_docker_launcher.1"),
    ],
)
def test_docker_settings_are_checked_with_the_default_launcher_too(filter_error, assert_field, docker, field):
    message = filter_error(run_launcher_section, {"run_launcher": "default", "docker": docker})
    assert_field(message, field)
