#!/usr/bin/env bash
# Whole-stack load test on loopback: a trivial axum handler, bare, behind the Transak
# partner's inbound stack (origin allowlist + client IP + IP allowlist), and behind the same
# rules written by hand as one small service (`handwritten`: the floor to compare the stack
# with), over HTTP/1.1 (`wrk`) and HTTP/2 with prior knowledge (`h2load`), on a server with 1
# and with 4 worker threads.
#
#   bash benches/load.sh            # results printed; appended to $TOLLGATE_BENCH_RESULTS if set
#
# Settings (environment):
#   LOAD_DURATION      per run, default 10s
#   LOAD_ROUNDS        default 3; bare, stack and handwritten take turns in every round, and
#                      which goes first rotates from round to round, so drift hits all alike
#   LOAD_WORKERS       server worker threads to measure, default "1 4"
#   LOAD_PROTOCOLS     default "h1 h2"
#   LOAD_CONNECTIONS   HTTP/1.1 connections (one request in flight each), default 32
#   LOAD_H2_CONNECTIONS, LOAD_H2_STREAMS
#                      HTTP/2 connections and streams in flight on each, default 4 and 8
#   LOAD_THREADS       wrk/h2load threads; default 1, or up to 4 when the load generator has
#                      cores of its own
# With more than 2 cores, the servers are pinned (`taskset`) to the first half of the cores this
# script may use and the load generator to the other half; with 2 or fewer nothing is pinned.
# What was done is printed and recorded as `load.pinning`. A missing `wrk` or `h2load` (Debian
# packages wrk and nghttp2-client) skips its protocol, reported as skipped. Only 127.0.0.1 is
# loaded; every run is bounded by its duration and the servers are stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${LOAD_DURATION:-10s}"
rounds="${LOAD_ROUNDS:-3}"
workers_list="${LOAD_WORKERS:-1 4}"
protocols="${LOAD_PROTOCOLS:-h1 h2}"
connections="${LOAD_CONNECTIONS:-32}"
h2_connections="${LOAD_H2_CONNECTIONS:-4}"
h2_streams="${LOAD_H2_STREAMS:-8}"
results="${TOLLGATE_BENCH_RESULTS:-}"

record() {
    echo "result: $1=$2"
    if [[ -n "$results" ]]; then echo "$1=$2" >>"$results"; fi
}

# Which protocols can run here.
runnable=()
for protocol in $protocols; do
    case "$protocol" in
    h1)
        if command -v wrk >/dev/null; then
            runnable+=(h1)
        else
            echo "skipping HTTP/1.1: wrk not found (Debian package wrk)" >&2
            record load.h1.skipped "wrk not found"
        fi
        ;;
    h2)
        if command -v h2load >/dev/null; then
            runnable+=(h2)
        else
            echo "skipping HTTP/2: h2load not found (Debian package nghttp2-client)" >&2
            record load.h2.skipped "h2load not found"
        fi
        ;;
    *)
        echo "unknown protocol '$protocol' in LOAD_PROTOCOLS (h1, h2)" >&2
        exit 2
        ;;
    esac
