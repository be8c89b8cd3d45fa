//! The soak run: the full inbound stack in a child process, driven for a long time at about
//! half of its measured capacity with a mix of allowed and refused requests, checking every
//! answer, the child's resident memory and the latency percentiles.
//!
//! ```sh
//! cargo build --release -p tollgate-benches --bin soak
//! nice target/release/soak            # 10 minutes; SOAK_DURATION=60 for a short run
//! ```
//!
//! The child (`soak serve <capacity>`, started by the driver from its own executable, on a
//! one-worker Tokio runtime, exiting when its stdin closes) serves `POST /webhooks` on a free
//! loopback port behind, outermost first: the origin allowlist (`https://app.example.com`),
//! the client IP from `X-Forwarded-For` with loopback trusted as the proxy, the IP allowlist
//! (`203.0.113.0/24`), Standard Webhooks signature verification (16 KiB body limit, ±30 s)
//! and the replay guard on a memory store (60 s minimum retention: short windows, so claims
//! expire and slots are reused many times during the run).
//!
//! The driver (this process, one thread, a `hyper_util` keep-alive client, at most
//! `SOAK_CONNECTIONS` requests in flight, default 32) first measures the capacity for 5 s,
//! closed loop, on a server of its own; then starts a fresh server, its store sized for twice
//! the claims it will hold, and sends at half of the capacity (`SOAK_RATE` to choose), open
//! loop, for `SOAK_DURATION` seconds (default 600). The mix, per
//! hundred requests: 60 allowed (signed, fresh; half with the allowed `Origin`), 10 replayed
//! (an accepted request sent again), 10 bad signature, 5 foreign origin, 5 foreign client IP,
//! 5 oversized (20 KiB), 5 stale timestamp (120 s old). Every answer is checked against the
//! status and error code its kind must get; a transport error or no answer within 5 s counts
//! as unexpected too.
//!
//! It samples the child's `VmRSS` (`/proc/<pid>/status`) every second and reports p50/p99 per
//! window (`SOAK_WINDOW`, default 30 s). It exits non-zero when any answer was unexpected,
//! when the resident memory grew by 5 % or more from the end of the warm-up (`SOAK_WARMUP`,
//! default 30 s: the nonce table is allocated zeroed and its pages become resident as the
//! first claims land in them) to the last sample, or when the p99 of the last full window is
//! more than twice that of the first (p99s under 1 ms count as 1 ms: scheduler noise on a
//! shared machine). Loopback only; every loop is bounded by the run's deadline.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tollgate::ServiceBuilderExt;
use tollgate::core::{BoxError, Key, KeyRing, Secret};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{StandardWebhooks, VerifySignatureLayer};
use tower::ServiceBuilder;

