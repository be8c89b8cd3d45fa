//! The example started in-process on loopback, its files in a temporary directory, and a
//! client that signs webhooks and sends browser-like requests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use key_rotation::{Files, Reloader};
use tollgate::core::Secret;
use tollgate::signature::{BodyHmac, RequestParts, Scheme};
use tollgate_test_support::TempDir;

pub const BODY: &[u8] = br#"{"event":"payment.completed"}"#;

/// Deliveries sent by [`Running::webhook`], numbered so that each has its own body.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);
pub const OLD: &str = "old-webhook-secret-0123456789";
pub const NEW: &str = "new-webhook-secret-9876543210";

pub struct Running {
    pub addr: SocketAddr,
    pub reloader: Arc<Reloader>,
    pub dir: TempDir,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub fn write(dir: &TempDir, name: &str, text: &str) {
    std::fs::write(dir.path().join(name), text).unwrap();
}

/// Starts the example with `old = OLD` as its key, no trusted proxy, loopback allowed and
/// one origin.
pub async fn start() -> Running {
    start_with_keys(&format!("old = {OLD}\n")).await
}

/// [`start`] with `keys` as the keys file.
pub async fn start_with_keys(keys: &str) -> Running {
    let dir = TempDir::new("key-rotation");
    write(&dir, "keys", keys);
    write(&dir, "proxies", "# none yet\n");
    write(&dir, "allowlist", "loopback\n");
    write(&dir, "origins", "https://app.example.com\n");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let files = Files {
        keys: path("keys"),
        proxies: path("proxies"),
        allowlist: path("allowlist"),
        origins: path("origins"),
    };
    let (router, reloader) = key_rotation::build(files).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example_server::serve(
        listener,
        router,
        example_server::Limits::default(),
    ));
    Running {
        addr,
        reloader,
        dir,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

/// The `x-webhook-signature` of [`BODY`] under `secret`.
pub fn signature(secret: &str) -> String {
    signature_of(secret, BODY)
}

/// The `x-webhook-signature` of `body` under `secret`.
pub fn signature_of(secret: &str, body: &[u8]) -> String {
    let (method, uri, headers) = (
        Method::POST,
        Uri::from_static("/webhooks"),
        HeaderMap::new(),
    );
    let added = BodyHmac::x_webhook_signature()
        .sign(
            &Secret::from_string(secret),
            &RequestParts::new(&method, &uri, &headers, body),
            0,
        )
        .unwrap();
    added[0].1.to_str().unwrap().to_owned()
}

impl Running {
    pub async fn send(&self, request: Request<Full<Bytes>>) -> (StatusCode, String) {
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// A new delivery (a body of its own: the route claims each signed body once) signed with
    /// `secret`: the status and the key id that verified it.
    pub async fn webhook(&self, secret: &str) -> (StatusCode, String) {
        let n = DELIVERIES.fetch_add(1, Ordering::Relaxed);
        let body = format!(r#"{{"event":"payment.completed","delivery":{n}}}"#);
        self.webhook_body(secret, Bytes::from(body)).await
    }

    /// `body`, signed with `secret`: the status and the key id that verified it.
    pub async fn webhook_body(&self, secret: &str, body: Bytes) -> (StatusCode, String) {
        let request = Request::post(format!("http://{}/webhooks", self.addr))
            .header("x-webhook-signature", signature_of(secret, &body))
            .body(Full::new(body))
            .unwrap();
        self.send(request).await
    }

    /// `GET /api/whoami` from `origin` with `x-forwarded-for: xff`.
    pub async fn whoami(&self, origin: &str, xff: &str) -> (StatusCode, String) {
        let request = Request::get(format!("http://{}/api/whoami", self.addr))
            .header("origin", origin)
            .header("x-forwarded-for", xff)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(request).await
    }

    pub async fn admin_reload(&self, admin: SocketAddr) -> (StatusCode, String) {
        let request = Request::post(format!("http://{admin}/reload"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(request).await
    }
}
