//! `cargo run -p hyper-only`: the inbound stack on a plain hyper server on `HYPER_ONLY_ADDR`
//! (default `127.0.0.1:3003`).
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let run = async {
        let config = hyper_only::Config::from_env()?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        println!(
            "hyper-only on http://{}\n  curl -i http://{}/api/whoami -H 'origin: {}'",
            config.addr,
            config.addr,
            config
                .allowed_origins
                .first()
                .map_or("http://localhost:5173", String::as_str)
        );
        hyper_only::serve(listener, config).await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hyper-only: {err}");
            ExitCode::FAILURE
        }
    }
}
