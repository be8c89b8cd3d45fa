//! Free loopback ports and the outside programs tests start themselves (`redis-server`, a
//! Redis Cluster and a Sentinel group with `redis-cli`, Debian's `chromium`, `php-cli`).
//!
//! Tests that need a program call [`program_or_skip`]: when the program is missing it prints a
//! skip notice and returns `None`, unless the matching `TOLLGATE_REQUIRE_*` variable is `1`
//! (CI sets them), in which case the test fails. A missing program is never a silent pass in CI.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `TOLLGATE_REQUIRE_REDIS`: when `1`, Redis tests fail instead of skipping.
pub const REQUIRE_REDIS: &str = "TOLLGATE_REQUIRE_REDIS";
/// `TOLLGATE_REQUIRE_BROWSER`: when `1`, browser tests fail instead of skipping.
pub const REQUIRE_BROWSER: &str = "TOLLGATE_REQUIRE_BROWSER";
/// `TOLLGATE_REQUIRE_PHP`: when `1`, PHP tests fail instead of skipping.
pub const REQUIRE_PHP: &str = "TOLLGATE_REQUIRE_PHP";

/// Whether the variable is set to `1`.
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.trim() == "1")
}

/// The program's path if it is on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The program's path; when it is missing, a skip notice (and `None`) or, when `require_var`
/// is `1`, a panic that fails the test.
pub fn program_or_skip(program: &str, require_var: &str, test: &str) -> Option<PathBuf> {
    crate::trace_log::init();
    if let Some(path) = which(program) {
        return Some(path);
    }
    if required(require_var) {
        panic!("{test}: `{program}` is not installed but {require_var}=1 requires it");
    }
    let notice = format!(
        "SKIPPED {test}: `{program}` is not installed (install it, or set {require_var}=1 to make this a failure)"
    );
    println!("{notice}");
    eprintln!("{notice}");
    None
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    crate::trace_log::init();
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// A fresh, empty temporary directory (removed when the value drops).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/tollgate-<prefix>-<unique>`.
    pub fn new(prefix: &str) -> Self {
        crate::trace_log::init();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "tollgate-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Sends `signal` (a name for `kill -s`: `STOP`, `CONT`, …) to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.id() {
            let status = Command::new("kill")
                .args(["-s", signal, &pid.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -s {signal} {pid} failed");
        }
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` of the test's own on a free loopback port, with no persistence.
/// It can be stopped and started again on the same port (outage tests).
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    port: u16,
    dir: TempDir,
    extra_args: Vec<String>,
    child: ChildGuard,
}

impl RedisServer {
    /// Starts a server, or returns `None` after a skip notice when `redis-server` is missing
    /// (a panic instead when `TOLLGATE_REQUIRE_REDIS=1`).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        Self::start_with_args_or_skip(test, &[])
    }

    /// [`start_or_skip`](Self::start_or_skip) with `extra_args` appended to the command line
    /// (e.g. `["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]`); a later
    /// [`restart`](Self::restart) passes them again.
    pub fn start_with_args_or_skip(test: &str, extra_args: &[&str]) -> Option<Self> {
        let program = program_or_skip("redis-server", REQUIRE_REDIS, test)?;
        let port = free_port();
        let dir = TempDir::new("redis");
        let extra_args: Vec<String> = extra_args.iter().map(|&a| a.to_owned()).collect();
        let child = Self::spawn(&program, port, dir.path(), &extra_args);
        Some(Self {
            program,
            port,
            dir,
            extra_args,
            child,
        })
    }

    fn spawn(program: &Path, port: u16, dir: &Path, extra_args: &[String]) -> ChildGuard {
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let guard = ChildGuard::new(child);
        wait_for(
            Duration::from_secs(10),
            || redis_ping(port),
            "redis-server to answer PING",
        );
        guard
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (connections drop; the port closes).
    pub fn stop(&mut self) {
        self.child.kill();
    }

    /// Starts the server again on the same port (empty: it keeps no data).
    pub fn restart(&mut self) {
        self.child.kill();
        self.child = Self::spawn(&self.program, self.port, self.dir.path(), &self.extra_args);
    }
}

/// Whether a Redis server answers `PING` on the loopback port.
pub fn redis_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Polls `ready` every 20 ms until it is true, panicking with `what` after `timeout`.
pub fn wait_for(timeout: Duration, mut ready: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Debian's headless Chromium, run once per page.
#[derive(Debug)]
pub struct Chromium {
    program: PathBuf,
}

impl Chromium {
    /// Finds `chromium` (or `chromium-browser`), or prints a skip notice and returns `None`
    /// (a panic instead when `TOLLGATE_REQUIRE_BROWSER=1`).
    pub fn find_or_skip(test: &str) -> Option<Self> {
        if let Some(program) = which("chromium-browser") {
            return Some(Self { program });
        }
        program_or_skip("chromium", REQUIRE_BROWSER, test).map(|program| Self { program })
    }

    /// Loads `url` headless, lets the page run for `budget` of virtual time, and returns the
    /// DOM as serialised by `--dump-dom`. Blocking: call it from `spawn_blocking` inside async
    /// tests so the servers keep running.
    pub fn dump_dom(&self, url: &str, budget: Duration) -> String {
        let profile = TempDir::new("chromium");
        let output = Command::new(&self.program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--virtual-time-budget={}", budget.as_millis()))
            .arg("--dump-dom")
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .expect("run chromium");
        assert!(
            output.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// `php` (Debian's `php-cli`), with the curl extension available.
#[derive(Debug)]
pub struct Php {
    program: PathBuf,
}

impl Php {
    /// Finds `php` with its curl extension, or prints a skip notice and returns `None`
    /// (a panic instead when `TOLLGATE_REQUIRE_PHP=1`).
    pub fn find_or_skip(test: &str) -> Option<Self> {
        let program = program_or_skip("php", REQUIRE_PHP, test)?;
        let modules = Command::new(&program)
            .arg("-m")
            .output()
            .expect("run php -m");
        let has_curl = String::from_utf8_lossy(&modules.stdout)
            .lines()
            .any(|m| m.trim().eq_ignore_ascii_case("curl"));
        if !has_curl {
            if required(REQUIRE_PHP) {
                panic!("{test}: php's curl extension (php-curl) is missing but {REQUIRE_PHP}=1");
            }
            println!("SKIPPED {test}: php has no curl extension (install php-curl)");
            return None;
        }
        Some(Self { program })
    }

    /// Runs `script` (PHP source, starting with `<?php`) with `args`; returns its output.
    /// Blocking: call it from `spawn_blocking` inside async tests.
    pub fn run(&self, script: &str, args: &[&str]) -> Output {
        let dir = TempDir::new("php");
        let path = dir.path().join("script.php");
        std::fs::write(&path, script).expect("write php script");
        Command::new(&self.program)
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run php")
    }
}

/// `redis-cli -h 127.0.0.1 -p <port> <args…>`: its standard output, trimmed (errors appear
/// there as text, e.g. `MOVED 866 127.0.0.1:7001`), or `None` when it could not run or reach
/// the server in time.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !stdout.starts_with("Could not connect")).then_some(stdout)
}

/// One `redis-server` process of a [`RedisCluster`] or [`RedisSentinels`].
#[derive(Debug)]
struct RedisProcess {
    port: u16,
    child: ChildGuard,
}

impl RedisProcess {
    /// Starts `redis-server` on `port` (no persistence, loopback) with `args`, and waits for
    /// `PING`.
    fn spawn(program: &Path, port: u16, dir: &Path, args: &[String]) -> Self {
        let dir = dir.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let child = Command::new(program)
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
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
        Self { port, child }
    }
}

/// `redis-server` and `redis-cli`, or `None` after a skip notice (a panic when
/// `TOLLGATE_REQUIRE_REDIS=1`).
fn redis_programs(test: &str) -> Option<PathBuf> {
    let server = program_or_skip("redis-server", REQUIRE_REDIS, test)?;
    program_or_skip("redis-cli", REQUIRE_REDIS, test)?;
    Some(server)
}

/// A Redis Cluster of three masters (no replicas) of the test's own on free loopback ports,
/// created with `redis-cli --cluster create` and ready (`cluster_state:ok` on every node)
/// when returned. Killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts the cluster, or returns `None` after a skip notice when `redis-server` or
    /// `redis-cli` is missing (a panic instead when `TOLLGATE_REQUIRE_REDIS=1`).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let program = redis_programs(test)?;
        let dir = TempDir::new("redis-cluster");
        let nodes: Vec<RedisProcess> = (0..3)
            .map(|_| {
                let port = free_port();
                let args = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &free_port().to_string(),
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ]
                .map(str::to_owned);
                RedisProcess::spawn(&program, port, dir.path(), &args)
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes, _dir: dir };
        wait_for(
            Duration::from_secs(20),
            || {
                cluster.ports().into_iter().all(|port| {
                    redis_cli(port, &["CLUSTER", "INFO"])
                        .is_some_and(|info| info.contains("cluster_state:ok"))
                })
            },
            "the cluster to report cluster_state:ok on every node",
        );
        Some(cluster)
    }

    /// The masters' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// `redis://127.0.0.1:<port>` of every master.
    pub fn urls(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The port of the master that holds `key` (the one that answers `EXISTS` with `1`),
    /// or `None` when no master holds it.
    pub fn holder_of(&self, key: &str) -> Option<u16> {
        self.ports()
            .into_iter()
            .find(|&port| redis_cli(port, &["EXISTS", key]).as_deref() == Some("1"))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        redis_cli(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key])
            .and_then(|slot| slot.parse().ok())
            .expect("CLUSTER KEYSLOT answers a number")
    }
}

/// The service name the [`RedisSentinels`] monitor.
pub const SENTINEL_SERVICE: &str = "tollgate";

/// A master, one replica and three Sentinels (quorum 2, `down-after-milliseconds 1000`,
/// `failover-timeout 2000`) of the test's own on free loopback ports, ready when returned:
/// the replica in sync and every Sentinel aware of the replica and of the two other
/// Sentinels. Killed when dropped.
#[derive(Debug)]
pub struct RedisSentinels {
    master: RedisProcess,
    replica: RedisProcess,
    sentinels: Vec<RedisProcess>,
    dir: TempDir,
}

impl RedisSentinels {
    /// Starts the group, or returns `None` after a skip notice when `redis-server` or
    /// `redis-cli` is missing (a panic instead when `TOLLGATE_REQUIRE_REDIS=1`). The
    /// Sentinels are `redis-server --sentinel`, which every `redis-server` can run.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let program = redis_programs(test)?;
        let dir = TempDir::new("redis-sentinel");
        let fast_sync = ["--repl-diskless-sync-delay", "0"].map(str::to_owned);
        let master = RedisProcess::spawn(&program, free_port(), dir.path(), &fast_sync);
        let mut replica_args = fast_sync.to_vec();
        replica_args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ]);
        let replica = RedisProcess::spawn(&program, free_port(), dir.path(), &replica_args);
        wait_for(
            Duration::from_secs(10),
            || {
                redis_cli(replica.port, &["INFO", "replication"])
                    .is_some_and(|info| info.contains("master_link_status:up"))
            },
            "the replica to sync with the master",
        );
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let conf = dir.path().join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master} 2\n\
                         sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                         sentinel failover-timeout {SENTINEL_SERVICE} 2000\n\
                         sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                        master = master.port
                    ),
                )
                .expect("write sentinel.conf");
                let args = [conf.display().to_string(), "--sentinel".into()];
                RedisProcess::spawn(&program, port, dir.path(), &args)
            })
            .collect::<Vec<_>>();
        let group = Self {
            master,
            replica,
            sentinels,
            dir,
        };
        wait_for(
            Duration::from_secs(20),
            || {
                group.sentinels.iter().all(|sentinel| {
                    let count = |what: &str| {
                        redis_cli(sentinel.port, &["SENTINEL", what, SENTINEL_SERVICE])
                            .map_or(0, |out| out.lines().filter(|l| *l == "ip").count())
                    };
                    count("replicas") == 1 && count("sentinels") == 2
                })
            },
            "every Sentinel to know the replica and the two other Sentinels",
        );
        Some(group)
    }

    /// `redis://127.0.0.1:<port>` of every Sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|sentinel| format!("redis://127.0.0.1:{}", sentinel.port))
            .collect()
    }

    /// The port of the master the group started with.
    pub fn master_port(&self) -> u16 {
        self.master.port
    }

    /// The port of the replica the group started with.
    pub fn replica_port(&self) -> u16 {
        self.replica.port
    }

    /// Kills the master (`SIGKILL`: no goodbye to the replica or the Sentinels).
    pub fn kill_master(&mut self) {
        self.master.child.kill();
    }

    /// Starts the killed master again on its port, empty and with its old arguments: it
    /// says it is a master until the Sentinels turn it into a replica of the new master.
    pub fn restart_master(&mut self) {
        self.master.child.kill();
        let program = which("redis-server").expect("redis-server was found at start");
        self.master = RedisProcess::spawn(
            &program,
            self.master.port,
            self.dir.path(),
            &["--repl-diskless-sync-delay", "0"].map(str::to_owned),
        );
    }

    /// Blocks until the server restarted on the old master's port is a replica in sync with
    /// the new master (`master_link_status:up`). Panics after `timeout`.
    ///
    /// The Sentinels turn a returning master into a replica only after it has reported its
    /// old role for a while (8 s), and not at all while they are in TILT mode (30 s after their
    /// timer stalled for 2 s, which a loaded machine can cause). After half of `timeout` the
    /// server is told with `REPLICAOF`, as an operator would, so the wait does not depend on
    /// the Sentinels' timers.
    pub fn wait_for_old_master_to_replicate(&self, timeout: Duration) {
        let start = Instant::now();
        let in_sync = || {
            redis_cli(self.master.port, &["INFO", "replication"]).is_some_and(|info| {
                info.contains("role:slave") && info.contains("master_link_status:up")
            })
        };
        let mut told = false;
        while !in_sync() {
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for the old master to replicate the new one"
            );
            if !told && start.elapsed() >= timeout / 2 {
                let new_master = self.replica.port.to_string();
                redis_cli(
                    self.master.port,
                    &["REPLICAOF", "127.0.0.1", new_master.as_str()],
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes the replica (`SIGSTOP`): it neither reads from the master nor reconnects.
    pub fn pause_replica(&self) {
        self.replica.child.signal("STOP");
    }

    /// Lets a paused replica run again (`SIGCONT`).
    pub fn resume_replica(&self) {
        self.replica.child.signal("CONT");
    }

    /// The port every Sentinel names as the master (`SENTINEL get-master-addr-by-name`), if
    /// they agree.
    pub fn named_master(&self) -> Option<u16> {
        let mut named = self.sentinels.iter().map(|sentinel| {
            redis_cli(
                sentinel.port,
                &["SENTINEL", "get-master-addr-by-name", SENTINEL_SERVICE],
            )
            .and_then(|out| out.lines().nth(1).and_then(|port| port.trim().parse().ok()))
        });
        let first = named.next().flatten()?;
        named.all(|port| port == Some(first)).then_some(first)
    }

    /// Blocks until every Sentinel names the replica as the master and the replica says it
    /// is one (`ROLE`); how long that took. Panics after `timeout`.
    pub fn wait_for_failover(&self, timeout: Duration) -> Duration {
        let start = Instant::now();
        wait_for(
            timeout,
            || {
                self.named_master() == Some(self.replica.port)
                    && redis_cli(self.replica.port, &["ROLE"])
                        .is_some_and(|role| role.lines().next() == Some("master"))
            },
            "the Sentinels to promote the replica",
        );
        start.elapsed()
    }
}
