#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fuzzes the MIME parser with libFuzzer for a while.
#   scripts/fuzz.sh [SECONDS]      default 300; `make test` runs 60
#
# Configures and builds build-fuzz with clang (ASan+UBSan+libFuzzer, target
# fuzz_mime only), then fuzzes starting from tests/fuzz/corpus/mime with
# tests/fuzz/mime.dict. Inputs that find new coverage accumulate in
# build-fuzz/corpus-mime (a working copy: the seeds in git are not
# touched), so later runs go on from there. No network; the run ends after
# SECONDS (plus the build), with a hard stop shortly after in case a hang
# gets past libFuzzer's per-input -timeout.
#
# Exit 0 when nothing was found. Otherwise non-zero, with the reproducer
# (crash-*, leak-*, timeout-*, oom-*) under build-fuzz/fuzz-artifacts/ and
# the commands to replay and minimize it. A reproducer worth keeping goes
# into tests/fuzz/corpus/mime/, where the fuzz/replay CTest test runs it.
# Environment: MR_FUZZ_BUILD (build dir), MR_FUZZ_JOBS (build jobs),
# MR_FUZZ_VERBOSE=1 (stream libFuzzer's output instead of a log file).
set -euo pipefail

secs=${1:-300}
case "$secs" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 64 ;;
esac
[ "$secs" -ge 1 ] || secs=1

root=$(cd "$(dirname "$0")/.." && pwd)
build=${MR_FUZZ_BUILD:-$root/build-fuzz}
jobs=${MR_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
seeds=$root/tests/fuzz/corpus/mime
dict=$root/tests/fuzz/mime.dict

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found (scripts/deps.sh --test installs it)" >&2
  exit 1
fi

echo "fuzz.sh: building $build (clang, libFuzzer, ASan+UBSan)"
mkdir -p "$build"
if ! CC=clang cmake -S "$root" -B "$build" -DMR_FUZZ=ON -DMR_SANITIZE=ON \
       -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "fuzz.sh: configure failed" >&2
  exit 1
fi
cmake --build "$build" --target fuzz_mime -j "$jobs"

corpus=$build/corpus-mime
artifacts=$build/fuzz-artifacts
log=$build/fuzz.log
mkdir -p "$corpus" "$artifacts"
cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
# Artifacts of an earlier run would be reported again: keep them apart.
if compgen -G "$artifacts/*" >/dev/null; then
  old=$artifacts.old
  mkdir -p "$old"
  mv "$artifacts"/* "$old"/
  echo "fuzz.sh: earlier artifacts moved to $old"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "fuzz.sh: fuzzing fuzz_mime for ${secs}s ($(ls "$corpus" | wc -l) inputs to start)"
args=(-max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10
      -dict="$dict" -artifact_prefix="$artifacts/" -print_final_stats=1
      "$corpus")
rc=0
if [ "${MR_FUZZ_VERBOSE:-0}" = 1 ]; then
  timeout -k 10 $((secs + 120)) "$build/tests/fuzz/fuzz_mime" "${args[@]}" \
    2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
else
  timeout -k 10 $((secs + 120)) "$build/tests/fuzz/fuzz_mime" "${args[@]}" \
    >"$log" 2>&1 || rc=$?
fi

found=$(ls "$artifacts" 2>/dev/null || true)
if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' \
    "$log" || true
  echo "fuzz.sh: OK, nothing found in ${secs}s; corpus now $(ls "$corpus" | wc -l) inputs"
  exit 0
fi

echo "fuzz.sh: FAILED (fuzzer exit $rc); log: $log" >&2
grep -E -A40 '^==[0-9]+==ERROR|runtime error|invariant broken|ALARM|out-of-memory|deadly signal' \
  "$log" | cut -c1-300 | head -80 >&2 || tail -40 "$log" >&2
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "fuzz.sh: the fuzzer did not stop in time (killed)" >&2
fi
for f in $found; do
  echo "fuzz.sh: reproducer: $artifacts/$f" >&2
done
if [ -n "$found" ]; then
  echo "fuzz.sh: replay:   $build/tests/fuzz/fuzz_mime $artifacts/<file>" >&2
  echo "fuzz.sh: minimize: $build/tests/fuzz/fuzz_mime -minimize_crash=1 -runs=10000 $artifacts/<file>" >&2
fi
[ "$rc" -ne 0 ] || rc=1
exit "$rc"
