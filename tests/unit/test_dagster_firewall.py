"""The firewall filters: an nftables table, its unit, and a unit's own address filter."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from dagster_firewall import dagster_firewall_ruleset, dagster_firewall_unit, dagster_ip_address_allow


def test_the_table_lets_in_only_the_clients():
    ruleset = dagster_firewall_ruleset("postgresql", [5432], ["10.0.0.11", "10.0.1.0/24", "fd00::5"])
    assert ruleset.splitlines()[1:] == [
        "table inet dagsterops_postgresql",
        "delete table inet dagsterops_postgresql",
        "table inet dagsterops_postgresql {",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        '    iif "lo" accept',
        "    tcp dport { 5432 } ip saddr { 10.0.0.11/32, 10.0.1.0/24 } accept",
        "    tcp dport { 5432 } ip6 saddr { fd00::5/128 } accept",
        "    tcp dport { 5432 } reject with tcp reset",
        "  }",
        "}",
    ]


def test_without_clients_the_ports_are_closed_to_all_but_loopback():
    ruleset = dagster_firewall_ruleset("code_locations", [4001, 4000, 4001], [])
    assert "saddr" not in ruleset
    assert "    tcp dport { 4000, 4001 } reject with tcp reset" in ruleset


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed here")
def test_nft_accepts_the_rule_set(tmp_path):
    path = tmp_path / "rules.nft"
    path.write_text(dagster_firewall_ruleset("postgresql", [5432], ["10.0.0.11", "fd00::5"]))
    done = subprocess.run(["nft", "--check", "-f", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        (["0.0.0.0/0"], r"addresses\[0\]: '0.0.0.0/0' would let every address in"),
        (["10.0.0.1", "::/0"], r"addresses\[1\]: '::/0' would let every address in"),
        (["10.0.0.1/99"], r"addresses\[0\]: '10.0.0.1/99' is not an IP address or network"),
        (["abc"], r"addresses\[0\]: 'abc' is not an IP address or network"),
        ("10.0.0.1", r"addresses: must be a list"),
    ],
)
def test_bad_addresses_are_named(addresses, message):
    with pytest.raises(AnsibleFilterError, match=message):
        dagster_firewall_ruleset("postgresql", [5432], addresses)


@pytest.mark.parametrize(
    ("ports", "message"),
    [([], r"ports: must be a non-empty list"), ([70000], r"ports\[0\]: must be a TCP port"),
     (["5432"], r"ports\[0\]"), ([True], r"ports\[0\]")],
)
def test_bad_ports_are_named(ports, message):
    with pytest.raises(AnsibleFilterError, match=message):
        dagster_firewall_ruleset("postgresql", ports, [])


@pytest.mark.parametrize("name", ["", "Postgres", "a b", "x;drop", "a" * 40, None])
def test_bad_names_are_refused(name):
    with pytest.raises(AnsibleFilterError, match="firewall name"):
        dagster_firewall_unit(name)


def test_the_unit_loads_the_table_before_the_network_and_removes_it_on_stop():
    unit = dagster_firewall_unit("postgresql")
    assert "ExecStart=/usr/sbin/nft -f /etc/dagster-firewall/postgresql.nft" in unit
    assert "ExecStop=/usr/sbin/nft delete table inet dagsterops_postgresql" in unit
    assert "Before=network-pre.target" in unit and "WantedBy=sysinit.target" in unit


def test_the_unit_address_filter_keeps_loopback():
    assert dagster_ip_address_allow(["10.0.0.11", "fd00::/64"]) == "localhost 10.0.0.11/32 fd00::/64"
