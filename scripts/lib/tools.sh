# shellcheck shell=bash
# The tool venv (.venv) with the pinned test and demo tool chain, and the link
# that makes this checkout the collection dagsterops.dagster for Ansible.

ensure_tool_venv() {
  local root=$1 stamp want
  want=$(sha256sum "$root/requirements-tools.txt" | cut -d' ' -f1)
  stamp="$root/.venv/.requirements-sha256"
  if [ -x "$root/.venv/bin/ansible-playbook" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "==> installing the tool venv (.venv)"
  [ -x "$root/.venv/bin/python" ] || python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install --quiet --upgrade pip >/dev/null
  "$root/.venv/bin/pip" install --quiet -r "$root/requirements-tools.txt"
  echo "$want" >"$stamp"
}

link_collection() {
  local root=$1 dir="$1/.ansible/collections/ansible_collections/dagsterops"
  mkdir -p "$dir"
  if [ ! -L "$dir/dagster" ]; then
    ln -sfn ../../../.. "$dir/dagster"
  fi
}

# Debian's chromium for the browser test of the UI (Playwright drives it; its
# own browser download is not used).
ensure_browser() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  echo "==> installing chromium from the distribution's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
