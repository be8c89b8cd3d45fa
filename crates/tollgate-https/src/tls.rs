//! [`TlsConfig`]: the one way tollgate builds a rustls client configuration.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};

use crate::ConfigError;

/// Which certificates a client trusts, and nothing else to choose: TLS 1.2 and 1.3 only,
/// certificates always verified (chain, name, validity dates), ring as the crypto provider.
///
/// [`TlsConfig::new`] trusts Mozilla's root program, compiled in (`webpki-roots`): the same
/// trust on every machine and in every container image, with no dependency on the system's
/// certificate store. A private or test CA is *added* with
/// [`add_root_certificate`](TlsConfig::add_root_certificate) or
/// [`add_root_pem`](TlsConfig::add_root_pem); [`roots_only`](TlsConfig::roots_only) trusts the
/// added roots alone (a pinned private PKI, or a test).
///
/// There is deliberately no way to skip verification, to accept an invalid certificate or to
/// plug in a custom verifier: the providers' rule is "always validate certificates, never
/// disable validation, not even in development". Tests and the demo trust a local test CA
/// instead.
///
/// ```
/// use tollgate_https::TlsConfig;
///
/// // Mozilla's roots: what a client of a public payment API needs.
/// let tls = TlsConfig::new();
/// let config = tls.client_config().unwrap();
/// assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
///
/// // A PEM that holds no certificate is refused when the configuration is built.
/// assert!(TlsConfig::new().add_root_pem(b"not a certificate").is_err());
/// ```
#[derive(Clone)]
#[must_use]
pub struct TlsConfig {
    extra_roots: Vec<CertificateDer<'static>>,
    mozilla_roots: bool,
    http2: bool,
}

impl TlsConfig {
    /// Mozilla's roots (compiled in), TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 offered by ALPN.
    pub fn new() -> Self {
        Self {
            extra_roots: Vec::new(),
            mozilla_roots: true,
            http2: true,
        }
    }

    /// Also trusts `certificate` (DER) as a root.
    pub fn add_root_certificate(mut self, certificate: CertificateDer<'static>) -> Self {
        self.extra_roots.push(certificate);
        self
    }

    /// Also trusts every certificate in `pem` as a root.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRootPem`] when `pem` does not parse or holds no certificate.
    pub fn add_root_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let mut found = 0usize;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|_| ConfigError::InvalidRootPem)?;
            self.extra_roots.push(certificate);
            found += 1;
        }
        if found == 0 {
            return Err(ConfigError::InvalidRootPem);
        }
        Ok(self)
    }

    /// Trusts the added roots only, not Mozilla's (a private PKI, or a test CA).
    pub fn roots_only(mut self) -> Self {
        self.mozilla_roots = false;
        self
    }

    /// Offers HTTP/1.1 only (no `h2` in ALPN).
    pub fn http1_only(mut self) -> Self {
        self.http2 = false;
        self
    }

    /// Whether `h2` is offered by ALPN.
    pub(crate) fn offers_http2(&self) -> bool {
        self.http2
    }

    /// The rustls configuration: for this crate's [`HttpsConnector`](crate::HttpsConnector),
    /// and for clients that take one (reqwest's `use_preconfigured_tls`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRootCertificate`] when an added root is not a usable CA
    /// certificate, [`ConfigError::NoRoots`] when nothing is trusted.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let mut roots = RootCertStore::empty();
        if self.mozilla_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for certificate in &self.extra_roots {
            roots
                .add(certificate.clone())
                .map_err(|_| ConfigError::InvalidRootCertificate)?;
        }
        if roots.is_empty() {
            return Err(ConfigError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|error| ConfigError::Provider(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = if self.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(config)
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("mozilla_roots", &self.mozilla_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("http2", &self.http2)
            .finish()
    }
}
