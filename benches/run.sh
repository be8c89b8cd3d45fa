#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md at the repository root:
#
#   bash benches/run.sh
#
# = `cargo bench -p tollgate-benches` (criterion; origin, client IP, signature, Tranzila,
# replay stores with a local redis-server) + `bash benches/load.sh` (wrk, whole stack), then
# `bench-report`, which reads criterion's medians and the results file and adds
# `benches/notes.md`. About 10 minutes on 2 cores once built. Needs redis-server,
# redis-benchmark, wrk and h2load (Debian packages redis-server, redis-tools, wrk,
# nghttp2-client); a missing one is reported as skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/tollgate-bench"
mkdir -p "$out"
results="$out/results.txt"
meta="$out/meta.txt"
: >"$results"
export TOLLGATE_BENCH_RESULTS="$results"

command="cargo bench -p tollgate-benches"
cargo bench -p tollgate-benches --no-run
$command
bash benches/load.sh

first_line() { "$@" 2>/dev/null | head -n1 || true; }
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M')"
    echo "machine=$(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^[ \t]+/, "", $2); print $2; exit}')"
    echo "cores=$(nproc)"
    echo "memory=$(free -h 2>/dev/null | awk '/^Mem:/ {print $2}')"
    echo "kernel=$(uname -sr)"
    echo "rustc=$(rustc -V)"
    echo "redis=$(first_line redis-server --version | awk '{print $3}')"
    echo "wrk=$(first_line wrk --version | awk '{print $2}')"
    echo "h2load=$(first_line h2load --version | awk '{print $NF}')"
    echo "load=load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) at the end of the run"
    echo "command=$command"
} >"$meta"

cargo run --release --quiet -p tollgate-benches --bin bench-report -- \
    "$target_dir/criterion" "$results" "$meta" benches/notes.md BENCHMARKS.md
