"""dagster_env_file_read reads an environment file as systemd's EnvironmentFile= does."""

from __future__ import annotations

import pytest

from dagster_env_file_read import dagster_env_file_read, parse_env_file


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('P="plain"', "plain"),
        ("P=plain", "plain"),
        ("P=  spaced out  ", "spaced out"),
        ('P="a\\"b\\\\c\\$d\\`e"', 'a"b\\c$d`e'),
        ('P="keeps \\n as two characters"', "keeps \\n as two characters"),
        ("P='single $quoted \\ as is'", "single $quoted \\ as is"),
        ('P="pä$$wörd"', "pä$$wörd"),
        ('P="two\nlines"', "two\nlines"),
        ("P=a\\ b", "a b"),
        ('P=""', ""),
        ('P="x" # not a comment', "x # not a comment"),
    ],
)
def test_values_as_systemd_reads_them(line, value):
    assert dagster_env_file_read(f"# managed\nOTHER=1\n{line}\nLAST=2\n", "P") == value


def test_comments_and_missing_names():
    content = "# P=commented\n; P=also\nDAGSTER_HOME=/var/lib/dagster\n"
    assert dagster_env_file_read(content, "P") == ""
    assert parse_env_file(content) == {"DAGSTER_HOME": "/var/lib/dagster"}


def test_the_last_assignment_wins():
    assert dagster_env_file_read("P=1\nP=2\n", "P") == "2"
