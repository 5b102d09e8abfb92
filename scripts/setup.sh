#!/usr/bin/env bash
# Installs every Debian package totemkv needs to build, test and run, on a
# fresh Debian 12 machine. Idempotent: when everything is already installed it
# only checks (a second or so) and touches nothing.
#
#   ./scripts/setup.sh            install what is missing
#   ./scripts/setup.sh --check    only report what is missing (exit 1 if any)
#
# Runs apt-get as root, or through sudo when not root.
set -euo pipefail

# One list, in one place. rocksdb / grpc / protobuf are for the store
# (kvstore/, server/, client/, proto/) that the next issues bring.
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libboost-dev libboost-system-dev libssl-dev
  libgtest-dev libgmock-dev
  librocksdb-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  iproute2 iptables python3
  openssl  # the openssl CLI: TLS test certificates (tests/server/tls_test.cc)
  etcd-server
  etcd-client
  python3-etcd3  # tests/server/python_etcd3_test.py (brings python3-grpcio, -protobuf)
  docker-compose  # validates deploy/docker-compose.yml (tests/server/compose_*; brings python3-yaml)
  clang-14 clang libclang-rt-14-dev  # libFuzzer targets (fuzz/, scripts/fuzz.sh); the runtime is in libclang-rt
)

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian 12 (bookworm) only"

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
log "missing: ${missing[*]}"
if ((check_only)); then exit 1; fi

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
  # With no terminal to ask for a password, fail now with a clear message
  # rather than hang or fail half way.
  if [[ ! -t 0 ]] && ! sudo -n true 2>/dev/null; then
    die "need root to install packages: run as root or give $(id -un) passwordless sudo"
  fi
else
  die "need root to install packages (not root, and sudo is not installed): run this script as root"
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (e.g. unattended-upgrades) instead of failing.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)

log "apt-get update"
for attempt in 1 2 3; do
  if "${APT[@]}" update; then break; fi
  ((attempt == 3)) && die "apt-get update failed three times"
  log "apt-get update failed (attempt $attempt); retrying in 5 s"
  sleep 5
done

# Only what is missing: packages already present are left at their version.
log "apt-get install ${missing[*]}"
"${APT[@]}" install -y --no-install-recommends "${missing[@]}"

for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == ii* ]] || die "package $pkg is still not installed after apt-get install"
done
log "done: all ${#PACKAGES[@]} packages installed"
