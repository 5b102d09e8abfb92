#!/usr/bin/env bash
# Validates the deploy files without a Docker engine (ctest
# compose_config, label integration):
#  - `docker-compose -f deploy/docker-compose.yml config` accepts the file,
#    and it has the services n1 n2 n3;
#  - so does deploy/docker-compose.multiring.yml, with the services gw n1
#    n2 n3 n4 and the networks ring1 (n1 n2) and ring2 (n3 n4), the
#    gateway gw on both, each service's ipv4_address in its network's
#    subnet, and every service's client port published;
#  - every package the Dockerfile's build stage installs is in
#    scripts/setup.sh's list (so a build that works here works in the image).
# Exits 77 (ctest: skipped) with a message when docker-compose is missing.
#
#   tests/server/compose_config_test.sh [SOURCE_DIR]
set -euo pipefail

src="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
compose="$src/deploy/docker-compose.yml"
multiring="$src/deploy/docker-compose.multiring.yml"
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

# The two-ring file: its normalized form, checked with python3-yaml (a
# dependency of docker-compose).
if ! docker-compose -f "$multiring" config >"$out/multiring.yml" 2>"$out/multiring.err"; then
  cat "$out/multiring.err" >&2
  fail "docker-compose config rejects $multiring"
fi
echo "compose_config_test: docker-compose config accepts $multiring"
if ! python3 - "$out/multiring.yml" >"$out/multiring.check" 2>&1 <<'EOF'
import ipaddress, sys, yaml

c = yaml.safe_load(open(sys.argv[1]))
problems = []
want_nets = {"gw": ["ring1", "ring2"], "n1": ["ring1"], "n2": ["ring1"],
             "n3": ["ring2"], "n4": ["ring2"]}
services = c.get("services") or {}
if sorted(services) != sorted(want_nets):
    problems.append("want services %s, got %s" % (sorted(want_nets), sorted(services)))
networks = c.get("networks") or {}
if sorted(networks) != ["ring1", "ring2"]:
    problems.append("want networks ring1 ring2, got %s" % sorted(networks))
subnets = {}
for name, net in networks.items():
    try:
        subnets[name] = ipaddress.ip_network(net["ipam"]["config"][0]["subnet"])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        problems.append("network %s: no ipam subnet (%s)" % (name, e))
if len(set(subnets.values())) != len(subnets):
    problems.append("the networks share a subnet")
for name, want in want_nets.items():
    svc = services.get(name)
    if svc is None:
        continue
    nets = svc.get("networks") or {}
    if sorted(nets) != want:
        problems.append("service %s: want networks %s, got %s" % (name, want, sorted(nets)))
    for net, attach in nets.items():
        addr = (attach or {}).get("ipv4_address")
        if addr is None:
            problems.append("service %s: no ipv4_address on %s" % (name, net))
        elif net in subnets and ipaddress.ip_address(addr) not in subnets[net]:
            problems.append("service %s: %s is not in %s's subnet %s"
                            % (name, addr, net, subnets[net]))
    if not svc.get("ports"):
        problems.append("service %s: publishes no client port" % name)
    if not svc.get("secrets"):
        problems.append("service %s: no cluster key secret" % name)
if not c.get("secrets"):
    problems.append("no secrets section (the cluster key is a secret)")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
then
  cat "$out/multiring.check" >&2
  fail "$multiring: services and networks are not the two-ring topology"
fi
volumes="$(docker-compose -f "$multiring" config --volumes 2>/dev/null | sort | tr '\n' ' ')"
[[ "$volumes" == "gw-data n1-data n2-data n3-data n4-data " ]] ||
  fail "$multiring: want volumes gw-data n1-data n2-data n3-data n4-data, got: $volumes"
echo "compose_config_test: $multiring: gw on ring1 and ring2, n1 n2 on ring1, n3 n4 on ring2"
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
