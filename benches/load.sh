#!/usr/bin/env bash
# Whole-stack load test: `wrk` against a trivial axum handler, bare and behind the Transak
# partner's inbound stack (origin allowlist + client IP + IP allowlist), on loopback.
#
#   bash benches/load.sh            # results printed; appended to $TOLLGATE_BENCH_RESULTS if set
#
# Settings (environment): LOAD_DURATION (default 10s per run), LOAD_CONNECTIONS (32),
# LOAD_THREADS (1), LOAD_ROUNDS (3: bare, stack, bare, stack, ..., so drift hits both alike).
# Only 127.0.0.1 is loaded; every run is bounded by its duration and the servers are stopped
# on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${LOAD_DURATION:-10s}"
connections="${LOAD_CONNECTIONS:-32}"
threads="${LOAD_THREADS:-1}"
rounds="${LOAD_ROUNDS:-3}"
results="${TOLLGATE_BENCH_RESULTS:-}"

record() {
    echo "result: $1=$2"
    if [[ -n "$results" ]]; then echo "$1=$2" >>"$results"; fi
}

if ! command -v wrk >/dev/null; then
    echo "skipping the load test: wrk not found (Debian package wrk)" >&2
    record load.skipped "wrk not found"
    exit 0
fi

cd "$root"
cargo build --release --quiet -p tollgate-benches --bin stack-server
target_dir="${CARGO_TARGET_DIR:-$root/target}"
server="$target_dir/release/stack-server"

scratch="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

started_port=""
start() { # mode; sets started_port to the port the server bound
    "$server" "$1" 0 >"$scratch/$1.port" &
    pids+=("$!")
    for _ in $(seq 1 200); do
        if [[ -s "$scratch/$1.port" ]]; then
            started_port="$(head -n1 "$scratch/$1.port")"
            return 0
        fi
        sleep 0.05
    done
    echo "the $1 server did not start" >&2
    exit 1
}

start bare
bare_port="$started_port"
start stack
stack_port="$started_port"

headers=(-H "Origin: https://app.example.com" -H "X-Forwarded-For: 203.0.113.7")

# The stack must allow the load's request and refuse a foreign origin, or the figures mean
# nothing.
check() { # expected-status url extra-curl-args...
    local expected="$1" url="$2"
    shift 2
    local got
    got="$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url")"
    if [[ "$got" != "$expected" ]]; then
        echo "expected $expected from $url, got $got" >&2
        exit 1
    fi
}
check 200 "http://127.0.0.1:$bare_port/api/ping" "${headers[@]}"
check 200 "http://127.0.0.1:$stack_port/api/ping" "${headers[@]}"
check 403 "http://127.0.0.1:$stack_port/api/ping" -H "Origin: https://evil.example" -H "X-Forwarded-For: 203.0.113.7"
check 403 "http://127.0.0.1:$stack_port/api/ping" -H "Origin: https://app.example.com" -H "X-Forwarded-For: 198.51.100.9"
acao="$(curl -s -D - -o /dev/null "${headers[@]}" "http://127.0.0.1:$stack_port/api/ping" | tr -d '\r' | awk -F': ' 'tolower($1)=="access-control-allow-origin"{print $2}')"
if [[ "$acao" != "https://app.example.com" ]]; then
    echo "the stack did not answer with Access-Control-Allow-Origin (got '$acao')" >&2
    exit 1
fi

# Latency from wrk's --latency table in microseconds.
to_us() {
    awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); print v } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000000 } else print v }'
}

declare -A total_requests=([bare]=0 [stack]=0)
declare -A total_seconds=([bare]=0 [stack]=0)
declare -A worst_p99=([bare]=0 [stack]=0)
declare -A errors=([bare]=0 [stack]=0)
for round in $(seq 1 "$rounds"); do
    for mode in bare stack; do
        port="$bare_port"
        [[ "$mode" == stack ]] && port="$stack_port"
        out="$(wrk -t"$threads" -c"$connections" -d"$duration" --latency "${headers[@]}" "http://127.0.0.1:$port/api/ping")"
        echo "== $mode, round $round"
        echo "$out"
        requests="$(awk '/requests in/ {print $1}' <<<"$out")"
        seconds="$(awk '/requests in/ {v=$4; sub(/,$/,"",v); if (v ~ /ms$/) {sub(/ms$/,"",v); v=v/1000} else if (v ~ /m$/) {sub(/m$/,"",v); v=v*60} else sub(/s$/,"",v); print v}' <<<"$out")"
        p99="$(awk '$1=="99%" {print $2}' <<<"$out" | to_us)"
        non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
        sockerr="$(awk '/Socket errors/ {print}' <<<"$out")"
        if [[ -n "$non2xx" && "$non2xx" != 0 ]]; then
            echo "the $mode server answered $non2xx non-2xx responses under load" >&2
            exit 1
        fi
        if [[ -n "$sockerr" ]]; then errors[$mode]="${errors[$mode]} $sockerr"; fi
        record "load.$mode.round$round.rps" "$(awk -v r="$requests" -v s="$seconds" 'BEGIN {printf "%.0f", r/s}')"
        record "load.$mode.round$round.p99_us" "$p99"
        total_requests[$mode]=$((total_requests[$mode] + requests))
        total_seconds[$mode]="$(awk -v a="${total_seconds[$mode]}" -v b="$seconds" 'BEGIN {print a+b}')"
        worst_p99[$mode]="$(awk -v a="${worst_p99[$mode]}" -v b="$p99" 'BEGIN {print (b>a)?b:a}')"
    done
done

for mode in bare stack; do
    record "load.$mode.rps" "$(awk -v r="${total_requests[$mode]}" -v s="${total_seconds[$mode]}" 'BEGIN {printf "%.0f", r/s}')"
    record "load.$mode.p99_us" "${worst_p99[$mode]}"
    if [[ "${errors[$mode]}" != 0 ]]; then record "load.$mode.socket_errors" "${errors[$mode]#0 }"; fi
done
record load.settings "wrk -t$threads -c$connections -d$duration --latency, $rounds rounds, server on a 1-worker Tokio runtime"
