//! [`Secret`]: key bytes that are wiped on drop and never printed.

use std::fmt;

use http::HeaderValue;
use zeroize::Zeroizing;

/// The text every `Debug` and `Display` of a [`Secret`] prints instead of the key.
pub const REDACTED: &str = "Secret([REDACTED])";

/// Key material: an API key, an HMAC secret, a partner access token.
///
/// The bytes are owned by the `Secret`, overwritten with zeroes when it is dropped, and
/// never printed: `Debug` and `Display` both print [`REDACTED`]. Read them with
/// [`Secret::expose_secret`] at the single place that needs them (computing a MAC, building a
/// header value).
///
/// # Example
///
/// ```
/// use tollgate_core::Secret;
///
/// let secret = Secret::from_string("cashout_secret_key");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose_secret(), b"cashout_secret_key");
///
/// let value = secret.to_header_value().unwrap();
/// assert!(value.is_sensitive());
/// ```
///
/// # Blank secrets
///
/// A secret that is empty, all zero bytes or only invisible characters ([`Secret::is_blank`]) keys MACs that anyone can
/// compute, and sends a credential anyone can guess. Every tollgate layer that takes a secret
/// refuses a blank one when it is built, with [`Secret::check_usable`]; [`Secret::from_env`]
/// refuses a blank variable. The constructors here accept any bytes (a `Secret` is also used
/// for values read back from a provider), so code that takes a secret from its own user
/// calls [`Secret::check_usable`] once, at configuration time.
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// A secret made of exactly these bytes (for keys that are binary, e.g. a base64-decoded
    /// Standard Webhooks key).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes.into()),
        }
    }

    /// A secret made of the UTF-8 bytes of this string (the usual form of an API secret).
    pub fn from_string(secret: impl Into<String>) -> Self {
        Self::from_bytes(secret.into().into_bytes())
    }

    /// Reads a secret from the environment variable `var`.
    ///
    /// Fails with an error that names the variable (never its value) when it is not set, is
    /// blank (empty or only whitespace, [`Secret::is_blank`]: `TRANZILA_SECRET=` or
    /// `TRANZILA_SECRET=" "` is refused like a missing variable, never read as a key), or is not
    /// valid Unicode.
    ///
    /// ```
    /// use tollgate_core::{Secret, SecretError};
    ///
    /// let err = Secret::from_env("TOLLGATE_DOC_SURELY_UNSET").unwrap_err();
    /// assert!(matches!(err, SecretError::Missing { .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "environment variable `TOLLGATE_DOC_SURELY_UNSET` is not set"
    /// );
    /// ```
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        Self::from_env_value(var, std::env::var_os(var))
    }

    /// The decision behind [`Secret::from_env`], apart from the process environment (which
    /// tests cannot change safely while other threads run).
    fn from_env_value(var: &str, value: Option<std::ffi::OsString>) -> Result<Self, SecretError> {
        let variable = || var.to_owned();
        let Some(value) = value else {
            return Err(SecretError::Missing {
                variable: variable(),
            });
        };
        match value.into_string() {
            Ok(value) => {
                let secret = Self::from_string(value);
                if secret.is_blank() {
                    return Err(SecretError::Empty {
                        variable: variable(),
                    });
                }
                Ok(secret)
            }
            Err(value) => {
                // Wipe what we read before dropping it.
                drop(Zeroizing::new(value.into_encoded_bytes()));
                Err(SecretError::NotUnicode {
                    variable: variable(),
                })
            }
        }
    }

    /// The key bytes. Keep the borrow short: do not copy them into a longer-lived buffer.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of key bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether the secret is *blank*: it has no bytes, its bytes are all zero, or they are
    /// UTF-8 text made only of invisible characters — whitespace (Unicode `White_Space`:
    /// space, tab, CR, LF, no-break space, ...), control characters (NUL included), and the
    /// zero-width and format characters a pasted or saved secret may carry (zero-width space,
    /// joiners, word joiner, soft hyphen, byte-order mark).
    ///
    /// This is tollgate's one rule for secrets that must not be used: a MAC keyed with a blank
    /// secret is one anyone can compute, and a blank API key is one anyone can send. All-zero
    /// bytes are blank because HMAC pads a short key with zero bytes: `""`, `"\0"` and 32 zero
    /// bytes are the same HMAC key. Other binary key bytes are never blank.
    ///
    /// ```
    /// use tollgate_core::Secret;
    ///
    /// assert!(Secret::from_string("").is_blank());
    /// assert!(Secret::from_string(" \t\r\n").is_blank());
    /// assert!(Secret::from_string("\u{feff}\u{200b}").is_blank());
    /// assert!(Secret::from_bytes(vec![0; 32]).is_blank());
    /// assert!(!Secret::from_string(" s3cr3t ").is_blank());
    /// assert!(!Secret::from_bytes(vec![0x20, 0xff]).is_blank());
    /// assert!(!Secret::from_bytes(vec![0, 0x80]).is_blank());
    /// ```
    pub fn is_blank(&self) -> bool {
        let invisible = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '\u{00ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}'
                )
        };
        self.bytes.iter().all(|&byte| byte == 0)
            || std::str::from_utf8(&self.bytes).is_ok_and(|text| text.chars().all(invisible))
    }

    /// Fails with [`SecretError::Blank`] when the secret [is blank](Secret::is_blank).
    ///
    /// `name` says what the secret is for, as the error should show it (a header name, an app
    /// key, a key id); it is copied into the error, the secret never is. Layers call this when
    /// they are built, so a blank secret is a configuration error, never a per-request one.
    ///
    /// ```
    /// use tollgate_core::{Secret, SecretError};
    ///
    /// assert!(Secret::from_string("s3cr3t").check_usable("`x-api-key`").is_ok());
    /// let err = Secret::from_string(" ").check_usable("`x-api-key`").unwrap_err();
    /// assert_eq!(err, SecretError::Blank { name: "`x-api-key`".into() });
    /// assert_eq!(err.to_string(), "the secret for `x-api-key` is empty, all zero bytes or only whitespace");
    /// ```
    pub fn check_usable(&self, name: &str) -> Result<(), SecretError> {
        if self.is_blank() {
            return Err(SecretError::Blank {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// A header value holding the secret, marked sensitive so that HTTP/2 sends it as a
    /// never-indexed field and `Debug` of the header map prints `Sensitive`.
    ///
    /// Fails when the secret holds bytes a header value cannot carry (control characters,
    /// `DEL`); the error does not contain the bytes. The returned value is an ordinary
    /// [`HeaderValue`] and is not wiped when dropped.
    pub fn to_header_value(&self) -> Result<HeaderValue, InvalidHeaderSecret> {
        let mut value = HeaderValue::from_bytes(&self.bytes).map_err(|_| InvalidHeaderSecret)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from_bytes(bytes)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self::from_string(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self::from_string(secret)
    }
}

/// Why a [`Secret`] could not be loaded or used. Names the source, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// The environment variable is not set.
    Missing {
        /// The variable's name.
        variable: String,
    },
    /// The environment variable is set but [blank](Secret::is_blank): empty or only
    /// whitespace.
    Empty {
        /// The variable's name.
        variable: String,
    },
    /// The environment variable is not valid Unicode.
    NotUnicode {
        /// The variable's name.
        variable: String,
    },
    /// The secret is [blank](Secret::is_blank): empty, all zero bytes or only invisible characters
    /// ([`Secret::check_usable`]).
    Blank {
        /// What the secret is for (a header name, an app key, a key id); never its value.
        name: String,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { variable } => {
                write!(f, "environment variable `{variable}` is not set")
            }
            Self::Empty { variable } => {
                write!(
                    f,
                    "environment variable `{variable}` is set but empty or only whitespace"
                )
            }
            Self::NotUnicode { variable } => {
                write!(f, "environment variable `{variable}` is not valid Unicode")
            }
            Self::Blank { name } => {
                write!(
                    f,
                    "the secret for {name} is empty, all zero bytes or only whitespace"
                )
            }
        }
    }
}

impl std::error::Error for SecretError {}

/// The secret holds bytes that a header value cannot carry. Carries no part of the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHeaderSecret;

impl fmt::Display for InvalidHeaderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the secret contains bytes that are not allowed in a header value")
    }
}

