//! `cargo run -p tonic-health-example` serves; `cargo run -p tonic-health-example -- check [--from <ip>]` calls
//! the server and prints the status (or the gRPC error).
use std::net::IpAddr;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match tonic_health_example::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tonic-health: {err}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("check") {
        let from = match args.iter().position(|a| a == "--from") {
            Some(i) => args.get(i + 1).and_then(|ip| ip.parse::<IpAddr>().ok()),
            None => Some(IpAddr::from([127, 0, 0, 1])),
        };
        let Some(from) = from else {
            eprintln!("tonic-health: --from needs an IP address");
            return ExitCode::FAILURE;
        };
        return match tonic_health_example::check(config.addr, from).await {
            Ok(status) => {
                println!("status: {status:?}");
                ExitCode::SUCCESS
            }
            Err(status) => {
                println!("error: {:?}: {}", status.code(), status.message());
                ExitCode::FAILURE
            }
        };
    }
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("tonic-health: cannot bind {}: {err}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    println!("tonic-health: gRPC health service on {}", config.addr);
    match tonic_health_example::serve(listener, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tonic-health: {err}");
            ExitCode::FAILURE
        }
    }
}
