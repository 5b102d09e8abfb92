#!/usr/bin/env bash
# Runs the tkv-bench standard matrix (put 1/64 clients, get 1/64,
# get-serializable 1/64, mixed 64) against a local 3-node totemkvd cluster
# and then, one after the other, against a local 3-node etcd cluster, and
# prints both Markdown tables. Every process it starts is stopped and every
# temp dir removed, also on failure or Ctrl-C.
#
#   bench/compare.sh [--bin-dir DIR] [--only totemkvd|etcd] [--server-arg ARG]...
#                    [-- TKV_BENCH_ARGS...]
#
#   --bin-dir DIR   where tkv-bench, totemkvd and totem-keygen are (default:
#                   the repository's build/bin)
#   --only SYSTEM   run one system only
#   --server-arg A  pass A to every totemkvd (repeatable), e.g.
#                   --server-arg --totem-token-timeout-ms=200
#   -- ARGS         passed to tkv-bench, e.g. -- --duration 5 --warmup 1
#
# The load average (1 min) is printed with every run: on a shared machine
# repeat noisy runs.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="$repo/build/bin"
only=""
server_args=()
bench_args=()
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir="${2:?}"; shift 2 ;;
    --only) only="${2:?}"; shift 2 ;;
    --server-arg) server_args+=("${2:?}"); shift 2 ;;
    --) shift; bench_args=("$@"); break ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *) echo "compare: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -z "$only" || "$only" == totemkvd || "$only" == etcd ]] || {
  echo "compare: --only must be totemkvd or etcd" >&2
  exit 2
}
bench="$bin_dir/tkv-bench"
[[ -x "$bench" ]] || { echo "compare: $bench not found" >&2; exit 1; }

stop_cmd=""
cleanup() {
  if [[ -n "$stop_cmd" ]]; then
    $stop_cmd || true
    stop_cmd=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
run_system() {
  local system="$1" out
  if [[ "$system" == totemkvd ]]; then
    out="$("$repo/bench/totemkvd-cluster.sh" start --bin-dir "$bin_dir" -- ${server_args[@]+"${server_args[@]}"})"
    eval "$out"
    stop_cmd="$repo/bench/totemkvd-cluster.sh stop $DIR"
  else
    out="$("$repo/bench/etcd-cluster.sh" start)"
    eval "$out"
    stop_cmd="$repo/bench/etcd-cluster.sh stop $DIR"
  fi
  local before=() f
  if [[ "$system" == totemkvd ]]; then
    for f in "$DIR"/n*.log; do before+=("$(grep -c 'event=ring_configuration kind=regular' "$f" || true)"); done
  fi
  echo "== $system: $ENDPOINTS ($(uptime | sed 's/.*load/load/'))"
  "$bench" --endpoints "$ENDPOINTS" --label "$system" --matrix ${bench_args[@]+"${bench_args[@]}"} ||
    rc=$?
  if [[ "$system" == totemkvd ]]; then
    # A regular configuration installed during the runs is a ring
    # re-formation (nobody failed on purpose): the token timed out under load.
    local f i=0 after
    for f in "$DIR"/n*.log; do
      after=$(grep -c 'event=ring_configuration kind=regular' "$f" || true)
      echo "$(basename "$f" .log): ring re-formations during the runs: $((after - before[i]))"
      i=$((i + 1))
    done
  fi
  cleanup
}

if [[ -z "$only" || "$only" == totemkvd ]]; then run_system totemkvd; fi
if [[ -z "$only" || "$only" == etcd ]]; then run_system etcd; fi
exit "$rc"
