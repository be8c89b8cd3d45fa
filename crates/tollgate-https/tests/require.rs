//! `RequireHttpsLayer` in a real hyper server, over plain TCP and over TLS: the accept loop
//! inserts the peer address, and the `HttpsConnection` marker on TLS connections only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tollgate_client_ip::{IpRanges, PeerAddr};
use tollgate_core::{Rejection, ResponseBody};
use tollgate_https::{
    ConfigError, Hsts, HttpsConnection, HttpsConnector, HttpsOrigin, RequireHttps,
    RequireHttpsLayer, TlsConfig,
};
use tollgate_test_support::LogCapture;
use tollgate_test_support::tls::{ServiceServer, TestPki};
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, ServiceExt as _};

const HTTPS_REQUIRED: &str = r#"{"error":{"code":"https_required","message":"HTTPS is required"}}"#;
const HSTS: &str = "max-age=31536000; includeSubDomains";

type App = BoxCloneSyncService<Request<Incoming>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// The handler: 200 "ok", or with its own HSTS header on `/own-hsts`.
async fn handler(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    if request.uri().path() == "/own-hsts" {
        response
            .headers_mut()
            .insert("strict-transport-security", "max-age=5".parse().unwrap());
    }
    Ok(response)
}

fn app(layer: &RequireHttpsLayer) -> App {
    BoxCloneSyncService::new(layer.layer(tower::service_fn(handler)))
}

/// What a real accept loop does for each connection: the peer address into every request, and
/// the `HttpsConnection` marker when the connection is TLS.
#[derive(Clone)]
struct Connection {
    app: App,
    peer: SocketAddr,
    tls: bool,
}

impl hyper::service::Service<Request<Incoming>> for Connection {
    type Response = Response<ResponseBody<Full<Bytes>>>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<App, Request<Incoming>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr::new(self.peer));
        if self.tls {
            request.extensions_mut().insert(HttpsConnection);
        }
        self.app.clone().oneshot(request)
    }
}

fn per_connection(app: App) -> impl Fn(SocketAddr, bool) -> Connection + Send + Sync + 'static {
    move |peer, tls| Connection {
        app: app.clone(),
        peer,
        tls,
    }
}

async fn plain_server(layer: &RequireHttpsLayer) -> ServiceServer {
    ServiceServer::plain(per_connection(app(layer))).await
}

fn layer() -> RequireHttpsLayer {
    RequireHttpsLayer::new().hsts(
        Hsts::new(Duration::from_secs(31_536_000))
            .unwrap()
            .include_subdomains(),
    )
}

/// Trusts the loopback peer of these tests as a proxy.
fn behind_loopback_proxy() -> RequireHttpsLayer {
    layer().trust_forwarded_proto("127.0.0.1/32".parse().unwrap())
}

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line and headers, without the final empty line) over plain TCP with
/// `Connection: close`, exactly as written, and reads the whole response.
async fn raw(server: &ServiceServer, head: &str) -> Raw {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `GET /` with `headers` (lines `Name: value`, in order) over plain TCP.
async fn get_with(server: &ServiceServer, headers: &[&str]) -> Raw {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: localhost");
    for line in headers {
        head.push_str("\r\n");
        head.push_str(line);
    }
    raw(server, &head).await
}

fn assert_passed_with_hsts(response: &Raw) {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "ok");
    assert_eq!(response.header("strict-transport-security"), Some(HSTS));
}

fn assert_refused(response: &Raw) {
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, HTTPS_REQUIRED);
    assert_eq!(response.header("strict-transport-security"), None);
}

#[tokio::test]
async fn over_tls_with_the_marker_passes_with_hsts() {
    let pki = TestPki::generate();
    let server = ServiceServer::tls(&pki.good, per_connection(app(&layer()))).await;
    let tls = TlsConfig::new()
        .roots_only()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap();
    let client = HttpsConnector::new(&tls).unwrap().client::<Full<Bytes>>();
    for path in ["/", "/own-hsts"] {
        let url = format!("https://localhost:{}{path}", server.port());
        let response = client
            .request(Request::get(url).body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), Version::HTTP_2);
        let hsts: Vec<_> = response
            .headers()
            .get_all("strict-transport-security")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        if path == "/own-hsts" {
            // The inner service's own header is kept, not doubled.
            assert_eq!(hsts, ["max-age=5"]);
        } else {
            assert_eq!(hsts, [HSTS]);
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
    }
}

