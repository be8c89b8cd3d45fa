//! The ready client for OneKey Payments.
//!
//! OneKey's rules for its APIs (cashouts, deposits, ...), each enforced by the client:
//!
//! | rule | how |
//! |---|---|
//! | HTTPS only, certificates validated | the HTTPS-only connector of [`https`](crate::https) |
//! | `Payload-Signature` = lowercase hex HMAC-SHA256 of the exact JSON bytes, keyed with the API Signature | [`SignRequestLayer`] with [`BodyHmac::onekey`], over the bytes sent, on every attempt |
//! | HTTP Basic auth with the API Key and API Passphrase | an `Authorization` [`SecretHeaderLayer`], sent to the configured base URL only |
//! | `Content-Type: application/json` and `User-Agent` mandatory | set on every request; another content type is refused ([`OneKeyError`]) |
//! | never forward browser headers | [`HeaderHygieneLayer::server_to_server`] |
//! | STG and PROD are separate, with separate credentials | one client per environment: [`STAGING`], or the production domain OneKey gives you |
//!
//! OneKey authorises the calling server by its IP (allowlisted in the Merchant Panel), so the
//! `x-user-ip` rule of browser-facing providers does not apply and the client does not send it.
//!
//! Around these, the stack of [`client`](crate::client): timeouts, a deadline, retries that
//! sign each attempt anew (OneKey's POSTs are retried only when they carry an idempotency key
//! you configure with [`RetryPolicy::idempotency_key`](crate::client::RetryPolicy::idempotency_key)),
//! rate and concurrency limits, and one audit event per attempt.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate::core::Secret;
//! use tollgate::onekey::{self, OneKeyClient, OneKeyCredentials};
//! use tower::ServiceExt;
//!
//! let credentials = OneKeyCredentials::new(
//!     Secret::from_env("ONEKEY_API_KEY")?,
//!     Secret::from_env("ONEKEY_API_PASSPHRASE")?,
//!     Secret::from_env("ONEKEY_API_SIGNATURE")?,
//! );
//! let onekey = OneKeyClient::builder(onekey::STAGING, credentials)
//!     .user_agent("acme-cashouts/1.4")
//!     .build()?;
//!
//! let request = Request::post("/api/v3/cashout")
//!     .body(Full::new(Bytes::from_static(br#"{"external_id":"123","amount":2000}"#)))?;
//! let response = onekey.oneshot(request).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::task::{Context, Poll};

use base64::Engine as _;
use http::{HeaderValue, Request, header};
use tower::Service;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_layer::Layer;
use zeroize::Zeroizing;

use crate::ProviderConfigError;
use crate::client::{ClientBuilder, ProviderClient};
use crate::core::future::OutboundFuture;
use crate::core::header::single_value;
use crate::core::{KeyRing, Secret};
use crate::headers::{HeaderHygieneLayer, SecretHeaderLayer};
use crate::provider::pinned_upstream;
use crate::signature::{BodyHmac, SignRequestLayer};

/// OneKey's staging (STG) environment, where every integration starts. The production domain
/// is given by OneKey once testing is complete; pass it to [`OneKeyClient::builder`].
pub const STAGING: &str = "https://api-stg.onekeypayments.com";

/// The `User-Agent` sent when none is configured: `tollgate/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// The three credentials of one OneKey environment (Merchant Panel → Settings → API Access).
#[derive(Clone, Debug)]
pub struct OneKeyCredentials {
    api_key: Secret,
    api_passphrase: Secret,
    api_signature: Secret,
}

impl OneKeyCredentials {
    /// The API Key (Basic auth user), API Passphrase (Basic auth password) and API Signature
    /// (the HMAC key of `Payload-Signature`).
    pub fn new(api_key: Secret, api_passphrase: Secret, api_signature: Secret) -> Self {
        Self {
            api_key,
            api_passphrase,
            api_signature,
        }
    }

    /// `Basic base64(key:passphrase)`, as a secret.
    fn basic_auth(&self) -> Result<Secret, ProviderConfigError> {
        self.api_key.check_usable("OneKey API Key")?;
        self.api_passphrase.check_usable("OneKey API Passphrase")?;
        let key = std::str::from_utf8(self.api_key.expose_secret()).map_err(|_| {
            ProviderConfigError::Invalid {
                reason: "the OneKey API Key is not UTF-8",
            }
        })?;
        if key.contains(':') {
            return Err(ProviderConfigError::Invalid {
                reason: "the OneKey API Key contains `:`, which Basic auth cannot carry",
            });
        }
        let mut pair = Zeroizing::new(Vec::with_capacity(
            self.api_key.expose_secret().len() + 1 + self.api_passphrase.expose_secret().len(),
        ));
        pair.extend_from_slice(self.api_key.expose_secret());
        pair.push(b':');
        pair.extend_from_slice(self.api_passphrase.expose_secret());
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*pair));
        Ok(Secret::from_string(format!("Basic {}", &*encoded)))
    }
}

/// Builds a [`OneKeyClient`]: the base URL and credentials of one environment, the
/// `User-Agent`, and the call stack's settings.
#[must_use]
pub struct OneKeyClientBuilder {
    credentials: OneKeyCredentials,
    user_agent: String,
    client: ClientBuilder,
}

/// Never shows the base URL as given (it may hold user info, refused at build): the call
/// stack's `Debug` shows its scheme, host and port.
impl std::fmt::Debug for OneKeyClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneKeyClientBuilder")
            .field("credentials", &self.credentials)
            .field("user_agent", &self.user_agent)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// The ready OneKey client: a [`ProviderClient`] (a `tower::Service` taking any request body,