impl std::error::Error for InvalidHeaderSecret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::from_string("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        assert_eq!(format!("{secret:#?}"), "Secret([REDACTED])");
        assert_eq!(secret.to_string(), "Secret([REDACTED])");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret,
        }
        let holder = format!("{:?}", Holder { key: secret });
        assert!(!holder.contains("hunter2"), "{holder}");
    }

    #[test]
    fn constructors_keep_exact_bytes() {
        assert_eq!(
            Secret::from_bytes(vec![0, 255, 7]).expose_secret(),
            &[0, 255, 7]
        );
        assert_eq!(Secret::from_string("סוד").expose_secret(), "סוד".as_bytes());
        assert_eq!(Secret::from("abc").len(), 3);
        assert!(Secret::from_bytes(Vec::new()).is_empty());
    }

    #[test]
    fn env_errors_name_the_variable_never_the_value() {
        // Each test uses its own variable name: tests run in parallel threads.
        let missing = Secret::from_env("TOLLGATE_TEST_SECRET_MISSING_8d1f").unwrap_err();
        assert_eq!(
            missing,
            SecretError::Missing {
                variable: "TOLLGATE_TEST_SECRET_MISSING_8d1f".into()
            }
        );
        assert_eq!(
            missing.to_string(),
            "environment variable `TOLLGATE_TEST_SECRET_MISSING_8d1f` is not set"
        );

        let empty = Secret::from_env_value("TOLLGATE_KEY", Some("".into())).unwrap_err();
        assert_eq!(
            empty.to_string(),
            "environment variable `TOLLGATE_KEY` is set but empty or only whitespace"
        );

        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let raw = std::ffi::OsString::from_vec(vec![b's', 0xff, b'x']);
            let err = Secret::from_env_value("TOLLGATE_KEY", Some(raw)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "environment variable `TOLLGATE_KEY` is not valid Unicode"
            );
        }

        let ok = Secret::from_env_value("TOLLGATE_KEY", Some("s3cr3t".into())).unwrap();
        assert_eq!(ok.expose_secret(), b"s3cr3t");
        for err in [missing, empty] {
            assert!(!format!("{err:?}").contains("s3cr3t"));
        }
        // The real environment is read too.
        assert!(!Secret::from_env("PATH").unwrap().is_empty());
    }

    #[test]
    fn env_value_of_only_whitespace_is_refused_naming_the_variable() {
        for blank in ["", " ", "\t", "\n", " \r\n ", "\u{a0}"] {
            let err = Secret::from_env_value("TOLLGATE_KEY", Some(blank.into()))
                .err()
                .unwrap_or_else(|| panic!("{blank:?} was accepted as a secret"));
            assert_eq!(
                err,
                SecretError::Empty {
                    variable: "TOLLGATE_KEY".into()
                }
            );
        }
    }

    #[test]
    fn blank_is_empty_zero_or_only_invisible() {
        for blank in [
            "",
            " ",
            "\t",
            "\r\n",
            "\u{a0}\u{3000}",
            "\u{2028}",
            "\u{200b}",
            "\u{feff}",
            "\0",
            "\u{feff} \u{200d}",
        ] {
            let secret = Secret::from_string(blank);
            assert!(secret.is_blank(), "{blank:?}");
            let err = secret.check_usable("`x-api-key`").unwrap_err();
            assert_eq!(
                err,
                SecretError::Blank {
                    name: "`x-api-key`".into()
                }
            );
            assert_eq!(
                err.to_string(),
                "the secret for `x-api-key` is empty, all zero bytes or only whitespace"
            );
        }
        for usable in ["s", " s ", "\u{200b}s", "0", "\0s"] {
            let secret = Secret::from_string(usable);
            assert!(!secret.is_blank(), "{usable:?}");
            assert_eq!(secret.check_usable("k"), Ok(()));
        }
        // Binary keys: blank when empty or all zero (HMAC pads short keys with zeros, so 32
        // zero bytes are the empty key), never otherwise, even when most bytes are spaces.
        assert!(!Secret::from_bytes(vec![b' ', 0xff]).is_blank());
        assert!(Secret::from_bytes(vec![0]).is_blank());
        assert!(Secret::from_bytes(vec![0; 32]).is_blank());
        assert!(Secret::from_bytes(vec![0; 100]).is_blank());
        assert!(!Secret::from_bytes(vec![0, 0, 0x80]).is_blank());
        assert!(Secret::from_bytes(Vec::new()).is_blank());
    }

    #[test]
    fn header_value_is_sensitive_and_errors_hide_bytes() {
        let value = Secret::from_string("key-123").to_header_value().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.as_bytes(), b"key-123");
        assert_eq!(format!("{value:?}"), "Sensitive");

        let err = Secret::from_string("bad\nsecret")
            .to_header_value()
            .unwrap_err();
        assert!(!err.to_string().contains("secret\n"));
        assert!(!format!("{err:?}").contains("bad"));
    }
}
