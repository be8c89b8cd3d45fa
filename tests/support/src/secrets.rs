//! Every secret, key, token and passphrase the tests, examples and the demo use, in one list
//! ([`SECRETS`], [`BASIC_PAIRS`], plus the `secret` fields of the shared signing vectors), the
//! forms each may take in a log line ([`forms`]), and a [`Scanner`] that finds them in text.
//!
//! A hit names the secret and the form, never the value: the scanner's own output is safe to
//! print and to keep as a CI log.
//!
//! Forms scanned for each secret: the raw bytes, lowercase and uppercase hex, base64 standard
//! and URL-safe with and without padding, the `Debug` of its bytes as a list (`[100, 101, ..]`),
//! and its percent-encoding where that differs from the raw form; for a Standard Webhooks
//! secret (`whsec_<base64>`) the same forms of the decoded key; for a Basic-auth pair,
//! `base64(user:password)` in the standard and URL-safe alphabets. Forms shorter than
//! [`MIN_FORM_LEN`] characters are skipped, and secrets shorter than that are not listed:
//! tests use one-letter keys (`"k"`, `"t"`) that would match any text.
//!
//! [`trace_log`](crate::trace_log) writes a test binary's whole `tracing` output into a file
//! for the scanner; `secret-scan` (a binary of this crate) scans files and directories.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Forms shorter than this many bytes are not scanned (they would match unrelated text).
pub const MIN_FORM_LEN: usize = 8;

/// One test secret: a name to report and the value to look for.
#[derive(Clone, Copy)]
pub struct TestSecret {
    /// Where the secret comes from (`demo::ONEKEY_API_PASSPHRASE`), printed on a hit.
    pub name: &'static str,
    value: &'static str,
}

impl TestSecret {
    /// The secret's value (for tests that build layers with it).
    pub fn value(&self) -> &'static str {
        self.value
    }
}

impl fmt::Debug for TestSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const fn s(name: &'static str, value: &'static str) -> TestSecret {
    TestSecret { name, value }
}

