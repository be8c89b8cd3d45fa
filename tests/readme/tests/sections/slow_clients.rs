use std::time::Duration;
use tollgate::core::Secret;
use tollgate::signature::{BodyHmac, ConfigError, VerifySignatureLayer};

pub fn webhook_verifier(secret: Secret) -> Result<VerifySignatureLayer, ConfigError> {
    Ok(VerifySignatureLayer::new(BodyHmac::onekey(), secret)?
        .body_limit(64 * 1024)
        .body_timeout(Duration::from_secs(5)))
}
