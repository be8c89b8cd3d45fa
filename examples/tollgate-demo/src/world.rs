//! The running apps and mocks of the walkthrough.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use onekey_cashout::mock::MockOneKey;
use tollgate::client::{ProviderClient, RetryPolicy};
use tollgate::core::{BoxError, Clock, ManualClock, SystemClock};
use tollgate::core::{Key, KeyRing, Secret};
use tollgate::tranzila::TranzilaCredentials;
use transak_partner::mock::{ACCESS_TOKEN_TTL_SECS, MockTransak, MockTransakConfig};
use tranzila_client::SigningClient;
use tranzila_client::mock::MockTranzila;

/// The demo's fixed starting time (2026-01-01T00:00:00Z): every app shares one manual clock,
/// so scenarios about time move it instead of sleeping.
pub const DEMO_EPOCH: u64 = 1_767_225_600;

/// The Transak partner key the demo registers with the mock.
pub const TRANSAK_API_KEY: &str = "demo-partner-api-key";
/// The Transak partner API secret the demo registers with the mock (access tokens are issued
/// for it by the mock's refresh-token API).
pub const TRANSAK_API_SECRET: &str = "demo-partner-api-secret";

/// The front-end origin the partner app allows.
pub const FRONTEND_ORIGIN: &str = "http://localhost:5173";
/// The loopback address that plays Cloudflare in front of the partner app.
pub const PROXY_IP: [u8; 4] = [127, 0, 0, 2];

/// The key the key-rotation app starts with (id `rotation-1`).
pub const ROTATION_OLD_SECRET: &str = "demo-rotation-secret-1";
/// The key swapped in while it runs (id `rotation-2`); `rotation-1` is revoked by the swap.
pub const ROTATION_NEW_SECRET: &str = "demo-rotation-secret-2";

/// The Tranzila app key the demo registers with the mock.
pub const TRANZILA_APP_KEY: &str = "demo-tranzila-app-key";
const TRANZILA_SECRET: &str = "demo-tranzila-secret";
/// The idempotency-key header the retrying Tranzila client is configured with (a POST is
/// retried only when it carries one).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The OneKey API Key of the demo.
pub const ONEKEY_API_KEY: &str = "demo-onekey-api-key";
/// The OneKey API Passphrase of the demo.
pub const ONEKEY_API_PASSPHRASE: &str = "demo-onekey-api-passphrase";
/// The OneKey API Signature of the demo.
pub const ONEKEY_API_SIGNATURE: &str = "demo-onekey-api-signature";

/// The OneKey "API Signature" secret of the demo.
pub const ONEKEY_SECRET: &str = "demo-onekey-secret";
/// The old `X-Webhook-Signature` secret (key `generic-2025`, valid until one hour after
/// [`DEMO_EPOCH`]).
pub const WEBHOOK_OLD_SECRET: &str = "demo-webhook-secret-2025";
/// The new `X-Webhook-Signature` secret (key `generic-2026`).
pub const WEBHOOK_NEW_SECRET: &str = "demo-webhook-secret-2026";
/// When the old webhook key stops verifying.
pub const WEBHOOK_OLD_NOT_AFTER: u64 = DEMO_EPOCH + 3600;
/// The Standard Webhooks secret of the demo.
pub const STANDARD_WEBHOOK_SECRET: &str = "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=";
/// The webhook receiver's body limit in the demo.
pub const WEBHOOK_BODY_LIMIT: usize = 1024;

