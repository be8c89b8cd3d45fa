//! Free loopback ports and the outside programs tests start themselves (`redis-server`,
//! Debian's `chromium`, `php-cli`).
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
