#!/usr/bin/env bash
# Sets up, builds and starts a local 3-node totemkvd cluster on loopback, in
# the background, then shows it working with tkv and etcdctl. The cluster
# keeps running until `./scripts/local-cluster.sh stop`; its data survives
# a stop and the next start.
#
#   ./scripts/local-cluster.sh [start] [options]   set up, build, start, demo
#   ./scripts/local-cluster.sh status              which nodes run, endpoint table
#   ./scripts/local-cluster.sh stop                stop every node (SIGTERM, wait)
#   ./scripts/local-cluster.sh --ring-demo [...]   the Totem ring demo instead
#                                                  (scripts/ring-demo.sh)
#
# Options (start):
#   --fresh            wipe the cluster's data, key and ports first
#   --no-setup         skip scripts/setup.sh
#   --no-build         skip the build (use the binaries already built)
#   --no-demo          only start and wait; no demo commands
#   --bin-dir DIR      where totemkvd, tkv and totem-keygen are (default
#                      $BUILD_DIR/bin, else build/bin)
#   --run-dir DIR      data, logs, key, pid files (default run/cluster)
#   --timeout-s S      give up waiting for the cluster after S seconds (default 30)
#
# Nodes n1, n2, n3 (Totem node ids 1..3) listen for clients on 127.0.0.1
# ports 2379, 22379, 32379 (etcd's local-cluster ports) and talk Totem over
# UDP on 12380, 22380, 32380 (not 2380: that is the Totem port of a
# single-node totemkvd started without --initial-cluster, as tests do).
# When one of those is taken, free ports are picked instead; the ports in use are saved in RUN_DIR/cluster.env and kept
# for later starts. RUN_DIR holds per node nK/ (data), nK.log and nK.pid,
# and the generated cluster key cluster.key.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

nodes=3
command=start
fresh=0
do_setup=1
do_build=1
do_demo=1
bin_dir="${BUILD_DIR:-build}/bin"  # scripts/build.sh builds into $BUILD_DIR too
run_dir=run/cluster
timeout_s=30

if (($#)) && [[ "$1" == "--ring-demo" ]]; then
  shift
  exec ./scripts/ring-demo.sh "$@"
fi
if (($#)); then
  case "$1" in
    start|stop|status) command="$1"; shift ;;
  esac
fi
while (($#)); do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --no-setup) do_setup=0; shift ;;
    --no-build) do_build=0; shift ;;
    --no-demo) do_demo=0; shift ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a value}"; shift 2 ;;
    --run-dir) run_dir="${2:?--run-dir needs a value}"; shift 2 ;;
    --timeout-s) timeout_s="${2:?--timeout-s needs a value}"; shift 2 ;;
    --ring-demo) die "--ring-demo must come first: ./scripts/local-cluster.sh --ring-demo [options]" ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
if ! is_uint "$timeout_s" || ((timeout_s < 1)); then die "--timeout-s must be a positive number"; fi

server_bin="$bin_dir/totemkvd"
tkv_bin="$bin_dir/tkv"
keygen_bin="$bin_dir/totem-keygen"
env_file="$run_dir/cluster.env"
key_file="$run_dir/cluster.key"

# ------------------------------------------------------------ processes

pid_file() { printf '%s/n%d.pid' "$run_dir" "$1"; }

# Prints the pid of node $1 when it runs (a live totemkvd with that pid
# file), else nothing. A stale pid file (the process is gone, or the pid now
# belongs to another program) counts as not running.
node_pid() {
  local f pid
  f="$(pid_file "$1")"
  [[ -f "$f" ]] || return 0
  pid="$(<"$f")"
  is_uint "$pid" || return 0
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--name n$1 --data-dir $run_dir/n$1 "; then
    printf '%s\n' "$pid"
  fi
}

running_count() {
  local i c=0
  for ((i = 1; i <= nodes; i++)); do [[ -n "$(node_pid "$i")" ]] && c=$((c + 1)); done
  printf '%d\n' "$c"
}

