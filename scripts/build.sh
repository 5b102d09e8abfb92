#!/usr/bin/env bash
# Configures and builds totemkv with CMake + Ninja (+ ccache when installed).
#
#   ./scripts/build.sh [options] [-DNAME=VALUE ...] [--target T ...]
#
# Options:
#   --dir DIR        build directory (default: build, or $BUILD_DIR)
#   --target T       build only target T (repeatable; default: everything)
#   --jobs N         parallel compile jobs (default: $BUILD_JOBS, else nproc)
#   --type TYPE      CMAKE_BUILD_TYPE (default: RelWithDebInfo, or $BUILD_TYPE)
#   -DNAME=VALUE     passed to cmake as is, e.g. -DTOTEMKV_WERROR=ON
#
# Environment: TOTEMKV_WERROR, TOTEMKV_SANITIZE, TOTEMKV_BUILD_TESTS and
# TOTEMKV_BUILD_BENCH, when set, become the -D options of the same name;
# CMAKE_ARGS adds more cmake arguments (split on spaces); CCACHE_DIR is
# ccache's own (default ~/.cache/ccache).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

build_dir="${BUILD_DIR:-build}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs="${BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
targets=()
defines=()

for opt in TOTEMKV_WERROR TOTEMKV_SANITIZE TOTEMKV_BUILD_TESTS TOTEMKV_BUILD_BENCH; do
  if [[ -n "${!opt:-}" ]]; then defines+=("-D${opt}=${!opt}"); fi
done
if [[ -n "${CMAKE_ARGS:-}" ]]; then
  read -r -a extra <<<"$CMAKE_ARGS"
  defines+=("${extra[@]}")
fi

while (($#)); do
  case "$1" in
    --dir) build_dir="${2:?--dir needs a value}"; shift 2 ;;
    --target) targets+=("${2:?--target needs a value}"); shift 2 ;;
    --jobs|-j) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --type) build_type="${2:?--type needs a value}"; shift 2 ;;
    -D*) defines+=("$1"); shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

command -v cmake >/dev/null 2>&1 || die "cmake not found: run ./scripts/setup.sh first"
command -v ninja >/dev/null 2>&1 || die "ninja not found: run ./scripts/setup.sh first"

# A build dir configured with another generator cannot be reused: start it
# afresh (build dirs hold nothing but build output).
cache="$build_dir/CMakeCache.txt"
if [[ -f "$cache" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
  log "$build_dir was configured with another generator; removing it"
  rm -rf -- "$build_dir"
fi

log "configure $build_dir ($build_type${defines[*]:+ ${defines[*]}})"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${defines[@]}"

target_args=()
for t in "${targets[@]}"; do target_args+=(--target "$t"); done
log "build $build_dir${targets[*]:+ targets: ${targets[*]}} (-j$jobs)"
cmake --build "$build_dir" -j "$jobs" "${target_args[@]}"

if command -v ccache >/dev/null 2>&1 && [[ "${BUILD_CCACHE_STATS:-0}" == 1 ]]; then
  ccache --show-stats 2>/dev/null | sed 's/^/build: ccache: /' >&2 || true
fi
log "ok: $build_dir"
