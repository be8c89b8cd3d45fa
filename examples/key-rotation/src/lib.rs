//! Rotate keys, ranges and origins without a restart.
//!
//! An axum server whose webhook signature keys, trusted proxies, IP allowlist and allowed
//! origins live in files. They are read at start-up into swappable handles
//! ([`KeyRingHandle`], [`IpRangesHandle`], [`OriginsHandle`]) and re-read, while the server
//! keeps serving:
//!
//! - on `SIGHUP` (unix: `kill -HUP <pid>`), with [`reload_on_sighup`];
//! - through `POST /reload` on an admin listener that is **off** unless
//!   `KEY_ROTATION_ADMIN_ADDR` is set, and that refuses to start on anything but a loopback
//!   address ([`start_admin`]): a reload endpoint reachable from the network would let anyone
//!   make the server re-read its files at will.
//!
//! A reload reads and validates every file first, and stores nothing when one is wrong (a
//! blank signing key, a bad range, an origin the allowlist would refuse at build): the server
//! keeps what it had, and the error names the file and line, never a secret. Each handle
//! swaps whole; a request sees one version of each.
//!
//! The files ([`Files::from_env`] reads their paths):
//!
//! | variable | content |
//! | --- | --- |
//! | `KEY_ROTATION_KEYS_FILE` | one `key-id = secret` per line, newest (signing) first; lines starting with `#` are comments (a `#` elsewhere is part of the secret) |
//! | `KEY_ROTATION_PROXIES_FILE` | trusted proxy ranges (`10.0.0.5, cloudflare`), commas or lines |
//! | `KEY_ROTATION_ALLOWLIST_FILE` | the client IP allowlist, same grammar |
//! | `KEY_ROTATION_ORIGINS_FILE` | one allowed origin per line |
//!
//! Routes: `POST /webhooks` (verified with `X-Webhook-Signature` against the key ring, then
//! each signed body accepted once for [`WEBHOOK_RETENTION`], in this process's memory
//! (forgotten on restart; use `RedisNonceStore` for several instances): the scheme signs no
//! time, so a captured delivery never expires; answers the key id that verified) and `GET /api/whoami` (origin allowlist, client IP
//! behind the trusted proxies, IP allowlist; answers the client IP).
#![forbid(unsafe_code)]

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate::client_ip::{
    ClientIp, ClientIpSource, IpAllowlistLayer, IpRanges, IpRangesHandle, ListHeader,
    ResolveClientIpLayer,
};
use tollgate::core::{Key, KeyRing, KeyRingHandle, Secret, VerifiedSignature};
use tollgate::origin::{OriginAllowlistLayer, OriginsHandle};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};

/// How long `POST /webhooks` remembers a signed body (7 days): `X-Webhook-Signature` signs no
/// time, so the replay guard needs a stated retention; beyond it, deduplicate on the event's
/// id in the handler.
pub const WEBHOOK_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Where the reloadable settings live.
#[derive(Debug, Clone)]
pub struct Files {
    /// `key-id = secret` per line, newest first.
    pub keys: PathBuf,
    /// Trusted proxy ranges.
    pub proxies: PathBuf,
    /// Allowed client IP ranges.
    pub allowlist: PathBuf,
    /// Allowed origins, one per line.
    pub origins: PathBuf,
}

impl Files {
    /// The four paths from `KEY_ROTATION_KEYS_FILE`, `KEY_ROTATION_PROXIES_FILE`,
    /// `KEY_ROTATION_ALLOWLIST_FILE` and `KEY_ROTATION_ORIGINS_FILE`, or the names of the
    /// missing ones.
    pub fn from_env() -> Result<Self, String> {
        let vars = [
            "KEY_ROTATION_KEYS_FILE",
            "KEY_ROTATION_PROXIES_FILE",
            "KEY_ROTATION_ALLOWLIST_FILE",
            "KEY_ROTATION_ORIGINS_FILE",
        ];
        let values: Vec<Option<PathBuf>> = vars
            .iter()
            .map(|v| std::env::var_os(v).map(PathBuf::from))
            .collect();
        let missing: Vec<&str> = vars
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| *name)
            .collect();
        match values.as_slice() {
            [Some(keys), Some(proxies), Some(allowlist), Some(origins)] => Ok(Self {
                keys: keys.clone(),
                proxies: proxies.clone(),
                allowlist: allowlist.clone(),
                origins: origins.clone(),
            }),
            _ => Err(format!("missing: {}", missing.join(", "))),
        }
    }
}

