//! Writes `BENCHMARKS.md` from criterion's estimates, the results file of the benches and the
//! load script, the machine description and the hand-written notes.
//!
//! `bench-report <criterion-dir> <results-file> <meta-file> <notes-file> <output>`; run by
//! `run.sh`, which gathers the inputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A target: what the figure is compared with and how.
#[derive(Clone, Copy)]
enum Target {
    /// The figure must be at most this.
    AtMost(f64),
    /// The figure must be at least this.
    AtLeast(f64),
    /// Reported, no target.
    None,
}

impl Target {
    fn describe(self) -> String {
        match self {
            Self::AtMost(v) => format!("≤ {}", number(v)),
            Self::AtLeast(v) => format!("≥ {}", number(v)),
            Self::None => "—".to_owned(),
        }
    }

    fn verdict(self, value: Option<f64>) -> &'static str {
        match (self, value) {
            (Self::None, _) => "—",
            (_, None) => "not measured",
            (Self::AtMost(t), Some(v)) if v <= t => "**met**",
            (Self::AtLeast(t), Some(v)) if v >= t => "**met**",
            _ => "**missed**",
        }
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn time(ns: Option<f64>) -> String {
    match ns {
        None => "n/a".to_owned(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        Some(ns) => format!("{ns:.1} ns"),
    }
}

fn rate(per_second: Option<f64>) -> String {
    match per_second {
        None => "n/a".to_owned(),
        Some(r) if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
        Some(r) if r >= 1e3 => format!("{:.1} k/s", r / 1e3),
        Some(r) => format!("{r:.0} /s"),
    }
}

fn bytes_rate(bytes: f64, ns: Option<f64>) -> String {
    ns.map_or_else(
        || "n/a".to_owned(),
        |ns| format!("{:.2} GiB/s", bytes / (ns / 1e9) / (1u64 << 30) as f64),
    )
}

struct Inputs {
    criterion: PathBuf,
    results: BTreeMap<String, String>,
}

impl Inputs {
    /// Criterion's median in nanoseconds for `id` (`group/function[/parameter]`).
    fn median(&self, id: &str) -> Option<f64> {
        let path = self.criterion.join(id).join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["median"]["point_estimate"].as_f64()
    }

    fn result(&self, key: &str) -> Option<f64> {
        self.results.get(key)?.parse().ok()
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.results.get(key).map(String::as_str)
    }
}

fn key_values(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), number)
}

/// One table row: what, ours, theirs, ratio, target, verdict.
fn row(out: &mut String, what: &str, ours: &str, theirs: &str, value: Option<f64>, target: Target) {
    let _ = writeln!(
        out,
        "| {what} | {ours} | {theirs} | {} | {} | {} |",
        show(value),
        target.describe(),
        target.verdict(value)
    );
}

