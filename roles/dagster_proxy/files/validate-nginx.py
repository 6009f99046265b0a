"""Checks a configuration of the Dagster proxy with nginx -t (managed by dagsterops.dagster).

nginx -t creates its pid file and temporary directories under the prefix: a
scratch prefix keeps them away from the running proxy's.
"""

import subprocess
import sys
import tempfile

with tempfile.TemporaryDirectory(prefix="dagster-proxy-check-") as prefix:
    sys.exit(subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-e", "stderr", "-p", prefix + "/", "-c", sys.argv[1]],
                            check=False).returncode)
