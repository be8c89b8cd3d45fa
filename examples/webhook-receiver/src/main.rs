//! `cargo run -p webhook-receiver`: the receiver on `WEBHOOK_ADDR` (default
//! `127.0.0.1:3002`); `REDIS_URL` switches the nonce store to Redis.
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
    let config = webhook_receiver::Config::from_env()?;
    let app = webhook_receiver::app(&config, webhook_receiver::Inbox::default())?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    println!(
        "webhook-receiver on http://{} (nonce store: {})\n  POST /webhooks/onekey    Payload-Signature\n  POST /webhooks/generic   X-Webhook-Signature\n  POST /webhooks/standard  Standard Webhooks",
        config.addr,
        if config.redis_url.is_some() {
            "redis"
        } else {
            "memory"
        }
    );
    axum::serve(listener, app).await?;
    Ok(())
}