#[tokio::test]
async fn plain_http_is_refused_with_json_and_no_hsts() {
    let server = plain_server(&layer()).await;
    assert_refused(&get_with(&server, &[]).await);
    let post = raw(
        &server,
        "POST /pay HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2",
    )
    .await;
    assert_refused(&post);
}

#[tokio::test]
async fn absolute_form_https_request_line_is_not_trusted() {
    let server = plain_server(&layer()).await;
    let response = raw(
        &server,
        "GET https://localhost/ HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_refused(&response);
}

#[tokio::test]
async fn http2_scheme_https_over_plain_tcp_is_not_trusted() {
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    let server = plain_server(&layer()).await;
    // HTTP/2 by prior knowledge over plain TCP, with `:scheme https`.
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, Full<Bytes>>(connector);
    let url = format!("https://127.0.0.1:{}/", server.port());
    let response = client
        .request(Request::get(url).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, HTTPS_REQUIRED);
}

#[tokio::test]
async fn trusted_proxy_x_forwarded_proto_https_passes() {
    let server = plain_server(&behind_loopback_proxy()).await;
    assert_passed_with_hsts(&get_with(&server, &["X-Forwarded-Proto: https"]).await);
    assert_refused(&get_with(&server, &["X-Forwarded-Proto: http"]).await);
    // No header from the trusted proxy: plain.
    assert_refused(&get_with(&server, &[]).await);
}

#[tokio::test]
async fn untrusted_peer_x_forwarded_proto_is_ignored() {
    // Proxies trusted elsewhere: the loopback peer is a client.
    let elsewhere = layer().trust_forwarded_proto("10.0.0.0/8".parse().unwrap());
    let server = plain_server(&elsewhere).await;
    assert_refused(&get_with(&server, &["X-Forwarded-Proto: https"]).await);
    assert_refused(&get_with(&server, &["Forwarded: proto=https"]).await);
    // No proxy trusted at all.
    let server = plain_server(&layer()).await;
    assert_refused(&get_with(&server, &["X-Forwarded-Proto: https"]).await);
    // An empty range list trusts nobody.
    let any = layer().trust_forwarded_proto(IpRanges::none());
    let server = plain_server(&any).await;
    assert_refused(&get_with(&server, &["X-Forwarded-Proto: https"]).await);
}

#[tokio::test]
async fn rightmost_x_forwarded_proto_value_decides() {
    let server = plain_server(&behind_loopback_proxy()).await;
    assert_refused(&get_with(&server, &["X-Forwarded-Proto: https, http"]).await);
    assert_passed_with_hsts(&get_with(&server, &["X-Forwarded-Proto: http, https"]).await);
    // Repeated header lines: the last line's last value.
    assert_refused(
        &get_with(
            &server,
            &["X-Forwarded-Proto: https", "X-Forwarded-Proto: http"],
        )
        .await,
    );
    assert_passed_with_hsts(
        &get_with(
            &server,
            &["X-Forwarded-Proto: http", "X-Forwarded-Proto: https"],
        )
        .await,
    );
    // Re-cased names and value, repeated lines with different casing.
    assert_passed_with_hsts(&get_with(&server, &["x-FORWARDED-proto: HTTPS"]).await);
    assert_refused(
        &get_with(
            &server,
            &["X-Forwarded-Proto: https", "x-forwarded-PROTO: http"],
        )
        .await,
    );
    // Malformed: not https.
    for value in ["https,", "https x", "\"https\"", "httpss", ""] {
        let line = format!("X-Forwarded-Proto: {value}");
        assert_refused(&get_with(&server, &[line.as_str()]).await);
    }
}

#[tokio::test]
async fn forwarded_proto_of_the_rightmost_element_decides() {
    let server = plain_server(&behind_loopback_proxy()).await;
    assert_passed_with_hsts(&get_with(&server, &["Forwarded: for=1.2.3.4;proto=https"]).await);
    assert_passed_with_hsts(&get_with(&server, &["FORWARDED: For=1.2.3.4;PROTO=\"https\""]).await);
    assert_refused(&get_with(&server, &["Forwarded: for=1.2.3.4;proto=http"]).await);
    assert_refused(
        &get_with(
            &server,
            &["Forwarded: for=1.2.3.4;proto=https, for=5.6.7.8;proto=http"],
        )
        .await,
    );
    assert_passed_with_hsts(
        &get_with(
            &server,
            &[
                "Forwarded: proto=http",
                "Forwarded: for=5.6.7.8;proto=https",
            ],
        )
        .await,
    );
    // The nearest proxy's element says nothing about the scheme.
    assert_refused(&get_with(&server, &["Forwarded: proto=https, for=5.6.7.8"]).await);
    assert_refused(&get_with(&server, &["Forwarded: proto=https;proto=https"]).await);
    assert_refused(&get_with(&server, &["Forwarded: proto=\"https"]).await);
}

#[tokio::test]
async fn both_headers_must_agree() {
    let server = plain_server(&behind_loopback_proxy()).await;
    assert_passed_with_hsts(
        &get_with(
            &server,
            &["X-Forwarded-Proto: https", "Forwarded: proto=https"],
        )
        .await,
    );
    assert_refused(
        &get_with(
            &server,
            &["X-Forwarded-Proto: https", "Forwarded: proto=http"],
        )
        .await,
    );
    assert_refused(
        &get_with(
            &server,
            &["X-Forwarded-Proto: http", "Forwarded: proto=https"],
        )
        .await,
    );
}

fn redirecting() -> RequireHttpsLayer {
    layer().redirect_to("https://pay.example.com".parse().unwrap())
}

#[tokio::test]
async fn redirect_mode_sends_get_and_head_to_the_configured_origin() {
    let server = plain_server(&redirecting()).await;
    // The Host header names another site: it is not used.
    let response = raw(
        &server,
        "GET /checkout?order=7&x=%2F HTTP/1.1\r\nHost: evil.example",
    )
    .await;
    assert_eq!(response.status, 308, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some("https://pay.example.com/checkout?order=7&x=%2F")
    );
    assert_eq!(response.body, "");
    assert_eq!(response.header("strict-transport-security"), None);

    // An absolute-form request line naming another host: only its path and query are kept.
    let response = raw(
        &server,
        "HEAD http://evil.example//other.example/a?b=c HTTP/1.1\r\nHost: evil.example",
    )
    .await;
    assert_eq!(response.status, 308, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some("https://pay.example.com//other.example/a?b=c")
    );
    assert_eq!(response.header("strict-transport-security"), None);
}

#[tokio::test]
async fn redirect_mode_refuses_other_methods() {
    let server = plain_server(&redirecting()).await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let head = format!("{method} /pay HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0");
        let response = raw(&server, &head).await;
        assert_refused(&response);
        assert_eq!(response.header("location"), None);
    }
}

