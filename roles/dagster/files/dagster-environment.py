"""Reads or builds the Python environment of a Dagster release (run by the dagster role).

    python3 dagster-environment.py probe INSTALL_DIR VENV
        JSON: the environment `current` points to, the environments kept (path,
        mtime), the packages recorded in VENV's marker (null: not complete) and
        the uv versions in the tools environment.
    python3 dagster-environment.py build INSTALL_DIR VENV PYTHON UV_VERSION ENV_FILE LOCK PACKAGE...
        uv into INSTALL_DIR/tools when that version is missing, VENV with uv,
        the packages byte-compiled, then the marker that completes it. ENV_FILE
        is a JSON map of environment variables for pip and uv (proxies, index,
        CA bundle), kept in a file because it may hold credentials. LOCK, when
        not empty, is a requirements file that pins the whole environment with
        hashes: it is installed with hashes required, and PACKAGE... are only
        what the marker records.

The role passes this file to the host's `python3 -` on standard input: nothing to install first.
"""

import glob
import json
import os
import subprocess
import sys

MARKER = ".dagsterops-installed"


def uv_versions(install: str) -> list[str]:
    pattern = os.path.join(install, "tools", "lib", "python3*", "site-packages", "uv-*.dist-info")
    return [os.path.basename(path)[len("uv-"):-len(".dist-info")] for path in glob.glob(pattern)]


def probe(install: str, venv: str) -> None:
    current = os.path.join(install, "current")
    try:
        with open(os.path.join(venv, MARKER)) as marker:
            installed = marker.read().splitlines()
    except OSError:
        installed = None
    print(json.dumps({
        "current": os.readlink(current) if os.path.islink(current) else (current if os.path.exists(current) else ""),
        "venvs": [{"path": path, "mtime": os.stat(path).st_mtime}
                  for path in glob.glob(os.path.join(install, "venvs", "dagster-*")) if os.path.isdir(path)],
        "installed": installed,
        "uv": uv_versions(install),
    }))


def build(install: str, venv: str, python: str, uv_version: str, env_file: str, lock: str,
          packages: list[str]) -> None:
    with open(env_file) as variables:
        os.environ.update({str(name): str(value) for name, value in json.load(variables).items()})
    tools = os.path.join(install, "tools")
    if uv_version not in uv_versions(install):
        if not os.path.exists(os.path.join(tools, "bin", "pip")):
            subprocess.run([python, "-m", "venv", tools], check=True)
        subprocess.run([os.path.join(tools, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
                        f"uv=={uv_version}"], check=True)
    uv = os.path.join(tools, "bin", "uv")
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        subprocess.run([uv, "venv", "--quiet", "--python", python, venv], check=True)
    # Byte-compiled here, as root: the services cannot write to the environment,
    # and every process they start (runs included) would compile Dagster again.
    wanted = ["--require-hashes", "--requirement", lock] if lock else packages
    subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python",
                    os.path.join(venv, "bin", "python"), *wanted], check=True)
    with open(os.path.join(venv, MARKER), "w") as marker:
        marker.write("".join(package + "\n" for package in packages))


if __name__ == "__main__":
    try:
        if sys.argv[1] == "probe":
            probe(*sys.argv[2:4])
        elif sys.argv[1] == "build":
            build(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8:])
        else:
            raise SystemExit(f"unknown command {sys.argv[1]!r}")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"{' '.join(error.cmd)} exited {error.returncode}") from None
