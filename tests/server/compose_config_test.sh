#!/usr/bin/env bash
# Validates the deploy files without a Docker engine (ctest
# compose_config, label integration):
#  - `docker-compose -f deploy/docker-compose.yml config` accepts the file,
#    and it has the services n1 n2 n3;
#  - every package the Dockerfile's build stage installs is in
#    scripts/setup.sh's list (so a build that works here works in the image).
# Exits 77 (ctest: skipped) with a message when docker-compose is missing.
#
#   tests/server/compose_config_test.sh [SOURCE_DIR]
set -euo pipefail

src="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
compose="$src/deploy/docker-compose.yml"
dockerfile="$src/deploy/Dockerfile"
setup="$src/scripts/setup.sh"

fail() { printf 'compose_config_test: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "compose_config_test: SKIPPED: docker-compose is not installed" \
    "(Debian package docker-compose; ./scripts/setup.sh installs it)"
  exit 77
fi

out="$(mktemp -d)"
trap 'rm -rf -- "$out"' EXIT

# The secret's file need not exist for `config` (it is made once per
# deployment, see the compose file's header).
if ! docker-compose -f "$compose" config >"$out/config.yml" 2>"$out/config.err"; then
  cat "$out/config.err" >&2
  fail "docker-compose config rejects $compose"
fi
echo "compose_config_test: docker-compose config accepts $compose"

services="$(docker-compose -f "$compose" config --services 2>/dev/null | sort | tr '\n' ' ')"
[[ "$services" == "n1 n2 n3 " ]] || fail "want services n1 n2 n3, got: $services"
volumes="$(docker-compose -f "$compose" config --volumes 2>/dev/null | sort | tr '\n' ' ')"
[[ "$volumes" == "n1-data n2-data n3-data " ]] || fail "want volumes n1-data n2-data n3-data, got: $volumes"
grep -q '^secrets:' "$out/config.yml" || fail "no secrets section (the cluster key is a secret)"
if grep -vE '^\s*#' "$dockerfile" | grep -qE '(COPY|ADD) .*secrets'; then
  fail "the Dockerfile copies a secret into the image"
fi

# Build-stage packages (the first apt-get install, up to the first FROM
# after it) must be in setup.sh's PACKAGES list.
build_pkgs="$(awk '/^FROM .* AS build/ {on = 1; next} /^FROM / {on = 0} on' "$dockerfile" |
  sed -n '/apt-get install/,/rm -rf/p' | tr -s ' ' '\n' |
  grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update)$' || true)"
[[ -n "$build_pkgs" ]] || fail "found no packages in the Dockerfile's build stage"
setup_pkgs="$(sed -n '/^PACKAGES=(/,/^)/p' "$setup" | sed 's/#.*//' | tr ' ' '\n' | grep -E '^[a-z0-9]' || true)"
missing=()
for p in $build_pkgs; do
  grep -qxF -- "$p" <<<"$setup_pkgs" || missing+=("$p")
done
((${#missing[@]} == 0)) || fail "Dockerfile build packages not in scripts/setup.sh: ${missing[*]}"
echo "compose_config_test: the Dockerfile's build packages are all in scripts/setup.sh:" \
  "$(tr '\n' ' ' <<<"$build_pkgs")"
echo "compose_config_test: OK"
