#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang in their own build dir and
# runs each for a while, starting from its seed corpus (fuzz/corpus/<t>/)
# and its regressions (fuzz/regressions/<t>/). Exits non-zero at the first
# target that crashes, leaks, times out or trips a sanitizer; the input is
# saved as <dir>/artifacts/<target>-crash-*: fix the bug, then copy the
# input to fuzz/regressions/<target>/ (the regular build's ctest replays it).
#
#   ./scripts/fuzz.sh                     every target, 20 s each
#   ./scripts/fuzz.sh --time 300 op_proto one target, 5 min
#
# Options:
#   --time S      seconds per target (default 20, or $FUZZ_TIME_S)
#   --dir DIR     build directory (default build-fuzz)
#   --no-build    use the binaries already in DIR/bin
# Environment: BUILD_JOBS (compile jobs), FUZZ_ARGS (more libFuzzer flags).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

all_targets=(totem_wire repl_engine op_proto grpc_validate multi_ring)
time_s="${FUZZ_TIME_S:-20}"
dir=build-fuzz
build=1
targets=()
while (($#)); do
  case "$1" in
    --time) time_s="${2:?--time needs a value}"; shift 2 ;;
    --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *)
      [[ " ${all_targets[*]} " == *" $1 "* ]] || die "unknown target '$1' (one of: ${all_targets[*]})"
      targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

if ((build)); then
  command -v clang++ >/dev/null 2>&1 || die "clang++ not found: run ./scripts/setup.sh first"
  build_args=()
  for t in "${targets[@]}"; do build_args+=(--target "fuzz_$t"); done
  # Only the fuzz targets and what they link: the rest of the tree is not
  # needed here and would double the build time.
  # -O1 with line tables only: symbolized stacks at about half the compile
  # time of -O2 -g (the generated etcd protos dominate it).
  CC=clang CXX=clang++ ./scripts/build.sh --dir "$dir" -DTOTEMKV_BUILD_FUZZ=ON \
    -DTOTEMKV_BUILD_BENCH=OFF -DTOTEMKV_WERROR=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" "${build_args[@]}"
fi

mkdir -p "$dir/artifacts"
# Leaks are errors; a slow input (10 s) counts as a hang.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
read -r -a extra <<<"${FUZZ_ARGS:-}"
for t in "${targets[@]}"; do
  bin="$dir/bin/fuzz_$t"
  [[ -x "$bin" ]] || die "$bin is missing (build with TOTEMKV_BUILD_FUZZ=ON)"
  # A scratch corpus in the build dir: what the fuzzer finds stays out of
  # the source tree (copy inputs worth keeping to fuzz/corpus by hand).
  work="$dir/corpus/$t"
  mkdir -p "$work"
  seeds=(fuzz/corpus/"$t")
  [[ -d fuzz/regressions/$t ]] && seeds+=(fuzz/regressions/"$t")
  log "$t: ${time_s} s"
  "$bin" -max_total_time="$time_s" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$t-" "${extra[@]}" "$work" "${seeds[@]}" \
    >"$dir/artifacts/$t.log" 2>&1 || {
    tail -n 60 "$dir/artifacts/$t.log" >&2
    die "$t failed: see $dir/artifacts/$t.log; the input is $dir/artifacts/$t-*"
  }
  grep -E '^stat::number_of_executed_units|^Done' "$dir/artifacts/$t.log" | sed "s/^/fuzz: $t: /" >&2 || true
done
log "ok: ${targets[*]}"