/// Why the settings could not be (re)loaded. Names a file and a line, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A line of the keys file is not `key-id = secret`, or the file has no key.
    Keys {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number (never the line, which holds a secret).
        reason: String,
    },
    /// A ranges file does not parse.
    Ranges {
        /// The file.
        path: PathBuf,
        /// The parser's message (ranges are not secret).
        reason: String,
    },
    /// The origins are refused as the layer's build refuses them.
    Origins(String),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Keys { path, reason } | Self::Ranges { path, reason } => {
                write!(f, "{}: {reason}", path.display())
            }
            Self::Origins(reason) => write!(f, "origins: {reason}"),
        }
    }
}

impl std::error::Error for ReloadError {}

/// The settings read from the files, validated, not yet installed.
#[derive(Debug)]
struct Snapshot {
    keys: KeyRing,
    proxies: IpRanges,
    allowlist: IpRanges,
    origins: Vec<String>,
}

async fn read_file(path: &Path) -> Result<String, ReloadError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|err| ReloadError::Read {
            path: path.to_owned(),
            reason: err.kind().to_string(),
        })
}

/// Non-empty lines that are not comments (a comment line *starts* with `#`; a `#` inside a
/// line is data: a secret may contain one, and cutting it there would install a shorter key).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// `key-id = secret` lines, newest first: the first signs, the others still verify.
fn parse_keys(path: &Path, text: &str) -> Result<KeyRing, ReloadError> {
    let error = |reason: String| ReloadError::Keys {
        path: path.to_owned(),
        reason,
    };
    let mut ring: Option<KeyRing> = None;
    for (number, line) in lines(text) {
        let Some((id, secret)) = line.split_once('=') else {
            return Err(error(format!("line {number} is not `key-id = secret`")));
        };
        let (id, secret) = (id.trim(), secret.trim());
        if id.is_empty() {
            return Err(error(format!("line {number} has no key id")));
        }
        let secret = Secret::from_string(secret);
        // Every key, not only the signing one: a blank key in the file is a mistake to
        // report, never a key to install (the layers would skip it silently).
        secret
            .check_usable(&format!("key `{id}` (line {number})"))
            .map_err(|err| error(err.to_string()))?;
        let key = Key::new(id, secret);
        ring = Some(match ring {
            None => KeyRing::new(key),
            Some(ring) => ring.with_verification_key(key),
        });
    }
    let ring = ring.ok_or_else(|| error("no key".to_owned()))?;
    ring.check_signing_key()
        .map_err(|err| error(err.to_string()))?;
    Ok(ring)
}

fn parse_ranges(path: &Path, text: &str) -> Result<IpRanges, ReloadError> {
    let joined: Vec<&str> = lines(text).map(|(_, line)| line).collect();
    if joined.is_empty() {
        return Ok(IpRanges::none());
    }
    joined.join(",").parse().map_err(
        |err: tollgate::client_ip::ConfigError| ReloadError::Ranges {
            path: path.to_owned(),
            reason: err.to_string(),
        },
    )
}

async fn read(files: &Files) -> Result<Snapshot, ReloadError> {
    let keys = parse_keys(&files.keys, &read_file(&files.keys).await?)?;
    let proxies = parse_ranges(&files.proxies, &read_file(&files.proxies).await?)?;
    let allowlist = parse_ranges(&files.allowlist, &read_file(&files.allowlist).await?)?;
    let origins = lines(&read_file(&files.origins).await?)
        .map(|(_, line)| line.to_owned())
        .collect();
    Ok(Snapshot {
        keys,
        proxies,
        allowlist,
        origins,
    })
}