/// The front end the stack allows.
const ORIGIN: &str = "https://app.example.com";
/// A front end it refuses.
const FOREIGN_ORIGIN: &str = "https://attacker.example";
/// Behind a loopback proxy: the rightmost `X-Forwarded-For` hop is the client.
const CLIENT_IP_SOURCE: &str = "rightmost-trusted-range:x-forwarded-for:loopback";
/// The clients the IP allowlist lets in.
const ALLOWED_IPS: &str = "203.0.113.0/24";
/// A client outside it.
const FOREIGN_IP: &str = "198.51.100.7";
/// The soak's own signing secret (a bench constant, not a credential).
const WHSEC: &str = "whsec_c29hay1iZW5jaC1vbmx5LXNpZ25pbmcta2V5LW5vdC1hLXNlY3JldA==";
/// The timestamp window of the verifier and the replay guard.
const TOLERANCE: Duration = Duration::from_secs(30);
/// How long the store holds a claim at least (twice the tolerance, as its docs advise).
const MIN_RETENTION: Duration = Duration::from_secs(60);
/// The nonce store's capacity (claims) while the capacity is measured.
const MEASURE_CAPACITY: usize = 1_000_000;
/// The least capacity of the soaked server's store; it gets twice the claims it will hold.
const MIN_CAPACITY: usize = 100_000;
/// The body limit of the verifier.
const BODY_LIMIT: usize = 16 * 1024;
/// The body of an oversized request.
const OVERSIZED: usize = 20 * 1024;
/// How old a stale request's timestamp is.
const STALE: u64 = 120;
/// How long an answer may take before it counts as none.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the capacity is measured.
const MEASURE: Duration = Duration::from_secs(5);
/// Resident memory may grow by less than this fraction after the warm-up.
const MAX_GROWTH: f64 = 0.05;
/// The last window's p99 may be at most this many times the first one's.
const MAX_P99_RATIO: f64 = 2.0;
/// p99s below this count as this much in the ratio.
const P99_FLOOR_US: u32 = 1_000;
/// Accepted requests kept for replaying.
const REPLAY_POOL: usize = 1_024;
/// A replayed request is taken from those accepted at most this long ago (well inside the
/// window, so the expected answer is `replayed`, never `timestamp_out_of_window`).
const REPLAY_MAX_AGE: u64 = 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("serve") => match args.get(2).map(|c| c.parse::<usize>()) {
            Some(Ok(capacity)) => serve(capacity),
            _ => Err("usage: soak serve <store capacity>".into()),
        },
        None => drive(),
        Some(_) => {
            eprintln!("usage: soak            (the driver; it starts `soak serve` itself)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("soak: {err}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server (child process)
// ---------------------------------------------------------------------------------------

fn keys() -> Result<KeyRing, BoxError> {
    Ok(KeyRing::new(Key::new(
        "soak-1",
        StandardWebhooks::secret_from_whsec(WHSEC)?,
    )))
}

/// The full inbound stack around a handler that echoes the body's length, with a nonce
/// store for `capacity` claims.
fn app(capacity: usize) -> Result<Router, BoxError> {
    let store = MemoryNonceStore::new(capacity).with_min_retention(MIN_RETENTION);
    let webhook = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(StandardWebhooks::new().tolerance(TOLERANCE), keys()?)?
                .body_limit(BODY_LIMIT),
        )
        .layer(ReplayGuardLayer::new(store).tolerance(TOLERANCE));
    let inbound = ServiceBuilder::new()
        .origin_allowlist([ORIGIN])?
        .resolve_client_ip(CLIENT_IP_SOURCE.parse()?)
        .ip_allowlist(ALLOWED_IPS.parse()?);
    Ok(Router::new()
        .route("/webhooks", post(receive).layer(webhook))
        .layer(inbound))
}

async fn receive(body: Bytes) -> String {
    format!("received {}", body.len())
}

/// Serves until stdin closes (the driver exited or dropped it), on one worker thread.
fn serve(capacity: usize) -> Result<bool, BoxError> {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let app = app(capacity)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", listener.local_addr()?.port())?;
        stdout.flush()?;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok::<_, BoxError>(())
    })?;
    Ok(true)
}

