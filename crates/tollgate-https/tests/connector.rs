//! `HttpsConnector` over real TLS on loopback: the good certificate is accepted over HTTP/1.1
//! and HTTP/2, every bad one is refused before a request is sent, plain http is refused before
//! a connection is opened, and timeouts, refused connections and bad configurations are typed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tollgate_https::{CertificateDer, ConfigError, ConnectError, HttpsConnector, TlsConfig};
use tollgate_test_support::tls::{HttpsServer, Leaf, TestPki, handler};

type TestClient = Client<HttpsConnector, Full<Bytes>>;

fn trusting(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .roots_only()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

fn client(tls: &TlsConfig) -> TestClient {
    HttpsConnector::new(tls).unwrap().client::<Full<Bytes>>()
}

async fn hello_server(leaf: &Leaf) -> HttpsServer {
    HttpsServer::start(
        leaf,
        handler(|request| async move {
            // Echo the version the server saw, so both sides are checked.
            let body = format!("hello over {:?}", request.version());
            Response::new(Bytes::from(body))
        }),
    )
    .await
}

async fn get(
    client: &TestClient,
    url: &str,
) -> Result<Response<Bytes>, hyper_util::client::legacy::Error> {
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let response = client.request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Ok(Response::from_parts(parts, body))
}

/// The `ConnectError` in a failed request's error chain.
fn connect_error(error: &hyper_util::client::legacy::Error) -> &ConnectError {
    ConnectError::find(error).unwrap_or_else(|| panic!("no ConnectError in {error:?}"))
}

#[tokio::test]
async fn good_certificate_over_http2() {
    let pki = TestPki::generate();
    let server = hello_server(&pki.good).await;
    let response = get(&client(&trusting(&pki)), &server.url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.body(), "hello over HTTP/2.0");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn good_certificate_over_http1_when_http2_is_not_offered() {
    let pki = TestPki::generate();
    let server = hello_server(&pki.good).await;
    let tls = trusting(&pki).http1_only();
    let response = get(&client(&tls), &server.url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.body(), "hello over HTTP/1.1");
}

#[tokio::test]
async fn good_certificate_over_http1_when_the_server_offers_only_http1() {
    let pki = TestPki::generate();
    let mut config = pki.good.server_config();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let server = HttpsServer::serve(
        listener,
        config,
        handler(|request| async move {
            Response::new(Bytes::from(format!("hello over {:?}", request.version())))
        }),
    );
    let response = get(&client(&trusting(&pki)), &server.url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.body(), "hello over HTTP/1.1");
}

#[tokio::test]
async fn good_certificate_by_ip_address() {
    let pki = TestPki::generate();
    let server = hello_server(&pki.good).await;
    let url = format!("https://127.0.0.1:{}/", server.addr().port());
    let response = get(&client(&trusting(&pki)), &url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "hello over HTTP/2.0");
    assert_eq!(server.requests(), 1);
}

/// A bad certificate: `ConnectError::Certificate`, the handshake never completes on the
/// server, nothing is sent.
async fn assert_certificate_refused(leaf: &Leaf, tls: &TlsConfig, reason_contains: &str) {
    let server = hello_server(leaf).await;
    let error = get(&client(tls), &server.url()).await.unwrap_err();
    match connect_error(&error) {
        ConnectError::Certificate { reason } => {
            assert!(
                reason.contains(reason_contains),
                "{reason:?} should mention {reason_contains:?}"
            );
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert!(connect_error(&error).is_certificate());
    assert_eq!(server.requests(), 0, "nothing may be sent");
    assert_eq!(server.handshakes(), 0, "the handshake must not complete");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn expired_certificate_is_refused_and_nothing_sent() {
    let pki = TestPki::generate();
    assert_certificate_refused(&pki.expired, &trusting(&pki), "certificate expired").await;
}

#[tokio::test]
async fn certificate_for_another_name_is_refused_and_nothing_sent() {
    let pki = TestPki::generate();
    assert_certificate_refused(
        &pki.other_name,
        &trusting(&pki),
        "certificate not valid for name \"localhost\"",
    )
    .await;
}

#[tokio::test]
async fn self_signed_certificate_is_refused_and_nothing_sent() {
    let pki = TestPki::generate();
    assert_certificate_refused(&pki.self_signed, &trusting(&pki), "UnknownIssuer").await;
}

#[tokio::test]
async fn good_certificate_of_an_untrusted_ca_is_refused_and_nothing_sent() {
    let pki = TestPki::generate();
    // Mozilla's roots only: the test CA is not among them.
    assert_certificate_refused(&pki.good, &TlsConfig::new(), "UnknownIssuer").await;
    // Another test CA with the same name: found as the issuer, its signature does not match.
    let other = TestPki::generate();
    assert_certificate_refused(&pki.good, &trusting(&other), "BadSignature").await;
}

/// A plain TCP listener whose accept loop reports the peer of every connection it accepts.
async fn counting_listener() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<SocketAddr>,
) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(peer);
            drop(stream);
        }
    });
    (addr, count, rx)
}

