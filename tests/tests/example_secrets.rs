//! The webhook receiver, a template people copy, never verifies with the secrets printed in
//! its own docs by accident: without `ONEKEY_SIGNATURE_SECRET`, `WEBHOOK_SECRET` and
//! `STANDARD_WEBHOOK_SECRET` its configuration refuses to load and names them; `--demo` is the
//! one way to the demo secrets. (Its server's limits are tested once, in
//! `examples/example-server`, which it serves with.)
//!
//! The refusal is checked in a child process (this test binary run again with a cleared
//! environment and `WEBHOOK_ADDR=0.0.0.0:0`), so no test edits the shared environment.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::process::Command;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tollgate::core::Secret;
use tollgate::signature::BodyHmac;
use tollgate_demo::net;
use webhook_receiver::{Config, Inbox, Secrets};

/// Marks the child run of [`child_loads_the_config_from_its_environment`].
const CHILD: &str = "TOLLGATE_EXAMPLE_SECRETS_CHILD";

/// In the child only: loads the configuration as `main` does and prints the outcome.
#[test]
fn child_loads_the_config_from_its_environment() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match Config::from_env() {
        Ok(config) => println!("CHILD-LOADED {}", config.addr),
        Err(err) => println!("CHILD-REFUSED {err}"),
    }
}

#[test]
fn refuses_to_load_without_its_secrets_naming_them() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_loads_the_config_from_its_environment",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD, "1")
        .env("WEBHOOK_ADDR", "0.0.0.0:0")
        // Set but blank counts as unset.
        .env("WEBHOOK_SECRET", "  ")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints the test's output on its `test ... ` line.
    let line = stdout
        .lines()
        .find_map(|line| line.find("CHILD-").map(|at| &line[at..]))
        .unwrap_or_else(|| panic!("the child did not run: {stdout}"));
    assert!(
        line.starts_with("CHILD-REFUSED"),
        "the receiver loaded on 0.0.0.0 with no secrets set: {line}"
    );
    for var in [
        "ONEKEY_SIGNATURE_SECRET",
        "WEBHOOK_SECRET",
        "STANDARD_WEBHOOK_SECRET",
    ] {
        assert!(line.contains(var), "{var} not named: {line}");
    }
    assert!(line.contains("--demo"), "{line}");
}

#[test]
fn only_the_demo_flag_selects_the_demo_secrets() {
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        Secrets::from_args("webhook-receiver", args(&[])).unwrap(),
        Secrets::Required
    );
    assert_eq!(
        Secrets::from_args("webhook-receiver", args(&["--demo"])).unwrap(),
        Secrets::Demo
    );
    let err = Secrets::from_args("webhook-receiver", args(&["--dmeo"])).unwrap_err();
    assert!(err.contains("--dmeo"), "{err}");
}

#[test]
fn set_secrets_load_without_the_demo_flag() {
    let config = Config::from_vars(Secrets::Required, |name| match name {
        "ONEKEY_SIGNATURE_SECRET" | "WEBHOOK_SECRET" => Some("s3cret".to_owned()),
        "STANDARD_WEBHOOK_SECRET" => Some("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=".to_owned()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.addr.to_string(), "127.0.0.1:3002");
    assert!(
        webhook_receiver::missing_secrets(|_| Some("x".to_owned())).is_empty(),
        "all set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_the_demo_secrets_under_demo() {
    let config = Config::from_vars(Secrets::Demo, |name| {
        (name == "WEBHOOK_ADDR").then(|| "127.0.0.1:0".to_owned())
    })
    .unwrap();
    let inbox = Inbox::default();
    let app = webhook_receiver::app(&config, inbox.clone()).unwrap();
    let addr = webhook_receiver::spawn(config.addr, app).await.unwrap();
    let body = br#"{"event":"payout.completed","id":"evt_demo"}"#;
    let signature = BodyHmac::onekey().compute(&Secret::from_string("demo-onekey-secret"), body);
    let request = Request::post(format!("http://{addr}/webhooks/onekey"))
        .header("content-type", "application/json")
        .header("payload-signature", signature)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let reply = net::send(request).await.unwrap();
    assert_eq!(reply.outcome(), "200", "{:?}", reply.body);
    assert_eq!(inbox.len(), 1);
}
