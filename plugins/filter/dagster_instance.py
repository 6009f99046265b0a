"""Turn the dagster role's settings into Dagster's dagster.yaml."""

from __future__ import annotations

import copy
import posixpath
import re

DOCUMENTATION = r"""
name: dagster_instance
author: dagsterops maintainers
version_added: "0.1.0"
short_description: Build a Dagster instance configuration (dagster.yaml)
description:
  - Takes the settings the C(dagster) role collects from its variables and
    returns the mapping that dagster.yaml holds.
  - Run retries carry C(enabled), so a positive C(max_retries) really retries.
  - Tick retention covers every tick status of schedules and sensors.
  - The C(docker) run launcher section is checked against the keys of
    dagster-docker's DockerRunLauncher, and a registry password is read from
    C(DAGSTER_DOCKER_REGISTRY_PASSWORD) in the services' environment, so no
    secret is written into dagster.yaml.
  - Run containers get no secret in their environment, which C(docker inspect)
    shows. With PostgreSQL over TCP, C(docker_run_files) names the host's
    pgpass file and CA certificate, mounted read-only into each container
    (C(PGPASSFILE) and the C(sslrootcert) path), and the password variable is
    set empty there, so libpq reads the password from the file.
  - With the docker launcher every code location must be a C(grpc) one, since
    a module or file location runs its code inside the webserver and the
    daemon, which hold the Docker socket.
  - C(extra_config) is deep-merged last. Keys that would contradict what the
    role writes (a second storage backend, a second run-queue configuration)
    are an error rather than a silently broken instance. With O(writable),
    the directories it gives C(local_artifact_storage) and C(compute_logs)
    (C(base_dir), C(local_dir)) must lie in one of those directories.
  - The database and user names are written into a connection URL and keep
    to letters, digits, C(_), C(.) and C(-).
options:
  _input:
    description: The settings; see the C(dagster) role's C(vars/main.yml) for the shape.
    type: dict
    required: true
  writable:
    description: The directories the services may write in; null skips the check of C(extra_config)'s directories.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Write dagster.yaml
  ansible.builtin.copy:
    content: "{{ _dagster_instance_settings | dagsterops.dagster.dagster_instance | to_nice_yaml }}"
    dest: /var/lib/dagster/dagster.yaml
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The dagster.yaml mapping.
  type: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

RUN_COORDINATORS = ("default", "queued")
RUN_LAUNCHERS = ("default", "docker")

# dagster.yaml keys that name a storage backend besides `storage`.
_SPLIT_STORAGE_KEYS = ("run_storage", "event_log_storage", "schedule_storage")

# Keys of the DockerRunLauncher's config, as dagster-docker 0.29.27 defines
# them (DOCKER_CONFIG_SCHEMA); auto_remove, mem_limit, labels and the rest of
# docker-py's containers.create() arguments go in container_kwargs.
DOCKER_LAUNCHER_KEYS = ("image", "registry", "env_vars", "network", "networks", "container_kwargs")
# container_kwargs that dagster-docker sets itself and refuses.
DOCKER_KWARGS_REFUSED = {"image": "image", "environment": "env_vars", "network": "network or networks"}
# The registry password goes into the services' environment file, never into dagster.yaml.
DOCKER_REGISTRY_PASSWORD_ENV = "DAGSTER_DOCKER_REGISTRY_PASSWORD"
# Where a run container finds the pgpass file it is given (read-only), and the
# variable that tells libpq so.
DOCKER_PGPASS_PATH = "/run/dagster/pgpass"
PGPASSFILE_ENV = "PGPASSFILE"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_URL_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\Z")
# Sections of dagster.yaml that name a directory Dagster writes in, and the keys holding it.
_DIRECTORY_SECTIONS = ("local_artifact_storage", "compute_logs")
_DIRECTORY_KEYS = ("base_dir", "local_dir")


def _fail(field, problem):
    raise AnsibleFilterError(f"{field}: {problem}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int(settings, key, field, minimum=0):
    value = settings.get(key)
    if not _is_int(value) or value < minimum:
        _fail(field, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _bool(settings, key, field):
    value = settings.get(key)
    if not isinstance(value, bool):
        _fail(field, f"must be true or false, got {value!r}")
    return value


# Where the role writes a key from one of its variables: extra_config may add
# to these sections, but a different value for such a key is an error that
# names the variable to set instead.
OWNED_BY_VARIABLE = {
    "run_coordinator": "dagster_run_coordinator",
    "run_coordinator.config.max_concurrent_runs": "dagster_max_concurrent_runs",
    "run_coordinator.config.dequeue_interval_seconds": "dagster_dequeue_interval_seconds",
    "run_coordinator.config.tag_concurrency_limits": "dagster_tag_concurrency_limits",
    "run_launcher": "dagster_run_launcher",
    "run_launcher.config": "dagster_docker_launcher",
    "run_retries": "dagster_run_retries_max_retries",
    "run_retries.retry_on_asset_or_op_failure": "dagster_run_retries_retry_on_asset_or_op_failure",
    "run_monitoring": "dagster_run_monitoring_*",
    "retention": "dagster_retention_days",
    "telemetry": "dagster_telemetry_enabled",
    "nux": "dagster_nux_enabled",
}


def _owner(path):
    while path:
        if path in OWNED_BY_VARIABLE:
            return OWNED_BY_VARIABLE[path]
        path = path.rpartition(".")[0]
    return "the role's variables"


def deep_merge(base, override, path=""):
    """Return base with override merged in, key by key.

    A key of base that override would change to another value is an error:
    extra configuration adds to what the role writes, it does not contradict it.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = deep_merge(merged[key], value, where)
        elif value != merged[key]:
            _fail(
                f"dagster_extra_config.{where}",
                f"would change {merged[key]!r} to {value!r}, a value the role writes from {_owner(where)}; "
                "set that variable instead",
            )
    return merged