/// The child, killed when dropped.
struct Server {
    child: Child,
    _stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    fn start(capacity: usize) -> Result<Self, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(capacity.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout from the server")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the server printed {line:?}, not its port").into());
        };
        Ok(Self {
            child,
            _stdin: stdin,
            port,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of `pid` (sockets included).
fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

// ---------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Allowed,
    Replayed,
    BadSignature,
    ForeignOrigin,
    ForeignIp,
    Oversized,
    Stale,
}

const KINDS: [Kind; 7] = [
    Kind::Allowed,
    Kind::Replayed,
    Kind::BadSignature,
    Kind::ForeignOrigin,
    Kind::ForeignIp,
    Kind::Oversized,
    Kind::Stale,
];

impl Kind {
    /// Picks a kind from a number in 0..100, by the mix's weights.
    fn pick(n: u64) -> Self {
        match n {
            0..60 => Self::Allowed,
            60..70 => Self::Replayed,
            70..80 => Self::BadSignature,
            80..85 => Self::ForeignOrigin,
            85..90 => Self::ForeignIp,
            90..95 => Self::Oversized,
            _ => Self::Stale,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Replayed => "replayed",
            Self::BadSignature => "bad signature",
            Self::ForeignOrigin => "foreign origin",
            Self::ForeignIp => "foreign IP",
            Self::Oversized => "oversized",
            Self::Stale => "stale",
        }
    }

    /// The status and error code (`None` for 200) this kind must get.
    fn expected(self) -> (StatusCode, Option<&'static str>) {
        match self {
            Self::Allowed => (StatusCode::OK, None),
            Self::Replayed => (StatusCode::UNAUTHORIZED, Some("replayed")),
            Self::BadSignature => (StatusCode::UNAUTHORIZED, Some("signature_invalid")),
            Self::ForeignOrigin => (StatusCode::FORBIDDEN, Some("origin_not_allowed")),
            Self::ForeignIp => (StatusCode::FORBIDDEN, Some("ip_not_allowed")),
            Self::Oversized => (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
            Self::Stale => (StatusCode::UNAUTHORIZED, Some("timestamp_out_of_window")),
        }
    }
}

/// A request accepted once, kept to be replayed.
#[derive(Clone)]
struct Signed {
    id: String,
    timestamp: u64,
    signature: String,
    body: Bytes,
}

/// What one window (or the whole run) saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    by_kind: [u64; KINDS.len()],
    unexpected: u64,
}

struct Shared {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    secret: Secret,
    scheme: StandardWebhooks,
    run: u64,
    next_id: AtomicU64,
    accepted: Mutex<VecDeque<Signed>>,
    window: Mutex<Tally>,
    totals: Mutex<Tally>,
    examples: Mutex<Vec<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// xorshift64*: the mix needs no more.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn env_u64(name: &str) -> Result<Option<u64>, BoxError> {
    match std::env::var(name) {
        Ok(value) => {
            Ok(Some(value.trim().parse().map_err(|_| {
                format!("{name} must be a whole number, not {value:?}")
            })?))
        }
        Err(_) => Ok(None),
    }
}

impl Shared {
    fn new(port: u16, connections: usize) -> Result<Arc<Self>, BoxError> {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build_http();
        Ok(Arc::new(Self {
            client,
            url: format!("http://127.0.0.1:{port}/webhooks"),
            secret: StandardWebhooks::secret_from_whsec(WHSEC)?,
            scheme: StandardWebhooks::new(),
            run: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() << 20 ^ u64::from(d.subsec_micros())),
            next_id: AtomicU64::new(0),
            accepted: Mutex::new(VecDeque::with_capacity(REPLAY_POOL)),
            window: Mutex::new(Tally::default()),
            totals: Mutex::new(Tally::default()),
            examples: Mutex::new(Vec::new()),
        }))
    }

    fn signed(&self, timestamp: u64) -> Signed {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("msg_{:x}_{n}", self.run);
        let body = Bytes::from(format!(
            r#"{{"type":"payout.completed","data":{{"id":"evt_{n}","amount":"{}.{:02}","currency":"USD","note":"{}"}}}}"#,
            n % 10_000,
            n % 100,
            "x".repeat(160)
        ));
        let signature = self.scheme.compute(&self.secret, &id, timestamp, &body);
        Signed {
            id,
            timestamp,
            signature,
            body,
        }
    }

    /// A replayable accepted request, or `None` when there is none recent enough.
    fn replayable(&self, rng: &mut Rng) -> Option<Signed> {
        let accepted = lock(&self.accepted);
        if accepted.is_empty() {
            return None;
        }
        let index = usize::try_from(rng.next() % accepted.len() as u64).unwrap_or(0);
        let signed = accepted.get(index)?;
        (signed.timestamp + REPLAY_MAX_AGE >= unix_now()).then(|| signed.clone())
    }

    fn build(&self, kind: Kind, rng: &mut Rng, n: u64) -> (Kind, Request<Full<Bytes>>, Signed) {
        let now = unix_now();
        let (kind, mut signed) = match kind {
            Kind::Replayed => match self.replayable(rng) {
                Some(signed) => (Kind::Replayed, signed),
                None => (Kind::Allowed, self.signed(now)),
            },
            Kind::Stale => (kind, self.signed(now - STALE)),
            _ => (kind, self.signed(now)),
        };
        let mut signature = signed.signature.clone();
        if kind == Kind::BadSignature {
            // Another message's signature: well formed, wrong.
            signature =
                self.scheme
                    .compute(&self.secret, "msg_other", signed.timestamp, &signed.body);
        }
        if kind == Kind::Oversized {
            signed.body = Bytes::from(vec![b' '; OVERSIZED]);
        }
        let client_ip = if kind == Kind::ForeignIp {
            FOREIGN_IP.to_owned()
        } else {
            format!("203.0.113.{}", n % 250 + 1)
        };
        let mut builder = Request::post(&self.url)
            .header("content-type", "application/json")
            .header("x-forwarded-for", client_ip)
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signature);
        match kind {
            Kind::ForeignOrigin => builder = builder.header("origin", FOREIGN_ORIGIN),
            // Half of the allowed requests come from the browser front end, half from a
            // server (no `Origin`).
            Kind::Allowed if n.is_multiple_of(2) => {}
            _ => builder = builder.header("origin", ORIGIN),
        }
        let request = builder
            .body(Full::new(signed.body.clone()))
            .unwrap_or_default();
        (kind, request, signed)
    }

    /// Sends one request of `kind`, checks and records its answer.
    async fn one(&self, kind: Kind, rng: &mut Rng) {
        let n = rng.next();
        let (kind, request, signed) = self.build(kind, rng, n);
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, BoxError>((parts.status, body))
        })
        .await;
        let latency = started.elapsed();
        let verdict = match answer {
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(err)) => Err(format!("transport error: {err}")),
            Ok(Ok((status, body))) => check(kind, status, &body),
        };
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        // The window keeps its latencies (until it closes); the totals only count.
        for (tally, keep) in [(&self.window, true), (&self.totals, false)] {
            let mut tally = lock(tally);
            if keep {
                tally.latencies_us.push(micros);
            }
            tally.by_kind[kind.index()] += 1;
            if verdict.is_err() {
                tally.unexpected += 1;
            }
        }
        match verdict {
            Ok(()) if kind == Kind::Allowed => {
                let mut accepted = lock(&self.accepted);
                if accepted.len() == REPLAY_POOL {
                    accepted.pop_front();
                }
                accepted.push_back(signed);
            }
            Ok(()) => {}
            Err(what) => {
                let mut examples = lock(&self.examples);
                if examples.len() < 20 {
                    examples.push(format!("{}: {what}", kind.name()));
                }
            }
        }
    }
}