/// The secrets of the demo, the examples and the tests (at least [`MIN_FORM_LEN`] bytes long
/// and not a plain word such as `"passphrase"`), by where they are defined.
///
/// Not listed: values that are public by design (Tranzila app keys such as
/// `pub_app_key_demo`, key ids), per-request values that are sent on the wire anyway
/// (signatures, nonces, Tranzila access tokens, which are HMACs of the request), and the
/// tokens the Transak mock draws at random (the dedicated scan test uses tokens it chose).
pub const SECRETS: &[TestSecret] = &[
    // The demo (examples/tollgate-demo/src/world.rs) and the examples' `--demo` values.
    s("demo::TRANSAK_API_KEY", "demo-partner-api-key"),
    s("demo::TRANSAK_API_SECRET", "demo-partner-api-secret"),
    s("demo::ROTATION_OLD_SECRET", "demo-rotation-secret-1"),
    s("demo::ROTATION_NEW_SECRET", "demo-rotation-secret-2"),
    s("demo::TRANZILA_SECRET", "demo-tranzila-secret"),
    s("demo::ONEKEY_API_KEY", "demo-onekey-api-key"),
    s("demo::ONEKEY_API_PASSPHRASE", "demo-onekey-api-passphrase"),
    s("demo::ONEKEY_API_SIGNATURE", "demo-onekey-api-signature"),
    s("demo::ONEKEY_SECRET", "demo-onekey-secret"),
    s("demo::WEBHOOK_OLD_SECRET", "demo-webhook-secret-2025"),
    s("demo::WEBHOOK_NEW_SECRET", "demo-webhook-secret-2026"),
    s(
        "demo::STANDARD_WEBHOOK_SECRET",
        "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=",
    ),
    s("examples/tranzila-client::DEMO_SECRET", "demo-secret"),
    s(
        "examples/key-rotation::OLD",
        "old-webhook-secret-0123456789",
    ),
    s(
        "examples/key-rotation::NEW",
        "new-webhook-secret-9876543210",
    ),
    s("examples/metrics-prometheus::SECRET", "metrics-test-secret"),
    s(
        "examples/metrics-prometheus::BODY_SECRET",
        "whsec-body-hmac-9f2c7d41e0",
    ),
    s(
        "examples/metrics-prometheus::OLD_SECRET",
        "sw-old-secret-5c1e0a77d3",
    ),
    s(
        "examples/metrics-prometheus::NEW_SECRET",
        "sw-new-secret-b84f2e9160",
    ),
    s("examples::sk_live_example", "sk_live_example"),
    // The cross-crate tests (tests/tests).
    s("tests/full_stack::API_KEY", "pk_full_stack_partner"),
    s(
        "tests/full_stack::SIGNING_SECRET",
        "whk_full_stack_signing_secret",
    ),
    s(
        "tests/full_stack::TRANZILA_SECRET",
        "private_secret_full_stack",
    ),
    s(
        "tests/seams_credentials::ACCESS_TOKEN",
        "access-token-Zp41-SECRET",
    ),
    s("tests/seams_credentials::API_KEY", "api-key-7Hq2-SECRET"),
    s(
        "tests/seams_credentials::REFRESHED",
        "refreshed-token-Ke88-SECRET",
    ),
    s(
        "tests/seams_credentials::SIGNING_KEY",
        "signing-key-Qa31-SECRET",
    ),
    s(
        "tests/seams_credentials::TRANZILA_SECRET",
        "tranzila-secret-Wm05-SECRET",
    ),
    s("tests/attack_review_4::SECRET_A", "secret-of-partner-a"),
    s("tests/attack_review_4::SECRET_B", "secret-of-partner-b"),
    s("tests/attack_review_4::KEY", "whsec_live_key"),
    s(
        "tests/attack_review_5::SECRET",
        "whk_attack_review_5_secret",
    ),
    s("tests/attack_review_8::API_KEY", "sk_attack8_api_key"),
    s(
        "tests::hmac-key-attack7",
        "hmac-key-attack7-0123456789abcdef",
    ),
    s("tests::ok_api_key_attack6", "ok_api_key_attack6"),
    s("tests::ok_api_key_attack7", "ok_api_key_attack7"),
    s("tests::ok_api_key_attack8", "ok_api_key_attack8"),
    s("tests::ok_passphrase_attack6", "ok_passphrase_attack6"),
    s("tests::ok_passphrase_attack7", "ok_passphrase_attack7"),
    s("tests::ok_passphrase_attack8", "ok_passphrase_attack8"),
    s("tests::ok_signature_attack6", "ok_signature_attack6"),
    s("tests::ok_signature_attack7", "ok_signature_attack7"),
    s("tests::ok_signature_attack8", "ok_signature_attack8"),
    s("tests::ok_signature_secret", "ok_signature_secret"),
    s("tests::ok_passphrase", "ok_passphrase"),
    s("tests::ok_api_key", "ok_api_key"),
    s("tests::partner-access-token", "partner-access-token"),
    s("tests::partner-api-key", "partner-api-key"),
    s("tests::transak-partner-api-key", "transak-partner-api-key"),
    s("tests::hunter2-very-secret", "hunter2-very-secret"),
    s("tests::backend-token", "backend-token"),
    s("tests::backend-key", "backend-key"),
    s("tests::onekey-secret", "onekey-secret"),
    s("tests::canonical-secret", "canonical-secret"),
    s("tests::webhook-secret", "webhook-secret"),
    s("tests::window-secret", "window-secret"),
    s("tests::sk_live_partner_key", "sk_live_partner_key"),
    s("tests::not-the-passphrase", "not-the-passphrase"),
    s("tests::real-secret", "real-secret"),
    s("tests::whsec_stripe", "whsec_stripe"),
    s("tests::sw-wrong-secret", "sw-wrong-secret"),
    s("tests::stale-tok-9f3a", "stale-tok-9f3a"),
    s("tests::tok-attack7", "tok-attack7"),
    s("tests::tok_attack6", "tok_attack6"),
    s("tests::tz-secret", "tz-secret"),
    s("tests::sig_attack8", "sig_attack8"),
    s("readme::API_KEY", "readme-test-api-key"),
    // The crates' own tests.
    s("tollgate-headers::API_KEY", "pk_live_5ecr3t-partner-key"),
    s("tollgate-headers::FIRST", "tok-SECRET-first-0f3a9c"),
    s("tollgate-headers::SECOND", "tok-SECRET-second-77b1e2"),
    s("tollgate-reqwest::API_KEY", "sk_test_reqwest_key"),
    s("tollgate-signature::hostile", "hostile-test-secret"),
    s(
        "tollgate-signature::whsec_super",
        "whsec_c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA==",
    ),
    s(
        "tollgate-signature::whsec_secret3",
        "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    ),
    s("tollgate-tranzila::full_stack_app", "private_secret_demo"),
    s("benches::SECRET", "onekey-api-signature-secret"),
    // The secrets of the dedicated scan test (tests/tests/secret_scan.rs).
    s("secret_scan::API_KEY", "scan-api-key-6Fw2-SECRET"),
    s("secret_scan::API_PASSPHRASE", "scan-passphrase-Rr7u-SECRET"),
    s(
        "secret_scan::SIGNATURE_SECRET",
        "scan-signature-Lp3k-SECRET",
    ),
    s("secret_scan::WEBHOOK_OLD", "scan-webhook-old-Ty5e-SECRET"),
    s("secret_scan::WEBHOOK_NEW", "scan-webhook-new-Bq1z-SECRET"),
    s(
        "secret_scan::STANDARD_WEBHOOK",
        "whsec_c2Nhbi1zdGFuZGFyZC13ZWJob29rLVNFQ1JFVA==",
    ),
    s("secret_scan::TRANZILA_SECRET", "scan-tranzila-Mm8d-SECRET"),
    s("secret_scan::ACCESS_TOKEN", "scan-access-token-Hj2w-SECRET"),
    s(
        "secret_scan::REFRESHED_TOKEN",
        "scan-refreshed-token-Zc9q-SECRET",
    ),
    s(
        "secret_scan::PARTNER_SECRET",
        "scan-partner-secret-Vn4x-SECRET",
    ),
    s("secret_scan::PLANTED", "scan-planted-Qq0o-SECRET"),
];

/// A user and password sent together as HTTP Basic auth (`base64(user:password)`).
#[derive(Clone, Copy)]
pub struct BasicPair {
    /// What the pair is, printed on a hit.
    pub name: &'static str,
    user: &'static str,
    password: &'static str,
}

impl fmt::Debug for BasicPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicPair")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const fn basic(name: &'static str, user: &'static str, password: &'static str) -> BasicPair {
    BasicPair {
        name,
        user,
        password,
    }
}

