#!/usr/bin/env python3
"""Write the locks of the Dagster environments the collection installs.

    scripts/lock_environments.py                    every release and launcher in RELEASES
    scripts/lock_environments.py --version V --launcher L [--extra REQ ...] --out FILE
                                                    one lock, such as your own with extra packages

A lock pins the whole environment, every transitive package, with the hashes of
its files, for the Python versions of the supported Debian releases (3.11 and
3.13: one universal resolution). The dagster role installs it with hashes
required, so that two hosts converged on different days get the same packages,
and a file whose hash differs stops the install before anything switches.
Run it with the tool venv's Python (`.venv/bin/python`), which has uv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "filter"))

from dagster_packages import dagster_packages  # noqa: E402

LOCKS = ROOT / "roles" / "dagster" / "files" / "locks"
# The releases the collection supports, with the environments each is locked for:
# the default and docker run launchers, and a Celery location's (dagster-celery).
RELEASES = {
    "1.13.27": ("default", "docker", "celery"),
    "1.12.22": ("default",),
}
# What each environment adds to the bundle (dagster_packages' arguments).
FLAVOURS = {"default": {}, "docker": {"run_launcher": "docker"}, "celery": {"executor": "celery"}}
# The oldest Python of the supported Debian releases; the resolution is universal.
PYTHON = "3.11"


def lock_name(version: str, launcher: str) -> str:
    return f"dagster-{version}-{launcher}.txt"


def flavour_packages(version: str, flavour: str, extra: list[str] | None = None) -> list[str]:
    return dagster_packages(version, extra=extra or [], **FLAVOURS[flavour])


def lock(version: str, launcher: str, extra: list[str], out: Path) -> None:
    requirements = flavour_packages(version, launcher, extra)
    uv = Path(sys.executable).parent / "uv"
    with tempfile.NamedTemporaryFile("w", suffix=".in", delete=False) as source:
        source.write("".join(f"{requirement}\n" for requirement in requirements))
    try:
        subprocess.run(
            [str(uv), "pip", "compile", "--quiet", "--universal", "--generate-hashes", "--no-header",
             "--no-annotate", "--python-version", PYTHON, source.name, "-o", str(out)],
            check=True,
            env={**os.environ, "UV_SYSTEM_CERTS": "true"},
        )
    finally:
        os.unlink(source.name)
    what = "Celery executor" if launcher == "celery" else f"{launcher} run launcher"
    header = (f"# Dagster {version}, {what}{', with ' + ', '.join(extra) if extra else ''}:\n"
              f"# the whole environment with hashes, written by scripts/lock_environments.py.\n")
    out.write_text(header + out.read_text())
    print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: {out.read_text().count('==')} packages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version")
    parser.add_argument("--launcher", default="default", choices=sorted(FLAVOURS))
    parser.add_argument("--extra", action="append", default=[], help="an extra requirement, as in dagster_extra_packages")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.version:
        lock(args.version, args.launcher, args.extra, args.out or LOCKS / lock_name(args.version, args.launcher))
        return 0
    LOCKS.mkdir(parents=True, exist_ok=True)
    for version, launchers in RELEASES.items():
        for launcher in launchers:
            lock(version, launcher, [], LOCKS / lock_name(version, launcher))
    return 0


if __name__ == "__main__":
    sys.exit(main())
