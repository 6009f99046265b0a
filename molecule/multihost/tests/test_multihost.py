"""The multi-host deployment as a user checks it by hand: PostgreSQL on db,
the instance on instance, the code servers on code, on the scenario's own
network 10.213.47.0/24 (the Docker host is its gateway, .1)."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import struct
import time

import pytest
import testinfra
from dagster_checks import PROJECT as ROOT
from dagster_checks import (
    ARGV_SAMPLE_INTERVAL,
    ansible_playbook,
    frozen_packages,
    graphql,
    instance_config,
    journal,
    last_oneshot_run,
    launch_run,
    locations,
    locked_pins,
    materialized_text,
    pause_job_worker_pids,
    psql,
    python_version,
    run_messages,
    run_status,
    start_argv_sampler,
    start_held_run,
    stop_argv_sampler,
    wait_for,
    wait_for_run,
    wait_until_started,
)

DB, INSTANCE, CODE = "dagster-mh-db", "dagster-mh-instance", "dagster-mh-code"
DB_ADDRESS, INSTANCE_ADDRESS, CODE_ADDRESS, OUTSIDER_ADDRESS = (
    "10.213.47.10",
    "10.213.47.11",
    "10.213.47.12",
    "10.213.47.13",
)
PASSWORD_FILE = "/etc/dagster-postgresql/dagster.password"
LOCATIONS = {"example": 4000, "second": 4001, "third": 4002}
GIT_REPOSITORY = "/srv/git/example"


def unit(name):
    return f"dagster-code-location@{name}.service"


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host(f"docker://{DB}")


@pytest.fixture(scope="module")
def instance():
    return testinfra.get_host(f"docker://{INSTANCE}")


@pytest.fixture(scope="module")
def code():
    return testinfra.get_host(f"docker://{CODE}")


@pytest.fixture(scope="module")
def password(db):
    """The password the database host generated at the first converge."""
    secret = db.file(PASSWORD_FILE)
    assert secret.mode == 0o600 and secret.user == "root", (oct(secret.mode), secret.user)
    value = secret.content_string.strip()
    assert len(value) >= 32
    return value


def main_pid(host, name):
    return int(host.check_output(f"systemctl show -p MainPID --value {name}"))


def server_children(host, name):
    """PIDs of the `dagster api grpc` processes the code server loads the code in."""
    out = host.run(f"pgrep -f -- 'dagster api grpc .*--location-name {name}( |$)'").stdout
    return {int(pid) for pid in out.split()}


def health(code, name):
    port = LOCATIONS[name]
    return code.run(
        f"/opt/dagster/code-locations/{name}/venv/bin/dagster api grpc-health-check --host {CODE_ADDRESS} --port {port}"
    )


# --- units and layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "name"),
    [
        ("db", "postgresql.service"),
        ("instance", "dagster-webserver.service"),
        ("instance", "dagster-daemon.service"),
        ("code", unit("example")),
        ("code", unit("second")),
        ("code", unit("third")),
    ],
)
def test_unit_active_and_enabled(request, which, name):
    host = request.getfixturevalue(which)
    service = host.service(name)
    assert service.is_running, journal(host, name)
    assert service.is_enabled


def test_each_host_runs_only_its_part(db, instance, code):
    assert not db.exists("/opt/dagster") and not db.service("dagster-webserver.service").is_running
    assert not instance.service("postgresql.service").is_running
    assert not code.service("dagster-webserver.service").is_running
    assert not code.service("postgresql.service").is_running


def test_code_servers_listen_only_on_the_address_the_instance_uses(code):
    listening = code.socket.get_listening_sockets()
    for port in LOCATIONS.values():
        bound = [s for s in listening if s.endswith(f":{port}")]
        assert bound == [f"tcp://{CODE_ADDRESS}:{port}"], bound


def test_workspace_names_the_code_host_once_written_on_it(instance):
    import yaml

    # dagster_code_location_address is the code host's name; the servers bind what it resolves to there.
    workspace = yaml.safe_load(instance.file("/var/lib/dagster/workspace.yaml").content_string)
    assert workspace == {
        "load_from": [
            {"grpc_server": {"host": CODE, "port": 4000, "location_name": "example"}},
            {"grpc_server": {"host": CODE, "port": 4001, "location_name": "second"}},
            {"grpc_server": {"host": CODE, "port": 4002, "location_name": "third"}},
        ]
    }


def test_instance_starts_after_nothing_remote(instance):
    # Local code-location units are ordered before the instance; here none are local.
    after = instance.check_output("systemctl show -p After --value dagster-webserver.service")
    assert "dagster-code-location@" not in after


def test_per_location_sandbox_switch(code):
    def mdwe(name):
        return code.check_output(f"systemctl show -p MemoryDenyWriteExecute --value {unit(name)}").strip()

    assert mdwe("example") == "yes"
    assert mdwe("second") == "no"


@pytest.mark.parametrize("name", list(LOCATIONS))
def test_code_server_exposure(code, name):
    out = code.check_output(f"systemd-analyze security --no-pager {unit(name)} | tail -n 1")
    score = float(re.search(r"exposure level for \S+: (\d+\.\d+)", out).group(1))
    print(f"{unit(name)}: {out.strip()}")
    assert score <= 3.5, out


# --- code sources ---------------------------------------------------------------------------------


def test_directory_source_is_a_copy_of_the_controllers_directory(code):
    copied = code.file("/opt/dagster/code-locations/example/src/__init__.py").content_string
    assert copied == (ROOT / "roles/dagster/files/dagster_example/__init__.py").read_text()


def test_git_source_is_a_checkout_of_the_branch(code):
    head = code.check_output(f"git -C {GIT_REPOSITORY} rev-parse main")
    checkout = "/opt/dagster/code-locations/second/src"
    assert code.check_output(f"git -C {checkout} rev-parse HEAD") == head
    assert code.file(checkout).user == "root"
    exec_start = code.check_output(f"systemctl show -p ExecStart --value {unit('second')}")
    assert f"--python-file {checkout}/__init__.py" in exec_start, exec_start


def test_pip_source_is_installed_into_the_locations_environment(code):
    python = "/opt/dagster/code-locations/third/venv/bin/python"
    out = code.check_output(
        f"{python} -c 'import dagster_example_pkg, importlib.metadata as m; "
        "print(dagster_example_pkg.__file__, m.version(\"dagster-example-pkg\"))'"
    )
    path, version = out.split()
    assert path.startswith("/opt/dagster/code-locations/third/venv/lib/"), path
    assert version == "1.0.0"
    assert not code.exists("/opt/dagster/code-locations/third/src")
    exec_start = code.check_output(f"systemctl show -p ExecStart --value {unit('third')}")
    assert "--module-name dagster_example_pkg" in exec_start, exec_start


# --- locked environments ------------------------------------------------------------------------

COLLECTION_LOCK = ROOT / "roles/dagster/files/locks/dagster-1.13.27-default.txt"
SECOND_LOCK = ROOT / "molecule/multihost/files/second.lock"


def _venv_python(name):
    return f"/opt/dagster/code-locations/{name}/venv/bin/python"


@pytest.mark.parametrize(("name", "lock"), [("example", COLLECTION_LOCK), ("second", SECOND_LOCK)])
def test_a_location_environment_is_exactly_its_lock(code, name, lock):
    installed = frozen_packages(code, _venv_python(name))
    expected = locked_pins(lock, python_version(code, _venv_python(name)))
    assert installed == expected, installed ^ expected


def test_a_pip_source_is_installed_within_the_lock(code):
    installed = frozen_packages(code, _venv_python("third"))
    expected = locked_pins(COLLECTION_LOCK, python_version(code, _venv_python("third")))
    # The bundle at the lock's versions, and the location's own package on top.
    assert installed - expected == {"dagster-example-pkg @ file:///srv/pkgs/dagster-example-pkg"}, installed ^ expected


# A soak: two three-host converges; CI checks a tampered lock in default (the instance's environment).
@pytest.mark.soak
def test_a_tampered_hash_in_a_location_lock_stops_its_install(code, tmp_path):
    # The scenario's lock with one more package (humanize, not installed), its hashes reversed.
    lines = (ROOT / "molecule/multihost/files/second-more.lock").read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("humanize=="))
    for i in range(start + 1, start + 3):
        digest = lines[i].split("sha256:")[1].strip(" \\\n")
        lines[i] = lines[i].replace(digest, digest[::-1])
    tampered = tmp_path / "tampered.lock"
    tampered.write_text("".join(lines))
    before = frozen_packages(code, _venv_python("second"))
    pid = main_pid(code, unit("second"))
    rc, output, _ = ansible_playbook(ROOT / "playbooks/site.yml", {"multihost_second_lock": str(tampered)},
                                     "--limit", f"{INSTANCE},{CODE}")
    assert rc != 0, output[-3000:]
    assert "hash" in output.lower() and "humanize" in output, output[-3000:]
    assert frozen_packages(code, _venv_python("second")) == before
    assert main_pid(code, unit("second")) == pid
    # The lock in place is the scenario's again at the next converge; nothing else moved.
    rc, output, _ = ansible_playbook(ROOT / "playbooks/site.yml", None, "--limit", f"{INSTANCE},{CODE}")
    assert rc == 0, output[-3000:]
    assert main_pid(code, unit("second")) == pid, "a converge back to the lock in place restarted the server"


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgresql_settings(db):
    assert psql(db, "SHOW password_encryption") == "scram-sha-256"
    assert psql(db, "SHOW listen_addresses") == DB_ADDRESS
    assert psql(db, "SHOW ssl") == "on"
    listening = [s for s in db.socket.get_listening_sockets() if s.endswith(":5432")]
    assert listening == [f"tcp://{DB_ADDRESS}:5432"], listening


def test_dagster_role(db):
    row = psql(db, "SELECT rolsuper, rolcanlogin, rolconnlimit, left(rolpassword, 14) FROM pg_authid WHERE rolname='dagster'")
    assert row == "f|t|40|SCRAM-SHA-256$", row


def test_pg_hba_lets_in_only_the_dagster_hosts(db):
    rules = psql(
        db,
        "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','), coalesce(address, ''), "
        "coalesce(netmask, ''), auth_method FROM pg_hba_file_rules WHERE error IS NULL",
    ).splitlines()
    assert not [r for r in rules if r.endswith("|trust")], rules
    assert not [r for r in rules if "|0.0.0.0|" in r or "|::|" in r], rules
    tcp = sorted(r for r in rules if r.split("|")[0].startswith("host") and r.split("|")[3] not in ("127.0.0.1", "::1"))
    assert tcp == [
        f"hostssl|dagster|dagster|{INSTANCE_ADDRESS}|255.255.255.255|scram-sha-256",
        f"hostssl|dagster|dagster|{CODE_ADDRESS}|255.255.255.255|scram-sha-256",
    ], tcp


# --- TLS: the server authenticated, SCRAM bound to the channel, every connection encrypted ------

CA_FILE = "/etc/dagster/postgresql-ca.crt"
CA_DIR = "/etc/dagster-postgresql"
SERVER_CERT = "/etc/ssl/dagster-postgresql/server.crt"
# What the Dagster hosts' clients use by default (dagster.yaml and the backup's libpq).
VERIFY = {"sslmode": "verify-full", "sslrootcert": CA_FILE, "channel_binding": "require"}
ENV_FILES = {"instance": "/etc/dagster/dagster.env", "code": "/etc/dagster/code-locations/example.env"}
PYTHONS = {"instance": "/opt/dagster/current/bin/python", "code": "/opt/dagster/code-locations/example/venv/bin/python"}

# Connects as Dagster does (psycopg2), with the password from the host's own 0640
# environment file, read inside the process: it appears on no command line. The
# connection parameters (no secret) come as JSON.
_CONNECT = r"""
import json, re, sys, psycopg2
text = open(sys.argv[1]).read()
password = json.loads(re.search(r'^DAGSTER_PG_PASSWORD=(.*)$', text, re.M).group(1))
try:
    with psycopg2.connect(dbname="dagster", user="dagster", password=password, **json.loads(sys.argv[2])) as conn:
        cur = conn.cursor()
        cur.execute("SELECT ssl, version, inet_client_addr() FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                    "WHERE pid = pg_backend_pid()")
        print("connected %s %s %s" % cur.fetchone())
except psycopg2.OperationalError as error:
    print("refused " + " ".join(str(error).split()))
"""


def _connect(client, which, **params):
    """Connect from the Dagster host `client` (fixture name `which`) with libpq's params; 'connected ...' or 'refused ...'."""
    import json

    script = base64.b64encode(_CONNECT.encode()).decode()
    return client.check_output(
        f"{PYTHONS[which]} -c \"import base64;exec(base64.b64decode('{script}'))\" {ENV_FILES[which]} "
        f"'{json.dumps(params)}'")


def test_clients_verify_the_server_by_default(instance):
    dagster_yaml = instance_config(instance)
    assert dagster_yaml["storage"]["postgres"]["postgres_db"]["params"] == VERIFY


def test_the_server_certificate_names_the_server(db):
    assert psql(db, "SHOW ssl_cert_file") == SERVER_CERT
    assert psql(db, "SHOW ssl_min_protocol_version") == "TLSv1.2"
    names = db.check_output(f"openssl x509 -in {SERVER_CERT} -noout -ext subjectAltName")
    for name in (f"DNS:{DB}", f"IP Address:{DB_ADDRESS}", "DNS:postgres.dagster.internal"):
        assert name in names, names
    issuer = db.check_output(f"openssl verify -CAfile {CA_DIR}/ca.crt {SERVER_CERT}")
    assert issuer.endswith(": OK"), issuer
    key = db.file("/etc/ssl/dagster-postgresql/server.key")
    assert (key.user, key.group, key.mode) == ("root", "postgres", 0o640)


def test_the_dagster_hosts_hold_the_ca_certificate(db, instance, code):
    ca = db.file(f"{CA_DIR}/ca.crt").content_string
    assert "BEGIN CERTIFICATE" in ca
    for host in (instance, code):
        copy = host.file(CA_FILE)
        assert copy.content_string == ca
        assert (copy.user, copy.mode) == ("root", 0o644)
        # The runs and the backup open it as the dagster user.
        assert host.run(f"sudo -u dagster test -r {CA_FILE}").rc == 0


def test_the_ca_key_stays_on_the_database_host_for_root_alone(db, instance, code):
    key = db.file(f"{CA_DIR}/ca.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert (db.file(CA_DIR).user, db.file(CA_DIR).mode) == ("root", 0o700)
    # A line of the key's body: in no file of the other hosts.
    needle = key.content_string.splitlines()[1]
    for host in (instance, code):
        found = host.run(f"grep -rlsF -e '{needle}' /etc /var /opt /root /home /srv /usr/local /tmp").stdout.split()
        assert found == [], found


# channel_binding=require: libpq refuses a server that authenticates the client
# any other way than SCRAM-SHA-256-PLUS, bound to this TLS channel.
@pytest.mark.parametrize("which", ["instance", "code"])
def test_dagster_hosts_connect_with_verify_full_and_channel_binding(request, which):
    out = _connect(request.getfixturevalue(which), which, host=DB, **VERIFY)
    address = INSTANCE_ADDRESS if which == "instance" else CODE_ADDRESS
    assert out.startswith("connected True TLSv1."), out
    assert out.endswith(address), out


def test_a_client_expecting_another_server_name_is_refused(instance):
    # The right server at its address, under a name its certificate lacks.
    wrong = _connect(instance, "instance", host="postgres.example.invalid", hostaddr=DB_ADDRESS, **VERIFY)
    assert wrong.startswith("refused"), wrong
    assert 'does not match host name "postgres.example.invalid"' in wrong, wrong
    # The names in the certificate pass, the address among them.
    for name in (DB, "postgres.dagster.internal", DB_ADDRESS):
        right = _connect(instance, "instance", host=name, hostaddr=DB_ADDRESS, **VERIFY)
        assert right.startswith("connected True"), (name, right)


def test_a_server_the_deployments_ca_did_not_issue_is_refused(instance):
    # The system's CA bundle does not vouch for the server.
    out = _connect(instance, "instance", host=DB, **(VERIFY | {"sslrootcert": "/etc/ssl/certs/ca-certificates.crt"}))
    assert out.startswith("refused"), out
    assert "certificate verify failed" in out, out


def test_a_connection_without_tls_is_refused(instance):
    out = _connect(instance, "instance", host=DB, sslmode="disable")
    assert out.startswith("refused"), out
    assert "no pg_hba.conf entry" in out and "no encryption" in out, out


# Sampled inside one session every 10 ms (the statistics snapshot cleared each
# time) until the run ends: Dagster opens a connection per operation.
_SAMPLE_SSL = """
CREATE TEMP TABLE seen (client_addr inet, ssl boolean);
DO $$
BEGIN
  FOR i IN 1..6000 LOOP
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO seen SELECT a.client_addr, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
      WHERE a.usename = 'dagster';
    EXIT WHEN EXISTS (SELECT 1 FROM runs WHERE run_id = '{run_id}' AND status IN ('SUCCESS', 'FAILURE', 'CANCELED'));
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SELECT coalesce(host(client_addr), 'local'), ssl, count(*) FROM seen GROUP BY 1, 2 ORDER BY 1, 2;
"""


def test_pg_stat_ssl_shows_every_dagster_connection_encrypted(db, instance, code):
    run_id = launch_run(instance, "example", "example_job")
    script = _SAMPLE_SSL.format(run_id=run_id)
    db.check_output(f"cat > /tmp/sample-ssl.sql <<'EOF'\n{script}\nEOF")
    rows = db.check_output("sudo -u postgres psql -X -q -d dagster -tA -F ' ' -f /tmp/sample-ssl.sql").splitlines()
    assert wait_for_run(instance, run_id)[0] == "SUCCESS"
    print("dagster connections seen in pg_stat_ssl during a run (client, ssl, samples): " + "; ".join(rows))
    # (client, ssl) pairs: a client with encrypted and unencrypted connections has both.
    seen = {tuple(row.split()[:2]) for row in rows}
    clients = {client for client, _ in seen}
    assert {INSTANCE_ADDRESS, CODE_ADDRESS} <= clients, rows
    assert {ssl for _, ssl in seen} == {"t"}, rows
    assert clients <= {INSTANCE_ADDRESS, CODE_ADDRESS}, rows


def test_the_server_log_shows_every_dagster_connection_encrypted(db):
    # log_connections and a log_line_prefix with the client (%h) are set by the scenario.
    log = db.check_output("cat /var/log/postgresql/postgresql-*-main.log")
    authorized = re.findall(r"\] (\S+) dagster@dagster LOG:  connection authorized: user=dagster (.*)", log)
    by_host = {}
    for host, rest in authorized:
        by_host.setdefault(host, []).append(rest)
    print("dagster connections logged: " + ", ".join(f"{host} {len(lines)}" for host, lines in by_host.items()))
    assert {INSTANCE_ADDRESS, CODE_ADDRESS} <= set(by_host), by_host.keys()
    assert set(by_host) <= {INSTANCE_ADDRESS, CODE_ADDRESS}, by_host.keys()
    plain = [line for lines in by_host.values() for line in lines if "SSL enabled (protocol=TLSv1." not in line]
    assert not plain, plain[:5]


def test_postgresql_refuses_another_address_of_the_network_even_with_the_password(db):
    # The database host itself, from its network address: not a Dagster host.
    script = (
        "import psycopg2\n"
        f"password = open('{PASSWORD_FILE}').read().strip()\n"
        "try:\n"
        f"    psycopg2.connect(host='{DB_ADDRESS}', dbname='dagster', user='dagster', password=password, sslmode='require')\n"
        "except psycopg2.OperationalError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('connected')\n"
    )
    out = db.check_output(f"python3 -c \"{script}\"")
    assert f'no pg_hba.conf entry for host "{DB_ADDRESS}"' in out, out


def _startup_over_tls(address, port=5432):
    """Speak PostgreSQL's protocol from this (the Docker) host: SSLRequest, then a startup message."""
    with socket.create_connection((address, port), timeout=10) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        assert raw.recv(1) == b"S", "the server offers no TLS"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            params = b"user\0dagster\0database\0dagster\0\0"
            tls.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            reply = tls.recv(4096)
    return reply


def test_postgresql_refuses_the_docker_host(db):
    # The firewall of the database host answers with a TCP reset: the server is never reached.
    with pytest.raises(ConnectionRefusedError):
        _startup_over_tls(DB_ADDRESS)


# --- the network: only the hosts that need a port reach it ----------------------------------------


OUTSIDER = "dagster-mh-outsider"
_CONNECT_TCP = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as error:
    print(f"no answer: {error}")
"""


def _tcp(host, address, port, timeout=5):
    script = base64.b64encode(_CONNECT_TCP.encode()).decode()
    return host.check_output(
        f"python3 -c \"import base64;exec(base64.b64decode('{script}'))\" {address} {port} {timeout}")


@pytest.fixture(scope="module")
def outsider():
    return testinfra.get_host(f"docker://{OUTSIDER}")


@pytest.mark.parametrize(("address", "port"), [(DB_ADDRESS, 5432)] + [(CODE_ADDRESS, p) for p in LOCATIONS.values()])
def test_a_neighbour_on_the_network_is_refused(outsider, address, port):
    assert _tcp(outsider, address, port) == "refused"


@pytest.mark.parametrize(("which", "address", "port"), [(INSTANCE, DB_ADDRESS, 5432), (CODE, DB_ADDRESS, 5432)]
                         + [(INSTANCE, CODE_ADDRESS, p) for p in LOCATIONS.values()])
def test_the_dagster_hosts_still_connect(which, address, port):
    assert _tcp(testinfra.get_host(f"docker://{which}"), address, port) == "connected"


@pytest.mark.parametrize(("which", "table", "clients"), [
    (DB, "dagsterops_postgresql", "ip saddr { 10.213.47.11-10.213.47.12 } accept"),
    (CODE, "dagsterops_code_locations", f"ip saddr {INSTANCE_ADDRESS} accept"),
])
def test_the_firewall_table_is_loaded_at_boot(which, table, clients):
    host = testinfra.get_host(f"docker://{which}")
    unit = "dagster-firewall-" + table.removeprefix("dagsterops_")
    service = host.service(f"{unit}.service")
    assert service.is_enabled and service.is_running
    # As nft prints it: neighbouring addresses merged into a range.
    ruleset = host.check_output(f"nft list table inet {table}")
    assert clients in ruleset, ruleset
    assert "reject with tcp reset" in ruleset, ruleset


def test_postgresql_filters_addresses_on_its_own(db, outsider):
    """Without the nftables table, PostgreSQL's unit still turns the neighbour away (its packets are dropped)."""
    cluster = db.check_output("systemctl list-units --plain --no-legend 'postgresql@*' | cut -d' ' -f1")
    allowed = db.check_output(f"systemctl show -p IPAddressAllow --value {cluster}")
    assert INSTANCE_ADDRESS in allowed and CODE_ADDRESS in allowed and OUTSIDER_ADDRESS not in allowed, allowed
    assert set(db.check_output(f"systemctl show -p IPAddressDeny --value {cluster}").split()) == {"0.0.0.0/0", "::/0"}
    db.check_output("systemctl stop dagster-firewall-postgresql.service")
    try:
        assert db.run("nft list table inet dagsterops_postgresql").rc != 0
        assert _tcp(outsider, DB_ADDRESS, 5432, timeout=3).startswith("no answer")
        assert _tcp(testinfra.get_host(f"docker://{INSTANCE}"), DB_ADDRESS, 5432) == "connected"
    finally:
        db.check_output("systemctl start dagster-firewall-postgresql.service")
    assert _tcp(outsider, DB_ADDRESS, 5432) == "refused"


# --- runs ---------------------------------------------------------------------------------------


def test_locations_load_on_the_instance(instance):
    entries = locations(instance)
    for name in LOCATIONS:
        location = entries[name]["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location


@pytest.mark.parametrize("name", list(LOCATIONS))
def test_run_executes_on_the_code_host_and_is_stored_on_the_db_host(db, instance, code, name):
    run_id = launch_run(instance, name, "example_job")
    status, seconds, seen = wait_for_run(instance, run_id)
    assert status == "SUCCESS", f"{seen}\n{journal(code, unit(name))}"
    assert psql(db, f"SELECT status FROM runs WHERE run_id='{run_id}'") == "SUCCESS"
    assert materialized_text(db, run_id) == [CODE], "run_host recorded another host"
    print(f"{name} run {run_id}: {' -> '.join(seen)} in {seconds:.1f} s on {CODE}")


# --- reloads ------------------------------------------------------------------------------------


RELOAD = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { name loadStatus locationOrLoadError { __typename } }
    ... on PythonError { message }
  }
}
"""


def test_systemctl_reload_keeps_the_unit_and_loads_new_code(code):
    before, children = main_pid(code, unit("example")), server_children(code, "example")
    assert children, "no `dagster api grpc` process in the unit"
    out = code.run(f"systemctl reload {unit('example')}")
    assert out.rc == 0, out.stderr + journal(code, unit("example"))
    assert code.service(unit("example")).is_running
    assert main_pid(code, unit("example")) == before
    deadline = time.monotonic() + 60
    while server_children(code, "example") & children and time.monotonic() < deadline:
        time.sleep(1)
    assert not server_children(code, "example") & children, "the code was not loaded into a new process"
    assert health(code, "example").rc == 0


def test_ui_reload_keeps_the_unit_and_runs_still_work(db, instance, code):
    before = main_pid(code, unit("example"))
    result = graphql(instance, RELOAD, {"name": "example"})["reloadRepositoryLocation"]
    assert result["__typename"] == "WorkspaceLocationEntry", result
    assert result["locationOrLoadError"]["__typename"] == "RepositoryLocation", result
    assert main_pid(code, unit("example")) == before
    assert health(code, "example").rc == 0
    run_id = launch_run(instance, "example", "example_job")
    status, _, seen = wait_for_run(instance, run_id)
    assert status == "SUCCESS", seen
    assert materialized_text(db, run_id) == [CODE]


# --- a code server killed whole ----------------------------------------------------------------

LOST_RUN_PERIOD = 30  # dagster_run_monitoring_poll_interval of the instance hosts, molecule.yml
CHECK_SECONDS = 20  # the check's own run: a Python process that imports Dagster
LOST_RUNS = "dagster-code-location-lost-runs.service"
STORAGE = "/var/lib/dagster/storage"


def test_the_lost_run_check_runs_on_the_code_host_alone(instance, code):
    assert code.service("dagster-code-location-lost-runs.timer").is_running
    assert code.service("dagster-code-location-lost-runs.timer").is_enabled
    timer = code.check_output("systemctl cat dagster-code-location-lost-runs.timer")
    assert f"OnUnitActiveSec={LOST_RUN_PERIOD}" in timer
    command = code.check_output(f"systemctl show -p ExecStart --value {LOST_RUNS}")
    assert all(f"--location {name}" in command for name in LOCATIONS), command
    # No location's runs execute on the instance host: it has no check of its own.
    assert not instance.file("/etc/systemd/system/dagster-fail-lost-runs.timer").exists
    out = code.check_output(f"systemd-analyze security --no-pager {LOST_RUNS} | tail -n 1")
    print(f"{LOST_RUNS}: {out.strip()}")
    assert float(re.search(r"exposure level for \S+: (\d+\.\d+)", out).group(1)) <= 3.5, out


def test_a_run_whose_code_server_was_killed_whole_is_failed_within_the_poll_interval(db, instance, code):
    releases = {name: f"{STORAGE}/release-{name}" for name in ("lost", "control")}
    code.check_output("rm -f " + " ".join(releases.values()))
    lost, lost_worker = start_held_run(instance, "example", releases["lost"], db=db)
    # Every process of the unit: the server, its code process and the run's worker.
    code.check_output(f"systemctl kill --signal=SIGKILL {unit('example')}")
    killed_at = time.monotonic()
    wait_for(lambda: code.run(f"kill -0 {lost_worker}").rc != 0, 10, step=0.2, message="the worker outlived the kill")
    wait_for(lambda: health(code, "example").rc == 0, 120, step=0.5, message=lambda: journal(code, unit("example")))
    control, control_worker = start_held_run(instance, "example", releases["control"], db=db)
    before_control = last_oneshot_run(code, LOST_RUNS)[0]
    try:
        status = wait_for(lambda: (s := run_status(instance, lost)["status"]) != "STARTED" and s,
                          LOST_RUN_PERIOD + CHECK_SECONDS, message=lambda: journal(code, LOST_RUNS))
        seconds = time.monotonic() - killed_at
        print(f"run whose code server was killed whole: {status} {seconds:.0f} s after the kill "
              f"(period {LOST_RUN_PERIOD} s)")
        assert status == "FAILURE", journal(code, LOST_RUNS)
        assert seconds <= LOST_RUN_PERIOD + CHECK_SECONDS, journal(code, LOST_RUNS)
        assert any(f"worker process (pid {lost_worker}) on {CODE}" in message for message in run_messages(db, lost))
        # The live worker's run is left alone by a check that started once it was STARTED.
        wait_for(lambda: (check := last_oneshot_run(code, LOST_RUNS))[0] > before_control and check[1] > check[0],
                 LOST_RUN_PERIOD + CHECK_SECONDS, message=lambda: journal(code, LOST_RUNS))
        assert run_status(instance, control)["status"] == "STARTED"
        assert code.run(f"kill -0 {control_worker}").rc == 0
    finally:
        code.check_output("runuser -u dagster -- touch " + " ".join(releases.values()))
    assert wait_for_run(instance, control, timeout=120)[0] == "SUCCESS"
    code.check_output("rm -f " + " ".join(releases.values()))


# --- secrets, and a change that restarts one location only ---------------------------------------

# Where the password may be: the generated file (0600) and the environment files (0640).
ALLOWED = {
    DB: {PASSWORD_FILE: 0o600},
    INSTANCE: {"/etc/dagster/dagster.env": 0o640},
    CODE: {f"/etc/dagster/code-locations/{name}.env": 0o640 for name in LOCATIONS}
    | {"/etc/dagster/lost-runs/environment": 0o640},
}


@pytest.mark.parametrize("which", [DB, INSTANCE, CODE])
def test_password_only_in_its_protected_files(which, password):
    host = testinfra.get_host(f"docker://{which}")
    host.check_output(f"cat > /tmp/needle <<'EOF'\n{password}\nEOF")
    found = host.run(
        "grep -rlsF -f /tmp/needle /etc /var /opt /root /home /srv /usr/local /tmp --exclude=needle"
    ).stdout.split()
    in_cmdlines = host.run("grep -lsF -f /tmp/needle /proc/[0-9]*/cmdline /proc/[0-9]*/environ").stdout.split()
    host.run("rm -f /tmp/needle")
    assert sorted(found) == sorted(ALLOWED[which]), found
    for path, mode in ALLOWED[which].items():
        assert host.file(path).mode == mode, path
    # Only the services holding it in their environment (from the EnvironmentFile), no command line.
    assert not [p for p in in_cmdlines if p.endswith("/cmdline")], in_cmdlines


def test_a_run_that_leaves_out_the_database_host_keeps_the_password(instance, code, password):
    # Before the test below, which converges with other values: this one starts from the scenario's converge.
    files = {INSTANCE: "/etc/dagster/dagster.env", CODE: "/etc/dagster/code-locations/example.env"}
    before = {which: testinfra.get_host(f"docker://{which}").file(path).sha256sum for which, path in files.items()}
    rc, output, _ = ansible_playbook(ROOT / "playbooks/site.yml", None, "--limit", f"{INSTANCE},{CODE}")
    assert rc == 0, output[-4000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    assert dict(recap) == {INSTANCE: "0", CODE: "0"}, recap
    after = {which: testinfra.get_host(f"docker://{which}").file(path).sha256sum for which, path in files.items()}
    assert after == before
    assert password in instance.file(files[INSTANCE]).content_string


def test_a_change_restarts_only_its_location_and_no_password_is_logged(db, instance, code, password):
    # A run in progress on the location that changes: it waits for its release file, created
    # once the converge is done, and finishes in the same worker.
    release = "/var/lib/dagster/storage/release-multihost"
    code.run(f"rm -f {release}")
    in_flight = launch_run(instance, "second", "pause_job",
                           run_config={"ops": {"pause": {"config": {"seconds": 3600, "release_file": release}}}})
    wait_until_started(instance, in_flight)
    pids = {name: main_pid(code, unit(name)) for name in LOCATIONS}
    webserver, daemon = main_pid(instance, "dagster-webserver"), main_pid(instance, "dagster-daemon")
    revision = str(int(time.time()))
    # A new commit on the git location's branch, and a new value in its environment.
    code.check_output(
        f"cd {GIT_REPOSITORY} && echo {revision} > REVISION && git add REVISION && "
        "git -c user.name=test -c user.email=test@localhost commit --quiet -m revision"
    )
    hosts = {which: testinfra.get_host(f"docker://{which}") for which in (DB, INSTANCE, CODE)}
    journal_from = {which: host.check_output("date '+%Y-%m-%d %H:%M:%S'") for which, host in hosts.items()}
    for host in hosts.values():
        start_argv_sampler(host)
    rc, output, seconds = ansible_playbook(ROOT / "playbooks/site.yml", {"multihost_revision": revision}, "-vvv")
    samples = {which: stop_argv_sampler(host) for which, host in hosts.items()}
    assert rc == 0, output[-4000:]
    print(f"verbose re-converge with one location's environment changed: {seconds:.0f} s")
    print(f"command lines sampled every {ARGV_SAMPLE_INTERVAL} s: " + ", ".join(
        f"{which} {len(text.splitlines())}" for which, text in samples.items()))
    assert password not in output, "the database password appears in the converge output"
    for which, host in hosts.items():
        assert password not in samples[which], f"the database password was on a command line on {which}"
        # The whole journal since, sudo's lines included.
        logged = host.check_output(f"journalctl --since '{journal_from[which]}' --no-pager -o cat")
        assert password not in logged, f"the database password is in the journal of {which}"
    # The sampler saw the short-lived processes of the converge: the restarted server's start check.
    assert "dagster-code-location-ctl wait" in samples[CODE], samples[CODE][-2000:]
    assert main_pid(code, unit("second")) != pids["second"], "the changed location was not restarted"
    assert main_pid(code, unit("example")) == pids["example"], "an unchanged location was restarted"
    assert (main_pid(instance, "dagster-webserver"), main_pid(instance, "dagster-daemon")) == (webserver, daemon)
    assert f'MULTIHOST_REVISION="{revision}"' in code.file("/etc/dagster/code-locations/second.env").content_string
    assert code.file("/opt/dagster/code-locations/second/src/REVISION").content_string.strip() == revision
    assert main_pid(code, unit("third")) == pids["third"], "an unchanged location was restarted"
    assert health(code, "second").rc == 0
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    # The checkout, the environment file and the restart of that one server.
    assert dict(recap) == {DB: "0", INSTANCE: "0", CODE: "3"}, recap
    assert run_status(instance, in_flight)["status"] == "STARTED"
    code.check_output(f"runuser -u dagster -- touch {release}")
    status, _, seen = wait_for_run(instance, in_flight, timeout=360)
    code.run(f"rm -f {release}")
    assert status == "SUCCESS", seen
    # The server was restarted while the run was still going.
    restarted_at = int(code.check_output(
        f"date -d \"$(systemctl show -p ExecMainStartTimestamp --value {unit('second')})\" +%s"))
    ended_at = float(psql(db, f"SELECT end_time FROM runs WHERE run_id='{in_flight}'"))
    assert restarted_at < ended_at, (restarted_at, ended_at)
    logged = pause_job_worker_pids(db, in_flight)
    assert len(logged["started"]) == 1 and logged["finished"] == logged["started"], logged