stop_cluster() {
  local i pid pids=() deadline
  for ((i = 1; i <= nodes; i++)); do
    pid="$(node_pid "$i")"
    if [[ -n "$pid" ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "n$i (pid $pid): SIGTERM"
    fi
  done
  if ((${#pids[@]} == 0)); then
    log "no node is running"
    rm -f "$run_dir"/n*.pid
    return 0
  fi
  deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not exit within 15 s of SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$run_dir"/n*.pid
  log "stopped ${#pids[@]} node(s); data kept in $run_dir (start again: ./scripts/local-cluster.sh)"
}

# ------------------------------------------------------------ ports

# The first free port set: etcd's defaults when free, else free ones from
# the kernel. Prints "C1 C2 C3 P1 P2 P3" (client TCP ports, Totem UDP ports).
pick_ports() {
  python3 - "$nodes" <<'PY'
import socket, sys
n = int(sys.argv[1])
defaults_tcp = [2379, 22379, 32379][:n]
defaults_udp = [12380, 22380, 32380][:n]

def free(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

if all(free(p, socket.SOCK_STREAM) for p in defaults_tcp) and \
   all(free(p, socket.SOCK_DGRAM) for p in defaults_udp):
    print(" ".join(map(str, defaults_tcp + defaults_udp)))
    sys.exit(0)
# Bind them all at once (so they differ), then release them.
socks = []
for kind in [socket.SOCK_STREAM] * n + [socket.SOCK_DGRAM] * n:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# Which of the ports in cluster.env are taken now; prints them.
busy_ports() {
  python3 - "${client_ports[@]}" -- "${udp_ports[@]}" <<'PY'
import socket, sys
args = sys.argv[1:]
sep = args.index("--")
busy = []
for port, kind in [(int(p), socket.SOCK_STREAM) for p in args[:sep]] + \
                  [(int(p), socket.SOCK_DGRAM) for p in args[sep + 1:]]:
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        busy.append(("tcp/" if kind == socket.SOCK_STREAM else "udp/") + str(port))
    finally:
        s.close()
print(" ".join(busy))
PY
}

load_env() {
  [[ -f "$env_file" ]] || return 1
  # shellcheck disable=SC1090
  source "$env_file"
  read -r -a client_ports <<<"${CLIENT_PORTS:-}"
  read -r -a udp_ports <<<"${TOTEM_PORTS:-}"
  ((${#client_ports[@]} == nodes && ${#udp_ports[@]} == nodes)) ||
    die "$env_file is damaged; start afresh with --fresh"
}

endpoints_csv() {
  local i out=""
  for ((i = 0; i < nodes; i++)); do out+="${out:+,}127.0.0.1:${client_ports[i]}"; done
  printf '%s\n' "$out"
}

# ------------------------------------------------------------ readiness

# True when every endpoint answers Maintenance.Status and all report the
# same Totem configuration (leader = its representative, raft_term = its
# ring sequence): then all nodes are in one ring, and a write at one node is
# seen at every other.
cluster_ready() {
  local out
  out="$(ETCDCTL_API=3 etcdctl --dial-timeout=1s --command-timeout=2s \
    --endpoints="$(endpoints_csv)" endpoint status -w json 2>/dev/null)" || return 1
  python3 -c '
import json, sys
rows = json.load(sys.stdin)
n = int(sys.argv[1])
rings = {(r["Status"].get("leader", 0), r["Status"]["header"].get("raft_term", 0)) for r in rows}
sys.exit(0 if len(rows) == n and len(rings) == 1 and (0, 0) not in rings else 1)
' "$nodes" <<<"$out" 2>/dev/null
}

print_usage_hint() {
  local eps
  eps="$(endpoints_csv)"
  cat <<EOF

The cluster runs in the background (data and logs in $run_dir/). Use it:

  export TKV_ENDPOINTS=$eps     # read by tkv
  $tkv_bin put mykey myvalue
  $tkv_bin get mykey
  $tkv_bin status

  export ETCDCTL_API=3 ENDPOINTS=$eps
  etcdctl --endpoints=\$ENDPOINTS put foo bar
  etcdctl --endpoints=\$ENDPOINTS get foo
  etcdctl --endpoints=\$ENDPOINTS endpoint status -w table

  ./scripts/local-cluster.sh status    # which nodes run
  ./scripts/local-cluster.sh stop      # stop it (data is kept; --fresh on start wipes it)
EOF
}

# Runs and echoes one demo command.
demo() {
  local arg shown=""
  for arg in "$@"; do
    if [[ "$arg" == *" "* ]]; then shown+=" \"$arg\""; else shown+=" $arg"; fi
  done
  printf '\n$%s\n' "$shown"
  "$@"
}

# ------------------------------------------------------------ commands

case "$command" in
  stop)
    stop_cluster
    exit 0
    ;;
  status)
    load_env || { log "no cluster in $run_dir (start one: ./scripts/local-cluster.sh)"; exit 1; }
    up=0
    for ((i = 1; i <= nodes; i++)); do
      pid="$(node_pid "$i")"
      if [[ -n "$pid" ]]; then
        up=$((up + 1))
        printf 'n%d: running, pid %s, client 127.0.0.1:%s, Totem udp 127.0.0.1:%s, log %s/n%d.log\n' \
          "$i" "$pid" "${client_ports[i - 1]}" "${udp_ports[i - 1]}" "$run_dir" "$i"
      else
        printf 'n%d: stopped (client port %s)\n' "$i" "${client_ports[i - 1]}"
      fi
    done
    if ((up > 0)) && command -v etcdctl >/dev/null 2>&1; then
      ETCDCTL_API=3 etcdctl --dial-timeout=1s --command-timeout=3s --endpoints="$(endpoints_csv)" \
        endpoint status -w table 2>/dev/null || true
    fi
    ((up == nodes)) || exit 1
    exit 0
    ;;
esac

# start
if ((fresh)); then
  if (($(running_count) > 0)); then stop_cluster; fi
  log "--fresh: removing $run_dir"
  rm -rf -- "$run_dir"
fi

if ((do_setup)); then ./scripts/setup.sh; fi
if ((do_build)); then ./scripts/build.sh --target totemkvd --target tkv --target totem-keygen; fi
for b in "$server_bin" "$tkv_bin" "$keygen_bin"; do
  [[ -x "$b" ]] || die "$b not found (build it: ./scripts/build.sh --target totemkvd --target tkv --target totem-keygen)"
done
command -v etcdctl >/dev/null 2>&1 || die "etcdctl not found (Debian package etcd-client: ./scripts/setup.sh)"

mkdir -p "$run_dir"
if ! load_env; then
  read -r -a ports <<<"$(pick_ports)"
  ((${#ports[@]} == 2 * nodes)) || die "could not find free ports"
  client_ports=("${ports[@]:0:nodes}")
  udp_ports=("${ports[@]:nodes:nodes}")
  printf 'CLIENT_PORTS="%s"\nTOTEM_PORTS="%s"\n' "${client_ports[*]}" "${udp_ports[*]}" >"$env_file"
fi
if [[ ! -f "$key_file" ]]; then
  "$keygen_bin" "$key_file" >/dev/null
  log "new cluster key: $key_file"
fi

running="$(running_count)"
if ((running == nodes)); then
  log "the cluster is already running (./scripts/local-cluster.sh status | stop)"
  print_usage_hint
  exit 0
fi

if ((running == 0)); then
  busy="$(busy_ports)"
  [[ -z "$busy" ]] ||
    die "ports $busy (saved in $env_file) are in use by another program; stop it, or start afresh with --fresh"
fi

initial_cluster=""
client_urls=""
for ((i = 1; i <= nodes; i++)); do
  initial_cluster+="${initial_cluster:+,}n$i=$i@127.0.0.1:${udp_ports[i - 1]}"
  client_urls+="${client_urls:+,}n$i=http://127.0.0.1:${client_ports[i - 1]}"
done

for ((i = 1; i <= nodes; i++)); do
  if [[ -n "$(node_pid "$i")" ]]; then
    log "n$i already runs (pid $(node_pid "$i"))"
    continue
  fi
  # setsid: the nodes outlive this script and a Ctrl-C at its terminal.
  setsid "$server_bin" --name "n$i" --data-dir "$run_dir/n$i" \
    --listen-client-urls "http://127.0.0.1:${client_ports[i - 1]}" \
    --initial-cluster "$initial_cluster" --initial-cluster-client-urls "$client_urls" \
    --key-file "$key_file" </dev/null >>"$run_dir/n$i.log" 2>&1 &
  echo "$!" >"$(pid_file "$i")"
  log "n$i: pid $!, client 127.0.0.1:${client_ports[i - 1]}, Totem udp 127.0.0.1:${udp_ports[i - 1]}, log $run_dir/n$i.log"
done

log "waiting (up to ${timeout_s} s) until every node answers and all are in one Totem ring"
deadline=$((SECONDS + timeout_s))
until cluster_ready; do
  for ((i = 1; i <= nodes; i++)); do
    if [[ -z "$(node_pid "$i")" ]]; then
      log "n$i exited; last lines of $run_dir/n$i.log:"
      tail -n 10 "$run_dir/n$i.log" >&2 || true
      stop_cluster
      die "n$i failed to start"
    fi
  done
  if ((SECONDS >= deadline)); then
    for ((i = 1; i <= nodes; i++)); do
      log "last lines of $run_dir/n$i.log:"
      tail -n 5 "$run_dir/n$i.log" >&2 || true
    done
    die "the cluster did not come up within $timeout_s s (nodes left running: ./scripts/local-cluster.sh stop)"
  fi
  sleep 0.2
done
log "cluster up: $(endpoints_csv)"

if ((do_demo)); then
  export ETCDCTL_API=3
  ep() { printf '127.0.0.1:%s' "${client_ports[$1 - 1]}"; }
  all="$(endpoints_csv)"
  demo "$tkv_bin" --endpoints="$(ep 1)" put greeting "hello from n1"
  demo "$tkv_bin" --endpoints="$(ep 2)" get greeting
  demo etcdctl --endpoints="$(ep 3)" put etcdctl/says "hello from n3"
  demo etcdctl --endpoints="$(ep 1)" get --prefix etcdctl/
  demo etcdctl --endpoints="$all" member list -w table
  demo etcdctl --endpoints="$all" endpoint status -w table
fi
print_usage_hint
