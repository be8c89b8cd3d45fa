//! `cargo run -p key-rotation`: serve on `KEY_ROTATION_ADDR` (default `127.0.0.1:3000`) with
//! the files named in the environment (see the crate docs); reload them with `kill -HUP <pid>`
//! or, when `KEY_ROTATION_ADMIN_ADDR` names a loopback address, `curl -X POST <admin>/reload`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = key_rotation::Files::from_env()?;
    let addr: SocketAddr = std::env::var("KEY_ROTATION_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let (router, reloader) = key_rotation::build(files).await?;
    #[cfg(unix)]
    key_rotation::reload_on_sighup(reloader.clone())?;
    if let Some(admin) = key_rotation::admin_addr_from_env()? {
        let admin = key_rotation::start_admin(admin, reloader).await?;
        println!("admin: POST http://{admin}/reload");
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    example_server::serve(listener, router, example_server::Limits::default()).await;
    Ok(())
}
