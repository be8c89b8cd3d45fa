//! The pure part: the access token, nonces and credentials, with no tower in sight.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tollgate_core::{Secret, SecretError};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Number of random bytes in a nonce (Tranzila: `bin2hex(random_bytes(40))`).
pub const NONCE_BYTES: usize = 40;

/// Length of a nonce on the wire: [`NONCE_BYTES`] hex-encoded, 80 characters.
pub const NONCE_LEN: usize = NONCE_BYTES * 2;

/// Length of an access token on the wire: 32 bytes of HMAC-SHA256, 64 hex characters.
pub const ACCESS_TOKEN_LEN: usize = 64;

/// SHA-256's block size: HMAC pads keys up to this length and hashes longer ones.
const BLOCK_LEN: usize = 64;

/// The HMAC keyed with `secret + time + nonce`, over nothing yet, with no heap buffer.
///
/// HMAC (RFC 2104) uses a key of at most one block as is (zero-padded) and first hashes a
/// longer one, which is always the case with a real 80-character nonce. That hash is done
/// here, streaming the three parts into SHA-256 instead of concatenating them; the short case
/// concatenates into a block on the stack. Either buffer is wiped before this returns.
fn keyed_mac(secret: &Secret, time: &[u8], nonce: &[u8]) -> HmacSha256 {
    let secret = secret.expose_secret();
    let len = secret.len() + time.len() + nonce.len();
    if len <= BLOCK_LEN {
        let mut key = Zeroizing::new([0u8; BLOCK_LEN]);
        let (head, rest) = key.split_at_mut(secret.len());
        head.copy_from_slice(secret);
        let (middle, rest) = rest.split_at_mut(time.len());
        middle.copy_from_slice(time);
        rest[..nonce.len()].copy_from_slice(nonce);
        new_mac(&key[..len])
    } else {
        let mut hasher = Sha256::new();
        hasher.update(secret);
        hasher.update(time);
        hasher.update(nonce);
        let mut key = Zeroizing::new([0u8; 32]);
        hasher.finalize_into((&mut *key).into());
        new_mac(&key[..])
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length: this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_invalid_length(),
    }
}

#[cold]
fn unreachable_invalid_length() -> HmacSha256 {
    // `Hmac::new_from_slice` only fails for MACs with a fixed key size, which HMAC is not.
    // Fall back to the equivalent construction that has no error path at all.
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

/// The Tranzila access token: the lowercase hex of HMAC-SHA256 with **message = the app key**
/// and **key = secret + time + nonce** (plain byte concatenation).
///
/// This is Tranzila's PHP reference, `hash_hmac('sha256', $appKey, $secret . $time . $nonce)`,
/// line for line. Every input is used exactly as it goes on the wire: `time` is the decimal
/// Unix time **in seconds** as sent in `X-tranzila-api-request-time` (some Tranzila pages say
/// milliseconds; the published vectors and the PHP reference use seconds), and `nonce` is
/// taken with its case as sent (an upper-case nonce gives a different token).
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_tranzila::access_token;
///
/// let token = access_token(
///     "pub_app_key_demo",
///     &Secret::from_string("private_secret_demo"),
///     "1700000000",
///     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
/// );
/// assert_eq!(token, "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16");
/// ```
pub fn access_token(app_key: &str, secret: &Secret, time: &str, nonce: &str) -> String {
    let mut token = [0u8; ACCESS_TOKEN_LEN];
    access_token_into(
        app_key.as_bytes(),
        secret,
        time.as_bytes(),
        nonce.as_bytes(),
        &mut token,
    );
    // Hex is ASCII: this is always the borrowed, unchanged case.
    String::from_utf8_lossy(&token).into_owned()
}

/// [`access_token`] written as lowercase hex into `out` ([`ACCESS_TOKEN_LEN`] bytes), with no
/// allocation.
pub(crate) fn access_token_into(
    app_key: &[u8],
    secret: &Secret,
    time: &[u8],
    nonce: &[u8],
    out: &mut [u8],
) {
    let mut mac = keyed_mac(secret, time, nonce);
    mac.update(app_key);
    encode_hex(&mac.finalize().into_bytes(), out);
}

/// Lowercase hex of `bytes` into `out`, two characters per byte (`out` is exactly twice as
/// long at every call site).
fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
}

