//! A real `SIGHUP` to this process reloads the files (its own test binary, so no other test
//! shares the signal).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use http::StatusCode;

use common::{NEW, OLD, start, write};

#[tokio::test]
async fn sighup_swaps_the_keys_without_a_restart() {
    let app = start().await;
    key_rotation::reload_on_sighup(app.reloader.clone()).unwrap();
    let mut reloads = app.reloader.subscribe();
    assert_eq!(app.webhook(OLD).await, (StatusCode::OK, "old".into()));

    write(&app.dir, "keys", &format!("new = {NEW}\n"));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    reloads.changed().await.unwrap();
    assert_eq!(*reloads.borrow(), 1);

    assert_eq!(app.webhook(OLD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.webhook(NEW).await, (StatusCode::OK, "new".into()));
}
