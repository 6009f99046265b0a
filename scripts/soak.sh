#!/usr/bin/env bash
# The healthcheck's false-alarm soak (scripts/test.sh soak): the molecule
# scenario exposure with its load test held for DAGSTEROPS_LOAD_SECONDS
# (default 600) instead of 60 - at least 20 Dagster runs at once while the
# check runs every 5 s, counting the /fail pings the ping receiver got. The
# figures are the verifier's "FIGURE load: ..." lines, repeated at the end.
#
#   scripts/soak.sh                                 ten minutes
#   DAGSTEROPS_LOAD_SECONDS=1800 scripts/soak.sh    half an hour
#
# Takes the whole scenario's time plus the soak (about 20 minutes in all).
# DAGSTEROPS_KEEP=1 keeps the container.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
# shellcheck source=scripts/lib/images.sh
source scripts/lib/images.sh
# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

ensure_tool_venv "$root"
link_collection "$root"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.ansible/collections"
export DAGSTEROPS_LOAD_SECONDS=${DAGSTEROPS_LOAD_SECONDS:-600}
ensure_docker_engine
ensure_base_images

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
molecule destroy -s exposure >/dev/null 2>&1 || true
{ molecule converge -s exposure && molecule verify -s exposure; } 2>&1 | tee "$log" || rc=$?
if [ "${DAGSTEROPS_KEEP:-}" != "1" ]; then
  molecule destroy -s exposure >/dev/null 2>&1 || true
fi
echo
echo "==> soak figures (load held ${DAGSTEROPS_LOAD_SECONDS} s)"
grep -ao 'FIGURE load: .*' "$log" || echo "no figures: the load test did not run"
exit $rc
