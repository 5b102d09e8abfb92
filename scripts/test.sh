#!/usr/bin/env bash
# THE test command of totemkv (what CI runs, through .ci/run):
#
#   ./scripts/test.sh           set up, build with -Werror, run every test
#                               (unit, sim, integration, slow), then build with
#                               ASan+UBSan in build-asan and run unit + sim there,
#                               then build the libFuzzer targets with clang in
#                               build-fuzz and run each briefly (scripts/fuzz.sh)
#   ./scripts/test.sh --quick   same build, ctest -LE slow, no sanitizer or fuzz build
#
# Options:
#   --quick          skip tests labelled "slow" and the sanitizer build
#   --no-setup       do not run scripts/setup.sh (packages already there)
#   --no-asan        skip the sanitizer build even in a full run
#   --no-fuzz        skip the fuzz build and runs even in a full run
#
# Environment: TEST_JOBS (ctest -j, default 2), BUILD_JOBS (compile jobs,
# default nproc), TEST_TIMEOUT_S (default per-test timeout, default 600),
# FUZZ_TIME_S (seconds per fuzz target, default 16).
# Exits non-zero if any phase fails; the last lines are a summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
setup=1
asan=1
fuzz=1
while (($#)); do
  case "$1" in
    --quick) quick=1; asan=0; fuzz=0 ;;
    --no-setup) setup=0 ;;
    --no-asan) asan=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) printf 'test: unknown argument %s (try --help)\n' "$1" >&2; exit 2 ;;
  esac
  shift
done

test_jobs="${TEST_JOBS:-2}"
test_timeout_s="${TEST_TIMEOUT_S:-600}"
start_all=$SECONDS

# Sanitizers: stop at the first report, with a stack, so ctest marks the test
# failed and the log says why.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

summary=()   # one line per phase
failed=0
total_passed=0
total_failed=0
ran_ctest=0

banner() { printf '\n==== test: %s ====\n' "$*"; }
fmt_s() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run_phase NAME COMMAND...: runs the command, records its time and outcome.
run_phase() {
  local name="$1"; shift
  banner "$name"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  if ((rc == 0)); then
    summary+=("$(printf '  %-12s %8s  ok' "$name" "$(fmt_s "$dt")")")
  else
    summary+=("$(printf '  %-12s %8s  FAILED (exit %d)' "$name" "$(fmt_s "$dt")" "$rc")")
    failed=1
  fi
  printf '==== test: %s: %s in %s ====\n' "$name" "$([[ $rc == 0 ]] && echo ok || echo FAILED)" "$(fmt_s "$dt")"
  return "$rc"
}

# run_ctest BUILD_DIR LOG CTEST_ARGS...: runs ctest, keeps its output in LOG
# and adds its counts to the totals.
# shellcheck disable=SC2317  # called through run_phase
run_ctest() {
  local dir="$1" log="$2"; shift 2
  local rc=0
  ran_ctest=1
  ctest --test-dir "$dir" --output-on-failure --no-tests=error \
    -j "$test_jobs" --timeout "$test_timeout_s" "$@" 2>&1 | tee "$log" || rc=$?
  # "100% tests passed, 0 tests failed out of 42"
  local line
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)"
  if [[ -n "$line" ]]; then
    local nfail ntotal
    nfail="$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")"
    ntotal="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")"
    total_passed=$((total_passed + ntotal - nfail))
    total_failed=$((total_failed + nfail))
  fi
  return "$rc"
}

# The labels ctest knows in a configured build dir, one a line.
labels_of() {
  ctest --test-dir "$1" --print-labels 2>/dev/null | sed -n '/^All Labels:/,$p' | tail -n +2 |
    sed -E 's/^[[:space:]]+//' | grep -v '^$' || true
}

finish() {
  local total=$((SECONDS - start_all))
  printf '\n==== test: summary (%s run) ====\n' "$([[ $quick == 1 ]] && echo quick || echo full)"
  printf '%s\n' "${summary[@]}"
  if ((ran_ctest)); then
    printf 'tests: %d passed, %d failed\n' "$total_passed" "$total_failed"
  fi
  if ((failed)); then
    printf 'test.sh: FAILED in %s\n' "$(fmt_s "$total")"
    exit 1
  fi
  printf 'test.sh: PASSED in %s\n' "$(fmt_s "$total")"
  exit 0
}

if ((setup)); then
  run_phase setup ./scripts/setup.sh || finish
fi

run_phase build ./scripts/build.sh --dir build -DTOTEMKV_WERROR=ON || finish

if ((quick)); then
  run_phase test run_ctest build build/ctest.log -LE slow || true
else
  run_phase test run_ctest build build/ctest.log || true
fi

if ((asan)); then
  if run_phase asan-build ./scripts/build.sh --dir build-asan \
      -DTOTEMKV_SANITIZE=ON -DTOTEMKV_BUILD_BENCH=OFF -DTOTEMKV_WERROR=OFF; then
    # A reduced simulator set when the tests offer one (label sim-quick);
    # otherwise every sim test that is not also labelled slow.
    if labels_of build-asan | grep -qx 'sim-quick'; then
      asan_args=(-L '^(unit|sim-quick)$')
    else
      asan_args=(-L '^(unit|sim)$' -LE '^slow$')
    fi
    run_phase asan-test run_ctest build-asan build-asan/ctest.log "${asan_args[@]}" || true
  fi
fi

# libFuzzer targets (fuzz/): clang build of only their dependencies, then
# each target for FUZZ_TIME_S from its seed corpus and regressions.
if ((fuzz)); then
  run_phase fuzz ./scripts/fuzz.sh --dir build-fuzz --time "${FUZZ_TIME_S:-16}" || true
fi

finish