/// Whether the answer is the one `kind` must get.
fn check(kind: Kind, status: StatusCode, body: &[u8]) -> Result<(), String> {
    let (want_status, want_code) = kind.expected();
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    let ok = status == want_status
        && match want_code {
            Some(want) => code.as_deref() == Some(want),
            None => body.starts_with(b"received "),
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{status} {} (expected {want_status} {})",
            code.as_deref().unwrap_or("-"),
            want_code.unwrap_or("received")
        ))
    }
}

/// p50, p99 and max of `latencies` (sorted in place), in µs.
fn percentiles(latencies: &mut [u32]) -> (u32, u32, u32) {
    if latencies.is_empty() {
        return (0, 0, 0);
    }
    latencies.sort_unstable();
    // Nearest rank: the smallest value with at least `per_mille`/1000 of the values at or
    // below it.
    let len = latencies.len();
    let at = |per_mille: usize| latencies[(len * per_mille).div_ceil(1000).clamp(1, len) - 1];
    (at(500), at(990), latencies[len - 1])
}

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

/// One closed-loop sender until `end`.
async fn closed_loop(shared: Arc<Shared>, seed: u64, end: Instant) {
    let mut rng = Rng(seed | 1);
    while Instant::now() < end {
        let kind = Kind::pick(rng.next() % 100);
        shared.one(kind, &mut rng).await;
    }
}

/// The paced sender (open loop): a request every `1 / rate` from `start` to `end`, each in
/// its own task, at most `connections` in flight (so at most that many connections). Ticks
/// missed while all were busy are sent as soon as one frees up (`Burst`), so the rate holds
/// on average; returns how many requests had to wait for a free slot.
async fn open_loop(
    shared: Arc<Shared>,
    rate: u64,
    connections: usize,
    start: Instant,
    end: Instant,
) -> u64 {
    let slots = Arc::new(Semaphore::new(connections));
    let mut rng = Rng(0x51ED_2701_9E37_79B9);
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticks = tokio::time::interval_at(start.into(), period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut waited = 0;
    loop {
        if ticks.tick().await.into_std() >= end {
            break;
        }
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                waited += 1;
                match Arc::clone(&slots).acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                }
            }
        };
        let kind = Kind::pick(rng.next() % 100);
        let mut task_rng = Rng(rng.next() | 1);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            shared.one(kind, &mut task_rng).await;
            drop(slot);
        });
    }
    // The last answers: each within its own timeout.
    let all = u32::try_from(connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT * 2, slots.acquire_many(all)).await;
    waited
}