# dagster-postgres ships psycopg2, while SQLAlchemy 2.1 maps a bare
# postgresql:// URL to psycopg 3: name the driver.
POSTGRES_SCHEME = "postgresql+psycopg2"


def storage_section(postgres):
    """The `storage` section for PostgreSQL over a Unix socket (peer) or TCP (password from the environment)."""
    field = "dagster_postgres"
    if not isinstance(postgres, dict):
        _fail(field, f"must be a map, got {type(postgres).__name__}")
    for key in ("host", "database", "user"):
        value = postgres.get(key)
        if not isinstance(value, str) or not value:
            _fail(f"{field}_{key}", f"must be a non-empty string, got {value!r}")
    port = postgres.get("port", 5432)
    if not _is_int(port) or not 1 <= port <= 65535:
        _fail(f"{field}_port", f"must be an integer from 1 to 65535, got {port!r}")
    host = postgres["host"]
    for key in ("database", "user"):
        if not _URL_SAFE.match(postgres[key]):
            _fail(
                f"{field}_{key}",
                f"{postgres[key]!r} must be letters, digits, '_', '.' and '-' (it is written into the "
                "connection URL, where '@', '/', '?' or ':' would change its meaning)",
            )
    if host.startswith("/"):
        # Dagster's structured form mangles a socket path, so a peer connection uses the URL form.
        url = f"{POSTGRES_SCHEME}://{postgres['user']}@/{postgres['database']}?host={host}"
        if port != 5432:
            url += f"&port={port}"
        return {"postgres": {"postgres_url": url}}
    password_env = postgres.get("password_env")
    if not isinstance(password_env, str) or not password_env:
        _fail(
            f"{field}_password_env",
            "must name the environment variable holding the password when PostgreSQL is reached over TCP",
        )
    db = {
        "username": postgres["user"],
        "password": {"env": password_env},
        "hostname": host,
        "db_name": postgres["database"],
        "port": port,
        "scheme": POSTGRES_SCHEME,
    }
    params = postgres.get("params") or {}
    if not isinstance(params, dict):
        _fail(f"{field}_params", f"must be a map, got {type(params).__name__}")
    if params:
        db["params"] = dict(params)
    return {"postgres": {"postgres_db": db}}