/// The two lowercase hex characters of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// Whether `token` (the hex sent in `X-tranzila-api-access-token`, either case) is the access
/// token for these inputs. The comparison runs in constant time.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_tranzila::{access_token, verify_access_token};
///
/// let secret = Secret::from_string("s3cr3t");
/// let token = access_token("app", &secret, "1700000000", "ab");
/// assert!(verify_access_token("app", &secret, "1700000000", "ab", &token));
/// assert!(!verify_access_token("app", &secret, "1700000001", "ab", &token));
/// assert!(!verify_access_token("app", &secret, "1700000000", "ab", "not hex"));
/// ```
pub fn verify_access_token(
    app_key: &str,
    secret: &Secret,
    time: &str,
    nonce: &str,
    token: &str,
) -> bool {
    let Some(received) = decode_token(token) else {
        return false;
    };
    let mut mac = keyed_mac(secret, time.as_bytes(), nonce.as_bytes());
    mac.update(app_key.as_bytes());
    mac.verify_slice(&received).is_ok()
}

/// The 32 MAC bytes of a 64-hex-character token, or `None` when it has another shape.
pub(crate) fn decode_token(token: &str) -> Option<[u8; 32]> {
    if token.len() != ACCESS_TOKEN_LEN {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(token, &mut bytes).ok()?;
    Some(bytes)
}

/// A fresh nonce: [`NONCE_BYTES`] bytes from the operating system's CSPRNG, as
/// [`NONCE_LEN`] lowercase hex characters (Tranzila's `bin2hex(random_bytes(40))`).
///
/// ```
/// let nonce = tollgate_tranzila::generate_nonce().unwrap();
/// assert_eq!(nonce.len(), 80);
/// assert!(tollgate_tranzila::is_valid_nonce(&nonce));
/// ```
///
/// # Errors
///
/// Fails only when the operating system cannot provide randomness; a request must then not
/// be sent.
pub fn generate_nonce() -> Result<String, NonceError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_nonce(&mut nonce)?;
    // Hex is ASCII: this is always the borrowed, unchanged case.
    Ok(String::from_utf8_lossy(&nonce).into_owned())
}

/// A fresh nonce ([`generate_nonce`]) written into `out` ([`NONCE_LEN`] bytes), with no
/// allocation. The random bytes are not wiped: they are what the nonce publishes.
pub(crate) fn fill_nonce(out: &mut [u8]) -> Result<(), NonceError> {
    let mut bytes = [0u8; NONCE_BYTES];
    take_random(&mut bytes)?;
    encode_hex(&bytes, out);
    Ok(())
}

/// Nonces per call to the operating system's CSPRNG.
const NONCES_PER_DRAW: usize = 32;

/// Random bytes drawn from the operating system [`NONCES_PER_DRAW`] nonces at a time, per
/// thread. Each byte is handed out once and zeroed as it is taken.
struct RandomPool {
    bytes: [u8; NONCE_BYTES * NONCES_PER_DRAW],
    /// Bytes of `bytes` already handed out (zeroed); all of them at first.
    taken: usize,
}

std::thread_local! {
    static RANDOM_POOL: std::cell::RefCell<RandomPool> = const {
        std::cell::RefCell::new(RandomPool {
            bytes: [0; NONCE_BYTES * NONCES_PER_DRAW],
            taken: NONCE_BYTES * NONCES_PER_DRAW,
        })
    };
}