/// The live handles and the files they are re-read from.
#[derive(Debug)]
pub struct Reloader {
    files: Files,
    /// The webhook keys.
    pub keys: KeyRingHandle,
    /// The trusted proxies of the client-IP source.
    pub proxies: IpRangesHandle,
    /// The client IP allowlist.
    pub allowlist: IpRangesHandle,
    /// The allowed origins.
    pub origins: OriginsHandle,
    reloads: watch::Sender<u64>,
    /// Held from reading the files to storing them: two reloads that overlap (a SIGHUP
    /// during an admin reload) run one after the other, so the last to finish is the last
    /// to have read, and a stale read never reinstates a key revoked in between.
    serial: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Re-reads every file and installs them, or changes nothing and says why. Reloads run
    /// one at a time.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _serial = self.serial.lock().await;
        let snapshot = read(&self.files).await?;
        // The origins validate as they are stored (build's rules): first, so a refusal
        // leaves every handle as it was. The ring was checked when parsed.
        self.origins
            .store(snapshot.origins)
            .map_err(|err| ReloadError::Origins(err.to_string()))?;
        self.keys
            .store(snapshot.keys)
            .map_err(|err| ReloadError::Keys {
                path: self.files.keys.clone(),
                reason: err.to_string(),
            })?;
        self.proxies.store(snapshot.proxies);
        self.allowlist.store(snapshot.allowlist);
        self.reloads.send_modify(|count| *count += 1);
        tracing::info!("settings reloaded");
        Ok(())
    }

    /// A receiver told after every successful reload (the count of reloads so far).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }
}

/// The application: reads the files once (failing start-up when one is wrong) and returns
/// the router with its handles.
pub async fn build(files: Files) -> Result<(Router, Arc<Reloader>), ReloadError> {
    let snapshot = read(&files).await?;
    let keys = KeyRingHandle::new(snapshot.keys);
    let proxies = IpRangesHandle::new(snapshot.proxies);
    let allowlist = IpRangesHandle::new(snapshot.allowlist);
    let (origin_layer, origins) = OriginAllowlistLayer::builder()
        .allow_origins(snapshot.origins)
        .build_swappable()
        .map_err(|err| ReloadError::Origins(err.to_string()))?;
    let verify = VerifySignatureLayer::new(BodyHmac::x_webhook_signature(), keys.clone()).map_err(
        |err| ReloadError::Keys {
            path: files.keys.clone(),
            reason: err.to_string(),
        },
    )?;

    async fn webhook(Extension(verified): Extension<VerifiedSignature>) -> String {
        verified.key_id().to_owned()
    }
    async fn whoami(Extension(ip): Extension<ClientIp>) -> String {
        ip.ip().to_string()
    }
    let source =
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone());
    let api = Router::new()
        .route("/api/whoami", get(whoami))
        .layer(IpAllowlistLayer::with_handle(allowlist.clone()))
        .layer(ResolveClientIpLayer::new(source))
        .layer(origin_layer);
    // Inside the verifier: a claim names the signed body, whichever key of the ring verified
    // it, so a delivery signed under the old and the new key is accepted once.
    let replay =
        ReplayGuardLayer::new(MemoryNonceStore::default()).untimed_retention(WEBHOOK_RETENTION);
    let router = Router::new()
        .route("/webhooks", post(webhook).layer(replay))
        .layer(verify)
        .merge(api);
    let reloader = Arc::new(Reloader {
        files,
        keys,
        proxies,
        allowlist,
        origins,
        reloads: watch::channel(0).0,
        serial: tokio::sync::Mutex::new(()),
    });
    Ok((router, reloader))
}

/// Why the admin endpoint did not start.
#[derive(Debug)]
pub enum AdminError {
    /// The address is not a loopback address: the endpoint is never exposed.
    NotLoopback(SocketAddr),
    /// Binding failed.
    Bind(std::io::Error),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLoopback(addr) => write!(
                f,
                "refusing to start the admin endpoint on {addr}: only a loopback address is allowed"
            ),
            Self::Bind(err) => write!(f, "admin endpoint: {err}"),
        }
    }
}

impl std::error::Error for AdminError {}

/// The admin address from `KEY_ROTATION_ADMIN_ADDR`: `None` (the endpoint is off) when unset.
pub fn admin_addr_from_env() -> Result<Option<SocketAddr>, String> {
    match std::env::var("KEY_ROTATION_ADMIN_ADDR") {
        Err(_) => Ok(None),
        Ok(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("KEY_ROTATION_ADMIN_ADDR `{text}` is not an address")),
    }
}