def run_coordinator_section(settings):
    kind = settings.get("run_coordinator")
    if kind not in RUN_COORDINATORS:
        _fail("dagster_run_coordinator", f"must be one of {', '.join(RUN_COORDINATORS)}, got {kind!r}")
    limits = settings.get("tag_concurrency_limits") or []
    if not isinstance(limits, list):
        _fail("dagster_tag_concurrency_limits", f"must be a list, got {type(limits).__name__}")
    if kind == "default":
        if limits:
            _fail("dagster_tag_concurrency_limits", "only applies with dagster_run_coordinator: queued")
        return {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}
    for index, limit in enumerate(limits):
        where = f"dagster_tag_concurrency_limits[{index}]"
        if not isinstance(limit, dict):
            _fail(where, f"must be a map with key and limit, got {type(limit).__name__}")
        unknown = sorted(set(limit) - {"key", "value", "limit"})
        if unknown:
            _fail(f"{where}.{unknown[0]}", "is not a key of a tag concurrency limit (key, value, limit)")
        if not isinstance(limit.get("key"), str) or not limit["key"]:
            _fail(f"{where}.key", f"must be a non-empty string, got {limit.get('key')!r}")
        _int(limit, "limit", f"{where}.limit")
        value = limit.get("value")
        if value is not None and not isinstance(value, str) and value != {"applyLimitPerUniqueValue": True}:
            _fail(f"{where}.value", "must be a string or {applyLimitPerUniqueValue: true}")
    config = {
        "max_concurrent_runs": _int(settings, "max_concurrent_runs", "dagster_max_concurrent_runs", minimum=-1),
        "dequeue_interval_seconds": _int(
            settings, "dequeue_interval_seconds", "dagster_dequeue_interval_seconds", minimum=1
        ),
    }
    if limits:
        config["tag_concurrency_limits"] = [dict(limit) for limit in limits]
    return {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": config}


def _check_code_locations(settings):
    """The docker launcher's webserver and daemon hold the Docker socket: they may load no user code."""
    locations = settings.get("code_locations") or []
    if not isinstance(locations, list):
        _fail("dagster_code_locations", f"must be a list, got {type(locations).__name__}")
    for index, location in enumerate(locations):
        kind = location.get("type") if isinstance(location, dict) else None
        if kind in ("module", "file"):
            _fail(
                f"dagster_code_locations[{index}].type",
                f"{kind} runs the code of {location.get('name')!r} inside dagster-webserver and dagster-daemon, "
                "which hold the Docker socket (root on the host) with dagster_run_launcher: docker; "
                "deploy it as a grpc location (a code server of its own, without the socket)",
            )
    if settings.get("example_location") is True:
        _fail(
            "dagster_example_location",
            "the example is a module location, loaded inside dagster-webserver and dagster-daemon, which hold "
            "the Docker socket with dagster_run_launcher: docker; set it false and deploy code as grpc locations",
        )


def _run_files(settings):
    """The files run containers mount read-only: {pgpass, ca_cert}, empty over the local socket."""
    files = settings.get("docker_run_files") or {}
    if not isinstance(files, dict):
        _fail("docker_run_files", f"must be a map, got {type(files).__name__}")
    for key, path in files.items():
        if key not in ("pgpass", "ca_cert") or not isinstance(path, str) or not path.startswith("/"):
            _fail(f"docker_run_files.{key}", f"must be pgpass or ca_cert with an absolute path, got {path!r}")
    if files and "pgpass" not in files:
        _fail("docker_run_files.pgpass", "is needed with the other run files")
    return files


def _volumes(kwargs):
    volumes = kwargs.get("volumes", [])
    if not isinstance(volumes, list) or not all(isinstance(v, str) and ":" in v for v in volumes):
        _fail(
            "dagster_docker_launcher.container_kwargs.volumes",
            f"must be a list of 'HOST_PATH:CONTAINER_PATH[:MODE]' strings, got {volumes!r}",
        )
    return volumes


def run_launcher_section(settings):
    kind = settings.get("run_launcher")
    if kind not in RUN_LAUNCHERS:
        _fail("dagster_run_launcher", f"must be one of {', '.join(RUN_LAUNCHERS)}, got {kind!r}")
    # Checked with either launcher, so that a mistake shows before the switch to docker.
    docker = settings.get("docker") or {}
    if not isinstance(docker, dict):
        _fail("dagster_docker_launcher", f"must be a map, got {type(docker).__name__}")
    unknown = sorted(map(str, set(docker) - set(DOCKER_LAUNCHER_KEYS)))
    if unknown:
        hint = " (container options such as auto_remove go in container_kwargs)" if unknown[0] != "auto_remove" else (
            ": auto_remove is a container option, set container_kwargs.auto_remove"
        )
        _fail(
            f"dagster_docker_launcher.{unknown[0]}",
            f"is not a DockerRunLauncher setting (allowed: {', '.join(DOCKER_LAUNCHER_KEYS)}){hint}",
        )
    config = copy.deepcopy(docker)
    for key in ("image", "network"):
        if key in config and (not isinstance(config[key], str) or not config[key].strip()):
            _fail(f"dagster_docker_launcher.{key}", f"must be a non-empty string, got {config[key]!r}")
    if "network" in config and "networks" in config:
        _fail("dagster_docker_launcher.network", "set either network or networks, not both")
    networks = config.get("networks", [])
    if not isinstance(networks, list) or not all(isinstance(n, str) and n.strip() for n in networks):
        _fail("dagster_docker_launcher.networks", f"must be a list of network names, got {networks!r}")
    env_vars = config.get("env_vars", [])
    if not isinstance(env_vars, list) or not all(isinstance(item, str) for item in env_vars):
        _fail("dagster_docker_launcher.env_vars", "must be a list of variable names (NAME or NAME=value)")
    for item in env_vars:
        if not _ENV_NAME.match(item.partition("=")[0]):
            _fail("dagster_docker_launcher.env_vars", f"{item!r} does not start with a variable name")
    # The database password never travels in a container's environment (docker inspect shows it).
    password_env = (settings.get("postgres") or {}).get("password_env") or "DAGSTER_PG_PASSWORD"
    for item in env_vars:
        name = item.partition("=")[0]
        if name in (password_env, PGPASSFILE_ENV):
            _fail(
                "dagster_docker_launcher.env_vars",
                f"{name} is set by the role: run containers read the database password from a read-only "
                "pgpass file, never from their environment, which docker inspect shows",
            )
    kwargs = config.get("container_kwargs", {})
    if not isinstance(kwargs, dict):
        _fail("dagster_docker_launcher.container_kwargs", f"must be a map, got {type(kwargs).__name__}")
    for key, instead in DOCKER_KWARGS_REFUSED.items():
        if key in kwargs:
            _fail(f"dagster_docker_launcher.container_kwargs.{key}", f"is set by the launcher; use {instead} instead")
    volumes = _volumes(kwargs)
    registry = config.get("registry")
    if registry is not None:
        if not isinstance(registry, dict) or sorted(map(str, registry)) != ["password", "url", "username"]:
            _fail("dagster_docker_launcher.registry", "must be a map of url, username and password")
        for key in ("url", "username", "password"):
            if not isinstance(registry[key], str) or not registry[key]:
                _fail(f"dagster_docker_launcher.registry.{key}", "must be a non-empty string")
        config["registry"] = dict(registry, password={"env": DOCKER_REGISTRY_PASSWORD_ENV})
    files = _run_files(settings)
    if kind == "default":
        return {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    _check_code_locations(settings)
    if files:
        # The run reads dagster.yaml's {env: password_env}, empty here, so libpq
        # reads PGPASSFILE; the CA certificate sits where sslrootcert names it.
        mounts = [(files["pgpass"], DOCKER_PGPASS_PATH)]
        root_cert = ((settings.get("postgres") or {}).get("params") or {}).get("sslrootcert")
        if root_cert and "ca_cert" in files:
            mounts.append((files["ca_cert"], root_cert))
        for source, target in mounts:
            taken = [v for v in volumes if v.split(":")[1] == target]
            if taken:
                _fail(
                    "dagster_docker_launcher.container_kwargs.volumes",
                    f"{taken[0]!r} mounts over {target}, where the role mounts {source}",
                )
        kwargs = dict(kwargs, volumes=volumes + [f"{source}:{target}:ro" for source, target in mounts])
        config["container_kwargs"] = kwargs
        env_vars = env_vars + [f"{password_env}=", f"{PGPASSFILE_ENV}={DOCKER_PGPASS_PATH}"]
    if env_vars:
        config["env_vars"] = env_vars
    section = {"module": "dagster_docker", "class": "DockerRunLauncher"}
    if config:
        section["config"] = config
    return section


def _pgpass_field(value):
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def dagster_docker_pgpass(postgres, password):
    """The pgpass line run containers read the database password from (host:port:database:user:password)."""
    if not isinstance(postgres, dict) or any(not postgres.get(key) for key in ("host", "port", "database", "user")):
        _fail("dagster_postgres", "needs host, port, database and user for the run containers' pgpass file")
    if not isinstance(password, str) or not password or "\n" in password:
        _fail("dagster_postgres_password", "must be a non-empty single-line string for the run containers' pgpass file")
    fields = [postgres["host"], postgres["port"], postgres["database"], postgres["user"], password]
    return ":".join(_pgpass_field(field) for field in fields) + "\n"


def run_retries_section(settings):
    retries = settings.get("run_retries") or {}
    max_retries = _int(retries, "max_retries", "dagster_run_retries_max_retries")
    on_failure = _bool(
        retries, "retry_on_asset_or_op_failure", "dagster_run_retries_retry_on_asset_or_op_failure"
    )
    return {"enabled": max_retries > 0, "max_retries": max_retries, "retry_on_asset_or_op_failure": on_failure}


def run_monitoring_section(settings):
    monitoring = settings.get("run_monitoring") or {}
    prefix = "dagster_run_monitoring_"
    section = {
        "enabled": _bool(monitoring, "enabled", prefix + "enabled"),
        "poll_interval_seconds": _int(monitoring, "poll_interval", prefix + "poll_interval", minimum=1),
        "start_timeout_seconds": _int(monitoring, "start_timeout", prefix + "start_timeout", minimum=1),
        "cancel_timeout_seconds": _int(monitoring, "cancel_timeout", prefix + "cancel_timeout", minimum=1),
        "max_resume_run_attempts": _int(monitoring, "max_resume_run_attempts", prefix + "max_resume_run_attempts"),
    }
    max_runtime = _int(monitoring, "max_runtime", prefix + "max_runtime")
    if max_runtime:
        section["max_runtime_seconds"] = max_runtime
    return section


def retention_section(settings):
    days = settings.get("retention_days")
    if not _is_int(days) or days < 0:
        _fail("dagster_retention_days", f"must be an integer >= 0 (0 keeps ticks forever), got {days!r}")
    keep = days if days > 0 else -1
    return {kind: {"purge_after_days": keep} for kind in ("schedule", "sensor", "auto_materialize")}


def check_conflicts(extra):
    """Reject extra_config keys that contradict what the role writes."""
    field = "dagster_extra_config"
    if not isinstance(extra, dict):
        _fail(field, f"must be a map, got {type(extra).__name__}")
    for key in _SPLIT_STORAGE_KEYS:
        if key in extra:
            _fail(f"{field}.{key}", "conflicts with the PostgreSQL `storage` the role writes; dagster.yaml takes one")
    if "storage" in extra:
        _fail(f"{field}.storage", "is set by the role from dagster_postgres_*; change those variables instead")
    if "run_queue" in extra:
        _fail(f"{field}.run_queue", "conflicts with run_coordinator; use dagster_run_coordinator and its variables")
    runs = (extra.get("concurrency") or {}).get("runs") if isinstance(extra.get("concurrency"), dict) else None
    if runs:
        _fail(
            f"{field}.concurrency.runs",
            "conflicts with the run coordinator's limits; use dagster_max_concurrent_runs and "
            "dagster_tag_concurrency_limits",
        )


def check_directories(extra, writable):
    """Directories extra_config has Dagster write in must lie in the services' writable directories."""
    field = "dagster_extra_config"
    for section in _DIRECTORY_SECTIONS:
        value = extra.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            _fail(f"{field}.{section}", f"must be a map, got {type(value).__name__}")
        config = value.get("config") or {}
        if not isinstance(config, dict):
            _fail(f"{field}.{section}.config", f"must be a map, got {type(config).__name__}")
        for key in _DIRECTORY_KEYS:
            if key not in config:
                continue
            path = config[key]
            where = f"{field}.{section}.config.{key}"
            if not isinstance(path, str):
                _fail(where, f"must be a directory path, got {path!r}")
            normal = posixpath.normpath(path)
            if not path.startswith("/") or normal != path.rstrip("/") or not any(
                normal == allowed or normal.startswith(allowed.rstrip("/") + "/") for allowed in writable
            ):
                _fail(
                    where,
                    f"{path!r} is outside the directories the services may write ({', '.join(writable)}); "
                    "Dagster would fail to write there, or write where root manages files",
                )


def dagster_instance(settings, writable=None):
    """Return the dagster.yaml mapping for the role's settings."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError(f"dagster_instance: expected a map of settings, got {type(settings).__name__}")
    extra = settings.get("extra_config") or {}
    check_conflicts(extra)
    if writable is not None:
        if not isinstance(writable, list) or not all(isinstance(p, str) and p.startswith("/") for p in writable):
            raise AnsibleFilterError(f"writable: must be a list of absolute paths, got {writable!r}")
        check_directories(extra, writable)
    instance = {
        "storage": storage_section(settings.get("postgres")),
        "run_coordinator": run_coordinator_section(settings),
        "run_launcher": run_launcher_section(settings),
        "run_retries": run_retries_section(settings),
        "run_monitoring": run_monitoring_section(settings),
        "retention": retention_section(settings),
        "telemetry": {"enabled": _bool(settings, "telemetry_enabled", "dagster_telemetry_enabled")},
        "nux": {"enabled": _bool(settings, "nux_enabled", "dagster_nux_enabled")},
    }
    return deep_merge(instance, extra)


def dagster_code_host_instance(postgres, storage_dir):
    """The dagster.yaml of a code host's lost run check: the instance's storage and run monitoring.

    The same `storage` section as the instance's dagster.yaml (storage_section); the run
    directories at the code host's storage directory, where the runs executing there
    write; no telemetry, which would write beside the file."""
    if not isinstance(storage_dir, str) or not storage_dir.startswith("/"):
        _fail("dagster_code_location_home", f"the storage directory must be an absolute path, got {storage_dir!r}")
    return {
        "storage": storage_section(postgres),
        "run_monitoring": {"enabled": True},
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": storage_dir},
        },
        "compute_logs": {
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": storage_dir},
        },
        "telemetry": {"enabled": False},
    }


# The dagster role's defaults of the variables that the dagster_code_location role
# reads from the instance hosts (roles/dagster/defaults/main.yml; a unit test holds
# the two equal), and the variable the services read the database password from.
INSTANCE_DEFAULTS = {
    "dagster_postgres_host": "/run/postgresql",
    "dagster_postgres_port": 5432,
    "dagster_postgres_database": "dagster",
    "dagster_postgres_user": "dagster",
    "dagster_postgres_params": {},
    "dagster_daemon_enabled": True,
    "dagster_run_coordinator": "queued",
    "dagster_run_launcher": "default",
    "dagster_run_monitoring_enabled": True,
    "dagster_run_monitoring_poll_interval": 120,
}
POSTGRES_PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
# Each lost run check is a Python process that imports Dagster, 2 to 3 s of CPU.
LOST_RUNS_MIN_PERIOD = 30


def _variable(variables, name):
    """An instance host's variable, the dagster role's default where unset."""
    if name in variables and variables[name] is not None:
        return variables[name]
    return INSTANCE_DEFAULTS[name]


def _variables(variables, field):
    if not hasattr(variables, "keys") or not hasattr(variables, "__getitem__"):
        _fail(field, f"must be a map of variables, got {type(variables).__name__}")
    return variables


def dagster_postgres_settings(variables, ca_file):
    """The instance's database settings, from an instance host's dagster_postgres_* variables.

    Over TCP the server is authenticated by the deployment's CA (ca_file) and SCRAM is
    bound to the TLS channel, unless dagster_postgres_params says otherwise; over the
    Unix socket (a host starting with /) peer authentication needs no parameter."""
    variables = _variables(variables, "dagster_postgres_settings")
    host = _variable(variables, "dagster_postgres_host")
    if not isinstance(host, str) or not host:
        _fail("dagster_postgres_host", f"must be a non-empty string, got {host!r}")
    params = _variable(variables, "dagster_postgres_params")
    if not isinstance(params, dict):
        _fail("dagster_postgres_params", f"must be a map, got {type(params).__name__}")
    if not isinstance(ca_file, str) or not ca_file.startswith("/"):
        _fail("ca_file", f"must be an absolute path, got {ca_file!r}")
    port = _variable(variables, "dagster_postgres_port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    tls = {} if host.startswith("/") else {"sslmode": "verify-full", "sslrootcert": ca_file, "channel_binding": "require"}
    return {
        "host": host,
        "port": port,
        "database": _variable(variables, "dagster_postgres_database"),
        "user": _variable(variables, "dagster_postgres_user"),
        "password_env": POSTGRES_PASSWORD_ENV,
        "params": {**tls, **params},
    }


# What an inventory in INI form gives as a boolean or an integer: a string.
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _flag(variables, name):
    value = _variable(variables, name)
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        value = value.lower() in _TRUE
    if not isinstance(value, bool):
        _fail(name, f"must be true or false, got {value!r}")
    return value


def _runs_in_workers(variables):
    """Whether an instance launches runs in worker processes (the default launcher) with run monitoring on."""
    return _variable(variables, "dagster_run_launcher") == "default" and _flag(variables, "dagster_run_monitoring_enabled")


def _poll_interval(variables):
    value = _variable(variables, "dagster_run_monitoring_poll_interval")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not _is_int(value) or value < 1:
        _fail("dagster_run_monitoring_poll_interval", f"must be a positive integer, got {value!r}")
    return value


def dagster_lost_run_check(instances, here=None, locations=(), enabled=True):
    """Which check of runs whose worker is gone runs on a host, and its period.

    instances: the variables of the instance hosts (the dagster_instance group).
    here: this host's own variables when it is an instance host, else None.
    locations: the names of the locations whose runs execute on this host.
    enabled: whether a code host may run its check (dagster_code_location_fail_lost_runs).

    On an instance host whose daemon launches every run (the daemon on, the queued
    coordinator) the check is the instance's: with the default launcher and run
    monitoring on, and some location here, it runs each poll interval. Elsewhere a
    host with code servers runs its own check, when every instance host launches
    runs in worker processes with run monitoring on, each shortest poll interval of
    them. Either period is at least 30 s.

    Returns {"check": "instance" | "code_host" | None, "period": seconds}."""
    if not isinstance(instances, (list, tuple)):
        _fail("instances", f"must be a list of the instance hosts' variables, got {type(instances).__name__}")
    instances = [_variables(variables, "instances") for variables in instances]
    if not isinstance(locations, (list, tuple)) or not all(isinstance(name, str) for name in locations):
        _fail("locations", f"must be a list of location names, got {locations!r}")
    if here is not None:
        here = _variables(here, "here")
        if _flag(here, "dagster_daemon_enabled") and _variable(here, "dagster_run_coordinator") == "queued":
            wanted = _runs_in_workers(here) and len(locations) > 0
            period = max(_poll_interval(here), LOST_RUNS_MIN_PERIOD)
            return {"check": "instance" if wanted else None, "period": period}
    wanted = (bool(enabled) and len(locations) > 0 and len(instances) > 0
              and all(_runs_in_workers(variables) for variables in instances))
    periods = [_poll_interval(variables) for variables in instances] or [INSTANCE_DEFAULTS["dagster_run_monitoring_poll_interval"]]
    return {"check": "code_host" if wanted else None, "period": max(min(periods), LOST_RUNS_MIN_PERIOD)}


class FilterModule:
    """Dagster instance filters."""

    def filters(self):
        return {
            "dagster_instance": dagster_instance,
            "dagster_docker_pgpass": dagster_docker_pgpass,
            "dagster_code_host_instance": dagster_code_host_instance,
            "dagster_postgres_settings": dagster_postgres_settings,
            "dagster_lost_run_check": dagster_lost_run_check,
        }