/// Fills `out` (at most [`NONCE_BYTES`]) with fresh bytes from the operating system's CSPRNG,
/// drawn in blocks: one system call for [`NONCES_PER_DRAW`] nonces rather than one per nonce
/// (on Linux the call, not the bytes, is most of a nonce's cost). The bytes are the OS's,
/// unchanged, and never handed out twice by this process; a child made by `fork` without
/// `exec` would share the parent's unused block, and its nonces would then be refused as
/// replays.
fn take_random(out: &mut [u8]) -> Result<(), NonceError> {
    debug_assert!(out.len() <= NONCE_BYTES);
    RANDOM_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pool = &mut *pool;
        if pool.bytes.len() - pool.taken < out.len() {
            getrandom::fill(&mut pool.bytes).map_err(|_| NonceError)?;
            pool.taken = 0;
        }
        let block = &mut pool.bytes[pool.taken..pool.taken + out.len()];
        out.copy_from_slice(block);
        block.fill(0);
        pool.taken += out.len();
        Ok(())
    })
}

/// Whether `nonce` has the shape Tranzila requires: exactly [`NONCE_LEN`] hexadecimal
/// characters (either case: the case is part of the signed key, and is kept as sent).
///
/// ```
/// use tollgate_tranzila::is_valid_nonce;
///
/// assert!(is_valid_nonce(&"ab".repeat(40)));
/// assert!(is_valid_nonce(&"AB".repeat(40)));
/// assert!(!is_valid_nonce(&"ab".repeat(39)));
/// assert!(!is_valid_nonce(&"xy".repeat(40)));
/// ```
pub fn is_valid_nonce(nonce: &str) -> bool {
    nonce.len() == NONCE_LEN && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceError;

impl fmt::Display for NonceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random number generator failed")
    }
}

impl std::error::Error for NonceError {}

/// A Tranzila app key (public, sent in `X-tranzila-api-app-key`) and its secret (private,
/// never sent: it only keys the HMAC).
///
/// `Debug` shows the app key and redacts the secret.
///
/// The secret is never [blank](Secret::is_blank): [`TranzilaCredentials::new`] and
/// [`TranzilaCredentials::from_env`] refuse an empty or whitespace-only one, so every layer
/// built from credentials (signing and verifying) has a secret an attacker cannot guess.
///
/// ```
/// use tollgate_tranzila::TranzilaCredentials;
///
/// let credentials = TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo")?;
/// assert_eq!(credentials.app_key(), "pub_app_key_demo");
/// assert_eq!(
///     format!("{credentials:?}"),
///     r#"TranzilaCredentials { app_key: "pub_app_key_demo", secret: Secret([REDACTED]) }"#
/// );
/// # Ok::<(), tollgate_core::SecretError>(())
/// ```
#[derive(Clone)]
pub struct TranzilaCredentials {
    app_key: String,
    secret: Secret,
}

impl TranzilaCredentials {
    /// Credentials for `app_key` with `secret` (a [`Secret`], or a string taken as its UTF-8
    /// bytes).
    ///
    /// # Errors
    ///
    /// [`SecretError::Blank`] (naming the app key, never the secret) when the secret is empty
    /// or only whitespace ([`Secret::is_blank`]). With a blank secret the HMAC key is just the
    /// time and nonce, which travel in clear: anyone could compute the access token.
    ///
    /// ```
    /// use tollgate_core::SecretError;
    /// use tollgate_tranzila::TranzilaCredentials;
    ///
    /// let err = TranzilaCredentials::new("victim-app", "").unwrap_err();
    /// assert!(matches!(err, SecretError::Blank { .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the secret for Tranzila app key `victim-app` is empty, all zero bytes or only whitespace"
    /// );
    /// assert!(TranzilaCredentials::new("victim-app", " \t").is_err());
    /// ```
    pub fn new(app_key: impl Into<String>, secret: impl Into<Secret>) -> Result<Self, SecretError> {
        let app_key = app_key.into();
        let secret = secret.into();
        secret.check_usable(&format!("Tranzila app key `{app_key}`"))?;
        Ok(Self { app_key, secret })
    }

