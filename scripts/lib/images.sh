# shellcheck shell=bash
# Builds the systemd base images the molecule scenarios and the demo boot from.
# Nothing can be pulled on the test machines, so each image is a debootstrap of
# Debian imported into the local engine. The mirror comes from this host's own
# apt configuration (or DAGSTEROPS_DEBIAN_MIRROR), and the host's CA bundle goes
# into the image so that TLS through an intercepting proxy verifies.

IMAGE_PREFIX="${DAGSTEROPS_IMAGE_PREFIX:-dagsterops-systemd}"

debian_mirror() {
  if [ -n "${DAGSTEROPS_DEBIAN_MIRROR:-}" ]; then
    echo "$DAGSTEROPS_DEBIAN_MIRROR"
    return 0
  fi
  local uri
  uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v -- '-security' | head -n 1)
  if [ -z "$uri" ]; then
    uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | head -n 1)
  fi
  if [ -z "$uri" ]; then
    echo "no Debian mirror found in this host's apt sources; set DAGSTEROPS_DEBIAN_MIRROR" >&2
    return 1
  fi
  echo "$uri"
}

# build_base_image SUITE TAG
build_base_image() {
  local suite=$1 tag=$2 mirror root
  if docker image inspect "$tag" >/dev/null 2>&1; then
    return 0
  fi
  mirror=$(debian_mirror) || return 1
  root=$(mktemp -d "/tmp/${IMAGE_PREFIX}-${suite}.XXXXXX")
  echo "==> debootstrap $suite into $root"
  if ! debootstrap --variant=minbase \
      --include=systemd,systemd-sysv,python3,python3-apt,sudo,dbus,ca-certificates,iproute2,procps \
      "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 40 "$root.log" >&2
    rm -rf "$root" "$root.log"
    return 1
  fi
  # The host's CA bundle, as a local CA that update-ca-certificates keeps.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # A container boots to multi-user without consoles or udev settling.
  rm -f "$root"/etc/systemd/system/getty.target.wants/* \
        "$root"/lib/systemd/system/multi-user.target.wants/getty.target \
        "$root"/etc/machine-id
  : >"$root/etc/machine-id"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
  # No package lists in the image, and a list directory old enough that apt's
  # cache_valid_time logic fetches fresh ones at the first converge.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  touch -d '2000-01-01 00:00:00' "$root/var/lib/apt/lists"
  if ! tar -C "$root" -c . | docker import \
      -c 'CMD ["/lib/systemd/systemd"]' \
      -c 'ENV container=docker' \
      - "$tag" >/dev/null; then
    rm -rf "$root" "$root.log"
    echo "docker import of $tag failed" >&2
    return 1
  fi
  rm -rf "$root" "$root.log"
  echo "==> built $tag"
}

# ensure_base_images: Debian 12 and Debian 13, built in parallel when missing.
ensure_base_images() {
  local pids=() rc=0
  build_base_image bookworm "${IMAGE_PREFIX}:debian12" & pids+=($!)
  build_base_image trixie "${IMAGE_PREFIX}:debian13" & pids+=($!)
  for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
  done
  return $rc
}
