#!/usr/bin/env bash
# Starts and stops a local totemkvd cluster on loopback for benchmarks with
# tkv-bench: real totemkvd processes, free UDP (Totem) and TCP (gRPC)
# ports, a fresh cluster key, data in a fresh temp dir, --sync=true (the
# default: every applied batch is fsynced) unless --no-sync.
#
#   bench/totemkvd-cluster.sh start [--nodes N] [--bin-dir DIR] [--no-sync] [-- ARGS...]
#       starts N members (default 3) from DIR/totemkvd (default: the
#       repository's build/bin),
#       waits until every member answers a linearizable get, and prints two
#       lines for eval:  DIR=/tmp/totemkvd-bench.XXXX  ENDPOINTS=a,b,c
#       ARGS after -- go to every totemkvd as is.
#   bench/totemkvd-cluster.sh stop DIR
#       stops the members recorded in DIR/pids (SIGTERM, then SIGKILL after
#       10 s) and removes DIR.
#
# Example:
#   eval "$(bench/totemkvd-cluster.sh start --bin-dir build/bin)"
#   build/bin/tkv-bench --endpoints "$ENDPOINTS" --label totemkvd --matrix
#   bench/totemkvd-cluster.sh stop "$DIR"
#
# Logs: DIR/nK.log. Needs python3 (to pick free ports), totem-keygen next to
# totemkvd, and etcdctl (readiness check).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'totemkvd-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# Prints N free TCP ports and then N free UDP ports on 127.0.0.1, each
# family's ports bound at once so they differ.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
out = []
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    out += [str(s.getsockname()[1]) for s in socks]
print(" ".join(out))
PY
}

stop_dir() {
  local dir="$1"
  [[ -f "$dir/pids" ]] || die "$dir/pids not found (not a directory made by '$0 start')"
  local pid pids=()
  while read -r pid; do
    [[ -n "$pid" ]] && pids+=("$pid")
  done <"$dir/pids"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "member pid $pid did not stop in 10 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf -- "$dir"
  log "stopped ${#pids[@]} member(s), removed $dir"
}

cmd="${1:-}"
[[ -n "$cmd" ]] || die "usage: $0 start [--nodes N] [--bin-dir DIR] [--no-sync] | stop DIR"
shift

case "$cmd" in
  stop)
    [[ $# -eq 1 ]] || die "usage: $0 stop DIR"
    stop_dir "$1"
    exit 0
    ;;
  start) ;;
  -h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
  *) die "unknown command '$cmd' (start or stop)" ;;
esac

nodes=3
bin_dir="$repo/build/bin"
sync=true
extra_args=()
while (($#)); do
  case "$1" in
    --nodes) nodes="${2:?}"; shift 2 ;;
    --bin-dir) bin_dir="${2:?}"; shift 2 ;;
    --no-sync) sync=false; shift ;;
    --) shift; extra_args=("$@"); break ;;
    *) die "unknown argument '$1'" ;;
  esac
done
if ! is_uint "$nodes" || ((nodes < 1 || nodes > 16)); then die "--nodes must be 1..16"; fi
server="$bin_dir/totemkvd"
keygen="$bin_dir/totem-keygen"
[[ -x "$server" ]] || die "$server not found (cmake --build <dir> --target totemkvd)"
[[ -x "$keygen" ]] || die "$keygen not found (cmake --build <dir> --target totem-keygen)"
command -v etcdctl >/dev/null || die "etcdctl not found (apt-get install etcd-client)"
server="$(cd "$(dirname "$server")" && pwd)/totemkvd"

dir="$(mktemp -d /tmp/totemkvd-bench.XXXXXX)"
read -r -a ports <<<"$(free_ports "$nodes")"
((${#ports[@]} == 2 * nodes)) || die "could not find free ports"
"$keygen" "$dir/cluster.key" >/dev/null

cluster=""
client_urls=""
endpoints=""
for ((i = 0; i < nodes; i++)); do
  name="n$((i + 1))"
  cluster+="${cluster:+,}$name=$((i + 1))@127.0.0.1:${ports[$((nodes + i))]}"
  client_urls+="${client_urls:+,}$name=http://127.0.0.1:${ports[$i]}"
  endpoints+="${endpoints:+,}127.0.0.1:${ports[$i]}"
done

: >"$dir/pids"
for ((i = 0; i < nodes; i++)); do
  name="n$((i + 1))"
  "$server" --name "$name" --data-dir "$dir/$name" \
    --listen-client-urls "http://127.0.0.1:${ports[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-client-urls "$client_urls" \
    --key-file "$dir/cluster.key" --sync "$sync" ${extra_args[@]+"${extra_args[@]}"} \
    >"$dir/$name.log" 2>&1 &
  echo $! >>"$dir/pids"
done

# Ready when every member answers a linearizable get (which needs the ring).
deadline=$((SECONDS + 30))
IFS=, read -r -a eps <<<"$endpoints"
for ep in "${eps[@]}"; do
  until ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout 1s --command-timeout 2s \
    get tkvbench-ready >/dev/null 2>&1; do
    while read -r pid; do
      if ! kill -0 "$pid" 2>/dev/null; then
        log "member pid $pid exited during start-up; logs:"
        tail -n 5 "$dir"/*.log >&2 || true
        stop_dir "$dir"
        exit 1
      fi
    done <"$dir/pids"
    if ((SECONDS >= deadline)); then
      log "member $ep not ready after 30 s; logs:"
      tail -n 5 "$dir"/*.log >&2 || true
      stop_dir "$dir"
      exit 1
    fi
    sleep 0.2
  done
done
log "$nodes member(s) ready: $endpoints (sync=$sync; data and logs in $dir)"
echo "DIR=$dir"
echo "ENDPOINTS=$endpoints"
