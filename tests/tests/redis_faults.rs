//! Redis faults under load: the webhook receiver (the example's router, its nonce store on a
//! real `redis-server`, default store timeout) on a real socket, driven by concurrent
//! keep-alive clients sending unique signed Standard Webhooks deliveries and resends of
//! accepted ones, while Redis is paused (`SIGSTOP`, 5 s), resumed, killed (`SIGKILL`, 2 s
//! down) and restarted on the same port.
//!
//! Checked on every answer of the run: it is 200, 401 `replayed` or 503 `store_unavailable`
//! (no transport error, no other status, no hang: an outer timeout of 5 s) and arrives within
//! the store timeout plus [`SLACK`]; no resend of an accepted delivery is ever accepted; no
//! fresh delivery is ever called a replay. During the pause and the outage every answer is
//! 503 `store_unavailable`; a 200 whose claim overlapped the pause is a claim Redis recorded
//! (sent again after the pause, it is `replayed`), and a delivery refused with 503 claimed
//! nothing (its retry is accepted). The first 200 arrives within [`RECOVERY`] of Redis
//! resuming or answering again, without restarting the receiver.
//!
//! Redis runs without persistence, as the docs of `RedisNonceStore` warn: a restart forgets
//! every claim, so a delivery accepted before the restart and still inside its timestamp
//! window (±300 s for Standard Webhooks) is accepted once more after it (checked: exactly
//! once); one older than the window is refused by the verifier whatever Redis remembers. The
//! second test runs Redis with `appendonly yes`, `appendfsync always`: the claim survives the
//! restart and the resend is `replayed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::core::{Key, KeyRing, Secret, SystemClock};
use tollgate::replay::DEFAULT_TIMEOUT;
use tollgate::signature::StandardWebhooks;
use tollgate_test_support::{
    ChildGuard, REQUIRE_REDIS, TempDir, free_port, program_or_skip, redis_ping, wait_for,
};
use webhook_receiver::{Config, Inbox};

/// The test's own Standard Webhooks secret (not a credential).
const WHSEC: &str = "whsec_cmVkaXMtZmF1bHRzLXRlc3Qtb25seS1zaWduaW5nLWtleQ==";
/// What an answer may take beyond the store timeout (a loaded 2-core CI machine).
const SLACK: Duration = Duration::from_millis(500);
/// The bound on the first 200 after Redis resumes or answers again (measured here: see the
/// test's output).
const RECOVERY: Duration = Duration::from_secs(1);
/// An answer that has not arrived after this is a hang.
const HANG: Duration = Duration::from_secs(5);
/// Concurrent keep-alive clients.
const CLIENTS: usize = 8;
/// Each client sends at most one request per this.
const PACE: Duration = Duration::from_millis(10);
/// One request in this many is a resend of an accepted delivery.
const RESEND_ONE_IN: u64 = 10;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------
// redis-server of the test's own, with its pid for SIGSTOP / SIGCONT
// ---------------------------------------------------------------------------------------

struct Redis {
    program: PathBuf,
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    child: ChildGuard,
}

impl Redis {
    fn start_or_skip(test: &str, args: &[&str]) -> Option<Self> {
        let program = program_or_skip("redis-server", REQUIRE_REDIS, test)?;
        let port = free_port();
        let dir = TempDir::new("redis-faults");
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let child = Self::spawn(&program, port, &dir, &args);
        Some(Self {
            program,
            port,
            dir,
            args,
            child,
        })
    }

