//! Figures criterion does not record (allocation counts, bytes per entry, external tools'
//! throughput), appended as `key=value` lines to the file named by `TOLLGATE_BENCH_RESULTS`.
//! `run.sh` sets it; without it the figures are only printed.

use std::fmt::Display;
use std::io::Write;

/// The environment variable naming the results file.
pub const RESULTS_ENV: &str = "TOLLGATE_BENCH_RESULTS";

/// Prints `key=value` and appends it to the results file, if one is configured.
pub fn record(key: &str, value: impl Display) {
    let line = format!("{key}={value}");
    println!("result: {line}");
    let Some(path) = std::env::var_os(RESULTS_ENV) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(err) = written {
        eprintln!("could not append to the results file: {err}");
    }
}
