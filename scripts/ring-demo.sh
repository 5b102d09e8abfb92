#!/usr/bin/env bash
# The Totem ring demo (no store): sets up, builds and starts a Totem ring
# of 3 (or --nodes N) processes on loopback, every node sending at once;
# shows node 1's ordered traffic and throughput live, then checks that all
# nodes delivered the same messages in the same order (same count, same
# digest).
#
#   ./scripts/ring-demo.sh [options]
#
# (./scripts/local-cluster.sh --ring-demo [options] runs this too.)
#
# Options:
#   --nodes N          ring size (default 3)
#   --messages N       messages each node sends (default 1000000: a few seconds)
#   --size BYTES       payload size of each message (default 100)
#   --guarantee G      agreed | safe | mixed (default safe)
#   --timeout-s S      give up after S seconds (default 60)
#   --multicast        data frames to a multicast group (default: unicast to
#                      each peer); the token is unicast either way
#   --quiet            node 1 prints only its summary (no per-second lines)
#   --run-dir DIR      where the key and logs go (default ./run)
#   --no-setup         skip scripts/setup.sh
#   --no-build         skip the build (use the binaries already built)
#   --bin-dir DIR      where totem-node and totem-keygen are (default build/bin)
#
#   -- ARGS...         passed to every totem-node as is, e.g. -- --no-packing
#                      (see build/bin/totem-node --help)
#
# Logs: RUN_DIR/node-K.log for every node (node 1's is also on the terminal).
# Ctrl-C stops every node this script started.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

nodes=3
messages=1000000
size=100
guarantee=safe
timeout_s=60
quiet=0
run_dir=run
do_setup=1
do_build=1
bin_dir=build/bin
multicast=0
extra_args=()

log() { printf 'ring-demo: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

while (($#)); do
  case "$1" in
    --nodes) nodes="${2:?}"; shift 2 ;;
    --messages) messages="${2:?}"; shift 2 ;;
    --size) size="${2:?}"; shift 2 ;;
    --guarantee) guarantee="${2:?}"; shift 2 ;;
    --timeout-s) timeout_s="${2:?}"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --multicast) multicast=1; shift ;;
    --) shift; extra_args=("$@"); break ;;
    --run-dir) run_dir="${2:?}"; shift 2 ;;
    --no-setup) do_setup=0; shift ;;
    --no-build) do_build=0; shift ;;
    --bin-dir) bin_dir="${2:?}"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
if ! is_uint "$nodes" || ((nodes < 2 || nodes > 16)); then die "--nodes must be 2..16"; fi
is_uint "$messages" || die "--messages must be a number"
if ! is_uint "$size" || ((size < 1)); then die "--size must be a positive number"; fi
if ! is_uint "$timeout_s" || ((timeout_s < 1)); then die "--timeout-s must be a positive number"; fi
[[ "$guarantee" =~ ^(agreed|safe|mixed)$ ]] || die "--guarantee must be agreed, safe or mixed"

if ((do_setup)); then ./scripts/setup.sh; fi
if ((do_build)); then ./scripts/build.sh --target totem-node --target totem-keygen; fi

node_bin="$bin_dir/totem-node"
keygen_bin="$bin_dir/totem-keygen"
[[ -x "$node_bin" ]] || die "$node_bin not found (build it: ./scripts/build.sh --target totem-node)"
[[ -x "$keygen_bin" ]] || die "$keygen_bin not found (build it: ./scripts/build.sh --target totem-keygen)"

mkdir -p "$run_dir"
key_file="$run_dir/cluster.key"
rm -f "$key_file"
"$keygen_bin" "$key_file" >/dev/null
log "cluster key: $key_file"

