//! Reloading through the loopback admin endpoint: keys, ranges and origins change without a
//! restart; a wrong file changes nothing; the endpoint never binds beyond loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use http::StatusCode;
use key_rotation::AdminError;

use common::{NEW, OLD, start, write};

#[tokio::test]
async fn new_key_deploy_verify_revoke_old_through_the_admin_endpoint() {
    let app = start().await;
    let admin = key_rotation::start_admin("127.0.0.1:0".parse().unwrap(), app.reloader.clone())
        .await
        .unwrap();
    assert_eq!(app.webhook(OLD).await, (StatusCode::OK, "old".into()));
    assert_eq!(app.webhook(NEW).await.0, StatusCode::UNAUTHORIZED);

    // New key first, old one still accepted.
    write(&app.dir, "keys", &format!("new = {NEW}\nold = {OLD}\n"));
    assert_eq!(
        app.admin_reload(admin).await,
        (StatusCode::OK, "reloaded".into())
    );
    assert_eq!(app.webhook(NEW).await, (StatusCode::OK, "new".into()));
    assert_eq!(app.webhook(OLD).await, (StatusCode::OK, "old".into()));

    // Revoke the old key: its very next use fails.
    write(&app.dir, "keys", &format!("new = {NEW}\n"));
    assert_eq!(app.admin_reload(admin).await.0, StatusCode::OK);
    assert_eq!(app.webhook(OLD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.webhook(NEW).await, (StatusCode::OK, "new".into()));
    assert_eq!(*app.reloader.subscribe().borrow(), 2);
}

#[tokio::test]
async fn ranges_and_origins_reload_without_a_restart() {
    let app = start().await;
    let admin = key_rotation::start_admin("127.0.0.1:0".parse().unwrap(), app.reloader.clone())
        .await
        .unwrap();
    let app_origin = "https://app.example.com";
    // No trusted proxy: the loopback peer is the client.
    assert_eq!(
        app.whoami(app_origin, "203.0.113.9").await,
        (StatusCode::OK, "127.0.0.1".into())
    );

    // Trust the loopback proxy, allow the client's network, add an origin.
    write(&app.dir, "proxies", "127.0.0.1\n");
    write(&app.dir, "allowlist", "loopback\n203.0.113.0/24\n");
    write(
        &app.dir,
        "origins",
        "https://app.example.com\nhttps://new.example.com\n",
    );
    assert_eq!(app.admin_reload(admin).await.0, StatusCode::OK);
    assert_eq!(
        app.whoami(app_origin, "203.0.113.9").await,
        (StatusCode::OK, "203.0.113.9".into())
    );
    assert_eq!(
        app.whoami("https://new.example.com", "203.0.113.9").await.0,
        StatusCode::OK
    );

    // Narrow the allowlist: the same client is refused on the next request.
    write(&app.dir, "allowlist", "loopback\n");
    assert_eq!(app.admin_reload(admin).await.0, StatusCode::OK);
    let (status, body) = app.whoami(app_origin, "203.0.113.9").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("ip_not_allowed"), "{body}");
}

#[tokio::test]
async fn a_wrong_file_changes_nothing_and_names_no_secret() {
    let app = start().await;
    let admin = key_rotation::start_admin("127.0.0.1:0".parse().unwrap(), app.reloader.clone())
        .await
        .unwrap();
    // A valid new key file with a bad origin: refused as a whole, the new key not installed.
    write(&app.dir, "keys", &format!("new = {NEW}\n"));
    write(&app.dir, "origins", "*\n");
    let (status, body) = app.admin_reload(admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.starts_with("origins: "), "{body}");
    assert_eq!(app.webhook(OLD).await, (StatusCode::OK, "old".into()));
    assert_eq!(app.webhook(NEW).await.0, StatusCode::UNAUTHORIZED);

    // A blank signing key: refused, no secret in the answer.
    write(&app.dir, "origins", "https://app.example.com\n");
    write(&app.dir, "keys", &format!("blank =  \nold = {OLD}\n"));
    let (status, body) = app.admin_reload(admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("key `blank` (line 1)"), "{body}");
    assert!(!body.contains(OLD), "{body}");
    assert_eq!(app.webhook(OLD).await, (StatusCode::OK, "old".into()));
    assert_eq!(*app.reloader.subscribe().borrow(), 0);
}

#[tokio::test]
async fn the_admin_endpoint_is_off_by_default_and_loopback_only() {
    // Off unless configured (the variable is not set in tests).
    assert_eq!(key_rotation::admin_addr_from_env().unwrap(), None);
    let app = start().await;
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:9000"] {
        let err = key_rotation::start_admin(addr.parse().unwrap(), app.reloader.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::NotLoopback(a) if a == addr.parse().unwrap()),
            "{err}"
        );
    }
    assert!(
        key_rotation::start_admin("[::1]:0".parse().unwrap(), app.reloader.clone())
            .await
            .is_ok()
            || std::net::TcpListener::bind("[::1]:0").is_err()
    );
}
