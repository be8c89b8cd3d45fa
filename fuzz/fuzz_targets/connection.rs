//! `Connection` (and `TE`) parsing in the outbound header hygiene (tollgate-headers).
//!
//! Input: `name: value` header lines (repeats make several fields).
//!
//! Oracles, for `HeaderHygieneLayer::hop_by_hop()` and the same with `te` kept (gRPC):
//! - no hop-by-hop header survives, nor any header that a `Connection` field names (an
//!   independent tokenizer: split at `,`, ASCII whitespace trimmed, empty elements ignored,
//!   names compared case-insensitively);
//! - every other header survives with all its values, in order;
//! - a kept `TE` goes out as exactly `te: trailers` when one of its values lists the
//!   `trailers` coding (parameters and case ignored), and is removed otherwise;
//! - the report names exactly the removed headers.
#![no_main]

use std::collections::BTreeSet;

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{headers, lines};
use tollgate_headers::HeaderHygieneLayer;

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "proxy-authenticate",
    "proxy-authorization",
];

/// The lowercased names the `Connection` fields list.
fn nominated(h: &HeaderMap) -> BTreeSet<Vec<u8>> {
    let mut names = BTreeSet::new();
    for value in h.get_all("connection") {
        for token in value.as_bytes().split(|b| *b == b',') {
            let token = token.trim_ascii();
            if !token.is_empty() {
                names.insert(token.to_ascii_lowercase());
            }
        }
    }
    names
}

fn te_trailers(h: &HeaderMap) -> bool {
    h.get_all("te").iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|element| {
            let coding = element.split(|b| *b == b';').next().unwrap_or_default();
            coding.trim_ascii().eq_ignore_ascii_case(b"trailers")
        })
    })
}

fn check(layer: &HeaderHygieneLayer, keep_te: bool, before: &HeaderMap) {
    let mut after = before.clone();
    let report = layer.apply(&mut after, None);
    let nominated = nominated(before);
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for name in before.keys() {
        let hop =
            HOP_BY_HOP.contains(&name.as_str()) || nominated.contains(name.as_str().as_bytes());
        if keep_te && name == "te" {
            if te_trailers(before) {
                let values: Vec<_> = after.get_all("te").iter().collect();
                assert_eq!(
                    values,
                    ["trailers"],
                    "a kept TE with trailers is exactly `trailers`"
                );
            } else {
                assert!(
                    !after.contains_key("te"),
                    "a kept TE without trailers is removed"
                );
                removed.insert(name.to_string());
            }
        } else if hop {
            assert!(!after.contains_key(name), "{name} survived: {before:?}");
            removed.insert(name.to_string());
        } else {
            let was: Vec<_> = before.get_all(name).iter().collect();
            let now: Vec<_> = after.get_all(name).iter().collect();
            assert_eq!(was, now, "{name} was changed");
        }
    }
    assert!(
        after.keys().all(|name| before.contains_key(name)),
        "a header was added"
    );
    let reported: BTreeSet<String> = report.removed().iter().map(ToString::to_string).collect();
    assert_eq!(
        reported, removed,
        "the report names other headers than the removed ones"
    );
    assert!(report.added().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let before = headers(lines(data));
    check(&HeaderHygieneLayer::hop_by_hop(), false, &before);
    check(
        &HeaderHygieneLayer::hop_by_hop().keep(http::header::TE),
        true,
        &before,
    );
});