#[tokio::test]
async fn redirect_mode_keeps_a_port_and_passes_https() {
    let layer = layer().redirect_to("https://pay.example.com:8443/".parse().unwrap());
    assert_eq!(
        layer.redirect_origin().map(HttpsOrigin::as_str),
        Some("https://pay.example.com:8443")
    );
    let server = plain_server(&layer).await;
    let response = get_with(&server, &[]).await;
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location"),
        Some("https://pay.example.com:8443/")
    );
    // Judged https: passed on, never redirected.
    let trusted = layer.trust_forwarded_proto("127.0.0.1/32".parse().unwrap());
    let server = plain_server(&trusted).await;
    assert_passed_with_hsts(&get_with(&server, &["X-Forwarded-Proto: https"]).await);
}

#[test]
fn bad_configurations_are_refused_when_built() {
    let reason = |origin: &str| match origin.parse::<HttpsOrigin>() {
        Err(ConfigError::InvalidRedirectOrigin { reason }) => reason,
        other => panic!("{origin}: {other:?}"),
    };
    assert_eq!(reason("http://pay.example.com"), "the scheme must be https");
    assert_eq!(
        reason("https://pay.example.com/pay"),
        "a path other than `/` is not allowed"
    );
    assert_eq!(
        reason("https://pay.example.com/?next=x"),
        "a query is not allowed"
    );
    assert_eq!(
        reason("https://u:p@pay.example.com"),
        "user info is not allowed"
    );
    assert_eq!(
        reason("https://pay.example.com/#top"),
        "a fragment is not allowed"
    );
    assert_eq!(reason("not a url"), "not an absolute https:// URL");
    assert_eq!(
        Hsts::new(Duration::ZERO).unwrap_err(),
        ConfigError::ZeroHstsMaxAge
    );
    assert_eq!(
        ConfigError::InvalidRedirectOrigin {
            reason: "a query is not allowed"
        }
        .to_string(),
        "invalid HTTPS redirect origin: a query is not allowed"
    );
}