/// Everything the walkthrough started, with the handles scenarios need.
#[derive(Debug)]
pub struct Demo {
    /// The clock shared by every app and mock.
    pub clock: ManualClock,
    /// The mock Transak API.
    pub transak: MockTransak,
    /// Where the mock Transak API listens (HTTPS).
    pub transak_addr: SocketAddr,
    /// Where the Transak partner app (axum, inbound stack) listens.
    pub partner_addr: SocketAddr,
    /// The partner app's outbound client (tollgate's `TransakClient`) to the mock.
    pub partner_client: ProviderClient,
    /// Where the webhook receiver listens.
    pub webhook_addr: SocketAddr,
    /// What the webhook receiver accepted.
    pub inbox: webhook_receiver::Inbox,
    /// Where the tonic health server (client IP + IP allowlist) listens.
    pub grpc_addr: SocketAddr,
    /// Where the plain hyper server (inbound stack) listens.
    pub hyper_addr: SocketAddr,
    /// The mock Tranzila API (verify layer + memory nonce store), over HTTPS, on the system
    /// clock (what `TranzilaClient` signs with).
    pub tranzila: MockTranzila,
    /// `https://<tranzila mock>`.
    pub tranzila_url: String,
    /// A client signing with the registered credentials (tollgate's `TranzilaClient`).
    pub tranzila_client: SigningClient,
    /// A second Tranzila mock whose handler answers 503 to the first verified call.
    pub tranzila_flaky: MockTranzila,
    /// `https://<flaky tranzila mock>`.
    pub tranzila_flaky_url: String,
    /// `TranzilaClient` to the flaky mock, retrying POSTs that carry [`IDEMPOTENCY_KEY`].
    pub tranzila_retrying: SigningClient,
    /// The mock OneKey cashout API, checking every OneKey rule.
    pub onekey: MockOneKey,
    /// `https://<onekey mock>`.
    pub onekey_url: String,
    /// tollgate's `OneKeyClient` with the demo credentials.
    pub onekey_client: ProviderClient,
    /// tollgate's `OneKeyClient` with a wrong API Passphrase.
    pub onekey_wrong_passphrase: ProviderClient,
    /// A client signing with the right app key but a wrong secret.
    pub tranzila_wrong_secret: SigningClient,
    /// A client whose clock is 301 seconds behind the server's.
    pub tranzila_stale: SigningClient,
    /// Where the key-rotation app (keys, ranges and origins re-read without a restart)
    /// listens.
    pub rotation_addr: SocketAddr,
    /// Its handles and files: what `SIGHUP` or its admin endpoint reloads.
    pub rotation: Arc<key_rotation::Reloader>,
    /// The directory of its files (removed when the demo drops).
    pub rotation_dir: RotationDir,
}

/// The key-rotation app's settings directory, removed on drop.
#[derive(Debug)]
pub struct RotationDir(pub std::path::PathBuf);

