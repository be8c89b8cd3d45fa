//! A test binary's whole `tracing` output at TRACE into a file, for the secret scan.
//!
//! When [`TRACE_LOG_VAR`] (`TOLLGATE_TRACE_LOG`) names a directory, [`init`] installs, once
//! per process, a global subscriber that writes every event and span of every target at
//! TRACE (and the `log` records of rustls, hyper-rustls and reqwest, through `tracing-log`)
//! into `<dir>/<test binary>-<pid>.log`. Without the variable it does nothing.
//!
//! The helpers that start servers and programs ([`free_port`](crate::free_port),
//! [`TestPki::generate`](crate::tls::TestPki::generate),
//! [`HttpsServer::start`](crate::tls::HttpsServer::start), the Redis starters,
//! [`LogCapture::new`](crate::LogCapture::new)) call it, so every test binary that uses them
//! logs without a change of its own. A thread with a [`LogCapture`](crate::LogCapture)
//! installed logs into the capture instead (the thread's default wins over the global one).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the directory the logs go to.
pub const TRACE_LOG_VAR: &str = "TOLLGATE_TRACE_LOG";

/// Installs the file subscriber when [`TRACE_LOG_VAR`] is set (once per process; later calls
/// return the same answer). Returns the log file, or `None` when the variable is unset or a
/// subscriber was installed already.
pub fn init() -> Option<PathBuf> {
    FILE.get_or_init(install).clone()
}

/// The file [`init`] installed, once decided (`None`: none, or [`install_global`] came first).
static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Installs a global subscriber writing every event and span at TRACE (and `log` records)
/// into `capture`, for a test binary of its own whose servers log on many threads. Returns
/// `false` when a global subscriber was installed already.
///
/// It also turns [`init`] off for the process, so a binary that captures globally must call
/// it before anything that calls [`init`] (e.g. first in every test, through a `OnceLock`).
pub fn install_global(capture: &crate::LogCapture) -> bool {
    use tracing_subscriber::util::SubscriberInitExt as _;
    FILE.get_or_init(|| None);
    let writer = capture.clone();
    let installed = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish()
        .try_init()
        .is_ok();
    tracing::callsite::rebuild_interest_cache();
    installed
}

fn install() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(TRACE_LOG_VAR)?);
    if dir.as_os_str().is_empty() {
        return None;
    }
    std::fs::create_dir_all(&dir).ok()?;
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .unwrap_or("test");
    let path = dir.join(format!("{stem}-{}.log", std::process::id()));
    let file = std::fs::File::create(&path).ok()?;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish()
        .try_init()
        .ok()?;
    Some(path)
}