fn allocs(inputs: &Inputs, key: &str) -> String {
    inputs
        .result(key)
        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

fn report(inputs: &Inputs, meta: &BTreeMap<String, String>, notes: &str) -> String {
    let mut out = String::new();
    let m = |k: &str| meta.get(k).map_or("unknown", String::as_str);
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Every figure is a ratio of two medians measured side by side in the same run: \
         tollgate against the crate people use today for the same job, or against the raw \
         cost of the work. Regenerate this page with:\n\n```sh\nbash benches/run.sh\n```\n\n\
         It runs `{}` and `bash benches/load.sh`, then writes this file.\n",
        m("command")
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    for (label, key) in [
        ("date (UTC)", "date"),
        ("machine", "machine"),
        ("cores", "cores"),
        ("memory", "memory"),
        ("kernel", "kernel"),
        ("rustc", "rustc"),
        ("redis", "redis"),
        ("wrk", "wrk"),
        ("h2load", "h2load"),
        ("load", "load"),
    ] {
        let _ = writeln!(out, "| {label} | {} |", m(key));
    }
    let _ = writeln!(
        out,
        "\nThe machine is shared (other builds ran at the same time), so absolute figures are \
         noisy; the ratios are what to read. Times are criterion medians.\n"
    );

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(
        out,
        "| comparison | tollgate | baseline | ratio | target | result |\n|---|---|---|---|---|---|"
    );
    let origin = (
        inputs.median("origin/tollgate"),
        inputs.median("origin/tower-http"),
    );
    row(
        &mut out,
        "1. origin check vs tower-http `CorsLayer` (time ratio)",
        &time(origin.0),
        &time(origin.1),
        ratio(origin.0, origin.1),
        Target::AtMost(1.0),
    );
    for hops in [1, 5, 20] {
        let ours = inputs.median(&format!("client_ip/tollgate-count1/{hops}"));
        let theirs = inputs.median(&format!("client_ip/axum-client-ip/{hops}"));
        row(
            &mut out,
            &format!("2. client IP, rightmost, {hops} hop(s), vs axum-client-ip (time ratio)"),
            &time(ours),
            &time(theirs),
            ratio(ours, theirs),
            Target::AtMost(0.9),
        );
    }
    let most_allocs = [1, 5, 20]
        .iter()
        .flat_map(|h| {
            [
                inputs.result(&format!("client_ip.tollgate-count1.{h}.allocs")),
                inputs.result(&format!("client_ip.tollgate-range.{h}.allocs")),
            ]
        })
        .try_fold(0.0f64, |most, v| Some(most.max(v?)));
    row(
        &mut out,
        "2. client IP, allocations per extraction (most over all cases)",
        &show(most_allocs),
        "0",
        most_allocs,
        Target::AtMost(0.0),
    );
    let sig = |which: &str, size: &str| inputs.median(&format!("signature/{which}/{size}"));
    // At 1 KiB the bench also times the three side by side (rounds of one batch each, the
    // order rotating); the report prefers those medians, else criterion's ratio.
    let sig_side =
        |pair: &str| inputs.result(&format!("signature.side_by_side.1KiB.{pair}.median"));
    row(
        &mut out,
        "3. signature verify, 1 KiB, vs raw HMAC (time ratio; side by side)",
        &time(sig("tollgate", "1KiB")),
        &time(sig("raw-hmac", "1KiB")),
        sig_side("tollgate_vs_raw")
            .or_else(|| ratio(sig("tollgate", "1KiB"), sig("raw-hmac", "1KiB"))),
        Target::AtMost(1.25),
    );
    row(
        &mut out,
        "3. signature verify, 1 KiB, the same check written by hand vs raw HMAC (time ratio; side by side)",
        &time(sig("handwritten", "1KiB")),
        &time(sig("raw-hmac", "1KiB")),
        sig_side("handwritten_vs_raw")
            .or_else(|| ratio(sig("handwritten", "1KiB"), sig("raw-hmac", "1KiB"))),
        Target::None,
    );
    row(
        &mut out,
        "3. signature verify, 1 KiB, vs the same check written by hand (time ratio; side by side)",
        &time(sig("tollgate", "1KiB")),
        &time(sig("handwritten", "1KiB")),
        sig_side("tollgate_vs_handwritten")
            .or_else(|| ratio(sig("tollgate", "1KiB"), sig("handwritten", "1KiB"))),
        Target::None,
    );
    row(
        &mut out,
        "3. signature verify, 64 KiB, vs raw HMAC (throughput ratio)",
        &bytes_rate(65536.0, sig("tollgate", "64KiB")),
        &bytes_rate(65536.0, sig("raw-hmac", "64KiB")),
        ratio(sig("raw-hmac", "64KiB"), sig("tollgate", "64KiB")),
        Target::None,
    );
    row(
        &mut out,
        "3. signature verify, 1 MiB, vs raw HMAC (throughput ratio)",
        &bytes_rate(1048576.0, sig("tollgate", "1MiB")),
        &bytes_rate(1048576.0, sig("raw-hmac", "1MiB")),
        ratio(sig("raw-hmac", "1MiB"), sig("tollgate", "1MiB")),
        Target::AtLeast(0.9),
    );
    row(
        &mut out,
        "3. signature verify, 1 KiB, ring read through a `KeyRingHandle` vs a fixed ring (time ratio)",
        &time(sig("tollgate-handle", "1KiB")),
        &time(sig("tollgate", "1KiB")),
        ratio(sig("tollgate-handle", "1KiB"), sig("tollgate", "1KiB")),
        Target::AtMost(1.02),
    );
    for hops in [1, 5, 20] {
        let live = inputs.median(&format!("client_ip/tollgate-range-handle/{hops}"));
        let fixed = inputs.median(&format!("client_ip/tollgate-range/{hops}"));
        // The side-by-side median of per-round ratios when the bench recorded it (a 2 %
        // difference is finer than two criterion runs agree on); else the criterion ratio.
        let side_by_side = inputs.result(&format!("client_ip.handle_vs_fixed.{hops}.median"));
        row(
            &mut out,
            &format!(
                "2. client IP, trusted ranges read through an `IpRangesHandle` vs fixed, {hops} hop(s) (time ratio; side by side)"
            ),
            &time(live),
            &time(fixed),
            side_by_side.or_else(|| ratio(live, fixed)),
            Target::AtMost(1.02),
        );
    }
    let tz = (
        inputs.median("tranzila/tollgate"),
        inputs.median("tranzila/raw"),
    );
    row(
        &mut out,
        "4. Tranzila signing layer vs raw scheme (time ratio)",
        &time(tz.0),
        &time(tz.1),
        ratio(tz.0, tz.1),
        Target::AtMost(1.25),
    );
    let memory = inputs
        .median("replay_memory/claim-2-threads-1M-live")
        .map(|ns| 1e9 / ns);
    row(
        &mut out,
        "5. memory store, claims/s on 2 threads, 1M live entries",
        &rate(memory),
        "1 M/s (target)",
        memory.map(|r| r / 1e6),
        Target::AtLeast(1.0),
    );
    let per_entry = inputs.result("replay.memory.bytes_per_entry");
    row(
        &mut out,
        "5. memory store, bytes per live entry (allocator-counted)",
        &show(per_entry),
        "64 (target)",
        per_entry,
        Target::AtMost(64.0),
    );
    for c in [1, 16, 64] {
        let ours = inputs
            .median(&format!("replay_redis/tollgate/{c}"))
            .map(|ns| 1e9 / ns);
        let theirs = inputs.result(&format!("replay.redis.redis-benchmark.{c}.rps"));
        row(
            &mut out,
            &format!(
                "5. Redis store, concurrency {c}, vs `redis-benchmark -t set` (throughput ratio)"
            ),
            &rate(ours),
            &rate(theirs),
            ratio(ours, theirs),
            Target::AtLeast(0.7),
        );
    }
    let per_second = |id: &str| inputs.median(id).map(|ns| 1e9 / ns);
    let single = per_second("replay_redis/tollgate/16");
    let cluster = per_second("replay_redis_topology/cluster/16");
    row(
        &mut out,
        "5. Redis Cluster (3 masters) vs one node, concurrency 16 (throughput ratio)",
        &rate(cluster),
        &rate(single),
        ratio(cluster, single),
        Target::None,
    );
    let no_wait = per_second("replay_redis_topology/master_replica/16");
    let wait = per_second("replay_redis_topology/master_replica_wait1/16");
    row(
        &mut out,
        "5. Redis master + replica, claims with `WAIT 1` vs without, concurrency 16 (throughput ratio)",
        &rate(wait),
        &rate(no_wait),
        ratio(wait, no_wait),
        Target::None,
    );
    let per_claim = inputs.result("replay.redis.bytes_per_claim");
    row(
        &mut out,
        "5. Redis memory per claim (`used_memory` delta over 100,000 claims, bytes)",
        &show(per_claim),
        "—",
        None,
        Target::None,
    );
    for (protocol, tool) in [("h1", "HTTP/1.1, `wrk`"), ("h2", "HTTP/2, `h2load`")] {
        for workers in [1, 4] {
            let rps = |mode: &str| inputs.result(&format!("load.{protocol}.w{workers}.{mode}.rps"));
            row(
                &mut out,
                &format!(
                    "6. whole stack vs bare handler, {tool}, {workers} server worker(s) (throughput ratio)"
                ),
                &rate(rps("stack")),
                &rate(rps("bare")),
                ratio(rps("stack"), rps("bare")),
                Target::AtLeast(0.95),
            );
        }
    }
    // The floor: the same rules written by hand as one small service.
    for (protocol, tool) in [("h1", "HTTP/1.1, `wrk`"), ("h2", "HTTP/2, `h2load`")] {
        for workers in [1, 4] {
            let rps = |mode: &str| inputs.result(&format!("load.{protocol}.w{workers}.{mode}.rps"));
            row(
                &mut out,
                &format!(
                    "6. the same rules written by hand vs bare handler, {tool}, {workers} server worker(s) (throughput ratio)"
                ),
                &rate(rps("handwritten")),
                &rate(rps("bare")),
                ratio(rps("handwritten"), rps("bare")),
                Target::None,
            );
            row(
                &mut out,
                &format!(
                    "6. whole stack vs the same rules written by hand, {tool}, {workers} server worker(s) (throughput ratio)"
                ),
                &rate(rps("stack")),
                &rate(rps("handwritten")),
                ratio(rps("stack"), rps("handwritten")),
                Target::None,
            );
        }
    }
    // Time per call = 1 / requests per second with one call in flight.
    let per_call = |who: &str| {
        inputs
            .result(&format!("tls.{who}.1.rps"))
            .map(|rps| 1e9 / rps)
    };
    // The ratio is the median of the rounds' ratios (each round runs the three sides in
    // turn), which a drift of the machine between rounds does not move.
    let median = |key: &str| inputs.result(&format!("tls.{key}.1.median"));
    row(
        &mut out,
        "7. ready Tranzila client over TLS vs the same TLS client signing Tranzila's headers by hand (time per call, 1 in flight; median of the rounds' ratios)",
        &time(per_call("tranzila")),
        &time(per_call("signed")),
        median("tranzila_vs_signed").or_else(|| ratio(per_call("tranzila"), per_call("signed"))),
        Target::AtMost(1.05),
    );
    row(
        &mut out,
        "7. the same, against a call carrying no Tranzila headers (signing included in the cost)",
        &time(per_call("tranzila")),
        &time(per_call("raw")),
        median("tranzila_vs_raw").or_else(|| ratio(per_call("tranzila"), per_call("raw"))),
        Target::None,
    );
    let (ours16, signed16) = (
        inputs.result("tls.tranzila.16.rps"),
        inputs.result("tls.signed.16.rps"),
    );
    row(
        &mut out,
        "7. ready Tranzila client over TLS vs hand-signed, 16 in flight on one HTTP/2 connection (throughput ratio)",
        &rate(ours16),
        &rate(signed16),
        ratio(ours16, signed16),
        Target::None,
    );

    let _ = writeln!(out, "\n## Details\n");
    let _ = writeln!(out, "### 1. Origin check\n");
    let _ = writeln!(
        out,
        "`OriginAllowlistLayer` vs tower-http's `CorsLayer` with `AllowOrigin::list` of the same 10 \
         origins, GET/POST and `content-type` allowed, one allowed browser `POST` (the 5th origin), \
         the same echo service; futures polled without a runtime.\n"
    );
    let _ = writeln!(out, "| | median | allocations per request |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| tollgate | {} | {} |",
        time(origin.0),
        allocs(inputs, "origin.tollgate.allocs")
    );
    let _ = writeln!(
        out,
        "| tower-http | {} | {} |",
        time(origin.1),
        allocs(inputs, "origin.tower-http.allocs")
    );

    let _ = writeln!(out, "\n### 2. Client IP\n");
    let _ = writeln!(
        out,
        "`ClientIpSource::extract` with `rightmost-trusted-count:x-forwarded-for:1` vs \
         axum-client-ip's `RightmostXForwardedFor` extractor (`from_request_parts`) on the same \
         request parts; `X-Forwarded-For` holds the client and then proxies. The trusted-range \
         walk (`rightmost-trusted-range:x-forwarded-for:10.0.0.0/8`) skips every proxy hop to \
         reach the client, the worst case for its length.\n"
    );
    let _ = writeln!(
        out,
        "| hops | tollgate count 1 | axum-client-ip | ratio | tollgate range walk | allocations (count 1 / range / axum-client-ip) |\n|---|---|---|---|---|---|"
    );
    for hops in [1, 5, 20] {
        let ours = inputs.median(&format!("client_ip/tollgate-count1/{hops}"));
        let theirs = inputs.median(&format!("client_ip/axum-client-ip/{hops}"));
        let walk = inputs.median(&format!("client_ip/tollgate-range/{hops}"));
        let _ = writeln!(
            out,
            "| {hops} | {} | {} | {} | {} | {} / {} / {} |",
            time(ours),
            time(theirs),
            show(ratio(ours, theirs)),
            time(walk),
            allocs(inputs, &format!("client_ip.tollgate-count1.{hops}.allocs")),
            allocs(inputs, &format!("client_ip.tollgate-range.{hops}.allocs")),
            allocs(inputs, &format!("client_ip.axum-client-ip.{hops}.allocs")),
        );
    }

    let _ = writeln!(out, "\n### 3. Signature verify\n");
    let _ = writeln!(
        out,
        "`VerifySignatureLayer` with `BodyHmac::onekey()` (`Payload-Signature`, hex HMAC-SHA256 of \
         the body) on a `Full<Bytes>` request and an echo service, vs `Hmac<Sha256>` + \
         `verify_slice` over the same bytes. The layer allocates {} times per 1 KiB request. \
         At 1 KiB the bench also runs the same check written by hand as a small tower \
         middleware (`benches/src/handwritten_verify.rs`: `Limited` + `collect`, `hex`, the \
         HMAC keyed per request as the raw side does, a boxed future; no key ring, facts, \
         timeout or metrics): {} here, and times the three side by side, 301 rounds of 64 \
         requests each, the order rotating (the ratios in the summary are the rounds' \
         medians).\n",
        allocs(inputs, "signature.tollgate.1KiB.allocs"),
        time(sig("handwritten", "1KiB")),
    );
    let _ = writeln!(
        out,
        "| body | tollgate | raw HMAC | time ratio |\n|---|---|---|---|"
    );
    for (label, bytes) in [("1KiB", 1024.0), ("64KiB", 65536.0), ("1MiB", 1048576.0)] {
        let ours = sig("tollgate", label);
        let theirs = sig("raw-hmac", label);
        let _ = writeln!(
            out,
            "| {label} | {} ({}) | {} ({}) | {} |",
            time(ours),
            bytes_rate(bytes, ours),
            time(theirs),
            bytes_rate(bytes, theirs),
            show(ratio(ours, theirs))
        );
    }

    let _ = writeln!(out, "\n### 4. Tranzila signing\n");
    let _ = writeln!(
        out,
        "`TranzilaSigningLayer` on a request (clock, fresh nonce, token, four headers) vs the raw \
         scheme in stack buffers: `getrandom` 40 bytes, hex, HMAC-SHA256 keyed with secret + \
         time + nonce, hex. Allocations per request: layer {}, raw {}.\n",
        allocs(inputs, "tranzila.tollgate.allocs"),
        allocs(inputs, "tranzila.raw.allocs")
    );

    let _ = writeln!(out, "### 5. Replay stores\n");
    let _ = writeln!(
        out,
        "Memory: `MemoryNonceStore::new(1_000_000)` filled with 1,000,000 live claims, then fresh \
         80-byte keys claimed from 2 threads while a `ManualClock` moves on, so measured claims \
         expire and are reclaimed (steady state) and the million stay live. The store's \
         allocations: {} bytes in all, {} bytes per live entry (`memory_bytes()` = {}, effective \
         capacity {}).\n",
        inputs.text("replay.memory.bytes_total").unwrap_or("n/a"),
        show(per_entry),
        inputs.text("replay.memory.memory_bytes").unwrap_or("n/a"),
        inputs.text("replay.memory.capacity").unwrap_or("n/a"),
    );
    let _ = writeln!(
        out,
        "Redis: `RedisNonceStore` (one multiplexed connection, `SET key 1 NX PX ttl` per claim, \
         SHA-256-hex keys) from N Tokio tasks on a 2-worker runtime, vs `redis-benchmark -t set \
         -c N -r 1000000000 -n 100000` (N connections; the mean of its own requests/s from one run \
         just before and one just after tollgate's), against the same local \
         `redis-server` started by the bench{}.\n",
        inputs
            .text("replay.redis.skipped")
            .map_or_else(String::new, |why| format!(" (**skipped: {why}**)"))
    );

    let _ = writeln!(out, "### 6. Whole stack\n");
    let _ = writeln!(
        out,
        "`wrk` (HTTP/1.1) and `h2load` (HTTP/2 with prior knowledge) on loopback against a \
         trivial axum handler, bare and behind the Transak partner inbound stack (origin \
         allowlist + client IP from `X-Forwarded-For` behind a loopback proxy + IP allowlist): \
         the `transak-partner` example's own `Config::inbound`, a \
         `tollgate::transak::TransakInbound` (`benches/src/bin/stack-server.rs`), on a Tokio \
         runtime of 1 and of 4 worker threads. *handwritten* is the floor: the same rules \
         written by hand as one small tower service (`benches/src/handwritten.rs`: `Origin` \
         compared with one value, the rightmost non-loopback `X-Forwarded-For` address \
         checked against 203.0.113.0/24, the two CORS headers added; no `Sec-Fetch-Site`, \
         preflight or `Forwarded` handling, no error bodies, metrics or tracing). Before \
         measuring, the script checks on every server and protocol that the stack and the \
         hand-written rules allow the load's request and refuse a foreign origin and a client \
         outside the allowlist. The server's CPU time per request (user + \
         system over all its threads, from `/proc`) moves less with the load generator's share \
         of the cores than requests/s does. Settings: {}. HTTP/1.1: {}. HTTP/2: {}. \
         Pinning: {}.\n",
        inputs.text("load.settings").unwrap_or("n/a"),
        inputs.text("load.settings.h1").unwrap_or("n/a"),
        inputs.text("load.settings.h2").unwrap_or("n/a"),
        inputs.text("load.pinning").unwrap_or("n/a"),
    );
    let _ = writeln!(
        out,
        "| protocol | server workers | server | requests/s | p99 latency (worst round) | server CPU per request | / bare (requests/s) |\n|---|---|---|---|---|---|---|"
    );
    for (protocol, label) in [("h1", "HTTP/1.1"), ("h2", "HTTP/2")] {
        for workers in [1, 4] {
            for mode in ["bare", "stack", "handwritten"] {
                let key = format!("load.{protocol}.w{workers}.{mode}");
                let p99 = inputs
                    .result(&format!("{key}.p99_us"))
                    .map_or_else(|| "n/a".to_owned(), |us| time(Some(us * 1e3)));
                let share = match mode {
                    "stack" => show(inputs.result(&format!("load.{protocol}.w{workers}.ratio"))),
                    "handwritten" => show(
                        inputs.result(&format!("load.{protocol}.w{workers}.handwritten_ratio")),
                    ),
                    _ => String::new(),
                };
                let cpu = inputs
                    .result(&format!("{key}.cpu_us"))
                    .map_or_else(|| "n/a".to_owned(), |us| time(Some(us * 1e3)));
                let _ = writeln!(
                    out,
                    "| {label} | {workers} | {mode} | {} | {p99} | {cpu} | {share} |",
                    inputs.text(&format!("{key}.rps")).map_or_else(
                        || {
                            inputs
                                .text(&format!("load.{protocol}.skipped"))
                                .or_else(|| inputs.text("load.skipped"))
                                .map_or_else(|| "n/a".to_owned(), |why| format!("skipped: {why}"))
                        },
                        str::to_owned
                    )
                );
            }
        }
    }
    for (key, what) in [
        ("load.skipped", "The load test was skipped"),
        ("load.h1.skipped", "HTTP/1.1 was skipped"),
        ("load.h2.skipped", "HTTP/2 was skipped"),
    ] {
        if let Some(why) = inputs.text(key) {
            let _ = writeln!(out, "\n{what}: {why}.");
        }
    }

    let _ = writeln!(out, "\n### 7. Ready provider client over TLS\n");
    let _ = writeln!(
        out,
        "`tollgate::tranzila::TranzilaClient` against a local HTTPS mock (tokio-rustls, a \
         certificate from a CA made at start-up, HTTP/2), side by side with the same \
         `hyper_util` client over tollgate-https's `HttpsConnector` without tollgate's layers \
         (`benches/benches/tls_client.rs`): once sending the request as it is (*raw*), once with \
         Tranzila's four headers made by hand (*hand-signed*: the time, 40 bytes of OS \
         randomness, one HMAC-SHA256, as a partner writes it without tollgate). The mock \
         answers 200 without checking anything, so the difference is the client side: header \
         hygiene, Tranzila signing (a new nonce and HMAC per call), the deadline, retry, attempt \
         timeout and audit event. Mock and client run on separate one-worker runtimes. With one \
         call in flight, 15 rounds of 1 s each run the three sides in turn, which side goes \
         first rotating, and the ratios in the summary are the medians of the rounds' ratios; \
         with 16 in flight, two rounds of 3 s each, in the same rotating order.\n"
    );
    let _ = writeln!(
        out,
        "| calls in flight | client | requests/s | p99 latency |\n|---|---|---|---|"
    );
    for c in [1, 16] {
        for (who, label) in [
            ("raw", "same TLS client, no Tranzila headers"),
            ("signed", "same TLS client, Tranzila's headers by hand"),
            ("tranzila", "TranzilaClient"),
        ] {
            let p99 = inputs
                .result(&format!("tls.{who}.{c}.p99_us"))
                .map_or_else(|| "n/a".to_owned(), |us| time(Some(us * 1e3)));
            let _ = writeln!(
                out,
                "| {c} | {label} | {} | {p99} |",
                rate(inputs.result(&format!("tls.{who}.{c}.rps")))
            );
        }
    }
    let _ = writeln!(out);
    out.push_str(notes.trim_end());
    out.push('\n');
    out
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [criterion, results, meta, notes, output] = args.as_slice() else {
        eprintln!(
            "usage: bench-report <criterion-dir> <results-file> <meta-file> <notes-file> <output>"
        );
        return ExitCode::from(2);
    };
    let inputs = Inputs {
        criterion: criterion.clone(),
        results: key_values(results),
    };
    let notes = std::fs::read_to_string(notes).unwrap_or_default();
    let text = report(&inputs, &key_values(meta), &notes);
    match std::fs::write(output, text) {
        Ok(()) => {
            println!("wrote {}", output.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("could not write {}: {err}", output.display());
            ExitCode::FAILURE
        }
    }
}
