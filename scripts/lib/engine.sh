# shellcheck shell=bash
# Makes sure a Docker engine answers, installing and starting one when none does.
# Sourced by the test and demo entry points.

ensure_docker_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> installing a Docker engine and debootstrap from the distribution's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "==> starting dockerd"
    mkdir -p /var/log
    nohup dockerd --storage-driver overlay2 >/var/log/dockerd-dagsterops.log 2>&1 &
    local tries=0
    until docker info >/dev/null 2>&1; do
      tries=$((tries + 1))
      if [ "$tries" -gt 60 ]; then
        echo "dockerd did not answer within 60 s; its log:" >&2
        tail -n 50 /var/log/dockerd-dagsterops.log >&2
        return 1
      fi
      sleep 1
    done
  fi
}
