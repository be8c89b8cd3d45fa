use tollgate::core::{BoxError, Key, KeyRing, KeyRingHandle, Secret};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};

/// At start-up: the layer holds one clone of the handle, you keep the other.
pub fn webhook_layer(keys: &KeyRingHandle) -> Result<VerifySignatureLayer, BoxError> {
    Ok(VerifySignatureLayer::new(
        BodyHmac::x_webhook_signature(),
        keys.clone(),
    )?)
}

/// "New key, deploy": the new key signs from now on; the old one still verifies.
pub fn deploy_new_key(keys: &KeyRingHandle, new_secret: Secret) -> Result<(), BoxError> {
    keys.update(|ring| Ok::<_, BoxError>(ring.clone().rotate(Key::new("2026-11", new_secret))))?;
    Ok(())
}

/// "Verify, revoke old": once `VerifiedSignature::key_id()` reads "2026-11" on what the
/// sender sends, revoke the old key. Its very next use is refused. `update` reads the ring
/// and stores the new one in one step: a deploy and a revoke made at once both take effect.
pub fn revoke_old_key(keys: &KeyRingHandle) -> Result<(), BoxError> {
    keys.update(|ring| {
        ring.without("2026-08")
            .ok_or_else(|| BoxError::from("no key would remain"))
    })?;
    Ok(())
}

/// `kill -HUP <pid>` after updating `WEBHOOK_SECRET`: a missing or blank secret is refused
/// and the ring in place stays.
#[cfg(unix)]
pub async fn reload_on_sighup(keys: KeyRingHandle) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    while hangups.recv().await.is_some() {
        let stored = Secret::from_env("WEBHOOK_SECRET")
            .and_then(|secret| keys.store(KeyRing::new(Key::new("current", secret))));
        if let Err(err) = stored {
            tracing::warn!(%err, "SIGHUP: keys not reloaded");
        }
    }
    Ok(())
}
