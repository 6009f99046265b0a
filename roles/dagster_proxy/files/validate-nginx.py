"""Checks a configuration of the Dagster proxy with nginx -t (managed by dagsterops.dagster).

nginx -t creates its pid file and temporary directories under the prefix, and
binds its unix sockets: a copy of the file whose sockets are moved into a
scratch prefix keeps all of them away from the running proxy's (and works
before its runtime directory first exists).
"""

import subprocess
import sys
import tempfile

RUN_DIR = "unix:/run/dagster-proxy/"

with tempfile.TemporaryDirectory(prefix="dagster-proxy-check-") as prefix:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = handle.read().replace(RUN_DIR, f"unix:{prefix}/")
    copy = f"{prefix}/nginx.conf"
    with open(copy, "w", encoding="utf-8") as handle:
        handle.write(config)
    sys.exit(subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-e", "stderr", "-p", prefix + "/", "-c", copy],
                            check=False).returncode)