impl Drop for RotationDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the key-rotation app with `rotation-1` as its key, files in a fresh directory.
async fn start_rotation() -> Result<(SocketAddr, Arc<key_rotation::Reloader>, RotationDir), BoxError>
{
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = RotationDir(std::env::temp_dir().join(format!(
        "tollgate-demo-rotation-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )));
    std::fs::create_dir_all(&dir.0)?;
    let file = |name: &str, text: &str| -> std::io::Result<std::path::PathBuf> {
        let path = dir.0.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let files = key_rotation::Files {
        keys: file("keys", &format!("rotation-1 = {ROTATION_OLD_SECRET}\n"))?,
        proxies: file("proxies", "")?,
        allowlist: file("allowlist", "loopback\n")?,
        origins: file("origins", "https://app.example.com\n")?,
    };
    let (router, reloader) = key_rotation::build(files).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(example_server::serve(
        listener,
        router,
        example_server::Limits::default(),
    ));
    Ok((addr, reloader, dir))
}

impl Demo {
    /// Starts every app and mock on free loopback ports.
    pub async fn start() -> Result<Self, BoxError> {
        let clock = ManualClock::new(DEMO_EPOCH);
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));

        // Every provider mock is HTTPS with the local CA; every client trusts that CA only.
        let tls = example_server::tls::client_tls()?;

        let transak = MockTransak::new(MockTransakConfig {
            api_keys: vec![TRANSAK_API_KEY.to_owned()],
            api_secret: TRANSAK_API_SECRET.to_owned(),
            token_ttl_secs: ACCESS_TOKEN_TTL_SECS,
            allowed_sources: vec!["127.0.0.1/32".parse()?],
            clock: Arc::new(clock.clone()),
        });
        let transak_addr = transak.spawn(any_port).await?;

        let transak_url = example_server::tls::https_url(transak_addr);
        let partner_config = transak_partner::Config {
            addr: any_port,
            transak_url: Some(transak_url.clone()),
            mock_addr: any_port,
            api_key: TRANSAK_API_KEY.to_owned(),
            api_secret: Secret::from_string(TRANSAK_API_SECRET),
            tls: tls.clone(),
            // The mock's expiresAt are on the demo clock.
            transak_clock: Arc::new(clock.clone()),
            allowed_origins: vec![FRONTEND_ORIGIN.to_owned()],
            allow_http_origins: true,
            // Behind "Cloudflare" (127.0.0.2): cf-connecting-ip is believed from it only.
            client_ip_source: "header:cf-connecting-ip:127.0.0.2".parse()?,
            ip_allowlist: None,
            referrer_domain: "partner.example".to_owned(),
        };
        let partner_app = transak_partner::app(&partner_config, &transak_url)?;
        let partner_addr = transak_partner::spawn(any_port, partner_app).await?;
        let partner_client = transak_partner::transak_client(&partner_config, &transak_url)?;

        let standard =
            tollgate::signature::StandardWebhooks::secret_from_whsec(STANDARD_WEBHOOK_SECRET)?;
        let webhook_config = webhook_receiver::Config {
            addr: any_port,
            onekey: KeyRing::new(Key::new("onekey-1", Secret::from_string(ONEKEY_SECRET))),
            generic: KeyRing::new(
                Key::new("generic-2025", Secret::from_string(WEBHOOK_OLD_SECRET))
                    .not_after(WEBHOOK_OLD_NOT_AFTER),
            )
            .rotate(Key::new(
                "generic-2026",
                Secret::from_string(WEBHOOK_NEW_SECRET),
            )),
            standard: KeyRing::new(Key::new("standard-1", standard)),
            body_limit: WEBHOOK_BODY_LIMIT,
            redis_url: None,
            clock: Arc::new(clock.clone()),
        };
        let inbox = webhook_receiver::Inbox::default();
        let webhook_app = webhook_receiver::app(&webhook_config, inbox.clone())?;
        let webhook_addr = webhook_receiver::spawn(any_port, webhook_app).await?;

        let grpc_addr = tonic_health_example::spawn(tonic_health_example::Config {
            addr: any_port,
            allowlist: vec!["127.0.0.1/32".parse()?],
        })
        .await?;
        let hyper_addr = hyper_only::spawn(hyper_only::Config {
            addr: any_port,
            allowed_origins: vec![FRONTEND_ORIGIN.to_owned()],
            client_ip_source: "remote-addr".parse()?,
            ip_allowlist: "127.0.0.1/32".parse()?,
            header_read_timeout: hyper_only::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: hyper_only::DEFAULT_MAX_CONNECTIONS,
        })
        .await?;

        let credentials =
            TranzilaCredentials::new(TRANZILA_APP_KEY, Secret::from_string(TRANZILA_SECRET))?;
        // TranzilaClient signs on the system clock (its builder has no clock setting), so the
        // Tranzila mocks verify on it too.
        let tranzila = MockTranzila::new(credentials.clone(), Arc::new(SystemClock));
        let tranzila_url = example_server::tls::https_url(tranzila.spawn(any_port).await?);
        // The signed clients send their tokens to the mock only.
        let tranzila_client =
            tranzila_client::signing_client(credentials.clone(), &tranzila_url, tls.clone())?;
        let tranzila_wrong_secret = tranzila_client::signing_client(
            TranzilaCredentials::new(TRANZILA_APP_KEY, Secret::from_string("not-the-secret"))?,
            &tranzila_url,
            tls.clone(),
        )?;
        let tranzila_stale = tranzila_client::signing_client_with_clock(
            credentials.clone(),
            Arc::new(ManualClock::new(SystemClock.now_unix() - 301)),
            &tranzila_url,
            tls.clone(),
        )?;
        let tranzila_flaky =
            MockTranzila::new(credentials.clone(), Arc::new(SystemClock)).unavailable_first(1);
        let flaky_url = example_server::tls::https_url(tranzila_flaky.spawn(any_port).await?);
        let retry_tls = tls.clone();
        let tranzila_flaky_url = flaky_url.clone();
        let tranzila_retrying =
            tranzila_client::signing_client_with(credentials, &flaky_url, move |client| {
                client.tls(retry_tls).retry(
                    RetryPolicy::new(3)
                        .backoff(Duration::from_millis(5), Duration::from_millis(20))
                        .idempotency_key(IDEMPOTENCY_KEY),
                )
            })?;

        let onekey_config = onekey_cashout::Config {
            api_url: None,
            mock_addr: any_port,
            api_key: Secret::from_string(ONEKEY_API_KEY),
            api_passphrase: Secret::from_string(ONEKEY_API_PASSPHRASE),
            api_signature: Secret::from_string(ONEKEY_API_SIGNATURE),
        };
        let onekey = MockOneKey::new(onekey_config.mock_credentials());
        let onekey_url = example_server::tls::https_url(onekey.spawn(any_port).await?);
        let onekey_client =
            onekey_cashout::cashout_client(&onekey_config, &onekey_url, tls.clone())?;
        let onekey_wrong_passphrase = onekey_cashout::cashout_client(
            &onekey_cashout::Config {
                api_passphrase: Secret::from_string("not-the-passphrase"),
                ..onekey_config
            },
            &onekey_url,
            tls,
        )?;

        let (rotation_addr, rotation, rotation_dir) = start_rotation().await?;

        Ok(Self {
            clock,
            tranzila_stale,
            rotation_addr,
            rotation,
            rotation_dir,
            transak,
            transak_addr,
            partner_addr,
            partner_client,
            webhook_addr,
            inbox,
            grpc_addr,
            hyper_addr,
            tranzila,
            tranzila_url,
            tranzila_client,
            tranzila_wrong_secret,
            tranzila_flaky,
            tranzila_flaky_url,
            tranzila_retrying,
            onekey,
            onekey_url,
            onekey_client,
            onekey_wrong_passphrase,
        })
    }

    /// `http://<partner app>` + `path`.
    pub fn partner_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.partner_addr)
    }

    /// `http://<webhook receiver>` + `path`.
    pub fn webhook_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.webhook_addr)
    }

    /// `https://<transak mock>` + `path`.
    pub fn transak_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.transak_addr)
    }

    /// The local test CA (PEM) the provider mocks' certificates chain to: `--serve` writes it
    /// to a file and exports its path as `$CA` for `curl --cacert`.
    pub fn ca_pem(&self) -> &'static str {
        &example_server::tls::local_pki().ca_pem
    }

    /// Ready-to-paste commands against the running apps (for `--serve`): what each shows, and
    /// the command. Commands to the HTTPS mocks use `--cacert "$CA"`.
    pub fn curl_commands(&self) -> Vec<(String, String)> {
        let partner = self.partner_url("/api/widget-url");
        let body = r#"'{"cryptoCurrencyCode":"ETH"}'"#;
        let notification = r#"'{"event":"payout.completed","id":"evt_1","amount":"10.50"}'"#;
        vec![
            (
                "allowed origin: 200 {\"widgetUrl\":...} with Access-Control-Allow-Origin".to_owned(),
                format!("curl -i -X POST {partner} -H 'origin: {FRONTEND_ORIGIN}' -H 'content-type: application/json' -d {body}"),
            ),
            (
                "foreign origin: 403 origin_not_allowed, the handler does not run".to_owned(),
                format!("curl -i -X POST {partner} -H 'origin: https://evil.example' -H 'content-type: application/json' -d {body}"),
            ),
            (
                "preflight: 204 with the allowed methods and headers".to_owned(),
                format!("curl -i -X OPTIONS {partner} -H 'origin: {FRONTEND_ORIGIN}' -H 'access-control-request-method: POST' -H 'access-control-request-headers: content-type'"),
            ),
            (
                "spoofed X-Forwarded-For from an untrusted peer: ignored (x-user-ip stays 127.0.0.1)".to_owned(),
                format!("curl -i -X POST {partner} -H 'origin: {FRONTEND_ORIGIN}' -H 'x-forwarded-for: 203.0.113.66' -d {body}"),
            ),
            (
                "cf-connecting-ip from the trusted proxy 127.0.0.2: believed (x-user-ip 198.51.100.23)".to_owned(),
                format!("curl -i --interface 127.0.0.2 -X POST {partner} -H 'origin: {FRONTEND_ORIGIN}' -H 'cf-connecting-ip: 198.51.100.23' -d {body}"),
            ),
            (
                "mock Transak without x-user-ip: 400 \"`x-user-ip` must be a valid IPv4 or IPv6 address\"".to_owned(),
                format!(
                    "token=$(curl -s --cacert \"$CA\" -X POST {} -H 'api-secret: {TRANSAK_API_SECRET}' -H 'content-type: application/json' -d '{{\"apiKey\":\"{TRANSAK_API_KEY}\"}}' | sed 's/.*\"accessToken\":\"\\([^\"]*\\)\".*/\\1/'); curl -i --cacert \"$CA\" -X POST {} -H 'x-api-key: {TRANSAK_API_KEY}' -H \"access-token: $token\" -H 'content-type: application/json' -d '{{\"widgetParams\":{{\"apiKey\":\"{TRANSAK_API_KEY}\",\"referrerDomain\":\"partner.example\"}}}}'",
                    self.transak_url(transak_partner::mock::REFRESH_TOKEN_PATH),
                    self.transak_url("/api/v2/auth/session")
                ),
            ),
            (
                "OneKey webhook signed with the demo secret: 200 {\"received\":true,...}".to_owned(),
                format!(
                    "body={notification}; sig=$(printf '%s' \"$body\" | openssl dgst -sha256 -hmac {ONEKEY_SECRET} -hex | sed 's/^.* //'); curl -i -X POST {} -H 'content-type: application/json' -H \"payload-signature: $sig\" -d \"$body\"",
                    self.webhook_url("/webhooks/onekey")
                ),
            ),
            (
                "tampered webhook: 401 signature_invalid".to_owned(),
                format!(
                    "curl -i -X POST {} -H 'content-type: application/json' -H 'payload-signature: 0000000000000000000000000000000000000000000000000000000000000000' -d {notification}",
                    self.webhook_url("/webhooks/onekey")
                ),
            ),
            (
                "unsigned Tranzila call: 400 header_malformed".to_owned(),
                format!(
                    "curl -i --cacert \"$CA\" -X POST {}{}",
                    self.tranzila_url,
                    tranzila_client::CREATE_TRANSACTION_PATH
                ),
            ),
            (
                "plain hyper server from outside its allowlist: 403 ip_not_allowed".to_owned(),
                format!("curl -i --interface 127.0.0.2 http://{}/api/whoami", self.hyper_addr),
            ),
            (
                "gRPC health check from outside the allowlist: PermissionDenied".to_owned(),
                format!(
                    "TONIC_HEALTH_ADDR={} cargo run -q -p tonic-health-example -- check --from 127.0.0.2",
                    self.grpc_addr
                ),
            ),
        ]
    }
}
