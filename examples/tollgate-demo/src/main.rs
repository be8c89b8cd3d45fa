//! `cargo run -p tollgate-demo`: the walkthrough. `--serve` keeps the apps running and prints
//! `curl` commands instead.
use std::process::ExitCode;

/// Logs on stderr at the levels `RUST_LOG` names (`trace`, `tollgate=debug,h2=info`, every
/// target's events and spans, and the `log` records of rustls and reqwest); nothing without it.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let Some(spec) = std::env::var_os("RUST_LOG") else {
        return;
    };
    let filter: tracing_subscriber::filter::Targets = match spec.to_string_lossy().parse() {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("tollgate-demo: RUST_LOG ignored: {err}");
            return;
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .finish()
        .with(filter);
    if let Err(err) = subscriber.try_init() {
        eprintln!("tollgate-demo: no log subscriber: {err}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let serve = std::env::args().skip(1).any(|arg| arg == "--serve");
    let demo = match tollgate_demo::Demo::start().await {
        Ok(demo) => demo,
        Err(err) => {
            eprintln!("tollgate-demo: could not start the apps: {err}");
            return ExitCode::FAILURE;
        }
    };
    if serve {
        // Interactive use: the shared clock follows the system clock, so timestamps made with
        // `date +%s` are inside the window.
        let clock = demo.clock.clone();
        tokio::spawn(async move {
            use tollgate::core::Clock;
            loop {
                clock.set(tollgate::core::SystemClock.now_unix());
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        println!("tollgate-demo: apps running on loopback; press Ctrl-C to stop.\n");
        let ca = std::env::temp_dir().join(format!("tollgate-demo-ca-{}.pem", std::process::id()));
        if let Err(err) = std::fs::write(&ca, demo.ca_pem()) {
            eprintln!("tollgate-demo: could not write the local CA: {err}");
            return ExitCode::FAILURE;
        }
        println!("# the provider mocks serve HTTPS with a local test CA; curl trusts it with:");
        println!("export CA={}\n", ca.display());
        for (what, command) in demo.curl_commands() {
            println!("# {what}\n{command}\n");
        }
        std::future::pending::<()>().await;
        return ExitCode::SUCCESS;
    }
    let outcomes = tollgate_demo::run_all(&demo, &tollgate_demo::scenarios()).await;
    print!("{}", tollgate_demo::render(&outcomes));
    if outcomes.iter().all(tollgate_demo::Outcome::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
