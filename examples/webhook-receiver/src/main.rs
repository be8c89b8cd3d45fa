//! `cargo run -p webhook-receiver`: the receiver on `WEBHOOK_ADDR` (default
//! `127.0.0.1:3002`); `REDIS_URL` switches the nonce store to Redis.
//!
//! `ONEKEY_SIGNATURE_SECRET`, `WEBHOOK_SECRET` and `STANDARD_WEBHOOK_SECRET` are required:
//! without one the receiver refuses to start and names it. `--demo` runs with the demo
//! secrets below for the unset ones, with a warning: they are published, so anyone can sign
//! with them.
//!
//! With the demo secrets (`cargo run -p webhook-receiver -- --demo`), a signed OneKey
//! notification (`openssl` computes the HMAC):
//!
//! ```sh
//! body='{"event":"payout.completed","external_id":"123456789"}'
//! sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac demo-onekey-secret | sed 's/^.* //')
//! curl -i http://127.0.0.1:3002/webhooks/onekey -H "payload-signature: $sig" -d "$body"
//! # 200; change one byte of the body and the answer is 401 signature_invalid
//! ```
//!
//! and a Standard Webhooks one (sent twice: the second is refused as `replayed`):
//!
//! ```sh
//! id=msg_1; ts=$(date +%s); body='{"type":"ping"}'
//! key=$(printf '%s' ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ= | base64 -d | od -An -tx1 | tr -d ' \n')
//! sig=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64)
//! for i in 1 2; do curl -i http://127.0.0.1:3002/webhooks/standard -H "webhook-id: $id" \
//!   -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" -d "$body"; done
//! ```
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhook-receiver: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), tollgate::core::BoxError> {
    use webhook_receiver::Secrets;
    let secrets = Secrets::from_args("webhook-receiver", std::env::args().skip(1))?;
    let env = |name: &str| std::env::var(name).ok();
    let config = webhook_receiver::Config::from_vars(secrets, env)?;
    let demo = webhook_receiver::missing_secrets(env);
    if let Some(warning) = secrets.demo_warning(
        "webhook-receiver",
        &demo,
        "anyone can sign notifications this receiver accepts",
        Some(config.addr),
    ) {
        eprintln!("{warning}");
    }
    let app = webhook_receiver::app(&config, webhook_receiver::Inbox::default())?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    println!(
        "webhook-receiver on http://{addr} (nonce store: {store})\n  POST /webhooks/onekey    Payload-Signature\n  POST /webhooks/generic   X-Webhook-Signature\n  POST /webhooks/standard  Standard Webhooks",
        store = if config.redis_url.is_some() {
            "redis"
        } else {
            "memory"
        },
    );
    if secrets == Secrets::Demo {
        println!("\ntry (with the demo secrets):\n{}", try_it(addr));
    }
    webhook_receiver::serve(listener, app, webhook_receiver::Limits::default()).await;
    Ok(())
}

/// Ready-to-paste commands that send correctly signed notifications to `addr`.
fn try_it(addr: std::net::SocketAddr) -> String {
    format!(
        r#"  body='{{"event":"payout.completed","external_id":"123456789"}}'
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac demo-onekey-secret | sed 's/^.* //')
  curl -i http://{addr}/webhooks/onekey -H "payload-signature: $sig" -d "$body"

  id=msg_1; ts=$(date +%s); body='{{"type":"ping"}}'
  key=$(printf '%s' ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ= | base64 -d | od -An -tx1 | tr -d ' \n')
  sig=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64)
  for i in 1 2; do curl -i http://{addr}/webhooks/standard -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" -d "$body"; done"#
    )
}
