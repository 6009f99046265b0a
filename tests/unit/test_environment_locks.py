"""The environment locks the collection ships: one per supported release and launcher, every pin hashed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from lock_environments import LOCKS, RELEASES, flavour_packages, lock_name  # noqa: E402

CASES = [(version, launcher) for version, launchers in RELEASES.items() for launcher in launchers]


def _entries(text):
    """(requirement line, hash lines) of a requirements file with hashes."""
    entries = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(" "):
            entries[-1][1].append(line.strip(" \\"))
        else:
            entries.append((line.rstrip(" \\"), []))
    return entries


def test_every_lock_file_is_a_supported_release():
    assert sorted(path.name for path in LOCKS.glob("*.txt")) == sorted(lock_name(*case) for case in CASES)


@pytest.mark.parametrize(("version", "launcher"), CASES)
def test_every_package_is_pinned_with_hashes(version, launcher):
    entries = _entries((LOCKS / lock_name(version, launcher)).read_text())
    assert len(entries) > 50
    for requirement, hashes in entries:
        assert re.match(r"^[A-Za-z0-9_.-]+==[^ ;]+( ;.*)?$", requirement), requirement
        assert hashes and all(re.match(r"^--hash=sha256:[0-9a-f]{64}$", h) for h in hashes), requirement


@pytest.mark.parametrize(("version", "launcher"), CASES)
def test_the_lock_holds_the_bundle_of_its_release(version, launcher):
    pins = {requirement.split(" ;")[0] for requirement, _ in _entries((LOCKS / lock_name(version, launcher)).read_text())}
    # A lock names a package without the extras it was asked for with.
    assert {re.sub(r"\[[^]]*\]", "", p) for p in flavour_packages(version, launcher)} <= pins