# Free UDP ports on 127.0.0.1: bind them all at once (so they differ),
# release them, then print them. $(...) waits for python to exit, so the
# ports are free again when the nodes bind them.
ports_text="$(python3 - "$((nodes + 1))" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
print(" ".join(map(str, ports)))
PY
)"
read -r -a ports <<<"$ports_text"
((${#ports[@]} == nodes + 1)) || die "could not find $((nodes + 1)) free UDP ports"
mcast_port="${ports[nodes]}"  # the last one, used with --multicast
peers=""
for ((i = 1; i <= nodes; i++)); do
  peers+="${peers:+,}$i@127.0.0.1:${ports[i - 1]}"
done
expect_total=$((nodes * messages))

pids=()     # every node process this script started
pid_ids=()  # the node id of each, same index
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'log "interrupted; stopping the nodes"; exit 130' INT
trap 'exit 143' TERM

node_args() {  # node_args ID
  printf '%s\n' --id "$1" --peers "$peers" --key-file "$key_file" \
    --send "$messages" --size "$size" --guarantee "$guarantee" \
    --expect-total "$expect_total" --timeout-s "$timeout_s" --linger-ms 500
  if ((multicast)); then
    printf '%s\n' --mode multicast --mcast-group 239.192.77.1 --mcast-port "$mcast_port" \
      --mcast-if 127.0.0.1
  fi
  if ((${#extra_args[@]})); then printf '%s\n' "${extra_args[@]}"; fi
}

if ((multicast)); then
  log "ring of $nodes nodes on 127.0.0.1, ports ${ports[*]:0:nodes}; data to multicast 239.192.77.1:$mcast_port"
else
  log "ring of $nodes nodes on 127.0.0.1, ports ${ports[*]:0:nodes}; unicast"
fi
log "each node sends $messages messages of $size bytes ($guarantee); expecting $expect_total deliveries per node"
log "logs: $run_dir/node-{1..$nodes}.log; node 1 follows"
for ((i = nodes; i >= 2; i--)); do
  mapfile -t args < <(node_args "$i")
  "$node_bin" "${args[@]}" >"$run_dir/node-$i.log" 2>&1 &
  pids+=("$!")
  pid_ids+=("$i")
done
mapfile -t args < <(node_args 1)
if ((quiet)); then args+=(--quiet); fi
"$node_bin" "${args[@]}" > >(tee "$run_dir/node-1.log") 2>&1 &
pids+=("$!")
pid_ids+=(1)

declare -A failed_ids=()  # node id -> why
declare -A id_of=()       # pid -> node id
for ((k = 0; k < nodes; k++)); do id_of[${pids[k]}]="${pid_ids[k]}"; done
# Wait for every node. The first one that fails stops the others at once: on
# a static ring one missing member stalls everybody until their timeout.
remaining=("${pids[@]}")
stopped=0  # set once this script stopped the nodes because one failed
while ((${#remaining[@]})); do
  rc=0
  done_pid=""
  wait -n -p done_pid "${remaining[@]}" || rc=$?
  [[ -n "$done_pid" ]] || break
  next=()
  for pid in "${remaining[@]}"; do [[ "$pid" == "$done_pid" ]] || next+=("$pid"); done
  remaining=("${next[@]}")
  if ((rc != 0 && !stopped)); then
    id="${id_of[$done_pid]}"
    failed_ids[$id]="exit code $rc"
    log "node $id exited with code $rc; last lines of $run_dir/node-$id.log:"
    tail -n 5 "$run_dir/node-$id.log" | cut -c1-300 >&2 || true
    if ((${#remaining[@]})); then
      log "stopping the other nodes (a static ring cannot go on without a member)"
      for pid in "${remaining[@]}"; do kill "$pid" 2>/dev/null || true; done
      stopped=1
    fi
  fi
done
pids=()
if ((${#failed_ids[@]} > 0)); then
  die "${#failed_ids[@]} of $nodes nodes failed (ids: ${!failed_ids[*]}); logs in $run_dir/"
fi
sleep 0.2  # let tee flush node 1's last lines

# "DONE node=<id> delivered=<n> digest=<hex> counters: ..."
echo
declare -A delivered=() digest=()
for ((i = 1; i <= nodes; i++)); do
  line="$(grep -E '^DONE node=' "$run_dir/node-$i.log" | tail -1 || true)"
  if [[ -z "$line" ]]; then
    log "node $i printed no DONE line; last lines of $run_dir/node-$i.log:"
    tail -n 5 "$run_dir/node-$i.log" >&2 || true
    failed_ids[$i]="no DONE line"
    continue
  fi
  delivered[$i]="$(sed -nE 's/.* delivered=([0-9]+).*/\1/p' <<<"$line")"
  digest[$i]="$(sed -nE 's/.* digest=([0-9a-fA-F]+).*/\1/p' <<<"$line")"
  # "RESULT node=1 delivered=60000 elapsed_s=1.234 msgs/s=48622"
  rate="$(sed -nE 's/^RESULT .* elapsed_s=([0-9.]+) msgs\/s=([0-9]+).*/\2 msgs\/s over \1 s/p' \
    "$run_dir/node-$i.log" | tail -1 || true)"
  printf 'node %d: delivered=%s digest=%s%s\n' "$i" "${delivered[$i]}" "${digest[$i]}" \
    "${rate:+  ($rate)}"
done
if ((${#failed_ids[@]} > 0)); then
  die "${#failed_ids[@]} of $nodes nodes failed (ids: ${!failed_ids[*]}); logs in $run_dir/"
fi

for ((i = 2; i <= nodes; i++)); do
  if [[ "${delivered[$i]}" != "${delivered[1]}" || "${digest[$i]}" != "${digest[1]}" ]]; then
    die "nodes disagree: node 1 delivered ${delivered[1]} (${digest[1]}), node $i delivered ${delivered[$i]} (${digest[$i]})"
  fi
done
if [[ "${delivered[1]}" != "$expect_total" ]]; then
  die "all nodes agree but delivered ${delivered[1]} of $expect_total messages"
fi
echo "all $nodes nodes delivered the same ${delivered[1]} messages in the same order (digest ${digest[1]})"
echo "(per node: messages/s from start to the last delivery; every node sent at once, $size-byte payloads, $guarantee delivery)"