/// Starts `POST /reload` on `addr`, which must be a loopback address, and returns the
/// address it listens on. Answers 200 `reloaded` or 422 with the reason.
pub async fn start_admin(
    addr: SocketAddr,
    reloader: Arc<Reloader>,
) -> Result<SocketAddr, AdminError> {
    if !addr.ip().is_loopback() {
        return Err(AdminError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr).await.map_err(AdminError::Bind)?;
    let local = listener.local_addr().map_err(AdminError::Bind)?;
    async fn reload(State(reloader): State<Arc<Reloader>>) -> (StatusCode, String) {
        match reloader.reload().await {
            Ok(()) => (StatusCode::OK, "reloaded".to_owned()),
            Err(err) => {
                tracing::warn!(%err, "reload refused");
                (StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
            }
        }
    }
    let admin = Router::new()
        .route("/reload", post(reload))
        .with_state(reloader);
    tokio::spawn(example_server::serve(
        listener,
        admin,
        example_server::Limits::default(),
    ));
    Ok(local)
}

/// Re-reads the files on every `SIGHUP`. The handler is installed before this returns, so a
/// `SIGHUP` sent after it no longer terminates the process.
#[cfg(unix)]
pub fn reload_on_sighup(reloader: Arc<Reloader>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reloader.reload().await {
                Ok(()) => tracing::info!("SIGHUP: settings reloaded"),
                Err(err) => tracing::warn!(%err, "SIGHUP: reload refused; keeping the settings"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_parse_newest_first_and_errors_never_show_a_secret() {
        let path = Path::new("keys");
        let ring = parse_keys(
            path,
            "# rotation\nnew = s3cr3t-new\n\n  # until May\nold = s3cr3t#old\n",
        )
        .unwrap();
        let ids: Vec<_> = ring.keys().iter().map(Key::id).collect();
        assert_eq!(ids, ["new", "old"]);
        // A `#` inside a line is part of the secret, never the start of a comment.
        assert_eq!(ring.keys()[1].secret().expose_secret(), b"s3cr3t#old");
        let err = parse_keys(path, "new s3cr3t-value\n").unwrap_err();
        assert_eq!(err.to_string(), "keys: line 1 is not `key-id = secret`");
        let err = parse_keys(path, "blank =   \nold = s3cr3t-old\n").unwrap_err();
        assert!(err.to_string().contains("key `blank` (line 1)"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        // A blank verification key is refused too, naming its line.
        let err = parse_keys(path, "new = s3cr3t-new\nold = \n").unwrap_err();
        assert!(err.to_string().contains("key `old` (line 2)"), "{err}");
        assert!(parse_keys(path, "# nothing\n").is_err());
    }
}

/// The README's "Rotating keys" snippets, compiled and run as doctests.
///
/// ```
/// use tollgate::core::{Key, KeyRing, KeyRingHandle, Secret};
/// use tollgate::signature::{BodyHmac, VerifySignatureLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // At start-up: the key in use. Keep a clone of the handle; the layer holds the other.
/// let keys = KeyRingHandle::new(KeyRing::new(Key::new("2026-08", Secret::from_string("old-secret"))));
/// let verify = VerifySignatureLayer::new(BodyHmac::x_webhook_signature(), keys.clone())?;
/// // let app = axum::Router::new().route("/webhooks", post(handler)).layer(verify);
/// # let _ = verify;
///
/// // 1. New key: it signs from now on, and the old one is still accepted.
/// let rotated = keys.load().as_ref().clone().rotate(Key::new("2026-11", Secret::from_string("new-secret")));
/// keys.store(rotated)?;
/// // 2. Deploy the new secret to the sender. 3. Verify: `VerifiedSignature::key_id()` reads
/// //    "2026-11" on the requests that arrive.
/// // 4. Revoke the old key: its very next use is refused with 401 `signature_invalid`.
/// keys.store(keys.load().without("2026-08").expect("the new key stays"))?;
/// assert_eq!(keys.load().keys().len(), 1);
///
/// // A blank signing key is never installed; the current ring stays.
/// assert!(keys.store(KeyRing::single(Secret::from_string(" "))).is_err());
/// # Ok(())
/// # }
/// ```
///
/// ```
/// use tollgate::core::{KeyRing, KeyRingHandle, Secret};
///
/// #[cfg(unix)]
/// async fn reload_on_sighup(keys: KeyRingHandle) -> std::io::Result<()> {
///     use tokio::signal::unix::{SignalKind, signal};
///     let mut hangups = signal(SignalKind::hangup())?;
///     while hangups.recv().await.is_some() {
///         // A missing or blank variable, or a blank key: refused, the ring in place stays.
///         let stored = Secret::from_env("WEBHOOK_SECRET").and_then(|s| keys.store(KeyRing::single(s)));
///         if let Err(err) = stored {
///             tracing::warn!(%err, "SIGHUP: keys not reloaded");
///         }
///     }
///     Ok(())
/// }
/// ```
#[cfg(doctest)]
pub struct RotatingKeysReadme;
