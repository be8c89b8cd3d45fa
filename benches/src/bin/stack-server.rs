//! The whole-stack server that `load.sh` drives with `wrk`: a trivial axum handler, bare or
//! behind the `transak-partner` example's inbound stack (origin allowlist, then client IP, then
//! IP allowlist: `tollgate::transak::TransakInbound`).
//!
//! `stack-server <bare|stack> <port>` serves `GET`/`POST /api/ping` on `127.0.0.1:<port>` on a
//! one-worker Tokio runtime until killed; with port 0 it binds a free port. It prints the
//! port it listens on as its first line. The stack trusts loopback as the proxy, reads the
//! client from `X-Forwarded-For` and allows `203.0.113.0/24`; requests must come from
//! `https://app.example.com`.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

/// The front end the stack allows.
const ORIGIN: &str = "https://app.example.com";

async fn ping() -> &'static str {
    "ok"
}

fn app(stacked: bool) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let router = Router::new().route("/api/ping", get(ping).post(ping));
    if !stacked {
        return Ok(router);
    }
    // The transak-partner example's own inbound stack (`Config::inbound`, a
    // `tollgate::transak::TransakInbound`), with settings for a deployment behind a loopback
    // proxy that lets only 203.0.113.0/24 in. The inbound stack uses no secret: the demo
    // values fill the outbound ones.
    let mut config = transak_partner::Config::from_vars(transak_partner::Secrets::Demo, |name| {
        std::env::var(name).ok()
    })?;
    config.allowed_origins = vec![ORIGIN.to_owned()];
    config.allow_http_origins = false;
    config.client_ip_source = "rightmost-trusted-range:x-forwarded-for:loopback".parse()?;
    config.ip_allowlist = Some("203.0.113.0/24".parse()?);
    Ok(router.layer(config.inbound()?))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (stacked, port) = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("bare"), Some(port)) => (false, port.parse::<u16>()),
        (Some("stack"), Some(port)) => (true, port.parse::<u16>()),
        _ => {
            eprintln!("usage: stack-server <bare|stack> <port>");
            return ExitCode::from(2);
        }
    };
    let Ok(port) = port else {
        eprintln!("the port must be a number from 0 to 65535");
        return ExitCode::from(2);
    };
    let app = match app(stacked) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("{}", listener.local_addr()?.port());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serve: {err}");
            ExitCode::FAILURE
        }
    }
}
