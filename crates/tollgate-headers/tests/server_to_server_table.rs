//! The table "What passes and why" in the docs of `HeaderHygieneLayer::server_to_server` is
//! checked against the preset, both ways, so the docs cannot drift from the code:
//!
//! - every header the table says is removed is removed, and every one it says passes passes;
//! - every name and prefix in the preset's lists (and the hop-by-hop set) is in the table;
//! - of a corpus of common header names, every one the preset removes is in the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_headers::__private::{HOP_BY_HOP, SERVER_TO_SERVER, SERVER_TO_SERVER_PREFIXES};
use tollgate_headers::HeaderHygieneLayer;

/// The file whose docs hold the table.
const HYGIENE_SOURCE: &str = include_str!("../src/hygiene/outbound.rs");

/// The header names and prefixes (ending in `-`) the table lists, by verdict.
struct Table {
    removed: Vec<String>,
    passes: Vec<String>,
}

impl Table {
    fn read() -> Self {
        let start = HYGIENE_SOURCE
            .find("/// # What passes and why")
            .expect("the table's heading in hygiene/outbound.rs");
        let mut table = Self {
            removed: Vec::new(),
            passes: Vec::new(),
        };
        let rows = HYGIENE_SOURCE[start..]
            .lines()
            .map(str::trim_start)
            .skip_while(|line| !line.starts_with("/// |"))
            .take_while(|line| line.starts_with("/// |"))
            .skip(2); // header and `|---|` lines
        for row in rows {
            let cells: Vec<&str> = row.trim_start_matches("/// ").split('|').collect();
            let (headers, verdict) = (cells[1], cells[2].trim());
            let names = headers.split('`').skip(1).step_by(2).filter_map(|token| {
                // Only lowercase header names and prefixes (`sec-fetch-*`); not prose such
                // as `Connection`.
                let name = token.strip_suffix('*').unwrap_or(token);
                let valid = HeaderName::from_bytes(name.trim_end_matches('-').as_bytes())
                    .is_ok_and(|parsed| parsed.as_str() == name.trim_end_matches('-'));
                valid.then(|| name.to_owned())
            });
            if verdict.starts_with("removed") {
                table.removed.extend(names);
            } else if verdict.starts_with("passes") {
                table.passes.extend(names);
            } else {
                panic!("a row with neither `removed` nor `passes`: {row}");
            }
        }
        assert!(table.removed.len() > 20 && table.passes.len() > 10);
        table
    }

    /// Whether the table says `name` is removed (by name or by prefix).
    fn says_removed(&self, name: &str) -> bool {
        self.removed
            .iter()
            .any(|listed| name == listed || (listed.ends_with('-') && name.starts_with(listed)))
    }
}

/// A concrete header name for a listed name or prefix.
fn example(listed: &str) -> HeaderName {
    let name = if listed.ends_with('-') {
        format!("{listed}example")
    } else {
        listed.to_owned()
    };
    HeaderName::from_bytes(name.as_bytes()).unwrap()
}

/// Whether the preset removes a header `name` sent alone.
fn preset_removes(name: &HeaderName) -> bool {
    let mut headers = HeaderMap::new();
    headers.insert(name.clone(), HeaderValue::from_static("value"));
    HeaderHygieneLayer::server_to_server().apply(&mut headers, None);
    !headers.contains_key(name)
}

#[test]
fn the_table_says_what_the_preset_does() {
    let table = Table::read();
    for listed in &table.removed {
        assert!(
            preset_removes(&example(listed)),
            "{listed} is said to be removed"
        );
    }
    for listed in &table.passes {
        assert!(
            !preset_removes(&example(listed)),
            "{listed} is said to pass"
        );
    }
}

#[test]
fn every_name_of_the_preset_is_in_the_table() {
    let table = Table::read();
    let lists = [
        &SERVER_TO_SERVER[..],
        &SERVER_TO_SERVER_PREFIXES,
        &HOP_BY_HOP,
    ];
    assert!(lists.iter().all(|list| !list.is_empty()));
    for listed in lists.iter().copied().flatten() {
        assert!(
            table.removed.iter().any(|name| name == listed),
            "`{listed}` is removed by the preset but not in the table of server_to_server's docs"
        );
    }
}

#[test]
fn every_common_header_the_preset_removes_is_in_the_table() {
    let table = Table::read();
    let corpus = [
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "access-control-request-headers",
        "access-control-request-method",
        "access-token",
        "authorization",
        "baggage",
        "cache-control",
        "cf-connecting-ip",
        "cf-ipcountry",
        "connection",
        "content-encoding",
        "content-language",
        "content-length",
        "content-md5",
        "content-type",
        "cookie",
        "cookie2",
        "date",
        "device-memory",
        "dnt",
        "early-data",
        "expect",
        "fastly-client-ip",
        "forwarded",
        "from",
        "host",
        "idempotency-key",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "keep-alive",
        "max-forwards",
        "origin",
        "pragma",
        "priority",
        "proxy-authorization",
        "proxy-connection",
        "range",
        "referer",
        "save-data",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "sec-fetch-dest",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-fetch-user",
        "sec-gpc",
        "sec-purpose",
        "sec-websocket-key",
        "sec-websocket-version",
        "service-worker-navigation-preload",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "true-client-ip",
        "upgrade",
        "upgrade-insecure-requests",
        "user-agent",
        "via",
        "x-api-key",
        "x-client-ip",
        "x-correlation-id",
        "x-csrf-token",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "x-request-id",
        "x-requested-with",
        "x-user-ip",
    ];
    for name in corpus {
        let removed = preset_removes(&HeaderName::from_static(name));
        assert_eq!(
            removed,
            table.says_removed(name),
            "`{name}`: the preset {} it, the table says otherwise",
            if removed { "removes" } else { "forwards" }
        );
    }
}