#[tokio::test]
async fn the_rejection_goes_through_the_responder_and_is_logged() {
    let custom = RequireHttpsLayer::new().on_rejection(|rejection: &Rejection| {
        let mut response = Response::new(Bytes::from(format!("no: {}", rejection.code())));
        *response.status_mut() = rejection.status();
        response
    });
    let logs = LogCapture::new();
    let response = {
        let _guard = logs.install();
        app_oneshot(&custom, Request::get("/").body(()).unwrap()).await
    };
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<Rejection>().unwrap().code(),
        "https_required"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "no: https_required");
    let text = logs.text();
    assert!(text.contains("code=https_required"), "{text}");
    assert!(text.contains("status=403"), "{text}");
}

#[tokio::test]
async fn the_redirect_is_logged_without_the_path() {
    let logs = LogCapture::new();
    let response = {
        let _guard = logs.install();
        let request = Request::get("/pay?token=secret123").body(()).unwrap();
        app_oneshot(&redirecting(), request).await
    };
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://pay.example.com/pay?token=secret123"
    );
    let text = logs.text();
    assert!(text.contains("status=308"), "{text}");
    assert!(!text.contains("secret123"), "{text}");
}

async fn app_oneshot(
    layer: &RequireHttpsLayer,
    request: Request<()>,
) -> Response<ResponseBody<Full<Bytes>>> {
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }));
    service.oneshot(request).await.unwrap()
}

#[tokio::test]
async fn the_marker_wins_over_forwarding_headers_and_peer() {
    // A request from an untrusted peer with `X-Forwarded-Proto: http`, but on a TLS
    // connection: https.
    let layer = layer().trust_forwarded_proto("10.0.0.0/8".parse().unwrap());
    let mut request = Request::get("/")
        .header("x-forwarded-proto", "http")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(PeerAddr::new("198.51.100.1:5000".parse().unwrap()));
    request.extensions_mut().insert(HttpsConnection);
    assert!(layer.is_https(&request));
    let response = app_oneshot(&layer, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["strict-transport-security"], HSTS);
    // Without a peer address, forwarding headers are not believed.
    let request = Request::get("/")
        .header("x-forwarded-proto", "https")
        .body(())
        .unwrap();
    assert!(!layer.is_https(&request));
}

#[test]
fn the_service_has_the_shape_of_every_layer() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<RequireHttpsLayer>();
    assert_send_sync_clone::<
        RequireHttps<
            tower::util::ServiceFn<
                fn(Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>>,
            >,
        >,
    >();

    let layer = RequireHttpsLayer::default();
    let mut service = RequireHttps::new(7u8, &layer);
    assert_eq!(*service.get_ref(), 7);
    *service.get_mut() = 8;
    assert_eq!(service.into_inner(), 8);
    assert_eq!(
        format!("{:?}", RequireHttps::<()>::layer()),
        "RequireHttpsLayer { trusted_proxies: None, redirect_origin: None, hsts: None, responder: RejectionResponder(\"json\") }"
    );
}