    /// Reads both from environment variables (the error names a variable, never a value). A
    /// variable that is set but empty or only whitespace is refused like a missing one
    /// ([`Secret::from_env`]).
    ///
    /// ```
    /// use tollgate_tranzila::TranzilaCredentials;
    ///
    /// let err = TranzilaCredentials::from_env("TRANZILA_DOC_UNSET_KEY", "TRANZILA_DOC_UNSET_SECRET")
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("TRANZILA_DOC_UNSET_KEY"));
    /// ```
    pub fn from_env(app_key_var: &str, secret_var: &str) -> Result<Self, SecretError> {
        let app_key = Secret::from_env(app_key_var)?;
        let app_key = String::from_utf8_lossy(app_key.expose_secret()).into_owned();
        Self::new(app_key, Secret::from_env(secret_var)?)
    }

    /// The public app key.
    pub fn app_key(&self) -> &str {
        &self.app_key
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// [`access_token`] with these credentials.
    pub fn access_token(&self, time: &str, nonce: &str) -> String {
        access_token(&self.app_key, &self.secret, time, nonce)
    }
}

impl fmt::Debug for TranzilaCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaCredentials")
            .field("app_key", &self.app_key)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Whether `app_key` can travel in a header unchanged: non-empty, visible ASCII only (no
/// spaces, which HTTP would trim or fold).
pub(crate) fn is_valid_app_key(app_key: &str) -> bool {
    !app_key.is_empty() && app_key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const NONCE: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";

    #[test]
    fn baseline_vector_and_exact_inputs() {
        let secret = Secret::from_string("private_secret_demo");
        let token = access_token("pub_app_key_demo", &secret, "1700000000", NONCE);
        assert_eq!(
            token,
            "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16"
        );
        // Leading zero in the time, upper-case nonce: different keys, different tokens.
        assert_ne!(
            access_token("pub_app_key_demo", &secret, "01700000000", NONCE),
            token
        );
        assert_ne!(
            access_token(
                "pub_app_key_demo",
                &secret,
                "1700000000",
                &NONCE.to_uppercase()
            ),
            token
        );
        assert!(verify_access_token(
            "pub_app_key_demo",
            &secret,
            "1700000000",
            NONCE,
            &token.to_uppercase()
        ));
        assert!(!verify_access_token(
            "pub_app_key_demo",
            &secret,
            "1700000000",
            NONCE,
            &token[..62]
        ));
        assert!(!verify_access_token(
            "pub_app_key_demo",
            &Secret::from_string("other"),
            "1700000000",
            NONCE,
            &token
        ));
    }

    #[test]
    fn ten_thousand_nonces_are_distinct_lowercase_hex() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let nonce = generate_nonce().unwrap();
            assert_eq!(nonce.len(), 80);
            assert!(
                nonce
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{nonce}"
            );
            assert!(seen.insert(nonce));
        }
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn hex_of_every_byte_value() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = [0u8; 512];
        encode_hex(&bytes, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), hex::encode(&bytes));
    }

    #[test]
    fn nonce_shape() {
        assert!(is_valid_nonce(NONCE));
        assert!(is_valid_nonce(&NONCE.to_uppercase()));
        assert!(!is_valid_nonce(&NONCE[..79]));
        assert!(!is_valid_nonce(&format!("{NONCE}0")));
        assert!(!is_valid_nonce(&format!("{}g", &NONCE[..79])));
        assert!(!is_valid_nonce(""));
        // 40 two-byte characters: 80 bytes, not hex.
        assert!(!is_valid_nonce(&"é".repeat(40)));
    }

    #[test]
    fn nonces_drawn_in_blocks_are_all_distinct_and_taken_bytes_are_wiped() {
        // Several blocks, on several threads: no nonce twice, each one well-formed.
        let per_thread = NONCES_PER_DRAW * 3 + 1;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| generate_nonce().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for thread in threads {
            for nonce in thread.join().unwrap() {
                assert!(is_valid_nonce(&nonce), "{nonce}");
                assert!(seen.insert(nonce), "a nonce came twice");
            }
        }
        assert_eq!(seen.len(), per_thread * 4);
        // What was handed out is no longer in the pool.
        RANDOM_POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.bytes[..pool.taken].iter().all(|&b| b == 0));
        });
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let credentials = TranzilaCredentials::new("app", "very-secret-value").unwrap();
        let debug = format!("{credentials:?}");
        assert_eq!(
            debug,
            r#"TranzilaCredentials { app_key: "app", secret: Secret([REDACTED]) }"#
        );
        assert!(!format!("{credentials:#?}").contains("very-secret-value"));
    }

    #[test]
    fn credentials_refuse_a_blank_secret_naming_the_app_key_only() {
        for blank in ["", " ", "\t\r\n", "\u{a0}"] {
            let err = TranzilaCredentials::new("victim-app", blank).unwrap_err();
            assert_eq!(
                err,
                SecretError::Blank {
                    name: "Tranzila app key `victim-app`".into()
                }
            );
            let err =
                TranzilaCredentials::new("victim-app", Secret::from_string(blank)).unwrap_err();
            assert!(matches!(err, SecretError::Blank { .. }));
        }
        let ok = TranzilaCredentials::new("victim-app", " s3cr3t ").unwrap();
        assert_eq!(ok.secret().expose_secret(), b" s3cr3t ");
    }

    #[test]
    fn app_key_shape() {
        assert!(is_valid_app_key("pub_app_key_demo"));
        assert!(!is_valid_app_key(""));
        assert!(!is_valid_app_key("with space"));
        assert!(!is_valid_app_key("line\nbreak"));
        assert!(!is_valid_app_key("מפתח"));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            app_key in "[!-~]{1,40}",
            secret in proptest::collection::vec(any::<u8>(), 0..80),
            time in any::<u64>(),
            nonce in "[0-9a-fA-F]{80}",
            flip in 0usize..64,
        ) {
            let secret = Secret::from_bytes(secret);
            let time = time.to_string();
            let token = access_token(&app_key, &secret, &time, &nonce);
            prop_assert_eq!(token.len(), ACCESS_TOKEN_LEN);
            prop_assert!(token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert!(verify_access_token(&app_key, &secret, &time, &nonce, &token));
            // Any other token fails.
            let mut other = token.into_bytes();
            other[flip] = if other[flip] == b'0' { b'1' } else { b'0' };
            let other = String::from_utf8(other).unwrap();
            prop_assert!(!verify_access_token(&app_key, &secret, &time, &nonce, &other));
            prop_assert!(is_valid_nonce(&nonce));
        }

        #[test]
        fn token_is_the_reference_formula_for_any_key_length(
            app_key in "[!-~]{1,40}",
            // Both sides of the HMAC block size and of the stack key buffer.
            secret in proptest::collection::vec(any::<u8>(), 0..400),
            time in "[0-9]{0,20}",
            nonce in "[0-9a-zA-Z]{0,120}",
        ) {
            // The PHP formula, literally: concatenate, key the HMAC, hex the MAC.
            let mut key = secret.clone();
            key.extend_from_slice(time.as_bytes());
            key.extend_from_slice(nonce.as_bytes());
            let mut mac = HmacSha256::new_from_slice(&key).unwrap();
            mac.update(app_key.as_bytes());
            let expected = hex::encode(mac.finalize().into_bytes());
            let secret = Secret::from_bytes(secret);
            prop_assert_eq!(&access_token(&app_key, &secret, &time, &nonce), &expected);
            prop_assert!(verify_access_token(&app_key, &secret, &time, &nonce, &expected));
        }

        #[test]
        fn nonce_check_never_panics(nonce in ".{0,100}") {
            let valid = is_valid_nonce(&nonce);
            prop_assert_eq!(valid, nonce.len() == 80 && nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
