//! A copied partner backend never runs on the published demo credentials by accident: without
//! `TRANSAK_API_URL`, `TRANSAK_API_KEY` and `TRANSAK_API_SECRET` the binary refuses to start
//! and names them; `--demo` starts it (against the HTTPS mock) with a warning.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary killed (and reaped) when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn partner(args: &[&str], addr: &str) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_transak-partner"))
        .args(args)
        .env_clear()
        .env("TRANSAK_PARTNER_ADDR", addr)
        .env("TRANSAK_MOCK_ADDR", "127.0.0.1:0")
        // Set but empty counts as unset.
        .env("TRANSAK_API_SECRET", " ")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start transak-partner");
    Running(child)
}

#[test]
fn refuses_to_start_without_its_credentials_naming_them() {
    let mut partner = partner(&[], "0.0.0.0:0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = partner.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "transak-partner started on 0.0.0.0 with no credentials set"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    partner
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    for var in ["TRANSAK_API_URL", "TRANSAK_API_KEY", "TRANSAK_API_SECRET"] {
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
    assert!(stderr.contains("--demo"), "{stderr}");
}

#[test]
fn starts_with_demo_and_says_so() {
    let mut partner = partner(&["--demo"], "127.0.0.1:0");
    let stdout = BufReader::new(partner.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut mock_over_https = false;
    let started = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("transak-partner on http://127.0.0.1:") => break true,
            Ok(line) => {
                mock_over_https |= line.starts_with("mock Transak API on https://127.0.0.1:");
            }
            Err(_) => break false,
        }
    };
    assert!(started, "no start line within 10 s");
    assert!(mock_over_https, "the mock is not announced on an https URL");
    assert!(partner.0.try_wait().unwrap().is_none(), "exited");
    partner.0.kill().unwrap();
    let mut stderr = String::new();
    partner
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("WARNING: --demo"), "{stderr}");
    assert!(stderr.contains("TRANSAK_API_SECRET"), "{stderr}");
}
