//! The public-suffix check for wildcard patterns.
//!
//! `https://*.<base>` is refused when `<base>` is a public suffix: a name under which
//! unrelated parties register their own domains (`com`, `co.uk`, `github.io`), because the
//! pattern would then allow every one of those parties.
//!
//! The full Public Suffix List is large and changes every week; this crate embeds the part
//! that matters for a wildcard allowlist and documents the rule it applies:
//!
//! 1. a base of **one label** is always a public suffix. This covers every top-level domain
//!    rule of the list (`com`, `uk`, `dev`, `app`, ...) and also `localhost`, without keeping
//!    the ~1,500 TLDs in the binary;
//! 2. a base of two labels whose top-level domain has a wildcard rule in the list
//!    (`*.ck`, `*.bd`, ...) is a public suffix;
//! 3. a base that is in [`MULTI_LABEL`]: the common second-level registries of country codes
//!    (`co.uk`, `com.au`, `co.jp`, ...) and the hosting platforms that hand out subdomains
//!    to their customers (`github.io`, `vercel.app`, `herokuapp.com`, ...).
//!
//! A wildcard on a private registry that is missing here is still refused by rule 1 when it
//! has one label; for a longer one, prefer listing exact origins.

/// Top-level domains whose every second-level name is a public suffix (`*.ck` style rules).
const WILDCARD_TLDS: &[&str] = &["bd", "bn", "ck", "er", "fk", "jm", "kh", "mm", "np", "pg"];

/// Multi-label public suffixes (ASCII, lowercase), ICANN section and common private ones.
pub(crate) const MULTI_LABEL: &[&str] = &[
    // United Kingdom.
    "ac.uk",
    "co.uk",
    "gov.uk",
    "ltd.uk",
    "me.uk",
    "net.uk",
    "nhs.uk",
    "org.uk",
    "plc.uk",
    "police.uk",
    "sch.uk",
    // Australia, New Zealand.
    "asn.au",
    "com.au",
    "edu.au",
    "gov.au",
    "id.au",
    "net.au",
    "org.au",
    "ac.nz",
    "co.nz",
    "geek.nz",
    "gen.nz",
    "govt.nz",
    "kiwi.nz",
    "net.nz",
    "org.nz",
    "school.nz",
    // Japan, Korea, China, Taiwan, Hong Kong, Singapore.
    "ac.jp",
    "ad.jp",
    "co.jp",
    "ed.jp",
    "go.jp",
    "gr.jp",
    "lg.jp",
    "ne.jp",
    "or.jp",
    "ac.kr",
    "co.kr",
    "go.kr",
    "ne.kr",
    "or.kr",
    "re.kr",
    "com.cn",
    "edu.cn",
    "gov.cn",
    "net.cn",
    "org.cn",
    "com.tw",
    "edu.tw",
    "gov.tw",
    "net.tw",
    "org.tw",
    "com.hk",
    "edu.hk",
    "gov.hk",
    "net.hk",
    "org.hk",
    "com.sg",
    "edu.sg",
    "gov.sg",
    "net.sg",
    "org.sg",
    // South and South-East Asia.
    "co.in",
    "firm.in",
    "gen.in",
    "ind.in",
    "net.in",
    "org.in",
    "co.id",
    "or.id",
    "web.id",
    "ac.th",
    "co.th",
    "in.th",
    "or.th",
    "com.my",
    "net.my",
    "org.my",
    "com.ph",
    "net.ph",
    "org.ph",
    "com.vn",
    "net.vn",
    "com.pk",
    "net.pk",
    "org.pk",
    // Middle East and Africa.
    "ac.il",
    "co.il",
    "gov.il",
    "muni.il",
    "net.il",
    "org.il",
    "com.tr",
    "net.tr",
    "org.tr",
    "com.sa",
    "net.sa",
    "org.sa",
    "com.eg",
    "org.eg",
    "ac.za",
    "co.za",
    "gov.za",
    "net.za",
    "org.za",
    "web.za",
    "co.ke",
    "or.ke",
    "com.ng",
    "org.ng",
    // The Americas.
    "com.br",
    "gov.br",
    "net.br",
    "org.br",
    "com.mx",
    "gob.mx",
    "net.mx",
    "org.mx",
    "com.ar",
    "gob.ar",
    "net.ar",
    "org.ar",
    "com.co",
    "net.co",
    "org.co",
    "com.pe",
    "org.pe",
    "com.uy",
    "com.ve",
    "com.ec",
    "co.cr",
    // Europe.
    "co.at",
    "or.at",
    "com.es",
    "nom.es",
    "org.es",
    "com.pl",
    "net.pl",
    "org.pl",
    "com.ua",
    "net.ua",
    "org.ua",
    "com.gr",
    "com.pt",
    "com.ru",
    "com.cy",
    "com.mt",
    // Hosting platforms that give customers subdomains (private section of the list).
    "amazonaws.com",
    "appspot.com",
    "azurestaticapps.net",
    "azurewebsites.net",
    "blogspot.com",
    "cloudfront.net",
    "deno.dev",
    "firebaseapp.com",
    "fly.dev",
    "github.io",
    "gitlab.io",
    "glitch.me",
    "herokuapp.com",
    "netlify.app",
    "ngrok-free.app",
    "ngrok.io",
    "onrender.com",
    "pages.dev",
    "r2.dev",
    "railway.app",
    "readthedocs.io",
    "repl.co",
    "surge.sh",
    "trycloudflare.com",
    "vercel.app",
    "web.app",
    "workers.dev",
    // Shared names more than two labels deep, and a few more platforms.
    "app.github.dev",
    "bitbucket.io",
    "blob.core.windows.net",
    "cloudfunctions.net",
    "codeberg.page",
    "elasticbeanstalk.com",
    "azureedge.net",
    "loca.lt",
    "ngrok-free.dev",
    "ngrok.app",
    "ngrok.dev",
    "replit.dev",
    "run.app",
    "s3.amazonaws.com",
    "web.core.windows.net",
];

/// Whether `base` (an ASCII, lowercase host without a trailing dot) is a public suffix by
/// the rules above.
pub(crate) fn is_public_suffix(base: &str) -> bool {
    let mut labels = base.rsplit('.');
    let (Some(tld), second) = (labels.next(), labels.next()) else {
        return true;
    };
    match (second, labels.next()) {
        (None, _) => true,
        (Some(_), None) if WILDCARD_TLDS.contains(&tld) => true,
        _ => MULTI_LABEL.contains(&base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_labels_wildcard_tlds_and_listed_names_are_public() {
        for base in ["com", "uk", "localhost", "dev", "xn--p1ai"] {
            assert!(is_public_suffix(base), "{base}");
        }
        for base in [
            "co.uk",
            "com.au",
            "github.io",
            "vercel.app",
            "anything.ck",
            "s3.amazonaws.com",
            "web.core.windows.net",
        ] {
            assert!(is_public_suffix(base), "{base}");
        }
        for base in [
            "example.com",
            "example.co.uk",
            "me.github.io",
            "a.b.ck",
            "shop.dev",
            "bucket.s3.amazonaws.com",
            "me.blob.core.windows.net",
        ] {
            assert!(!is_public_suffix(base), "{base}");
        }
    }

    #[test]
    fn list_is_lowercase_ascii_with_two_or_more_labels() {
        for name in MULTI_LABEL {
            assert!(name.contains('.'), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-'),
                "{name}"
            );
        }
    }
}
