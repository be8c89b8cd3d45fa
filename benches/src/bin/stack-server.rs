//! The whole-stack server that `load.sh` drives with `wrk` (HTTP/1.1) and `h2load` (HTTP/2):
//! a trivial axum handler, bare or behind the `transak-partner` example's inbound stack
//! (origin allowlist, then client IP, then IP allowlist: `tollgate::transak::TransakInbound`).
//!
//! `stack-server <bare|stack|handwritten> <port> [workers]` serves `GET`/`POST /api/ping` on
//! `127.0.0.1:<port>` on a Tokio runtime of `workers` worker threads (1 when left out, at most
//! 64) until killed; with port 0 it binds a free port. It prints the port it listens on as its
//! first line. Each connection speaks HTTP/1.1 or HTTP/2 with prior knowledge (h2c), whichever
//! the client opens with (`axum::serve` with its `http1` and `http2` features: hyper-util's
//! auto builder). The stack trusts loopback as the proxy, reads the client from
//! `X-Forwarded-For` and allows `203.0.113.0/24`; requests must come from
//! `https://app.example.com`. `handwritten` puts the same rules, written by hand as one small
//! service (`tollgate_benches::handwritten`), in front of the handler instead: the floor a
//! stack's cost can be compared with.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

/// The front end the stack allows.
const ORIGIN: &str = "https://app.example.com";

/// The most worker threads the server accepts.
const MAX_WORKERS: usize = 64;

async fn ping() -> &'static str {
    "ok"
}

/// What stands in front of the handler.
#[derive(Clone, Copy)]
enum Mode {
    Bare,
    Stack,
    Handwritten,
}

fn app(mode: Mode) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let router = Router::new().route("/api/ping", get(ping).post(ping));
    match mode {
        Mode::Bare => return Ok(router),
        Mode::Handwritten => {
            return Ok(router.layer(tollgate_benches::handwritten::HandwrittenLayer));
        }
        Mode::Stack => {}
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
    let (mode, port) = match (args.get(1).map(String::as_str), args.get(2), args.get(4)) {
        (Some("bare"), Some(port), None) => (Mode::Bare, port.parse::<u16>()),
        (Some("stack"), Some(port), None) => (Mode::Stack, port.parse::<u16>()),
        (Some("handwritten"), Some(port), None) => (Mode::Handwritten, port.parse::<u16>()),
        _ => {
            eprintln!("usage: stack-server <bare|stack|handwritten> <port> [workers]");
            return ExitCode::from(2);
        }
    };
    let Ok(port) = port else {
        eprintln!("the port must be a number from 0 to 65535");
        return ExitCode::from(2);
    };
    let workers = match args.get(3).map(|w| w.parse::<usize>()) {
        None => 1,
        Some(Ok(workers @ 1..=MAX_WORKERS)) => workers,
        Some(_) => {
            eprintln!("the number of workers must be from 1 to {MAX_WORKERS}");
            return ExitCode::from(2);
        }
    };
    let app = match app(mode) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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
