//! A `hyper_util` client that can pick its source address on loopback, standing in for
//! browsers, proxies and partner servers: `http://` to the example apps, `https://` to the
//! provider mocks, trusting the local test CA ([`example_server::tls`]) and verifying their
//! certificates as any client must.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tollgate::core::BoxError;

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of a tollgate rejection (`error.code`) or of a provider error
    /// (`error.errorCode`), if any.
    pub fn error_code(&self) -> Option<String> {
        let json = self.json();
        let error = &json["error"];
        match (&error["code"], &error["errorCode"]) {
            (Value::String(code), _) => Some(code.clone()),
            (_, Value::Number(code)) => Some(code.to_string()),
            _ => None,
        }
    }

    /// `"<status> <error code>"`, or just the status when the body has no error code.
    pub fn outcome(&self) -> String {
        match self.error_code() {
            Some(code) => format!("{} {code}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        }
    }

    /// A header as text (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends `request` from the loopback address `from` (e.g. `127.0.0.2`, to play a proxy or an
/// unregistered server) and reads the whole response. An `https://` request verifies the
/// server's certificate against the local test CA.
pub async fn send_from(from: IpAddr, request: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from));
    connector.enforce_http(false);
    let mut tls = example_server::tls::client_tls()?.client_config()?;
    // hyper-rustls sets ALPN itself (HTTP/1.1 here) and refuses a configuration that has it.
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let response = client.request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Sends `request` from `127.0.0.1`.
pub async fn send(request: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
    send_from(IpAddr::from([127, 0, 0, 1]), request).await
}

/// The outcome text of a send: the reply's outcome, or `error: <message>`.
pub fn describe(result: Result<Reply, BoxError>) -> String {
    match result {
        Ok(reply) => reply.outcome(),
        Err(err) => format!("error: {err}"),
    }
}
