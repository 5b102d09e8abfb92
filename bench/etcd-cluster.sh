#!/usr/bin/env bash
# Starts and stops a local etcd cluster (Debian etcd-server: /usr/bin/etcd
# 3.4) on loopback for side-by-side benchmarks with tkv-bench: free ports,
# data in a fresh temp dir, fsync on (etcd 3.4 has no switch to turn it off).
#
#   bench/etcd-cluster.sh start [--nodes N] [--etcd PATH]
#       starts N members (default 3), waits until every member is healthy and
#       prints two lines for eval:  DIR=/tmp/etcd-bench.XXXX  ENDPOINTS=a,b,c
#   bench/etcd-cluster.sh stop DIR
#       stops the members recorded in DIR/pids (SIGTERM, then SIGKILL after
#       10 s) and removes DIR.
#
# Example:
#   eval "$(bench/etcd-cluster.sh start)"
#   build/bin/tkv-bench --endpoints "$ENDPOINTS" --label etcd --matrix
#   bench/etcd-cluster.sh stop "$DIR"
#
# Logs: DIR/mK.log. Needs python3 (to pick free ports) and etcdctl (health).
set -euo pipefail

log() { printf 'etcd-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# Prints N free TCP ports on 127.0.0.1, all bound at once so they differ.
free_tcp_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
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
[[ -n "$cmd" ]] || die "usage: $0 start [--nodes N] [--etcd PATH] | stop DIR"
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
etcd_bin=/usr/bin/etcd
while (($#)); do
  case "$1" in
    --nodes) nodes="${2:?}"; shift 2 ;;
    --etcd) etcd_bin="${2:?}"; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
if ! is_uint "$nodes" || ((nodes < 1 || nodes > 9)); then die "--nodes must be 1..9"; fi
[[ -x "$etcd_bin" ]] || die "$etcd_bin not found (apt-get install etcd-server)"
command -v etcdctl >/dev/null || die "etcdctl not found (apt-get install etcd-client)"

dir="$(mktemp -d /tmp/etcd-bench.XXXXXX)"
read -r -a ports <<<"$(free_tcp_ports $((2 * nodes)))"
((${#ports[@]} == 2 * nodes)) || die "could not find free ports"

cluster=""
endpoints=""
for ((i = 0; i < nodes; i++)); do
  peer="http://127.0.0.1:${ports[$((2 * i + 1))]}"
  cluster+="${cluster:+,}m$((i + 1))=$peer"
  endpoints+="${endpoints:+,}127.0.0.1:${ports[$((2 * i))]}"
done

: >"$dir/pids"
for ((i = 0; i < nodes; i++)); do
  name="m$((i + 1))"
  client="http://127.0.0.1:${ports[$((2 * i))]}"
  peer="http://127.0.0.1:${ports[$((2 * i + 1))]}"
  "$etcd_bin" --name "$name" --data-dir "$dir/$name.etcd" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --initial-cluster-token "bench-$$" \
    --initial-cluster-state new --logger zap --log-level warn \
    >"$dir/$name.log" 2>&1 &
  echo $! >>"$dir/pids"
done

deadline=$((SECONDS + 30))
until ETCDCTL_API=3 etcdctl --endpoints "$endpoints" --dial-timeout 1s --command-timeout 2s \
  endpoint health >/dev/null 2>&1; do
  while read -r pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "member pid $pid exited during start-up; logs:"
      tail -n 5 "$dir"/*.log >&2 || true
      stop_dir "$dir"
      exit 1
    fi
  done <"$dir/pids"
  if ((SECONDS >= deadline)); then
    log "cluster not healthy after 30 s; logs:"
    tail -n 5 "$dir"/*.log >&2 || true
    stop_dir "$dir"
    exit 1
  fi
  sleep 0.2
done
log "$nodes member(s) healthy: $endpoints (data and logs in $dir)"
echo "DIR=$dir"
echo "ENDPOINTS=$endpoints"