/// failing with [`CallError`](crate::client::CallError)).
#[derive(Debug)]
#[non_exhaustive]
pub struct OneKeyClient;

impl OneKeyClient {
    /// A builder for the environment at `base_url` ([`STAGING`], or the production domain)
    /// with its credentials.
    pub fn builder(base_url: &str, credentials: OneKeyCredentials) -> OneKeyClientBuilder {
        OneKeyClientBuilder {
            credentials,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            client: ClientBuilder::new("onekey").base_url(base_url),
        }
    }
}

impl OneKeyClientBuilder {
    /// The `User-Agent` of every request (OneKey requires one): your application and version.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        user_agent.clone_into(&mut self.user_agent);
        self
    }

    /// Changes the call stack: timeouts, retry policy, rate and concurrency limits, TLS roots.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::core::Secret;
    /// use tollgate::onekey::{self, OneKeyClient, OneKeyCredentials};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let credentials = OneKeyCredentials::new(
    ///     Secret::from_string("key"),
    ///     Secret::from_string("passphrase"),
    ///     Secret::from_string("signature"),
    /// );
    /// let onekey = OneKeyClient::builder(onekey::STAGING, credentials)
    ///     .configure(|client| client.rate_limit(20, Duration::from_secs(1)).concurrency_limit(4))
    ///     .build()?;
    /// # drop(onekey);
    /// # Ok(())
    /// # }
    /// ```
    pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        self.client = f(self.client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A base URL that is not `https://host[:port][/base/path]`, a blank secret, a
    /// `User-Agent` that is not a header value, or a call-stack setting that cannot work.
    pub fn build(self) -> Result<ProviderClient, ProviderConfigError> {
        let (client, layers) = self.into_parts()?;
        Ok(client.build(layers)?)
    }

    /// Builds the same client for reqwest: the same layers and settings, as a
    /// `reqwest_middleware::ClientWithMiddleware` ([`reqwest`](crate::reqwest)).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    #[cfg(feature = "reqwest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn build_reqwest(
        self,
    ) -> Result<crate::reqwest::reqwest_middleware::ClientWithMiddleware, ProviderConfigError> {
        let (client, layers) = self.into_parts()?;
        Ok(crate::reqwest::client(client, layers)?)
    }

    /// The call-stack settings and the provider's layers, checked.
    fn into_parts(self) -> Result<(ClientBuilder, OneKeyLayers), ProviderConfigError> {
        let upstream = pinned_upstream(&self.client)?;
        let user_agent =
            HeaderValue::from_str(&self.user_agent).map_err(|_| ProviderConfigError::Invalid {
                reason: "the User-Agent is not a valid header value",
            })?;
        if self.user_agent.trim().is_empty() {
            return Err(ProviderConfigError::Invalid {
                reason: "the User-Agent is empty",
            });
        }
        let authorization = SecretHeaderLayer::new(
            header::AUTHORIZATION,
            self.credentials.basic_auth()?,
            upstream.clone(),
        )?;
        let signing = SignRequestLayer::new(
            BodyHmac::onekey(),
            KeyRing::single(self.credentials.api_signature.clone()),
            upstream,
        )?;
        let layers = ServiceBuilder::new()
            .layer(
                HeaderHygieneLayer::server_to_server().substitute(header::USER_AGENT, user_agent),
            )
            .layer(OneKeyHeadersLayer)
            .layer(authorization)
            .layer(signing)
            .into_inner();
        Ok((self.client, layers))
    }
}

/// OneKey's layers, outermost first: hygiene, the mandatory headers, Basic auth, the
/// Payload-Signature.
type OneKeyLayers = Stack<
    SignRequestLayer,
    Stack<SecretHeaderLayer, Stack<OneKeyHeadersLayer, Stack<HeaderHygieneLayer, Identity>>>,
>;

/// A request the OneKey client refused to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OneKeyError {
    /// The request has a `Content-Type` other than `application/json` (OneKey takes JSON only).
    ContentTypeNotJson,
}

impl fmt::Display for OneKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ContentTypeNotJson => f.write_str(
                "OneKey takes `Content-Type: application/json` only; the request was not sent",
            ),
        }
    }
}

impl StdError for OneKeyError {}

/// OneKey's mandatory `Content-Type: application/json`: set when absent, another type (or
/// two `Content-Type` headers) refused. (The `User-Agent` is hygiene's `substitute`.)
#[derive(Clone, Copy, Debug)]
struct OneKeyHeadersLayer;

impl<S> Layer<S> for OneKeyHeadersLayer {
    type Service = OneKeyHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OneKeyHeaders { inner }
    }
}

#[derive(Clone, Debug)]
struct OneKeyHeaders<S> {
    inner: S,
}

/// Whether `value` is `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|text| {
        text.split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

impl<S, B> Service<Request<B>> for OneKeyHeaders<S>
where
    S: Service<Request<B>>,
    S::Error: Into<tollgate_core::BoxError>,
{
    type Response = S::Response;
    type Error = tollgate_core::BoxError;
    type Future = OutboundFuture<S::Future, OneKeyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match single_value(request.headers(), header::CONTENT_TYPE) {
            Ok(None) => {
                request.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Ok(Some(value)) if is_json(value) => {}
            // Another type, or two `Content-Type` headers.
            _ => return OutboundFuture::refused(OneKeyError::ContentTypeNotJson),
        }
        OutboundFuture::inner(self.inner.call(request))
    }
}