    fn spawn(program: &PathBuf, port: u16, dir: &TempDir, args: &[String]) -> ChildGuard {
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let child = ChildGuard::new(child);
        wait_for(
            Duration::from_secs(10),
            || redis_ping(port),
            "redis-server to answer PING",
        );
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `SIGKILL`, and waits for the process to be gone.
    fn kill(&mut self) {
        self.child.kill();
    }

    /// Starts it again on the same port and directory; returns once it answers `PING`.
    fn restart(&mut self) {
        self.child.kill();
        self.child = Self::spawn(&self.program, self.port, &self.dir, &self.args);
    }
}

const NO_PERSISTENCE: &[&str] = &["--save", "", "--appendonly", "no"];
const AOF_ALWAYS: &[&str] = &[
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

/// Runs a blocking step (signals, restarts) off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// The receiver and its clients
// ---------------------------------------------------------------------------------------

/// The webhook receiver example on a free loopback port, its nonce store on `redis_url`
/// (what `REDIS_URL` configures), with the system clock and the store's default timeout.
async fn receiver(redis_url: String) -> String {
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        onekey: KeyRing::new(Key::new("onekey-1", Secret::from_string("rf-onekey"))),
        generic: KeyRing::new(Key::new("generic-1", Secret::from_string("rf-generic"))),
        standard: KeyRing::new(Key::new(
            "standard-1",
            StandardWebhooks::secret_from_whsec(WHSEC).unwrap(),
        )),
        body_limit: 1024,
        redis_url: Some(redis_url),
        clock: Arc::new(SystemClock),
    };
    let app = webhook_receiver::app(&config, Inbox::default()).unwrap();
    let addr = webhook_receiver::spawn(config.addr, app).await.unwrap();
    format!("http://{addr}/webhooks/standard")
}

/// A signed delivery: resending it sends exactly the same request.
#[derive(Clone, Debug)]
struct Delivery {
    id: String,
    timestamp: u64,
    signature: String,
}

impl Delivery {
    fn new(id: String, timestamp: u64) -> Self {
        let secret = StandardWebhooks::secret_from_whsec(WHSEC).unwrap();
        let signature =
            StandardWebhooks::new().compute(&secret, &id, timestamp, &Self::body_of(&id));
        Self {
            id,
            timestamp,
            signature,
        }
    }

    fn body_of(id: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"type":"payment.succeeded","data":{{"id":"{id}"}}}}"#
        ))
    }

    fn request(&self, url: &str) -> Request<Full<Bytes>> {
        Request::post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", self.timestamp.to_string())
            .header("webhook-signature", &self.signature)
            .body(Full::new(Self::body_of(&self.id)))
            .unwrap()
    }
}

/// An answer: `"200"`, `"401 replayed"`, `"503 store_unavailable"`, or `"transport error: …"`
/// / `"hang"`.
#[derive(Clone, Debug)]
struct Answer {
    outcome: String,
    /// Since the run started.
    sent: Duration,
    latency: Duration,
}

impl Answer {
    fn answered(&self) -> Duration {
        self.sent + self.latency
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS)
        .build_http()
}