#[tokio::test]
async fn plain_http_is_refused_before_any_connection_is_opened() {
    let pki = TestPki::generate();
    let (addr, count, mut accepted) = counting_listener().await;
    let client = client(&trusting(&pki));

    let error = get(&client, &format!("http://127.0.0.1:{}/", addr.port()))
        .await
        .unwrap_err();
    match connect_error(&error) {
        ConnectError::NotHttps { scheme } => assert_eq!(scheme, "http"),
        other => panic!("expected NotHttps, got {other:?}"),
    }
    // The listener is live: our own connection is the first and only one it sees.
    let ours = TcpStream::connect(addr).await.unwrap();
    let first = accepted.recv().await.unwrap();
    assert_eq!(first, ours.local_addr().unwrap());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connector_refuses_other_schemes_and_missing_hosts_directly() {
    use tower::{Service as _, ServiceExt as _};

    let pki = TestPki::generate();
    let mut connector = HttpsConnector::new(&trusting(&pki)).unwrap();
    for (uri, expected) in [("http://127.0.0.1:1/", "http"), ("ws://127.0.0.1:1/", "ws")] {
        let error = connector
            .ready()
            .await
            .unwrap()
            .call(uri.parse().unwrap())
            .await
            .unwrap_err();
        match error {
            ConnectError::NotHttps { scheme } => assert_eq!(scheme, expected),
            other => panic!("{uri}: {other:?}"),
        }
    }
    // An https URI whose authority names no host.
    let uri: http::Uri = "https://:443/".parse().unwrap();
    let error = connector
        .ready()
        .await
        .unwrap()
        .call(uri)
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::MissingHost), "{error:?}");
    let error = connector
        .ready()
        .await
        .unwrap()
        .call("/relative".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::NotHttps { ref scheme } if scheme == "none"));
    assert_eq!(
        error.to_string(),
        "refused to connect over `none`: only https is allowed (nothing was sent)"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let pki = TestPki::generate();
    // A port nobody listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = get(
        &client(&trusting(&pki)),
        &format!("https://localhost:{port}/"),
    )
    .await
    .unwrap_err();
    match connect_error(&error) {
        ConnectError::Connect(source) => {
            assert!(source.to_string().contains("tcp connect error"), "{source}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(connect_error(&error).source().is_some());
}

#[tokio::test]
async fn connect_timeout_is_a_timeout_error() {
    // A listener whose accept queue (backlog 1) is full and never drained: Linux drops further
    // SYNs, so the next connect can only time out.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(error)) => panic!("filling the backlog: {error}"),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(
        full,
        "the backlog never filled: cannot test the timeout here"
    );

    let pki = TestPki::generate();
    let timeout = Duration::from_millis(100);
    let connector = HttpsConnector::with_connect_timeout(&trusting(&pki), timeout).unwrap();
    assert_eq!(connector.connect_timeout(), timeout);
    let client = connector.client::<Full<Bytes>>();
    let started = Instant::now();
    let error = get(&client, &format!("https://localhost:{}/", addr.port()))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match connect_error(&error) {
        ConnectError::Timeout { after } => assert_eq!(*after, timeout),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    drop((held, listener));
}

/// The `supported_versions` extension (RFC 8446 4.2.1) of the ClientHello at the start of
/// `bytes` (one TLS record), and the record's legacy version.
fn offered_versions(bytes: &[u8]) -> (u16, Vec<u16>) {
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    assert_eq!(bytes[0], 22, "a handshake record");
    assert_eq!(bytes[5], 1, "a ClientHello");
    let legacy_version = u16_at(9);
    let mut i = 9 + 2 + 32; // version, random
    i += 1 + usize::from(bytes[i]); // session id
    i += 2 + usize::from(u16_at(i)); // cipher suites
    i += 1 + usize::from(bytes[i]); // compression methods
    let end = i + 2 + usize::from(u16_at(i));
    i += 2;
    while i < end {
        let (kind, len) = (u16_at(i), usize::from(u16_at(i + 2)));
        if kind == 0x002b {
            let list = &bytes[i + 5..i + 4 + len];
            return (
                legacy_version,
                list.chunks(2)
                    .map(|v| u16::from_be_bytes([v[0], v[1]]))
                    .collect(),
            );
        }
        i += 4 + len;
    }
    panic!("no supported_versions extension");
}

#[tokio::test]
async fn the_client_offers_tls_1_3_and_1_2_only() {
    use tokio::io::AsyncReadExt as _;

    // A listener that records the first bytes the client sends: its ClientHello.
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hello = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await.unwrap();
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.unwrap();
        [header.to_vec(), body].concat()
    });
    let pki = TestPki::generate();
    let client = client(&trusting(&pki));
    let url = format!("https://localhost:{}/", addr.port());
    let request = get(&client, &url);
    let (hello, _) = tokio::join!(hello, request);
    let (legacy, offered) = offered_versions(&hello.unwrap());
    assert_eq!(legacy, 0x0303, "TLS 1.2 in the legacy field");
    assert_eq!(
        offered,
        vec![0x0304, 0x0303],
        "TLS 1.3 and 1.2, nothing older"
    );

    // ALPN as configured.
    let config = TlsConfig::new().client_config().unwrap();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let http1 = TlsConfig::new().http1_only().client_config().unwrap();
    assert_eq!(http1.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

/// Handshakes with `config`'s server using the crate's client configuration, and returns the
/// negotiated protocol version.
async fn negotiated_version(
    pki: &TestPki,
    config: rustls::ServerConfig,
) -> rustls::ProtocolVersion {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _tls = acceptor.accept(tcp).await;
    });
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(trusting(pki).client_config().unwrap()));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.protocol_version().unwrap()
}