/// The Basic-auth pairs (OneKey's `API Key:API Passphrase`) of the demo and the tests.
pub const BASIC_PAIRS: &[BasicPair] = &[
    basic(
        "demo::ONEKEY_API_KEY:ONEKEY_API_PASSPHRASE",
        "demo-onekey-api-key",
        "demo-onekey-api-passphrase",
    ),
    basic(
        "tests::ok_api_key:ok_passphrase",
        "ok_api_key",
        "ok_passphrase",
    ),
    basic(
        "tests::attack6 key:passphrase",
        "ok_api_key_attack6",
        "ok_passphrase_attack6",
    ),
    basic(
        "tests::attack7 key:passphrase",
        "ok_api_key_attack7",
        "ok_passphrase_attack7",
    ),
    basic(
        "tests::attack8 key:passphrase",
        "ok_api_key_attack8",
        "ok_passphrase_attack8",
    ),
    basic(
        "secret_scan::API_KEY:API_PASSPHRASE",
        "scan-api-key-6Fw2-SECRET",
        "scan-passphrase-Rr7u-SECRET",
    ),
];

/// One form of one secret to look for. `Debug` names it, never shows the bytes.
#[derive(Clone)]
pub struct Needle {
    /// The secret's name.
    pub secret: String,
    /// The form (`raw`, `hex`, `HEX`, `base64`, `base64url-nopad`, ...).
    pub form: &'static str,
    bytes: Vec<u8>,
}

