//! What the example apps share, so that a copied example is not the weak point: an accept
//! loop ([`serve`]) for an axum `Router` on HTTP/1 with the limits a server on the public
//! edge needs, the same loop over TLS with a local PKI for the provider mocks (the `tls`
//! module, feature `tls`, on by default), and the `--demo` rule for secrets ([`Secrets`]).
//!
//! # The accept loop
//!
//! - **Accept errors** (`EMFILE` when the process runs out of file descriptors, say) are
//!   logged and retried after a second, as axum does; they never end the server.
//! - **At most [`Limits::max_connections`]** connections are served at once; further ones
//!   wait in the listen backlog.
//! - **Request heads** must arrive within [`Limits::header_read_timeout`] (also the idle time
//!   allowed between keep-alive requests): slowloris on the head.
//! - **Whole requests** — body included — must be read and answered within
//!   [`Limits::request_timeout`], else 408 and the connection is closed: slowloris on the body
//!   (a complete head, `Content-Length: 100`, one byte, then nothing), which a head timeout
//!   alone leaves holding a connection slot for ever.
//! - **Connections** live at most [`Limits::max_connection_age`]; then they are shut down
//!   gracefully, and closed after a further `request_timeout`: a client that stops reading
//!   its responses cannot hold a slot for ever either.
//!
//! Every request carries `ConnectInfo<SocketAddr>`, what the `remote-addr` client-IP source
//! reads.
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! example_server::serve(listener, app, example_server::Limits::default()).await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;

#[cfg(feature = "axum")]
mod accept;

#[cfg(feature = "axum")]
pub use accept::{Limits, serve};

#[cfg(feature = "tls")]
pub mod tls;

/// Whether an accept error concerns only the one connection being accepted (the peer gave up
/// before it was taken), so an accept loop goes on at once; any other error (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, ...) is about the process, and the loop pauses before trying again.
pub fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Whether unset secret variables may take the demo values printed in the docs.
///
/// An example never falls back to a secret silently: without `--demo` every secret variable
/// must be set (and not blank), else the program refuses to start naming each missing one;
/// `--demo` fills the unset ones with the published demo values, with a warning that says so
/// (louder when the address is not loopback).
///
/// ```
/// use example_server::Secrets;
///
/// let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert_eq!(Secrets::from_args("app", args(&[])).unwrap(), Secrets::Required);
/// assert_eq!(Secrets::from_args("app", args(&["--demo"])).unwrap(), Secrets::Demo);
/// assert!(Secrets::from_args("app", args(&["--dmeo"])).is_err());
/// assert!(Secrets::Required.check(&["API_KEY"]).unwrap_err().contains("API_KEY"));
/// assert!(Secrets::Demo.check(&["API_KEY"]).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Secrets {
    /// Every secret variable must be set and not blank; the default.
    #[default]
    Required,
    /// `--demo`: unset secrets take the published demo values. Never for a real deployment.
    Demo,
}

impl Secrets {
    /// The mode the command-line arguments (without the program name) ask for: `--demo` or
    /// nothing; anything else is an error naming `program`'s usage.
    pub fn from_args(
        program: &str,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let mut secrets = Self::Required;
        for arg in args {
            match arg.as_str() {
                "--demo" => secrets = Self::Demo,
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (usage: {program} [--demo])"
                    ));
                }
            }
        }
        Ok(secrets)
    }

    /// With [`Secrets::Required`], an error naming every variable of `missing`; else `Ok`.
    pub fn check(self, missing: &[&str]) -> Result<(), String> {
        if self == Self::Demo || missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "missing {}: set {} (or pass --demo to use the published demo values on a test machine)",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        ))
    }

    /// The warning `--demo` prints when it fills `missing` (empty: no warning), naming
    /// `what` the demo values give away and whether `addr` is off loopback.
    pub fn demo_warning(
        self,
        program: &str,
        missing: &[&str],
        what: &str,
        addr: Option<SocketAddr>,
    ) -> Option<String> {
        if self != Self::Demo || missing.is_empty() {
            return None;
        }
        let exposed = match addr {
            Some(addr) if !addr.ip().is_loopback() => format!(" {addr} is NOT a loopback address."),
            _ => String::new(),
        };
        Some(format!(
            "{program}: WARNING: --demo: {} unset, using the PUBLISHED demo values: {what}. \
             Never use --demo outside a test machine.{exposed}",
            missing.join(", "),
        ))
    }
}

/// The names of `names` that `var` finds unset or blank (only whitespace).
///
/// ```
/// let var = |name: &str| (name == "SET").then(|| "x".to_owned());
/// assert_eq!(example_server::missing_vars(["SET", "UNSET"], var), ["UNSET"]);
/// ```
pub fn missing_vars<'n>(
    names: impl IntoIterator<Item = &'n str>,
    var: impl Fn(&str) -> Option<String>,
) -> Vec<&'n str> {
    names
        .into_iter()
        .filter(|name| var(name).is_none_or(|value| value.trim().is_empty()))
        .collect()
}
