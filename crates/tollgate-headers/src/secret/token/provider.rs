//! [`Token`] and [`TokenProvider`]: what the layer asks for when its cache is stale.

use std::future::Future;
use std::pin::Pin;

use tollgate_core::{BoxError, Secret};

/// A token from a [`TokenProvider`]: the secret value and when it stops being valid.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_headers::Token;
///
/// let token = Token::new(Secret::from_string("eyJhbGciOi")).expires_at(1_800_000_000);
/// assert_eq!(token.expiry(), Some(1_800_000_000));
/// assert_eq!(format!("{token:?}"), "Token { secret: Secret([REDACTED]), expires_at: Some(1800000000) }");
/// ```
#[derive(Clone, Debug)]
pub struct Token {
    pub(super) secret: Secret,
    pub(super) expires_at: Option<u64>,
}

impl Token {
    /// A token that never expires (cached until
    /// [`TokenHeaderLayer::invalidate`](crate::TokenHeaderLayer::invalidate)).
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            expires_at: None,
        }
    }

    /// Sets the Unix time (seconds) at which the token stops being valid (Transak's
    /// refresh-token answer carries it as `expiresAt`).
    pub fn expires_at(mut self, unix_seconds: u64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// When the token expires, if it does.
    pub fn expiry(&self) -> Option<u64> {
        self.expires_at
    }

    /// The token's secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Token, BoxError>> + Send + 'static>>;

/// Fetches a fresh [`Token`] (e.g. calls Transak's refresh-token endpoint).
///
/// Implemented for closures `Fn() -> impl Future<Output = Result<Token, BoxError>>`.
///
/// ```
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{Token, TokenFuture, TokenProvider};
///
/// struct FromVault;
///
/// impl TokenProvider for FromVault {
///     fn fetch_token(&self) -> TokenFuture {
///         Box::pin(async { Ok(Token::new(Secret::from_string("t0ken")).expires_at(1_800_000_000)) })
///     }
/// }
///
/// // A closure works too.
/// let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t0ken"))) };
/// # fn is_provider(_: impl TokenProvider) {}
/// # is_provider(FromVault);
/// # is_provider(provider);
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch_token(&self) -> TokenFuture;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, BoxError>> + Send + 'static,
{
    fn fetch_token(&self) -> TokenFuture {
        Box::pin(self())
    }
}