#[tokio::test]
async fn tls_1_3_is_preferred_and_tls_1_2_is_accepted() {
    let pki = TestPki::generate();
    assert_eq!(
        negotiated_version(&pki, pki.good.server_config()).await,
        rustls::ProtocolVersion::TLSv1_3
    );
    assert_eq!(
        negotiated_version(
            &pki,
            pki.good
                .server_config_with_versions(&[&rustls::version::TLS12])
        )
        .await,
        rustls::ProtocolVersion::TLSv1_2
    );
}

#[tokio::test]
async fn a_server_limited_to_tls_1_2_is_accepted() {
    let pki = TestPki::generate();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let config = pki
        .good
        .server_config_with_versions(&[&rustls::version::TLS12]);
    let server = HttpsServer::serve(
        listener,
        config,
        handler(|_| async { Response::new(Bytes::from_static(b"tls12")) }),
    );
    let response = get(&client(&trusting(&pki)), &server.url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "tls12");
    assert_eq!(server.handshakes(), 1);
}

#[tokio::test]
async fn a_server_limited_to_tls_1_3_is_accepted() {
    let pki = TestPki::generate();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let config = pki
        .good
        .server_config_with_versions(&[&rustls::version::TLS13]);
    let server = HttpsServer::serve(
        listener,
        config,
        handler(|_| async { Response::new(Bytes::from_static(b"tls13")) }),
    );
    let response = get(&client(&trusting(&pki)), &server.url()).await.unwrap();
    assert_eq!(response.body(), "tls13");
}

#[test]
fn bad_configurations_are_refused_when_built() {
    assert_eq!(
        TlsConfig::new().add_root_pem(b"junk").unwrap_err(),
        ConfigError::InvalidRootPem
    );
    assert_eq!(
        TlsConfig::new()
            .add_root_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err(),
        ConfigError::InvalidRootPem
    );
    assert_eq!(
        TlsConfig::new().roots_only().client_config().unwrap_err(),
        ConfigError::NoRoots
    );
    assert_eq!(
        HttpsConnector::new(&TlsConfig::new().roots_only()).unwrap_err(),
        ConfigError::NoRoots
    );
    assert_eq!(
        TlsConfig::new()
            .add_root_certificate(CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]))
            .client_config()
            .unwrap_err(),
        ConfigError::InvalidRootCertificate
    );
    assert_eq!(
        HttpsConnector::with_connect_timeout(&TlsConfig::new(), Duration::ZERO).unwrap_err(),
        ConfigError::ZeroTimeout {
            name: "connect timeout"
        }
    );
    assert_eq!(
        ConfigError::ZeroTimeout {
            name: "connect timeout"
        }
        .to_string(),
        "the connect timeout must be longer than zero"
    );
}

#[test]
fn debug_output_names_no_certificate_material() {
    let pki = TestPki::generate();
    let tls = trusting(&pki);
    assert_eq!(
        format!("{tls:?}"),
        "TlsConfig { mozilla_roots: false, extra_roots: 1, http2: true }"
    );
    let connector = HttpsConnector::new(&tls).unwrap();
    assert_eq!(
        format!("{connector:?}"),
        "HttpsConnector { connect_timeout: 5s, .. }"
    );
}