impl Needle {
    /// The bytes looked for (for tests that plant them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needle")
            .field("secret", &self.secret)
            .field("form", &self.form)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every form of `bytes` to scan for, named `name` (forms shorter than [`MIN_FORM_LEN`] and
/// duplicates left out).
pub fn forms(name: &str, bytes: &[u8]) -> Vec<Needle> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let candidates: Vec<(&'static str, Vec<u8>)> = vec![
        ("raw", bytes.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_ascii_uppercase().into_bytes()),
        ("base64", STANDARD.encode(bytes).into_bytes()),
        ("base64-nopad", STANDARD_NO_PAD.encode(bytes).into_bytes()),
        ("base64url", URL_SAFE.encode(bytes).into_bytes()),
        (
            "base64url-nopad",
            URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
        ),
        ("byte-list", format!("{bytes:?}").into_bytes()),
        ("percent-encoded", percent_encode(bytes).into_bytes()),
    ];
    let mut candidates = candidates;
    candidates.extend(embedded_base64(bytes));
    let mut out: Vec<Needle> = Vec::new();
    for (form, form_bytes) in candidates {
        if form_bytes.len() < MIN_FORM_LEN || out.iter().any(|n| n.bytes == form_bytes) {
            continue;
        }
        out.push(Needle {
            secret: name.to_owned(),
            form,
            bytes: form_bytes,
        });
    }
    out
}

/// The base64 characters that encode `bytes` wherever they sit inside a longer encoded
/// text (a Basic-auth pair with another user, a base64 JSON body, gRPC `-bin` metadata):
/// base64 works on 3-byte groups, so the secret's own characters depend on its offset modulo 3.
/// For each offset, the characters that also carry bits of the bytes before or after are cut
/// off; what is left appears in any encoding of a text holding the secret at that offset.
fn embedded_base64(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    const FORMS: [[&str; 3]; 2] = [
        [
            "base64, inside a longer text (offset 0 mod 3)",
            "base64, inside a longer text (offset 1 mod 3)",
            "base64, inside a longer text (offset 2 mod 3)",
        ],
        [
            "base64url, inside a longer text (offset 0 mod 3)",
            "base64url, inside a longer text (offset 1 mod 3)",
            "base64url, inside a longer text (offset 2 mod 3)",
        ],
    ];
    let mut out = Vec::new();
    for (alphabet, forms) in [STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().zip(FORMS) {
        for (offset, form) in forms.iter().enumerate() {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = alphabet.encode(&shifted).into_bytes();
            // Characters wholly or partly from the prefix: 0, 2 or 3 of them.
            let head = [0, 2, 3][offset];
            // The last character is partial (it also carries the next byte's bits) unless the
            // shifted text ends on a 3-byte group.
            let tail = usize::from(shifted.len() % 3 != 0);
            if encoded.len() > head + tail {
                out.push((*form, encoded[head..encoded.len() - tail].to_vec()));
            }
        }
    }
    out
}

/// The forms of a secret given as text: [`forms`] of its bytes, and for a Standard Webhooks
/// secret (`whsec_<base64>`) also the forms of the decoded key.
pub fn text_forms(name: &str, value: &str) -> Vec<Needle> {
    let mut out = forms(name, value.as_bytes());
    if let Some(key) = value
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
    {
        out.extend(forms(&format!("{name} (decoded key)"), &key));
    }
    out
}

/// The forms of a Basic-auth pair: `base64(user:password)`, standard and URL-safe.
pub fn basic_forms(pair: &BasicPair) -> Vec<Needle> {
    let joined = format!("{}:{}", pair.user, pair.password);
    let mut out: Vec<Needle> = Vec::new();
    for (form, encoded) in [
        ("basic-auth base64", STANDARD.encode(&joined)),
        ("basic-auth base64-nopad", STANDARD_NO_PAD.encode(&joined)),
        ("basic-auth base64url", URL_SAFE.encode(&joined)),
    ] {
        if out.iter().any(|n| n.bytes == encoded.as_bytes()) {
            continue;
        }
        out.push(Needle {
            secret: pair.name.to_owned(),
            form,
            bytes: encoded.into_bytes(),
        });
    }
    out
}

/// The `secret` fields of the shared signing vectors, named `vectors::<id>`, or none when the
/// file is not beside the repository.
pub fn vector_secrets() -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, id: &str, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                let id = map.get("id").and_then(|v| v.as_str()).unwrap_or(id);
                if let Some(secret) = map.get("secret").and_then(|v| v.as_str()) {
                    out.push((format!("vectors::{id}"), secret.to_owned()));
                }
                for value in map.values() {
                    walk(value, id, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, id, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(vectors) = crate::signing_vectors("secret scan") {
        walk(&vectors, "?", &mut out);
    }
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// Every needle: [`SECRETS`], [`BASIC_PAIRS`] and [`vector_secrets`], in all their forms.
pub fn all_needles() -> Vec<Needle> {
    let mut out = Vec::new();
    for secret in SECRETS {
        out.extend(text_forms(secret.name, secret.value));
    }
    for pair in BASIC_PAIRS {
        out.extend(basic_forms(pair));
    }
    for (name, value) in vector_secrets() {
        if value.len() >= MIN_FORM_LEN {
            out.extend(text_forms(&name, &value));
        }
    }
    out
}

/// A needle found in a text: the 1-based line, the secret's name and the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// 1-based line number.
    pub line: usize,
    /// The secret's name.
    pub secret: String,
    /// The form it was found in.
    pub form: &'static str,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} ({})", self.line, self.secret, self.form)
    }
}

/// Finds many needles in one pass over a text: every position is looked up by its first
/// [`MIN_FORM_LEN`] bytes, so the cost grows with the text, not with the number of needles.
pub struct Scanner {
    needles: Vec<Needle>,
    first_two: Vec<bool>,
    by_prefix: HashMap<[u8; MIN_FORM_LEN], Vec<usize>>,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("needles", &self.needles.len())
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// A scanner for `needles` (each at least [`MIN_FORM_LEN`] bytes; shorter ones are
    /// dropped).
    pub fn new(needles: Vec<Needle>) -> Self {
        let needles: Vec<Needle> = needles
            .into_iter()
            .filter(|n| n.bytes.len() >= MIN_FORM_LEN)
            .collect();
        let mut first_two = vec![false; 1 << 16];
        let mut by_prefix: HashMap<[u8; MIN_FORM_LEN], Vec<usize>> = HashMap::new();
        for (index, needle) in needles.iter().enumerate() {
            let mut prefix = [0u8; MIN_FORM_LEN];
            prefix.copy_from_slice(&needle.bytes[..MIN_FORM_LEN]);
            first_two[(usize::from(prefix[0]) << 8) | usize::from(prefix[1])] = true;
            by_prefix.entry(prefix).or_default().push(index);
        }
        Self {
            needles,
            first_two,
            by_prefix,
        }
    }

    /// A scanner for [`all_needles`].
    pub fn for_test_secrets() -> Self {
        Self::new(all_needles())
    }

    /// How many needles (secret × form) it looks for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Whether it looks for nothing.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The needles found in one line (each needle once).
    fn scan_line(&self, line: &[u8], number: usize, hits: &mut Vec<Hit>) {
        if line.len() < MIN_FORM_LEN {
            return;
        }
        let mut found: Vec<usize> = Vec::new();
        for at in 0..=line.len() - MIN_FORM_LEN {
            if !self.first_two[(usize::from(line[at]) << 8) | usize::from(line[at + 1])] {
                continue;
            }
            let mut prefix = [0u8; MIN_FORM_LEN];
            prefix.copy_from_slice(&line[at..at + MIN_FORM_LEN]);
            let Some(candidates) = self.by_prefix.get(&prefix) else {
                continue;
            };
            for &index in candidates {
                if !found.contains(&index) && line[at..].starts_with(&self.needles[index].bytes) {
                    found.push(index);
                }
            }
        }
        for index in found {
            hits.push(Hit {
                line: number,
                secret: self.needles[index].secret.clone(),
                form: self.needles[index].form,
            });
        }
    }

    /// Every needle in `text`, line by line; returns the hits and the number of lines.
    pub fn scan(&self, text: &[u8]) -> (Vec<Hit>, usize) {
        let mut hits = Vec::new();
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        if text.is_empty() {
            return (hits, 0);
        }
        let mut lines = 0;
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            lines += 1;
            self.scan_line(line, index + 1, &mut hits);
        }
        (hits, lines)
    }

    /// [`scan`](Self::scan) of a file's bytes.
    pub fn scan_file(&self, path: &Path) -> io::Result<(Vec<Hit>, usize)> {
        Ok(self.scan(&std::fs::read(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planted() -> &'static TestSecret {
        SECRETS
            .iter()
            .find(|s| s.name == "secret_scan::PLANTED")
            .unwrap()
    }

    #[test]
    fn finds_every_form_and_names_it_without_the_value() {
        let scanner = Scanner::for_test_secrets();
        let secret = planted();
        for needle in forms(secret.name, secret.value.as_bytes()) {
            let text = format!(
                "first line\nINFO tollgate: value={} end\n",
                String::from_utf8(needle.bytes.clone()).unwrap()
            );
            let (hits, lines) = scanner.scan(text.as_bytes());
            assert_eq!(lines, 2);
            assert!(
                hits.contains(&Hit {
                    line: 2,
                    secret: "secret_scan::PLANTED".into(),
                    form: needle.form
                }),
                "{} not found: {hits:?}",
                needle.form
            );
            for hit in &hits {
                assert!(!hit.to_string().contains(secret.value));
            }
        }
    }

    #[test]
    fn finds_basic_auth_and_decoded_whsec_keys() {
        let scanner = Scanner::for_test_secrets();
        let basic = format!(
            "authorization: Basic {}",
            STANDARD.encode("demo-onekey-api-key:demo-onekey-api-passphrase")
        );
        let (hits, _) = scanner.scan(basic.as_bytes());
        assert!(
            hits.iter()
                .any(|h| h.secret == "demo::ONEKEY_API_KEY:ONEKEY_API_PASSPHRASE"),
            "{hits:?}"
        );
        let decoded = b"key=64656d6f2d7374616e646172642d776562686f6f6b732d736563726574";
        let (hits, _) = scanner.scan(decoded);
        assert_eq!(
            hits,
            vec![Hit {
                line: 1,
                secret: "demo::STANDARD_WEBHOOK_SECRET (decoded key)".into(),
                form: "hex"
            }]
        );
    }

    #[test]
    fn clean_text_and_short_forms_make_no_hit() {
        let scanner = Scanner::for_test_secrets();
        let (hits, lines) = scanner.scan(
            b"DEBUG tollgate::signature: refused code=\"signature_invalid\" key_id=\"onekey-1\"\n\
              secret=Secret([REDACTED]) passphrase signature\n",
        );
        assert_eq!((hits, lines), (vec![], 2));
        assert!(SECRETS.iter().all(|s| s.value.len() >= MIN_FORM_LEN));
        assert!(scanner.len() > 500, "{}", scanner.len());
    }

    #[test]
    fn debug_output_never_shows_a_value() {
        let secret = planted();
        let needle = &forms(secret.name, secret.value.as_bytes())[0];
        let scanner = Scanner::new(vec![needle.clone()]);
        for text in [
            format!("{secret:?}"),
            format!("{needle:?}"),
            format!("{scanner:?}"),
            format!("{:?}", BASIC_PAIRS[0]),
        ] {
            assert!(!text.contains(secret.value), "{text}");
            assert!(!text.contains("demo-onekey-api-passphrase"), "{text}");
        }
    }
}
