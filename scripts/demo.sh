#!/usr/bin/env bash
# Brings up the whole stack in a throw-away local systemd container and prints
# the UI address:
#
#   scripts/demo.sh          create (or re-converge) the container dagster-demo
#   scripts/demo.sh down     remove it
#
# The container runs Debian 12 with systemd; playbooks/site.yml converges it
# through Docker's connection plugin, exactly as it would an ordinary host.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
# shellcheck source=scripts/lib/images.sh
source scripts/lib/images.sh
# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

name=${DAGSTEROPS_DEMO_NAME:-dagster-demo}
port=${DAGSTEROPS_DEMO_PORT:-3000}

if [ "${1:-up}" = "down" ]; then
  docker rm -f "$name" >/dev/null 2>&1 && echo "removed $name" || echo "no container $name"
  exit 0
fi

ensure_tool_venv "$root"
link_collection "$root"
ensure_docker_engine
build_base_image bookworm "${IMAGE_PREFIX}:debian12"

if ! docker container inspect "$name" >/dev/null 2>&1; then
  docker run -d --name "$name" --hostname "$name" \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -p "127.0.0.1:${port}:3000" "${IMAGE_PREFIX}:debian12" >/dev/null
fi

inventory=$(mktemp --suffix .yml)
trap 'rm -f "$inventory"' EXIT
cat >"$inventory" <<INVENTORY
all:
  hosts:
    $name:
      ansible_connection: community.docker.docker
      ansible_python_interpreter: /usr/bin/python3
  children:
    dagster_postgresql:
      hosts: {$name: {}}
    dagster_instance:
      hosts: {$name: {}}
      vars:
        dagster_example_location: true
        # Inside the container; Docker publishes it on this machine's loopback only.
        dagster_webserver_host: 0.0.0.0
INVENTORY

ANSIBLE_COLLECTIONS_PATH="$root/.ansible/collections" \
  "$root/.venv/bin/ansible-playbook" -i "$inventory" playbooks/site.yml

url="http://127.0.0.1:${port}/"
if ! python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + 'server_info', timeout=10)" "$url"; then
  echo "The play finished, but nothing answers at $url" >&2
  exit 1
fi
echo
echo "Dagster is up: $url"
echo "Remove it with: scripts/demo.sh down"
