//! An attacker's review of the layer-shape refactor (17bbab6..HEAD): Tranzila verification
//! rebuilt on the replay guard (claims released after a failed handling), origin
//! canonicalisation through `url`/`idna`/`psl`, `Scheme::verify` over `PreparedKeys`, the
//! upstream taken at construction by the secret-header layers, and the shared futures.
//!
//! A test marked `// FINDING` failed on the code as reviewed (it demonstrated the weakness) and
//! passes since its fix;
//! a test marked `// control: holds` documents an attack that was tried and refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tollgate::core::{Key, KeyRing, ManualClock, Secret};
use tollgate::origin::AllowedOrigin;
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::tranzila::{TranzilaCredentials, TranzilaVerifyLayer, access_token};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

// ---------------------------------------------------------------------------------------
// 1. Tranzila verification = token check + replay guard (claims released on 5xx/429/error)
// ---------------------------------------------------------------------------------------

const NOW: u64 = 1_700_000_000;
const APP_A: &str = "partner-a";
const SECRET_A: &str = "secret-of-partner-a";
const APP_B: &str = "partner-b";
const SECRET_B: &str = "secret-of-partner-b";

fn nonce(fill: char) -> String {
    std::iter::repeat_n(fill, 80).collect()
}

/// A request carrying the four Tranzila headers, signed for (`app`, `secret`).
fn tranzila_request(
    app: &str,
    secret: &str,
    nonce: &str,
    path: &str,
    body: &'static str,
) -> Request<Full<Bytes>> {
    let time = NOW.to_string();
    let token = access_token(app, &Secret::from_string(secret), &time, nonce);
    Request::post(path)
        .header("x-tranzila-api-app-key", app)
        .header("x-tranzila-api-request-time", time)
        .header("x-tranzila-api-nonce", nonce)
        .header("x-tranzila-api-access-token", token)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn tranzila_layer() -> (TranzilaVerifyLayer, MemoryNonceStore) {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(10_000).with_clock(clock.clone());
    let layer = TranzilaVerifyLayer::new(
        vec![
            TranzilaCredentials::new(APP_A, SECRET_A).unwrap(),
            TranzilaCredentials::new(APP_B, SECRET_B).unwrap(),
        ],
        store.clone(),
    )
    .unwrap()
    .clock(clock);
    (layer, store)
}

/// The handler of a payment backend: records every (path, body) it executed; answers 502 when
/// the body asks for it (standing for "the payment API behind us failed", or any input the
/// handler cannot process), 200 otherwise.
#[derive(Clone, Default)]
struct Handler {
    executed: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Handler {
    fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
    > + Clone
    + Send {
        let executed = Arc::clone(&self.executed);
        service_fn(move |request: Request<Full<Bytes>>| {
            let executed = Arc::clone(&executed);
            async move {
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8(body.to_vec()).unwrap();
                let fail = body.contains("fail");
                executed.lock().unwrap().push((path, body));
                let mut response = Response::new(Full::new(Bytes::new()));
                if fail {
                    *response.status_mut() = StatusCode::BAD_GATEWAY;
                }
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn executed(&self) -> Vec<(String, String)> {
        self.executed.lock().unwrap().clone()
    }
}

/// FINDING: the access token covers app key, time and nonce only, never the method, path or
/// body; the nonce claim is the only thing that makes a header set single-use. Since the
/// refactor the built-in replay guard releases the claim whenever the inner service answers
/// 5xx or 429 (or errors). So a header set whose first use failed (an upstream hiccup, or a
/// body the attacker chose to make the handler fail) is accepted again, within the ±300 s
/// window, **with any other path and body**: the retry is not the same message, it is a new
/// order riding on a used authorisation. Before the refactor the claim was kept and the second
/// request got 401 `replayed`.
#[tokio::test]
async fn tranzila_header_set_released_by_a_5xx_carries_another_body() {
    let (layer, _store) = tranzila_layer();
    let handler = Handler::default();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(handler.service());
    let n = nonce('a');

    // The genuine request (or the attacker's first use of captured headers) fails upstream.
    let first = tranzila_request(
        APP_A,
        SECRET_A,
        &n,
        "/v1/refund",
        r#"{"amount":1,"fail":1}"#,
    );
    let response = service.clone().oneshot(first).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    // The same four headers, another endpoint, another body.
    let forged = tranzila_request(
        APP_A,
        SECRET_A,
        &n,
        "/v1/payout",
        r#"{"amount":99999,"iban":"attacker"}"#,
    );
    let response = service.clone().oneshot(forged).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a used Tranzila nonce was accepted again with another path and body; handler ran: {:?}",
        handler.executed()
    );
}

/// FINDING (same root cause, amplification): an attacker holding one captured header set can
/// make the handler run any number of times within the window, each with a body of their
/// choosing, as long as each run ends in 5xx/429 — probing the backend with a partner's
/// authorisation — and then once more for real.
#[tokio::test]
async fn one_tranzila_nonce_runs_the_handler_many_times() {
    let (layer, _store) = tranzila_layer();
    let handler = Handler::default();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(handler.service());
    let n = nonce('b');
    for attempt in 0..5 {
        let body: &'static str =
            Box::leak(format!(r#"{{"probe":{attempt},"fail":1}}"#).into_boxed_str());
        let _ = service
            .clone()
            .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/v1/charge", body))
            .await
            .unwrap();
    }
    let _ = service
        .clone()
        .oneshot(tranzila_request(
            APP_A,
            SECRET_A,
            &n,
            "/v1/charge",
            r#"{"amount":5}"#,
        ))
        .await
        .unwrap();
    assert_eq!(
        handler.executed().len(),
        1,
        "one nonce, several handlings: {:?}",
        handler.executed()
    );
}

/// FINDING (same root cause, the header-based guard): `ReplayGuardLayer::tranzila` documents
/// that its claim "is the only thing that stops a captured header set from being replayed on
/// another request", and releases it on 5xx all the same.
#[tokio::test]
async fn header_based_tranzila_guard_releases_a_body_free_nonce() {
    let clock = ManualClock::new(NOW);
    let store = MemoryNonceStore::new(1_000).with_clock(clock.clone());
    let handler = Handler::default();
    let service = ServiceBuilder::new()
        .layer(ReplayGuardLayer::tranzila(store).clock(clock))
        .service(handler.service());
    let n = nonce('c');
    let first = tranzila_request(APP_A, SECRET_A, &n, "/v1/refund", r#"{"fail":1}"#);
    assert_eq!(
        service.clone().oneshot(first).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
    let again = tranzila_request(APP_A, SECRET_A, &n, "/v1/payout", r#"{"iban":"attacker"}"#);
    assert_eq!(
        service.clone().oneshot(again).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "handler ran: {:?}",
        handler.executed()
    );
}

// control: holds — forged traffic (unknown app key, wrong token, outside the window, a token
// of another partner) never claims: the genuine request with the same nonce is accepted.
#[tokio::test]
async fn forged_tranzila_requests_do_not_burn_a_nonce() {
    let (layer, _store) = tranzila_layer();
    let handler = Handler::default();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(handler.service());
    let n = nonce('d');

    // Unknown app key.
    let unknown = tranzila_request("nobody", "guess", &n, "/v1/charge", "{}");
    // Known app key, token under a wrong secret.
    let wrong = tranzila_request(APP_A, "not-the-secret", &n, "/v1/charge", "{}");
    // B's valid token, presented with A's app key (the token covers the app key).
    let mut swapped = tranzila_request(APP_B, SECRET_B, &n, "/v1/charge", "{}");
    swapped
        .headers_mut()
        .insert("x-tranzila-api-app-key", HeaderValue::from_static(APP_A));
    // A valid token, an old time.
    let time = (NOW - 301).to_string();
    let token = access_token(APP_A, &Secret::from_string(SECRET_A), &time, &n);
    let old = Request::post("/v1/charge")
        .header("x-tranzila-api-app-key", APP_A)
        .header("x-tranzila-api-request-time", time)
        .header("x-tranzila-api-nonce", n.as_str())
        .header("x-tranzila-api-access-token", token)
        .body(Full::new(Bytes::new()))
        .unwrap();
    for forged in [unknown, wrong, swapped, old] {
        let status = service.clone().oneshot(forged).await.unwrap().status();
        assert!(status.is_client_error(), "{status}");
    }
    assert!(handler.executed().is_empty());
    let genuine = tranzila_request(APP_A, SECRET_A, &n, "/v1/charge", "{}");
    assert_eq!(
        service.clone().oneshot(genuine).await.unwrap().status(),
        StatusCode::OK
    );
}

// control: holds — a nonce handled for partner A cannot be used by partner B with B's own
// valid token (the claim key has no app key now: one claim per nonce), and B's refused
// request never reaches the handler, so it cannot free A's claim with a 5xx either.
#[tokio::test]
async fn another_partner_can_neither_reuse_nor_free_a_claim() {
    let (layer, _store) = tranzila_layer();
    let handler = Handler::default();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(handler.service());
    let n = nonce('e');
    let a = tranzila_request(APP_A, SECRET_A, &n, "/v1/charge", "{}");
    assert_eq!(
        service.clone().oneshot(a).await.unwrap().status(),
        StatusCode::OK
    );
    let b = tranzila_request(APP_B, SECRET_B, &n, "/v1/charge", r#"{"fail":1}"#);
    assert_eq!(
        service.clone().oneshot(b).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let a_again = tranzila_request(APP_A, SECRET_A, &n, "/v1/charge", "{}");
    assert_eq!(
        service.clone().oneshot(a_again).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(handler.executed().len(), 1);
}

// control: holds — two concurrent requests with one nonce: the second is refused while the
// first is in flight; a client that hangs up mid-handling does not free its claim; a 4xx
// keeps the claim.
#[tokio::test]
async fn concurrent_duplicates_and_hang_ups_keep_the_claim() {
    let (layer, _store) = tranzila_layer();
    let gate = Arc::new(tokio::sync::Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
        service_fn(move |request: Request<Full<Bytes>>| {
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if request.uri().path() == "/slow" {
                    gate.notified().await;
                }
                let mut response = Response::new(Full::new(Bytes::new()));
                if request.uri().path() == "/bad" {
                    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let service = ServiceBuilder::new().layer(layer).service(inner);

    // In flight: the duplicate is refused.
    let n = nonce('f');
    let mut first = Box::pin(
        service
            .clone()
            .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/slow", "")),
    );
    let mut cx = Context::from_waker(Waker::noop());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let duplicate = service
        .clone()
        .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/fast", ""))
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::UNAUTHORIZED);
    // The client hangs up: the future is dropped mid-handling; the claim stays.
    drop(first);
    let after_hang_up = service
        .clone()
        .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/fast", ""))
        .await
        .unwrap();
    assert_eq!(after_hang_up.status(), StatusCode::UNAUTHORIZED);

    // 4xx keeps the claim.
    let n = nonce('0');
    let bad = service
        .clone()
        .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/bad", ""))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = service
        .clone()
        .oneshot(tranzila_request(APP_A, SECRET_A, &n, "/fast", ""))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// control: holds — polling a finished Tranzila/replay future again: pending, never a second
// answer, never a second inner call or release.
#[tokio::test]
async fn finished_tranzila_futures_stay_pending() {
    let (layer, _store) = tranzila_layer();
    let handler = Handler::default();
    let mut service = ServiceBuilder::new()
        .layer(layer)
        .service(handler.service());
    let mut cx = Context::from_waker(Waker::noop());
    for request in [
        tranzila_request(APP_A, SECRET_A, &nonce('1'), "/x", r#"{"fail":1}"#),
        tranzila_request(APP_A, "wrong", &nonce('2'), "/x", ""),
        Request::post("/x").body(Full::new(Bytes::new())).unwrap(),
    ] {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .unwrap();
        let mut future = pin!(service.call(request));
        let mut answers = 0;
        for _ in 0..10 {
            if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
                result.unwrap();
                answers += 1;
            }
        }
        assert_eq!(answers, 1);
    }
    assert_eq!(handler.executed().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 2. Origins: url / idna / psl canonicalisation, byte-exact matching
// ---------------------------------------------------------------------------------------

/// The multi-label names the hand-written list (before the refactor) refused a wildcard on,
/// and a two-label name under each TLD it treated as a wildcard rule (`*.ck` style). The
/// commit states that no wildcard refused then is allowed now.
const OLD_LIST: &[&str] = &[
    "ac.uk",
    "co.uk",
    "gov.uk",
    "ltd.uk",
    "me.uk",
    "net.uk",
    "nhs.uk",
    "org.uk",
    "plc.uk",
    "police.uk",
    "sch.uk",
    "asn.au",
    "com.au",
    "edu.au",
    "gov.au",
    "id.au",
    "net.au",
    "org.au",
    "ac.nz",
    "co.nz",
    "geek.nz",
    "gen.nz",
    "govt.nz",
    "kiwi.nz",
    "net.nz",
    "org.nz",
    "school.nz",
    "ac.jp",
    "ad.jp",
    "co.jp",
    "ed.jp",
    "go.jp",
    "gr.jp",
    "lg.jp",
    "ne.jp",
    "or.jp",
    "ac.kr",
    "co.kr",
    "go.kr",
    "ne.kr",
    "or.kr",
    "re.kr",
    "com.cn",
    "edu.cn",
    "gov.cn",
    "net.cn",
    "org.cn",
    "com.tw",
    "edu.tw",
    "gov.tw",
    "net.tw",
    "org.tw",
    "com.hk",
    "edu.hk",
    "gov.hk",
    "net.hk",
    "org.hk",
    "com.sg",
    "edu.sg",
    "gov.sg",
    "net.sg",
    "org.sg",
    "co.in",
    "firm.in",
    "gen.in",
    "ind.in",
    "net.in",
    "org.in",
    "co.id",
    "or.id",
    "web.id",
    "ac.th",
    "co.th",
    "in.th",
    "or.th",
    "com.my",
    "net.my",
    "org.my",
    "com.ph",
    "net.ph",
    "org.ph",
    "com.vn",
    "net.vn",
    "com.pk",
    "net.pk",
    "org.pk",
    "ac.il",
    "co.il",
    "gov.il",
    "muni.il",
    "net.il",
    "org.il",
    "com.tr",
    "net.tr",
    "org.tr",
    "com.sa",
    "net.sa",
    "org.sa",
    "com.eg",
    "org.eg",
    "ac.za",
    "co.za",
    "gov.za",
    "net.za",
    "org.za",
    "web.za",
    "co.ke",
    "or.ke",
    "com.ng",
    "org.ng",
    "com.br",
    "gov.br",
    "net.br",
    "org.br",
    "com.mx",
    "gob.mx",
    "net.mx",
    "org.mx",
    "com.ar",
    "gob.ar",
    "net.ar",
    "org.ar",
    "com.co",
    "net.co",
    "org.co",
    "com.pe",
    "org.pe",
    "com.uy",
    "com.ve",
    "com.ec",
    "co.cr",
    "co.at",
    "or.at",
    "com.es",
    "nom.es",
    "org.es",
    "com.pl",
    "net.pl",
    "org.pl",
    "com.ua",
    "net.ua",
    "org.ua",
    "com.gr",
    "com.pt",
    "com.ru",
    "com.cy",
    "com.mt",
    "amazonaws.com",
    "appspot.com",
    "azurestaticapps.net",
    "azurewebsites.net",
    "blogspot.com",
    "cloudfront.net",
    "deno.dev",
    "firebaseapp.com",
    "fly.dev",
    "github.io",
    "gitlab.io",
    "glitch.me",
    "herokuapp.com",
    "netlify.app",
    "ngrok-free.app",
    "ngrok.io",
    "onrender.com",
    "pages.dev",
    "r2.dev",
    "railway.app",
    "readthedocs.io",
    "repl.co",
    "surge.sh",
    "trycloudflare.com",
    "vercel.app",
    "web.app",
    "workers.dev",
    "app.github.dev",
    "bitbucket.io",
    "blob.core.windows.net",
    "cloudfunctions.net",
    "codeberg.page",
    "elasticbeanstalk.com",
    "azureedge.net",
    "loca.lt",
    "ngrok-free.dev",
    "ngrok.app",
    "ngrok.dev",
    "replit.dev",
    "run.app",
    "s3.amazonaws.com",
    "web.core.windows.net",
    // Rule 2 of the old list: two labels under a TLD with a `*.tld` rule.
    "anything.bd",
    "anything.bn",
    "anything.ck",
    "anything.er",
    "anything.fk",
    "anything.jm",
    "anything.kh",
    "anything.mm",
    "anything.np",
    "anything.pg",
];

fn wildcard_allowed(base: &str) -> bool {
    AllowedOrigin::parse(&format!("https://*.{base}"), false).is_ok()
}

/// FINDING (informational), decided: the switch to the full Public Suffix List allows
/// wildcards under three top-level domains that the old 189-entry list refused wholesale:
/// `*.anything.bd`, `*.anything.bn`, `*.anything.kh`. The list now names those TLDs' registries
/// instead of a `*` rule, and a name outside them is not registrable by anyone, so a wildcard
/// there admits no other party. The registries themselves (`com.bd`, `com.bn`, `com.kh`) stay
/// refused (control `wildcards_match_one_label_only`). Every other wildcard refused before is
/// still refused.
#[test]
fn every_wildcard_refused_before_the_refactor_is_still_refused() {
    let now_allowed: Vec<&str> = OLD_LIST
        .iter()
        .copied()
        .filter(|b| wildcard_allowed(b))
        .filter(|b| !(b.ends_with(".bd") || b.ends_with(".bn") || b.ends_with(".kh")))
        .collect();
    assert!(now_allowed.is_empty(), "now allowed: {now_allowed:?}");
}

/// FINDING (low-medium, pre-existing gap the psl switch did not close): the layer promises
/// that `https://*.<base>` is refused "when the names it matches belong to unrelated parties".
/// The Public Suffix List lacks many multi-tenant hosts, and `NOT_IN_THE_LIST` patches only
/// five. On each base below, `<one label>.<base>` is handed to any customer (wildcard-DNS
/// services that resolve `1-2-3-4.nip.io` to the attacker's own IP and so get it a TLS
/// certificate; free static/JS hosting; dev tunnels and cloud IDE port forwards; per-account
/// Azure static websites and VMs; per-bucket GCS hosts), and each wildcard is accepted, so an
/// operator who allowlists e.g. `https://*.use.devtunnels.ms` for a dev frontend lets every
/// tunnel user's page make credentialed calls.
#[test]
fn wildcards_on_multi_tenant_hosts_missing_from_the_psl_are_refused() {
    let bases = [
        "nip.io",
        "sslip.io",
        "neocities.org",
        "000webhostapp.com",
        "gradio.live",
        "localtunnel.me",
        "serveo.net",
        "lhr.life",
        "use.devtunnels.ms",
        "ws-eu01.gitpod.io",
        "preview.app.github.dev",
        "z13.web.core.windows.net",
        "eastus.cloudapp.azure.com",
        "storage.googleapis.com",
        "stackblitz.io",
    ];
    let allowed: Vec<&str> = bases
        .iter()
        .copied()
        .filter(|b| wildcard_allowed(b))
        .collect();
    assert!(
        allowed.is_empty(),
        "wildcards accepted on multi-tenant hosts: {allowed:?}"
    );
}

// control: holds — a configured origin matches only the exact bytes a browser sends for that
// site: never another case, a trailing dot, a default or other port, the Unicode form,
// another IPv4 spelling, or a different site whose name UTS #46 maps to the same ASCII.
#[test]
fn configured_origins_match_only_their_own_site() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "https://Pay.Example.COM",
            &["https://pay.example.com"],
            &[
                "https://Pay.Example.COM",
                "https://pay.example.com.",
                "https://pay.example.com:443",
                "https://pay.example.com:8443",
                "http://pay.example.com",
                "https://pay.example.com/",
                "https://pay.example.co",
            ],
        ),
        (
            "https://bücher.example",
            &["https://xn--bcher-kva.example"],
            &[
                "https://bücher.example",
                "https://bucher.example",
                "https://xn--bcher-kva.example.",
                "https://XN--BCHER-KVA.example",
            ],
        ),
        (
            "https://straße.example",
            &["https://xn--strae-oqa.example"],
            &["https://strasse.example"],
        ),
        (
            "http://127.0.0.1:8080",
            &["http://127.0.0.1:8080"],
            &[
                "http://127.1:8080",
                "http://2130706433:8080",
                "http://0x7f.0.0.1:8080",
                "http://127.0.0.1",
                "http://[::ffff:127.0.0.1]:8080",
            ],
        ),
    ];
    for (configured, yes, no) in cases {
        let origin = AllowedOrigin::parse(configured, true).unwrap();
        for sent in *yes {
            assert!(origin.matches(sent.as_bytes()), "{configured} !~ {sent}");
        }
        for sent in *no {
            assert!(!origin.matches(sent.as_bytes()), "{configured} ~ {sent}");
        }
    }
    // Names UTS #46 would map are refused at configuration, not silently rewritten.
    for configured in [
        "https://pay.example.com.",
        "https://ｐａｙ.example.com",
        "https://pay\u{200d}.example.com",
        "https://0x7f.0.0.1",
        "https://127.1",
        "https://pay.example.com:0443",
    ] {
        let parsed = AllowedOrigin::parse(configured, true);
        assert!(
            parsed.as_ref().is_err()
                || parsed.as_ref().unwrap().as_str() == "https://pay.example.com",
            "{configured:?} -> {parsed:?}"
        );
    }
}

// control: holds — a wildcard matches one lowercase LDH label under its base, exactly.
#[test]
fn wildcards_match_one_label_only() {
    let pattern = AllowedOrigin::parse("https://*.Shop.Example", false).unwrap();
    assert!(pattern.matches(b"https://eu.shop.example"));
    assert!(pattern.matches(b"https://xn--bcher-kva.shop.example"));
    for sent in [
        "https://shop.example",
        "https://a.b.shop.example",
        "https://evil.example/.shop.example",
        "https://evil.example?.shop.example",
        "https://evil.example#.shop.example",
        "https://user@a.shop.example",
        "https://a.shop.example.",
        "https://A.shop.example",
        "https://a.shop.example:443",
        "https://a%2eevil.shop.example",
        "https://a_b.shop.example",
        "http://a.shop.example",
        "https://a.shop.example, https://evil.example",
    ] {
        assert!(!pattern.matches(sent.as_bytes()), "{sent}");
    }
    for configured in [
        "https://*.github.io",
        "https://*.run.app",
        "https://*.replit.app",
        "https://*.com.bd",
        "https://*.com.bn",
        "https://*.com.kh",
        "https://*.xn--p1ai",
    ] {
        assert!(
            !wildcard_allowed(configured.trim_start_matches("https://*.")),
            "{configured}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Signatures: PreparedKeys, hex through the hex crate, signature lists, rotation
// ---------------------------------------------------------------------------------------

mod signatures {
    use super::*;
    use tollgate::signature::{Encoding, StandardWebhooks, Stripe, VerifySignatureLayer};

    const KEY: &str = "whsec_live_key";

    async fn verify_with(
        layer: VerifySignatureLayer,
        build: impl FnOnce(http::request::Builder) -> http::request::Builder,
        body: &'static str,
    ) -> StatusCode {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            move |_request: Request<tollgate::core::BufferedBody>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            },
        ));
        let request = build(Request::post("/webhooks"))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let status = service.oneshot(request).await.unwrap().status();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            usize::from(status == StatusCode::OK),
            "the inner service ran for a refused request"
        );
        status
    }

    fn stripe_layer(ring: KeyRing) -> VerifySignatureLayer {
        VerifySignatureLayer::new(Stripe::new(), ring)
            .unwrap()
            .clock(ManualClock::new(NOW))
    }

    fn stripe_sig(secret: &str, body: &str) -> String {
        Stripe::new().compute(&Secret::from_string(secret), NOW, body.as_bytes())
    }

    fn hex_of(sig: &str) -> &str {
        sig.split_once("v1=").unwrap().1
    }

    // control: holds — Stripe header spellings: the hex crate's upper-case reading is closed,
    // odd lengths, whitespace inside the hex, a second `t`, a second header in another case.
    #[tokio::test]
    async fn stripe_signature_spellings() {
        let ring = || KeyRing::single(Secret::from_string(KEY));
        let body = r#"{"id":"evt_1"}"#;
        let good = stripe_sig(KEY, body);
        let hex = hex_of(&good).to_owned();
        let refused = [
            format!("t={NOW},v1={}", hex.to_uppercase()),
            format!("t={NOW},v1={}{}", &hex[..32], hex[32..].to_uppercase()),
            format!("t={NOW},v1={}", &hex[..63]),
            format!("t={NOW},v1={}0", hex),
            format!("t={NOW},v1={} {}", &hex[..32], &hex[32..]),
            format!("t={NOW},v1=0x{}", &hex[2..]),
            format!("t={NOW},t={NOW},v1={hex}"),
            format!("t={},v1={hex}", NOW + 1),
            format!("t=0{NOW},v1={hex}"),
            format!("t={NOW},v0={hex}"),
            format!("t={NOW},V1={hex}"),
        ];
        for value in refused {
            let status = verify_with(
                stripe_layer(ring()),
                |b| b.header("stripe-signature", value.as_str()),
                body,
            )
            .await;
            assert_ne!(status, StatusCode::OK, "{value}");
        }
        // The same valid header twice (two spellings of the name): refused, never picked.
        let status = verify_with(
            stripe_layer(ring()),
            |b| {
                b.header("Stripe-Signature", good.as_str())
                    .header("stripe-signature", format!("t={NOW},v1={}", "0".repeat(64)))
            },
            body,
        )
        .await;
        assert_ne!(status, StatusCode::OK);
        // Lists: one valid v1 among broken ones verifies (Stripe's own rule), with spaces.
        let status = verify_with(
            stripe_layer(ring()),
            |b| b.header("stripe-signature", format!(" t={NOW} , v1=zz , v1={hex} ")),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // The signature does not carry to another body.
        let status = verify_with(
            stripe_layer(ring()),
            |b| b.header("stripe-signature", good.as_str()),
            r#"{"id":"evt_2"}"#,
        )
        .await;
        assert_ne!(status, StatusCode::OK);
    }

    // control: holds — rotation: a signature under an expired key, under a blank key kept in
    // the ring, or under a key with the same id but another secret is refused.
    #[tokio::test]
    async fn rotation_expired_and_blank_keys_never_verify() {
        let body = "{}";
        let ring =
            KeyRing::new(Key::new("old", Secret::from_string("old-secret")).not_after(NOW - 1))
                .with_verification_key(Key::new("blank", Secret::from_string("  ")))
                .with_verification_key(Key::new("zeros", Secret::from_bytes(vec![0u8; 32])))
                .rotate(Key::new("new", Secret::from_string("new-secret")));
        for secret in ["old-secret", "  ", "", "\0"] {
            let sig = stripe_sig(secret, body);
            let status = verify_with(
                stripe_layer(ring.clone()),
                |b| b.header("stripe-signature", sig.as_str()),
                body,
            )
            .await;
            assert_ne!(status, StatusCode::OK, "{secret:?}");
        }
        let zeros = Stripe::new().compute(&Secret::from_bytes(vec![0u8; 32]), NOW, body.as_bytes());
        let status = verify_with(
            stripe_layer(ring.clone()),
            |b| b.header("stripe-signature", zeros.as_str()),
            body,
        )
        .await;
        assert_ne!(status, StatusCode::OK);
        let sig = stripe_sig("new-secret", body);
        let status = verify_with(
            stripe_layer(ring),
            |b| b.header("stripe-signature", sig.as_str()),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // A ring of blank keys only does not build.
        assert!(
            VerifySignatureLayer::new(Stripe::new(), KeyRing::single(Secret::from_string(" \t")))
                .is_err()
        );
    }

    // control: holds — Standard Webhooks lists and ids: a signature for one id never verifies
    // another, a duplicated webhook-id / webhook-timestamp is refused, base64 spelled another
    // way (no padding, url-safe) is refused.
    #[tokio::test]
    async fn standard_webhooks_lists_and_ids() {
        let secret = Secret::from_string(KEY);
        let layer = || {
            VerifySignatureLayer::new(StandardWebhooks::new(), KeyRing::single(secret.clone()))
                .unwrap()
                .clock(ManualClock::new(NOW))
        };
        let body = r#"{"type":"payment.succeeded"}"#;
        let sig = StandardWebhooks::new().compute(&secret, "msg_1", NOW, body.as_bytes());
        let b64 = sig.strip_prefix("v1,").unwrap().to_owned();
        let ok = verify_with(
            layer(),
            |b| {
                b.header("webhook-id", "msg_1")
                    .header("webhook-timestamp", NOW.to_string())
                    .header("webhook-signature", format!("v1,broken  v2,xyz {sig}"))
            },
            body,
        )
        .await;
        assert_eq!(ok, StatusCode::OK);
        let attacks: Vec<Box<dyn Fn(http::request::Builder) -> http::request::Builder>> = vec![
            Box::new(|b| {
                b.header("webhook-id", "msg_2")
                    .header("webhook-timestamp", NOW.to_string())
                    .header("webhook-signature", sig.clone())
            }),
            Box::new(|b| {
                b.header("webhook-id", "msg_1")
                    .header("Webhook-Id", "msg_2")
                    .header("webhook-timestamp", NOW.to_string())
                    .header("webhook-signature", sig.clone())
            }),
            Box::new(|b| {
                b.header("webhook-id", "msg_1")
                    .header("webhook-timestamp", NOW.to_string())
                    .header("Webhook-Timestamp", (NOW + 1).to_string())
                    .header("webhook-signature", sig.clone())
            }),
            Box::new(|b| {
                b.header("webhook-id", "msg_1")
                    .header("webhook-timestamp", NOW.to_string())
                    .header(
                        "webhook-signature",
                        format!("v1,{}", b64.trim_end_matches('=')),
                    )
            }),
            Box::new(|b| {
                b.header("webhook-id", "msg_1")
                    .header("webhook-timestamp", NOW.to_string())
                    .header(
                        "webhook-signature",
                        format!("v1,{}", b64.replace('+', "-").replace('/', "_")),
                    )
            }),
            Box::new(|b| {
                b.header("webhook-id", "msg_1")
                    .header("webhook-timestamp", format!("{NOW}.0"))
                    .header("webhook-signature", sig.clone())
            }),
        ];
        for (i, attack) in attacks.into_iter().enumerate() {
            let status = verify_with(layer(), attack, body).await;
            // `+`/`/`-free signatures make the url-safe case identical; only count real ones.
            if i == 4 && !b64.contains(['+', '/']) {
                continue;
            }
            assert_ne!(status, StatusCode::OK, "attack {i}");
        }
        assert_eq!(Encoding::Hex.encode(&[0xAB]), "ab");
    }

    /// A body that says (size hint / Content-Length) it is tiny and then streams more than the
    /// limit: refused 413 by counting, not by trusting the hint.
    struct Liar {
        sent: usize,
    }
    impl hyper::body::Body for Liar {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            if self.sent >= 64 {
                return Poll::Ready(None);
            }
            self.sent += 1;
            Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![
                b'a';
                1024
            ])))))
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(1)
        }
    }

    // control: holds — a body lying about its length is cut at the limit; the inner service
    // never runs.
    #[tokio::test]
    async fn a_body_lying_about_its_length_is_refused() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let layer = stripe_layer(KeyRing::single(Secret::from_string(KEY))).body_limit(4096);
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            move |_request: Request<tollgate::core::BufferedBody>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            },
        ));
        let request = Request::post("/webhooks")
            .header("content-length", "1")
            .header("stripe-signature", stripe_sig(KEY, "a"))
            .body(Liar { sent: 0 })
            .unwrap();
        let status = service.oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Secret headers pinned to their upstream at construction; hygiene
// ---------------------------------------------------------------------------------------

mod credentials {
    use super::*;
    use tollgate::client_ip::{ClientIp, IpOrigin, MissingClientIp};
    use tollgate::core::Upstream;
    use tollgate::headers::{HeaderError, SecretHeaderLayer};
    use tollgate::transak::TransakOutbound;

    type Seen = Arc<std::sync::Mutex<Vec<(Uri, HeaderMap)>>>;

    fn recorder(
        seen: &Seen,
    ) -> impl Service<
        Request<()>,
        Response = (),
        Error = Infallible,
        Future = std::future::Ready<Result<(), Infallible>>,
    > + Clone {
        let seen = Arc::clone(seen);
        service_fn(move |request: Request<()>| {
            seen.lock()
                .unwrap()
                .push((request.uri().clone(), request.headers().clone()));
            std::future::ready(Ok::<_, Infallible>(()))
        })
    }

    // control: holds — the key never goes with a request whose URI or Host names another
    // target: absolute-form to a lookalike host, userinfo, other port or scheme, a Host header
    // naming another host, two Host headers, origin-form with a Host header.
    #[tokio::test]
    async fn the_api_key_reaches_the_upstream_only() {
        let seen: Seen = Arc::default();
        let layer =
            SecretHeaderLayer::api_key(Secret::from_string("sk_live_partner"), Upstream::transak())
                .unwrap();
        let service = ServiceBuilder::new().layer(layer).service(recorder(&seen));
        let attempts: &[(&str, &[&str])] = &[
            ("https://api-gateway.transak.com.evil.example/v2/x", &[]),
            ("https://evil.example/https://api-gateway.transak.com/", &[]),
            ("https://api-gateway.transak.com@evil.example/v2/x", &[]),
            ("https://api-gateway.transak.com:8443/v2/x", &[]),
            ("http://api-gateway.transak.com/v2/x", &[]),
            ("https://evil.example/v2/x", &["api-gateway.transak.com"]),
            ("https://api-gateway.transak.com/v2/x", &["evil.example"]),
            (
                "https://api-gateway.transak.com/v2/x",
                &["api-gateway.transak.com", "evil.example"],
            ),
            ("/v2/x", &["evil.example"]),
            ("/v2/x", &["api-gateway.transak.com"]),
        ];
        for (uri, hosts) in attempts {
            let mut builder = Request::get(*uri);
            for host in *hosts {
                builder = builder.header("host", *host);
            }
            let _ = service.clone().oneshot(builder.body(()).unwrap()).await;
        }
        for (uri, headers) in seen.lock().unwrap().iter() {
            let authority_ok = uri.host() == Some("api-gateway.transak.com")
                && uri.scheme_str() == Some("https")
                && uri.port_u16().is_none_or(|p| p == 443);
            let hosts: Vec<_> = headers.get_all("host").iter().collect();
            let host_ok = hosts.iter().all(|h| *h == "api-gateway.transak.com");
            assert!(
                authority_ok && host_ok && hosts.len() <= 1,
                "x-api-key sent to {uri} with Host {hosts:?}"
            );
        }
    }

    // control: holds — TransakOutbound: a browser's copies of credentials, cookies, forwarding
    // headers, Host and x-user-ip never go out; x-user-ip is the resolved client IP, and with
    // none the request is refused rather than sent with the browser's value.
    #[tokio::test]
    async fn transak_outbound_strips_what_the_browser_sent() {
        let seen: Seen = Arc::default();
        let stack = TransakOutbound::new(
            Upstream::transak(),
            Secret::from_string("partner-api-key"),
            Secret::from_string("partner-access-token"),
        )
        .unwrap();
        let service = ServiceBuilder::new().layer(stack).service(recorder(&seen));
        let browser = || {
            Request::post("https://api-gateway.transak.com/api/v2/orders")
                .header("X-Api-Key", "attacker-key")
                .header("access-token", "attacker-token")
                .header("X-User-IP", "1.2.3.4")
                .header("x-user-ip", "5.6.7.8")
                .header("Cookie", "session=victim")
                .header("Authorization", "Bearer victim")
                .header("Origin", "https://evil.example")
                .header("X-Forwarded-For", "9.9.9.9")
                .header("Host", "evil.example")
                .header("Connection", "x-keep-me")
                .header("x-keep-me", "1")
        };
        // No client IP anywhere: refused, nothing sent.
        let error = service
            .clone()
            .oneshot(browser().body(()).unwrap())
            .await
            .unwrap_err();
        assert!(error.downcast_ref::<MissingClientIp>().is_some(), "{error}");
        assert!(seen.lock().unwrap().is_empty());
        // With the resolved client IP.
        let mut request = browser().body(()).unwrap();
        request.extensions_mut().insert(ClientIp::new(
            "203.0.113.7".parse().unwrap(),
            IpOrigin::Peer,
        ));
        service.clone().oneshot(request).await.unwrap();
        let seen = seen.lock().unwrap();
        let (_, headers) = &seen[0];
        let values = |name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(values("x-api-key"), ["partner-api-key"]);
        assert_eq!(values("access-token"), ["partner-access-token"]);
        assert_eq!(values("x-user-ip"), ["203.0.113.7"]);
        for gone in [
            "cookie",
            "authorization",
            "origin",
            "x-forwarded-for",
            "host",
            "connection",
            "x-keep-me",
        ] {
            assert!(values(gone).is_empty(), "{gone}: {:?}", values(gone));
        }
        // A refused secret-header future stays pending once answered.
        let mut cx = Context::from_waker(Waker::noop());
        let layer =
            SecretHeaderLayer::api_key(Secret::from_string("k"), Upstream::transak()).unwrap();
        let nobody: Seen = Arc::default();
        let mut refused_service = ServiceBuilder::new()
            .layer(layer)
            .service(recorder(&nobody));
        let mut future =
            pin!(refused_service.call(Request::get("https://evil.example/").body(()).unwrap()));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Err(error)) => assert!(error.downcast_ref::<HeaderError>().is_some()),
            other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
        }
        assert!(future.as_mut().poll(&mut cx).is_pending());
        let _ = Method::GET;
    }
}