async fn send(client: &HttpClient, url: &str, delivery: &Delivery, t0: Instant) -> Answer {
    let sent = t0.elapsed();
    let started = Instant::now();
    let outcome = match tokio::time::timeout(HANG, async {
        let response = client.request(delivery.request(url)).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, tollgate::core::BoxError>((status, body))
    })
    .await
    {
        Err(_) => "hang".to_owned(),
        Ok(Err(err)) => format!("transport error: {err}"),
        Ok(Ok((status, body))) => {
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            match code {
                Some(code) => format!("{} {code}", status.as_u16()),
                None => status.as_u16().to_string(),
            }
        }
    };
    Answer {
        outcome,
        sent,
        latency: started.elapsed(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fresh,
    Resend,
}

#[derive(Clone, Debug)]
struct Record {
    kind: Kind,
    delivery: Delivery,
    answer: Answer,
}

/// What the clients share.
struct Load {
    url: String,
    client: HttpClient,
    t0: Instant,
    stop: AtomicBool,
    next: AtomicU64,
    /// Which Redis (0 before the kill, 1 after the restart): resends are drawn from the
    /// deliveries accepted by the current one only; those across the restart are checked
    /// on their own.
    generation: AtomicU8,
    accepted: Mutex<Vec<(u8, Delivery)>>,
    records: Mutex<Vec<Record>>,
}

impl Load {
    fn fresh(&self) -> Delivery {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Delivery::new(format!("msg_fault_{n}"), unix_now())
    }

    fn resendable(&self, pick: u64) -> Option<Delivery> {
        let generation = self.generation.load(Ordering::SeqCst);
        let accepted = self.accepted.lock().unwrap();
        let same: Vec<&Delivery> = accepted
            .iter()
            .filter(|(g, _)| *g == generation)
            .map(|(_, d)| d)
            .collect();
        (!same.is_empty()).then(|| same[usize::try_from(pick % same.len() as u64).unwrap()].clone())
    }

    /// One client: paced requests until `stop`.
    async fn run_client(self: Arc<Self>, seed: u64) {
        let mut rng = seed | 1;
        let mut pace = tokio::time::interval(PACE);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Bounded: the test stops the clients well before this.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            pace.tick().await;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let resend = if rng.is_multiple_of(RESEND_ONE_IN) {
                self.resendable(rng >> 8)
            } else {
                None
            };
            let (kind, delivery) = match resend {
                Some(delivery) => (Kind::Resend, delivery),
                None => (Kind::Fresh, self.fresh()),
            };
            // Read before sending: a delivery accepted by the first Redis is never filed
            // under the second.
            let generation = self.generation.load(Ordering::SeqCst);
            let answer = send(&self.client, &self.url, &delivery, self.t0).await;
            if kind == Kind::Fresh && answer.outcome == "200" {
                self.accepted
                    .lock()
                    .unwrap()
                    .push((generation, delivery.clone()));
            }
            self.records.lock().unwrap().push(Record {
                kind,
                delivery,
                answer,
            });
        }
    }

    fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

/// Sends every delivery once, `CLIENTS` at a time, and returns the answers.
async fn send_all(load: &Arc<Load>, deliveries: Vec<Delivery>) -> Vec<(Delivery, Answer)> {
    let chunks: Vec<Vec<Delivery>> = deliveries
        .chunks(deliveries.len().div_ceil(CLIENTS).max(1))
        .map(<[Delivery]>::to_vec)
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let load = Arc::clone(load);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for delivery in chunk {
                    let answer = send(&load.client, &load.url, &delivery, load.t0).await;
                    answers.push((delivery, answer));
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    answers
}

/// The first 200 of a fresh delivery sent at or after `from`: when it arrived, after `from`.
fn first_accept_after(records: &[Record], from: Duration) -> Option<Duration> {
    records
        .iter()
        .filter(|r| r.kind == Kind::Fresh && r.answer.sent >= from && r.answer.outcome == "200")
        .map(|r| r.answer.answered() - from)
        .min()
}

fn summary(records: &[Record], from: Duration, to: Duration) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for r in records
        .iter()
        .filter(|r| r.answer.sent >= from && r.answer.sent < to)
    {
        *counts
            .entry(format!("{:?} {}", r.kind, r.answer.outcome))
            .or_default() += 1;
    }
    format!("{counts:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_killed_and_restarted_under_load() {
    let Some(redis) = Redis::start_or_skip("redis_faults", NO_PERSISTENCE) else {
        return;
    };
    let redis = Arc::new(Mutex::new(redis));
    let redis_url = redis.lock().unwrap().url();
    let url = receiver(redis_url).await;
    let t0 = Instant::now();
    let load = Arc::new(Load {
        url: url.clone(),
        client: client(),
        t0,
        stop: AtomicBool::new(false),
        next: AtomicU64::new(0),
        generation: AtomicU8::new(0),
        accepted: Mutex::new(Vec::new()),
        records: Mutex::new(Vec::new()),
    });
    let bound = DEFAULT_TIMEOUT + SLACK;

    // Two deliveries accepted before any fault, for the restart checks: one fresh, one near
    // the far edge of the ±300 s window (it will be outside it after the restart).
    let before = Delivery::new("msg_before_faults".to_owned(), unix_now());
    let edge = Delivery::new("msg_edge_of_window".to_owned(), unix_now() - 295);
    for delivery in [&before, &edge] {
        assert_eq!(send(&load.client, &url, delivery, t0).await.outcome, "200");
    }

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(Arc::clone(&load).run_client(0x9E37_79B9 * (i as u64 + 1))))
        .collect();

    // Steady, then Redis paused for 5 s. (The phases are timed: these sleeps are their
    // lengths, not waits for an event.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = redis.lock().unwrap().child.id().unwrap();
    let r = Arc::clone(&redis);
    blocking(move || r.lock().unwrap().child.signal("STOP")).await;
    let t_stop = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Redis may answer before `kill` returns: the fault ends when the signal is sent.
    let t_resume = t0.elapsed();
    let r = Arc::clone(&redis);
    blocking(move || r.lock().unwrap().child.signal("CONT")).await;
    let t_cont = t0.elapsed();

    // Resumed: steady again. After 1.5 s, the claims that overlapped the pause.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let records = load.records();
    let overlapped: Vec<Delivery> = records
        .iter()
        .filter(|r| {
            r.kind == Kind::Fresh
                && r.answer.outcome == "200"
                && r.answer.answered() >= t_stop
                && r.answer.sent <= t_cont + bound
        })
        .map(|r| r.delivery.clone())
        .collect();
    let refused_in_pause: Vec<Delivery> = records
        .iter()
        .filter(|r| {
            r.kind == Kind::Fresh
                && r.answer.outcome == "503 store_unavailable"
                && r.answer.sent >= t_stop
                && r.answer.sent < t_cont
        })
        .map(|r| r.delivery.clone())
        .collect();
    assert!(
        refused_in_pause.len() >= 10,
        "too few refusals during the pause: {}",
        refused_in_pause.len()
    );
    // A 200 during the pause is a claim Redis recorded: sent again, it is a replay.
    for (delivery, answer) in send_all(&load, overlapped.clone()).await {
        assert_eq!(
            answer.outcome, "401 replayed",
            "{delivery:?} was accepted across the pause but its claim is not in Redis"
        );
    }
    // A 503 claimed nothing (a claim applied after its timeout is undone): the retry is
    // accepted.
    for (delivery, answer) in send_all(&load, refused_in_pause.clone()).await {
        assert_eq!(
            answer.outcome, "200",
            "the retry of {delivery:?}, refused with 503 during the pause, was not accepted"
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Killed: 2 s down.
    let t_kill = t0.elapsed();
    let r = Arc::clone(&redis);
    blocking(move || r.lock().unwrap().kill()).await;
    let t_dead = t0.elapsed();
    load.generation.store(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Restarted on the same port, empty (no persistence).
    let t_restart_begin = t0.elapsed();
    let r = Arc::clone(&redis);
    blocking(move || r.lock().unwrap().restart()).await;
    let t_restart = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(HANG * 2, client)
            .await
            .expect("a client did not stop")
            .unwrap();
    }
    let t_end = t0.elapsed();
    let records = load.records();

    // Across the restart: the deliveries refused while Redis was down claimed nothing.
    let refused_while_down: Vec<Delivery> = records
        .iter()
        .filter(|r| {
            r.kind == Kind::Fresh
                && r.answer.outcome == "503 store_unavailable"
                && r.answer.sent >= t_dead
                && r.answer.sent < t_restart_begin
        })
        .map(|r| r.delivery.clone())
        .take(50)
        .collect();
    assert!(
        !refused_while_down.is_empty(),
        "no refusal while Redis was down"
    );
    for (delivery, answer) in send_all(&load, refused_while_down).await {
        assert_eq!(answer.outcome, "200", "retry of {delivery:?}");
    }
    // Redis kept nothing: a delivery accepted before the restart and still inside its
    // window is accepted once more (the documented cost of running without persistence),
    // then refused as a replay again.
    let resent = send(&load.client, &url, &before, t0).await;
    assert_eq!(
        resent.outcome, "200",
        "a restart without persistence forgets claims; if this changed, update the docs"
    );
    assert_eq!(
        send(&load.client, &url, &before, t0).await.outcome,
        "401 replayed"
    );
    // The window bounds it: one signed more than 300 s ago is refused, whatever Redis
    // remembers.
    assert_eq!(
        send(&load.client, &url, &edge, t0).await.outcome,
        "401 timestamp_out_of_window"
    );

    // Every answer of the run.
    let mut worst = Duration::ZERO;
    for r in &records {
        let outcome = r.answer.outcome.as_str();
        assert!(
            matches!(outcome, "200" | "401 replayed" | "503 store_unavailable"),
            "unexpected answer {outcome} to {r:?}"
        );
        assert!(
            r.answer.latency <= bound,
            "answer after {:?} (bound {bound:?}): {r:?}",
            r.answer.latency
        );
        worst = worst.max(r.answer.latency);
        match r.kind {
            Kind::Resend => assert_ne!(outcome, "200", "a resend was accepted: {r:?}"),
            Kind::Fresh => assert_ne!(outcome, "401 replayed", "a fresh delivery: {r:?}"),
        }
    }
    // During the faults: 503 only, for every request sent while Redis could not answer.
    let paused = Duration::from_millis(100);
    for r in records.iter().filter(|r| {
        (r.answer.sent >= t_stop + paused && r.answer.answered() < t_resume)
            || (r.answer.sent >= t_dead && r.answer.answered() < t_restart_begin)
    }) {
        assert_eq!(
            r.answer.outcome, "503 store_unavailable",
            "answer during a fault: {r:?}"
        );
    }
    // Steady phases: fresh accepted, resends replayed; no 503 once recovered.
    let after_pause = first_accept_after(&records, t_cont).expect("no 200 after the pause");
    let after_restart = first_accept_after(&records, t_restart).expect("no 200 after the restart");
    for (from, to) in [
        (Duration::ZERO, t_stop - bound),
        (t_cont + after_pause + SLACK, t_kill - bound),
        (t_restart + after_restart + SLACK, t_end),
    ] {
        for r in records
            .iter()
            .filter(|r| r.answer.sent >= from && r.answer.sent < to)
        {
            let want = match r.kind {
                Kind::Fresh => "200",
                Kind::Resend => "401 replayed",
            };
            assert_eq!(r.answer.outcome, want, "steady phase: {r:?}");
        }
    }
    let resends = records.iter().filter(|r| r.kind == Kind::Resend).count();
    // The 503s of requests sent after SIGCONT and answered before the kill.
    let late: Vec<String> = records
        .iter()
        .filter(|r| {
            r.answer.sent >= t_cont
                && r.answer.answered() < t_kill
                && r.answer.outcome.starts_with("503")
        })
        .map(|r| {
            format!(
                "sent +{:?} took {:?}",
                r.answer.sent - t_cont,
                r.answer.latency
            )
        })
        .collect();
    eprintln!("redis_faults: 503s sent after SIGCONT: {late:?}");
    eprintln!(
        "redis_faults: redis pid {pid}; {} answers ({resends} resends), worst latency {worst:?} (bound {bound:?})\n  \
         steady {}\n  paused (t={t_stop:?}..{t_cont:?}) {}\n  resumed {}\n  down (t={t_kill:?}..{t_restart_begin:?}) {}\n  restarted (t={t_restart:?}) {}\n  \
         first 200 {after_pause:?} after SIGCONT, {after_restart:?} after the restarted Redis answered PING (bound {RECOVERY:?})\n  \
         {} claims overlapping the pause were all recorded; {} deliveries refused during the pause were accepted on retry\n  \
         persistence off: a delivery accepted before the restart was accepted once more after it (documented); one signed 295 s before was refused as out of window",
        records.len(),
        summary(&records, Duration::ZERO, t_stop),
        summary(&records, t_stop, t_cont),
        summary(&records, t_cont, t_kill),
        summary(&records, t_kill, t_restart),
        summary(&records, t_restart, t_end),
        overlapped.len(),
        refused_in_pause.len(),
    );
    assert!(
        after_pause <= RECOVERY,
        "recovery after SIGCONT took {after_pause:?}"
    );
    assert!(
        after_restart <= RECOVERY,
        "recovery after the restart took {after_restart:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_survive_a_redis_restart_with_append_only_file() {
    let Some(mut redis) = Redis::start_or_skip("redis_faults_aof", AOF_ALWAYS) else {
        return;
    };
    let url = receiver(redis.url()).await;
    let client = client();
    let t0 = Instant::now();
    let delivery = Delivery::new("msg_persisted".to_owned(), unix_now());
    assert_eq!(send(&client, &url, &delivery, t0).await.outcome, "200");
    redis = blocking(move || {
        redis.kill();
        redis
    })
    .await;
    assert_eq!(
        send(&client, &url, &delivery, t0).await.outcome,
        "503 store_unavailable"
    );
    redis = blocking(move || {
        redis.restart();
        redis
    })
    .await;
    // The receiver reconnects by itself; the claim was replayed from the append-only file.
    let deadline = Instant::now() + RECOVERY * 5;
    let answer = loop {
        let answer = send(&client, &url, &delivery, t0).await;
        if answer.outcome != "503 store_unavailable" || Instant::now() > deadline {
            break answer;
        }
    };
    assert_eq!(answer.outcome, "401 replayed");
    let fresh = Delivery::new("msg_after_restart".to_owned(), unix_now());
    assert_eq!(send(&client, &url, &fresh, t0).await.outcome, "200");
    drop(redis);
}