struct WindowReport {
    end_s: u64,
    answers: u64,
    p50: u32,
    p99: u32,
    max: u32,
    rss_kib: u64,
    full: bool,
}

fn drive() -> Result<bool, BoxError> {
    let duration = env_u64("SOAK_DURATION")?.unwrap_or(600).max(1);
    let window_s = env_u64("SOAK_WINDOW")?.unwrap_or(30).max(1);
    let warm_up = env_u64("SOAK_WARMUP")?.unwrap_or(30);
    let connections = usize::try_from(env_u64("SOAK_CONNECTIONS")?.unwrap_or(32).max(1))?;
    let given_rate = env_u64("SOAK_RATE")?;

    println!(
        "soak: the stack, in a child process on one worker thread: origin allowlist -> client IP \
         (X-Forwarded-For, loopback trusted) -> IP allowlist {ALLOWED_IPS} -> Standard Webhooks \
         verify ({} KiB limit, ±{} s) -> replay guard (memory store, {} s minimum retention)",
        BODY_LIMIT / 1024,
        TOLERANCE.as_secs(),
        MIN_RETENTION.as_secs(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let passed = runtime.block_on(async move {
        // Capacity: a server of its own, closed loop, the same mix.
        let rate = if let Some(rate) = given_rate {
            println!("soak: rate {rate} req/s (SOAK_RATE)");
            rate.max(1)
        } else {
            let server = Server::start(MEASURE_CAPACITY)?;
            let shared = Shared::new(server.port, connections)?;
            let end = Instant::now() + MEASURE;
            let senders: Vec<_> = (0..connections as u64)
                .map(|i| tokio::spawn(closed_loop(Arc::clone(&shared), 0x9E37 * (i + 1), end)))
                .collect();
            for sender in senders {
                sender.await?;
            }
            let measured = std::mem::take(&mut *lock(&shared.window));
            let answers = measured.latencies_us.len() as u64;
            let capacity = answers / MEASURE.as_secs();
            println!(
                "soak: capacity {capacity} req/s ({answers} answers in {} s, closed loop, {connections} connections, {} unexpected)",
                MEASURE.as_secs(),
                measured.unexpected
            );
            if measured.unexpected > 0 {
                return Err(format!("{} unexpected answers while measuring", measured.unexpected).into());
            }
            (capacity / 2).max(1)
        };

        // The soaked server: a fresh process, its store sized for twice the claims it will
        // hold (60 % of the requests claim, each for the minimum retention).
        let live = usize::try_from(rate * 60 / 100 * (MIN_RETENTION.as_secs() + 1))?;
        let capacity = (2 * live).max(MIN_CAPACITY);
        let server = Server::start(capacity)?;
        let pid = server.pid();
        let shared = Shared::new(server.port, connections)?;
        println!(
            "soak: server pid {pid} on 127.0.0.1:{}, store for {capacity} claims (about {live} live at steady state); \
             {rate} req/s for {duration} s, at most {connections} connections",
            server.port
        );
        let rss_start = rss_kib(pid).unwrap_or(0);
        let fds_start = open_fds(pid).unwrap_or(0);
        let start = Instant::now();
        let end = start + Duration::from_secs(duration);
        let sender = tokio::spawn(open_loop(Arc::clone(&shared), rate, connections, start, end));

        let mut rss: Vec<(u64, u64)> = Vec::with_capacity(usize::try_from(duration).unwrap_or(0) + 1);
        let mut windows: Vec<WindowReport> = Vec::new();
        let mut second = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
        println!("window   answers   rate/s      p50        p99        max      RSS");
        for t in 1..=duration {
            second.tick().await;
            let sample = rss_kib(pid).ok_or("the server exited")?;
            rss.push((t, sample));
            if t % window_s == 0 || t == duration {
                let mut tally = std::mem::take(&mut *lock(&shared.window));
                let (p50, p99, max) = percentiles(&mut tally.latencies_us);
                let span = if t % window_s == 0 { window_s } else { t % window_s };
                let answers = tally.latencies_us.len() as u64;
                println!(
                    "{:>4} s {answers:>9} {:>8} {:>10} {:>10} {:>10} {:>7} KiB{}",
                    t,
                    answers / span,
                    ms(p50),
                    ms(p99),
                    ms(max),
                    sample,
                    if tally.unexpected > 0 { format!("  {} unexpected", tally.unexpected) } else { String::new() }
                );
                windows.push(WindowReport { end_s: t, answers, p50, p99, max, rss_kib: sample, full: span == window_s });
            }
        }
        // The sender stops at `end`; an answer still awaited ends within its timeout.
        let Ok(Ok(waited)) = tokio::time::timeout(REQUEST_TIMEOUT * 3, sender).await else {
            return Err("the sender did not stop".into());
        };
        let rss_end = rss_kib(pid).unwrap_or(0);
        let fds_end = open_fds(pid).unwrap_or(0);

        // The verdicts.
        let totals = std::mem::take(&mut *lock(&shared.totals));
        let answered: u64 = totals.by_kind.iter().sum();
        let mut ok = true;
        println!(
            "soak: {answered} answers in {duration} s ({} req/s achieved of {rate} asked; {waited} requests waited for a free connection)",
            answered / duration
        );
        let mix: Vec<String> = KINDS
            .iter()
            .map(|kind| format!("{} {}", kind.name(), totals.by_kind[kind.index()]))
            .collect();
        println!("soak: by kind: {}", mix.join(", "));
        if totals.unexpected == 0 {
            println!("soak: every answer was the expected one for its kind");
        } else {
            ok = false;
            println!("soak: FAIL: {} unexpected answers; first ones:", totals.unexpected);
            for example in lock(&shared.examples).iter() {
                println!("  {example}");
            }
        }
        let baseline = rss.iter().find(|(t, _)| *t >= warm_up).or(rss.last()).copied();
        let last = rss.last().copied();
        let max = rss.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
        if let (Some((t0, base)), Some((t1, last))) = (baseline, last) {
            let growth = (last as f64 - base as f64) / base.max(1) as f64;
            println!(
                "soak: RSS at start {rss_start} KiB, after the {warm_up} s warm-up (t={t0} s) {base} KiB, last (t={t1} s) {last} KiB, max {max} KiB, after the run {rss_end} KiB; growth after warm-up {:+.2} %",
                growth * 100.0
            );
            if growth >= MAX_GROWTH {
                ok = false;
                println!("soak: FAIL: resident memory grew by {:.2} % (limit {:.0} %)", growth * 100.0, MAX_GROWTH * 100.0);
            }
        }
        println!("soak: open descriptors of the server: {fds_start} at start, {fds_end} after the run");
        let full: Vec<&WindowReport> = windows.iter().filter(|w| w.full).collect();
        match (full.first(), full.last()) {
            (Some(first), Some(last)) if full.len() >= 2 => {
                let floor = |us: u32| f64::from(us.max(P99_FLOOR_US));
                let ratio = floor(last.p99) / floor(first.p99);
                println!(
                    "soak: p99 first window (to {} s) {}, last window (to {} s) {}: ratio {ratio:.2} (p99 under 1 ms counted as 1 ms)",
                    first.end_s,
                    ms(first.p99),
                    last.end_s,
                    ms(last.p99)
                );
                if ratio > MAX_P99_RATIO {
                    ok = false;
                    println!("soak: FAIL: p99 of the last window is more than {MAX_P99_RATIO}× that of the first");
                }
                let worst = full.iter().map(|w| w.p99).max().unwrap_or(0);
                let answers: u64 = full.iter().map(|w| w.answers).sum();
                let maxes = full.iter().map(|w| w.max).max().unwrap_or(0);
                let p50s = full.iter().map(|w| w.p50).max().unwrap_or(0);
                let rss_windows = full.iter().map(|w| w.rss_kib).max().unwrap_or(0);
                println!(
                    "soak: over {} full windows ({answers} answers): worst p50 {}, worst p99 {}, max {}, max RSS at a window end {rss_windows} KiB",
                    full.len(),
                    ms(p50s),
                    ms(worst),
                    ms(maxes)
                );
            }
            _ => println!("soak: fewer than two full windows: p99 stability not checked"),
        }
        println!("soak: {}", if ok { "PASS" } else { "FAIL" });
        drop(server);
        Ok::<_, BoxError>(ok)
    })?;
    Ok(passed)
}
