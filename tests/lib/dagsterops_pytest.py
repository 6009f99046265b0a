"""pytest plugin of the molecule scenarios' verifiers (their molecule.yml loads it with ``-p``).

A test marked ``soak`` is a long check: a load held for minutes, an outage of minutes, the
whole catalogue of refused converges. ``scripts/test.sh soak`` runs the scenarios with
DAGSTEROPS_SOAK=1 and these tests among the others; otherwise (CI, ``scripts/test.sh``) they
are deselected, and pytest's summary counts them as deselected.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("DAGSTEROPS_SOAK") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: a long check, run by scripts/test.sh soak (DAGSTEROPS_SOAK=1)")


def pytest_collection_modifyitems(config, items):
    if SOAK:
        return
    deselected = [item for item in items if item.get_closest_marker("soak")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]