done
if [[ ${#runnable[@]} == 0 ]]; then
    echo "skipping the load test: neither wrk nor h2load found" >&2
    record load.skipped "wrk and h2load not found"
    exit 0
fi
for workers in $workers_list; do
    if ! [[ "$workers" =~ ^[1-9][0-9]?$ ]]; then
        echo "LOAD_WORKERS must list numbers from 1 to 64, got '$workers'" >&2
        exit 2
    fi
done

# Pinning: the cores this script may run on (its affinity list), split in two halves.
expand_cpus() { # "0-3,8,10-11" -> "0 1 2 3 8 10 11"
    local part out=()
    IFS=',' read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then
            out+=($(seq "${part%-*}" "${part#*-}"))
        else
            out+=("$part")
        fi
    done
    echo "${out[@]}"
}
cpus=()
if command -v taskset >/dev/null; then
    read -ra cpus <<<"$(expand_cpus "$(taskset -cp $$ | awk -F': ' '{print $2}' | tr -d ' ')")"
fi
server_pin=()
load_pin=()
if ((${#cpus[@]} > 2)); then
    half=$((${#cpus[@]} / 2))
    server_cpus="$(IFS=,; echo "${cpus[*]:0:$half}")"
    load_cpus="$(IFS=,; echo "${cpus[*]:$half}")"
    server_pin=(taskset -c "$server_cpus")
    load_pin=(taskset -c "$load_cpus")
    pinning="server on cores $server_cpus, load generator on cores $load_cpus"
    load_cores=$((${#cpus[@]} - half))
    threads="${LOAD_THREADS:-$((load_cores < 4 ? load_cores : 4))}"
else
    pinning="not pinned (${#cpus[@]} cores)"
    if ((${#cpus[@]} == 0)); then pinning="not pinned (taskset not found)"; fi
    threads="${LOAD_THREADS:-1}"
fi
# h2load wants at least one connection per thread.
h2_threads=$((threads < h2_connections ? threads : h2_connections))
echo "load: $pinning"

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

declare -A port server_pid
start() { # mode workers; records the port the server bound in port[mode.workers]
    local name="$1.$2"
    "${server_pin[@]}" "$server" "$1" 0 "$2" >"$scratch/$name.port" &
    pids+=("$!")
    server_pid[$name]="$!"
    for _ in $(seq 1 200); do
        if [[ -s "$scratch/$name.port" ]]; then
            port[$name]="$(head -n1 "$scratch/$name.port")"
            return 0
        fi
        sleep 0.05
    done
    echo "the $1 server with $2 worker(s) did not start" >&2
    exit 1
}
for workers in $workers_list; do
    start bare "$workers"
    start stack "$workers"
    start handwritten "$workers"
done

allowed=(-H "Origin: https://app.example.com" -H "X-Forwarded-For: 203.0.113.7")

# The stack must allow the load's request and refuse a foreign origin and a client outside the
# allowlist, on every server and protocol measured, or the figures mean nothing.
curl_version() { # h1|h2 -> curl's flag and the %{http_version} expected
    if [[ "$1" == h2 ]]; then echo "--http2-prior-knowledge 2"; else echo "--http1.1 1.1"; fi
}
check() { # protocol expected-status url extra-curl-args...
    local protocol="$1" expected="$2" url="$3"
    shift 3
    local flag want got
    read -r flag want <<<"$(curl_version "$protocol")"
    got="$(curl -s -o /dev/null -w '%{http_code} %{http_version}' "$flag" "$@" "$url")"
    if [[ "$got" != "$expected $want" ]]; then
        echo "expected $expected over HTTP/$want from $url, got '$got' (status, HTTP version)" >&2
        exit 1
    fi
}
for workers in $workers_list; do
    for protocol in "${runnable[@]}"; do
        bare_url="http://127.0.0.1:${port[bare.$workers]}/api/ping"
        check "$protocol" 200 "$bare_url" "${allowed[@]}"
        for mode in stack handwritten; do
            url="http://127.0.0.1:${port[$mode.$workers]}/api/ping"
            check "$protocol" 200 "$url" "${allowed[@]}"
            check "$protocol" 403 "$url" -H "Origin: https://evil.example" -H "X-Forwarded-For: 203.0.113.7"
            check "$protocol" 403 "$url" -H "Origin: https://app.example.com" -H "X-Forwarded-For: 198.51.100.9"
            read -r flag _ <<<"$(curl_version "$protocol")"
            acao="$(curl -s -D - -o /dev/null "$flag" "${allowed[@]}" "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="access-control-allow-origin"{print $2}')"
            if [[ "$acao" != "https://app.example.com" ]]; then
                echo "the $mode server ($protocol, $workers worker(s)) did not answer with Access-Control-Allow-Origin (got '$acao')" >&2
                exit 1
            fi
        done
        echo "load: checked $protocol, $workers worker(s): the stack and the hand-written rules allow the load's request, refuse a foreign origin and a client outside the allowlist"
    done
done

# wrk's latencies (`--latency` table) in microseconds.
to_us() {
    awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); print v } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000000 } else print v }'
}

# The CPU time a server has used so far (user + system), in clock ticks; empty without /proc.
clock_ticks="$(getconf CLK_TCK 2>/dev/null || echo 100)"
cpu_ticks() { # pid
    if [[ -r "/proc/$1/stat" ]]; then awk '{print $14 + $15}' "/proc/$1/stat"; fi
}

# One run; sets run_requests, run_seconds, run_p99 (µs) and run_errors, or exits on an answer
# other than 2xx.
run() { # protocol mode url
    local protocol="$1" mode="$2" url="$3" out
    run_errors=""
    if [[ "$protocol" == h1 ]]; then
        out="$("${load_pin[@]}" wrk -t"$threads" -c"$connections" -d"$duration" --latency "${allowed[@]}" "$url")"
        echo "$out"
        run_requests="$(awk '/requests in/ {print $1}' <<<"$out")"
        run_seconds="$(awk '/requests in/ {v=$4; sub(/,$/,"",v); if (v ~ /ms$/) {sub(/ms$/,"",v); v=v/1000} else if (v ~ /m$/) {sub(/m$/,"",v); v=v*60} else sub(/s$/,"",v); print v}' <<<"$out")"
        run_p99="$(awk '$1=="99%" {print $2}' <<<"$out" | to_us)"
        local non2xx
        non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
        if [[ -n "$non2xx" && "$non2xx" != 0 ]]; then
            echo "the $mode server answered $non2xx non-2xx responses under load" >&2
            exit 1
        fi
        run_errors="$(awk '/Socket errors/ {sub(/^ +/, ""); print}' <<<"$out")"
    else
        local log="$scratch/h2load.log"
        out="$("${load_pin[@]}" h2load -t"$h2_threads" -c"$h2_connections" -m"$h2_streams" -D"$duration" --log-file="$log" "${allowed[@]}" "$url")"
        sed -n '/^finished in/,$p' <<<"$out"
        if ! grep -q '^Application protocol: h2c$' <<<"$out"; then
            echo "h2load did not speak HTTP/2 with prior knowledge (h2c) to the $mode server" >&2
            exit 1
        fi
        # "finished in 10.00s, 41234.50 req/s, ..." and
        # "requests: N total, N started, N done, N succeeded, F failed, E errored, T timeout"
        run_seconds="$(awk '/^finished in/ {v=$3; sub(/,$/,"",v); if (v ~ /ms$/) {sub(/ms$/,"",v); v=v/1000} else sub(/s$/,"",v); print v}' <<<"$out")"
        run_requests="$(awk '/^requests:/ {print $8}' <<<"$out")"
        local bad
        bad="$(awk '/^status codes:/ {n+=$5+$7+$9} /^requests:/ {n+=$10+$12+$14} END {print n+0}' <<<"$out")"
        if [[ -z "$run_requests" || "$bad" != 0 ]]; then
            echo "the $mode server answered $bad requests with other than 2xx, or they failed, under load" >&2
            exit 1
        fi
        run_p99="$(awk -F'\t' '{print $3}' "$log" | sort -n | awk '{v[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print v[i]}')"
        rm -f "$log"
    fi
    if [[ -z "$run_requests" || -z "$run_seconds" || -z "$run_p99" ]]; then
        echo "could not read the figures of the $mode run ($protocol)" >&2
        exit 1
    fi
}

declare -A total_requests total_seconds worst_p99 errors total_ticks
for round in $(seq 1 "$rounds"); do
    case $((round % 3)) in
    1) order=(bare stack handwritten) ;;
    2) order=(stack handwritten bare) ;;
    *) order=(handwritten bare stack) ;;
    esac
    for workers in $workers_list; do
        for protocol in "${runnable[@]}"; do
            for mode in "${order[@]}"; do
                key="$protocol.w$workers.$mode"
                echo "== $protocol, $workers worker(s), $mode, round $round"
                pid="${server_pid[$mode.$workers]}"
                ticks_before="$(cpu_ticks "$pid")"
                run "$protocol" "$mode" "http://127.0.0.1:${port[$mode.$workers]}/api/ping"
                ticks_after="$(cpu_ticks "$pid")"
                if [[ -n "$ticks_before" && -n "$ticks_after" ]]; then
                    total_ticks[$key]=$((${total_ticks[$key]:-0} + ticks_after - ticks_before))
                fi
                record "load.$key.round$round.rps" "$(awk -v r="$run_requests" -v s="$run_seconds" 'BEGIN {printf "%.0f", r/s}')"
                record "load.$key.round$round.p99_us" "$run_p99"
                total_requests[$key]=$((${total_requests[$key]:-0} + run_requests))
                total_seconds[$key]="$(awk -v a="${total_seconds[$key]:-0}" -v b="$run_seconds" 'BEGIN {print a+b}')"
                worst_p99[$key]="$(awk -v a="${worst_p99[$key]:-0}" -v b="$run_p99" 'BEGIN {print (b>a)?b:a}')"
                if [[ -n "$run_errors" ]]; then errors[$key]="${errors[$key]:-}${errors[$key]:+; }round $round: $run_errors"; fi
            done
        done
    done
done

for workers in $workers_list; do
    for protocol in "${runnable[@]}"; do
        for mode in bare stack handwritten; do
            key="$protocol.w$workers.$mode"
            rps="$(awk -v r="${total_requests[$key]}" -v s="${total_seconds[$key]}" 'BEGIN {printf "%.0f", r/s}')"
            record "load.$key.rps" "$rps"
            record "load.$key.p99_us" "${worst_p99[$key]}"
            if [[ -n "${total_ticks[$key]:-}" ]]; then
                # The server's CPU time per request (user + system, all its threads), which the
                # load generator's share of the cores does not move as much as requests/s.
                record "load.$key.cpu_us" "$(awk -v t="${total_ticks[$key]}" -v hz="$clock_ticks" -v r="${total_requests[$key]}" 'BEGIN {printf "%.2f", t / hz * 1e6 / r}')"
            fi
            if [[ -n "${errors[$key]:-}" ]]; then record "load.$key.socket_errors" "${errors[$key]}"; fi
            # The keys of the pages before HTTP/2 and worker counts: HTTP/1.1, one worker.
            if [[ "$protocol.$workers" == h1.1 ]]; then
                record "load.$mode.rps" "$rps"
                record "load.$mode.p99_us" "${worst_p99[$key]}"
            fi
        done
        key="$protocol.w$workers"
        ratio() { # numerator-mode denominator-mode
            awk -v s="${total_requests[$key.$1]}" -v ss="${total_seconds[$key.$1]}" -v b="${total_requests[$key.$2]}" -v bs="${total_seconds[$key.$2]}" 'BEGIN {printf "%.3f", (s/ss)/(b/bs)}'
        }
        record "load.$key.ratio" "$(ratio stack bare)"
        record "load.$key.handwritten_ratio" "$(ratio handwritten bare)"
        record "load.$key.stack_vs_handwritten" "$(ratio stack handwritten)"
    done
done
record load.pinning "$pinning"
for protocol in "${runnable[@]}"; do
    if [[ "$protocol" == h1 ]]; then
        record load.settings.h1 "wrk $( (wrk --version 2>&1 || true) | awk 'NR==1 {print $2}') -t$threads -c$connections -d$duration --latency"
    else
        record load.settings.h2 "h2load $( (h2load --version 2>&1 || true) | awk 'NR==1 {sub(/^nghttp2\//, "", $2); print $2}') -t$h2_threads -c$h2_connections -m$h2_streams -D$duration (HTTP/2 with prior knowledge)"
    fi
done
record load.settings "$rounds rounds of $duration per server and protocol, bare, stack and handwritten taking turns (which goes first rotates each round); server workers: $workers_list"
