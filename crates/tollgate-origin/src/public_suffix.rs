//! The public-suffix check for wildcard patterns, over the full Public Suffix List (the `psl`
//! crate).
//!
//! `https://*.<base>` is refused when the names it matches belong to unrelated parties: when
//! `<base>` is a public suffix (`com`, `co.uk`, `github.io`, `replit.app`), every
//! `<label>.<base>` is a separately registered site; when `<base>` sits under a wildcard rule
//! of the list (`*.ck`, `*.run.app`), every `<label>.<base>` is itself a public suffix.
//!
//! The check asks the list for the registrable domain (eTLD+1) of a name one label below the
//! base: the wildcard is refused unless that registrable domain is the base or shorter, i.e.
//! unless everything the pattern matches belongs to one registrant. A name outside the list
//! falls under the list's default rule `*` (its last label is the public suffix), so a base of
//! one label (`localhost`, an unlisted top-level domain) is always refused.
//!
//! [`NOT_IN_THE_LIST`] and [`FAMILIES_NOT_IN_THE_LIST`] add shared-hosting, tunnel and
//! wildcard-DNS names that the list lacks: where anyone can get a name of their own, a
//! wildcard on them would admit every other customer's page.

/// The label put in place of the `*` to ask the list about the names a pattern matches. It is
/// not in any exception rule of the list (`!www.ck`, `!city.kawasaki.jp`), so it answers as
/// any ordinary label would.
const PROBE: &str = "tollgate-wildcard-probe";

/// Names under which unrelated parties get their own subdomains (or, for `amazonaws.com`,
/// whose direct subdomains such as `s3.amazonaws.com` serve every customer's content from one
/// origin), missing from the Public Suffix List as the `psl` crate embeds it. A wildcard on
/// exactly these is refused too.
const NOT_IN_THE_LIST: &[&str] = &[
    "000webhostapp.com",
    "amazonaws.com",
    "glitch.me",
    "gradio.live",
    "lhr.life",
    "loca.lt",
    "localtunnel.me",
    "neocities.org",
    // Wildcard DNS: `1-2-3-4.nip.io` resolves to 1.2.3.4, an attacker's own server.
    "nip.io",
    "railway.app",
    "serveo.net",
    "sslip.io",
    "stackblitz.io",
    "storage.googleapis.com",
];

/// Shared-hosting names whose customers get names one region or cluster label below them
/// (`<name>.eastus.cloudapp.azure.com`, `<name>.z13.web.core.windows.net`,
/// `<name>.use.devtunnels.ms`, `<workspace>.ws-eu01.gitpod.io`,
/// `<name>.preview.app.github.dev`): a wildcard on the name itself or on any name one label
/// below it is refused.
const FAMILIES_NOT_IN_THE_LIST: &[&str] = &[
    "app.github.dev",
    "cloudapp.azure.com",
    "devtunnels.ms",
    "gitpod.io",
    "web.core.windows.net",
];

/// Whether a `*.` pattern on `base` (canonical ASCII, lowercase, no trailing dot) would match
/// the sites of unrelated parties.
pub(crate) fn wildcard_spans_registrants(base: &str) -> bool {
    let probe = format!("{PROBE}.{base}");
    psl::domain(probe.as_bytes()).is_none_or(|domain| domain.as_bytes().len() == probe.len())
        || NOT_IN_THE_LIST.contains(&base)
        || FAMILIES_NOT_IN_THE_LIST.iter().any(|family| {
            base == *family
                || base
                    .strip_suffix(family)
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_labels_public_suffixes_and_wildcard_rules_are_refused() {
        for base in [
            "com",
            "uk",
            "localhost",
            "dev",
            "xn--p1ai",
            "app",
            "notatld",
        ] {
            assert!(wildcard_spans_registrants(base), "{base}");
        }
        for base in [
            "co.uk",
            "com.au",
            "github.io",
            "vercel.app",
            "replit.app",
            "anything.ck",
            "run.app",
            "s3.amazonaws.com",
            "web.core.windows.net",
            "herokuapp.com",
        ] {
            assert!(wildcard_spans_registrants(base), "{base}");
        }
        for base in [
            "eastus.cloudapp.azure.com",
            "z13.web.core.windows.net",
            "use.devtunnels.ms",
            "ws-eu01.gitpod.io",
            "preview.app.github.dev",
        ] {
            assert!(wildcard_spans_registrants(base), "{base}");
        }
        let regions: Vec<String> = FAMILIES_NOT_IN_THE_LIST
            .iter()
            .map(|family| format!("region.{family}"))
            .collect();
        for base in NOT_IN_THE_LIST
            .iter()
            .copied()
            .chain(regions.iter().map(String::as_str))
        {
            assert!(wildcard_spans_registrants(base), "{base}");
            // Listed because the Public Suffix List lacks them: drop an entry once it has it.
            let probe = format!("{PROBE}.{base}");
            assert_ne!(
                psl::domain(probe.as_bytes()).map(|d| d.as_bytes().len()),
                Some(probe.len()),
                "{base} is in the Public Suffix List now"
            );
        }
        for base in [
            "example.com",
            "example.co.uk",
            "me.github.io",
            "me.replit.app",
            "a.b.ck",
            "www.ck",
            "shop.dev",
            "bucket.s3.amazonaws.com",
            "me.blob.core.windows.net",
            "service.a.run.app",
            "mybucket.s3.amazonaws.com",
            "me.glitch.me",
            // Registrable since the list replaced its `*.bd` rule with named registries.
            "anything.bd",
        ] {
            assert!(!wildcard_spans_registrants(base), "{base}");
        }
    }
}
