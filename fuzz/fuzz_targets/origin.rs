//! `Origin`, `Referer`, `Sec-Fetch-Site` and the preflight headers through
//! `OriginAllowlistLayer`, and the allowlist grammar (`AllowedOrigin::parse`)
//! (tollgate-origin).
//!
//! Input lines: 1. an origin to list (also checked as configuration text), 2. `METHOD PATH`,
//! then `name: value` headers.
//!
//! Oracles:
//! - `AllowedOrigin::parse`: the canonical form parses to itself; `*` and `null` are refused.
//! - The layer's answer equals a reference model of the documented decision table, built here
//!   from the crate docs: status (200 from the inner service, 204 preflight, 403), refusal code
//!   (`origin_not_allowed`, `method_not_allowed`, `header_not_allowed`) and JSON body; the inner
//!   service runs exactly when the answer is 200 and the path is not bypassed.
//! - An origin is allowed only when it equals a listed origin byte for byte or fills a
//!   wildcard's `*` with one label of lowercase letters, digits and `-` (at most 63); the
//!   allowed answer echoes exactly that origin in `Access-Control-Allow-Origin`.
//! - Every answer but the bypassed path's carries `Vary: Origin`; no answer without an
//!   allowed `Origin` carries `Access-Control-Allow-Origin`.
#![no_main]

use std::cell::Cell;
use std::rc::Rc;

use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{
    assert_json_refusal, block_on, body_bytes, count, headers, lines, service_fn, text,
};
use tollgate_origin::{AllowedOrigin, OriginAllowlistLayer};
use tower_layer::Layer;
use tower_service::Service;

const FIXED: [&str; 4] = [
    "https://app.example.com",
    "https://*.example.com",
    "http://localhost:3000",
    "https://xn--bcher-kva.example:8443",
];
const METHODS: [&str; 2] = ["GET", "POST"];
const HEADERS: [&str; 2] = ["content-type", "x-request-id"];
const BYPASS: &str = "/healthz";

/// Whether `origin` matches the canonical `listed` text, by the documented rule.
fn reference_match(listed: &str, origin: &[u8]) -> bool {
    match listed.split_once('*') {
        None => origin == listed.as_bytes(),
        Some((prefix, suffix)) => {
            origin.len() > prefix.len() + suffix.len()
                && origin.starts_with(prefix.as_bytes())
                && origin.ends_with(suffix.as_bytes())
                && {
                    let label = &origin[prefix.len()..origin.len() - suffix.len()];
                    label.len() <= 63
                        && label
                            .iter()
                            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
                }
        }
    }
}

/// `scheme://authority` of a `Referer`, as sent; `None` without `://`, with an empty
/// authority or with user info.
fn reference_referer_origin(referer: &[u8]) -> Option<&[u8]> {
    let text = referer;
    let at = (0..text.len().saturating_sub(2)).find(|&i| &text[i..i + 3] == b"://")?;
    let start = at + 3;
    let end = text[start..]
        .iter()
        .position(|b| b"/?#".contains(b))
        .map_or(text.len(), |p| start + p);
    (end > start && !text[start..end].contains(&b'@')).then_some(&text[..end])
}

#[derive(Debug, PartialEq)]
enum Expect {
    Bypass,
    Inner(Option<Vec<u8>>),
    Preflight(Vec<u8>),
    Refuse(&'static str),
}

struct Config {
    same_site: bool,
    server_to_server: bool,
}

fn model(config: &Config, listed: &[String], method: &Method, path: &str, h: &HeaderMap) -> Expect {
    use Expect::*;
    if path == BYPASS {
        return Bypass;
    }
    let matches = |origin: &[u8]| listed.iter().any(|l| reference_match(l, origin));
    match count(h, "origin") {
        0 => {}
        1 => {
            let origin = h["origin"].as_bytes();
            if origin.is_empty() || origin == b"null" || origin.contains(&b',') || !matches(origin)
            {
                return Refuse("origin_not_allowed");
            }
            if method == Method::OPTIONS && count(h, "access-control-request-method") > 0 {
                if count(h, "access-control-request-method") > 1 {
                    return Refuse("method_not_allowed");
                }
                let asked = h["access-control-request-method"].as_bytes();
                if !METHODS.iter().any(|m| m.as_bytes() == asked) {
                    return Refuse("method_not_allowed");
                }
                for value in h.get_all("access-control-request-headers") {
                    for name in value.as_bytes().split(|b| *b == b',') {
                        let name = name.trim_ascii();
                        if !name.is_empty()
                            && !HEADERS
                                .iter()
                                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
                        {
                            return Refuse("header_not_allowed");
                        }
                    }
                }
                return Preflight(origin.to_vec());
            }
            return Inner(Some(origin.to_vec()));
        }
        _ => return Refuse("origin_not_allowed"),
    }
    let site = match count(h, "sec-fetch-site") {
        0 => None,
        1 => Some(h["sec-fetch-site"].as_bytes()),
        _ => return Refuse("origin_not_allowed"),
    };
    match site {
        None | Some(b"same-origin" | b"none") => {}
        Some(b"same-site") if config.same_site => {}
        Some(_) => return Refuse("origin_not_allowed"),
    }
    match count(h, "referer") {
        0 if site.is_some() || config.server_to_server => Inner(None),
        0 => Refuse("origin_not_allowed"),
        1 => match reference_referer_origin(h["referer"].as_bytes()) {
            Some(origin) if matches(origin) => Inner(None),
            _ => Refuse("origin_not_allowed"),
        },
        _ => Refuse("origin_not_allowed"),
    }
}

fn run(config: &Config, extra: Option<&str>, method: &Method, uri: &Uri, h: &HeaderMap) {
    let mut builder = OriginAllowlistLayer::builder()
        .allow_origins(FIXED)
        .allow_http_origins(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(HEADERS)
        .allow_same_site_without_origin(config.same_site)
        .allow_server_to_server(config.server_to_server)
        .bypass_path(BYPASS);
    if let Some(extra) = extra {
        builder = builder.allow_origin(extra);
    }
    let Ok(layer) = builder.build() else {
        return;
    };
    let listed: Vec<String> = layer
        .allowed_origins()
        .iter()
        .map(|o| o.as_str().to_owned())
        .collect();
    let expect = model(config, &listed, method, uri.path(), h);

    let called = Rc::new(Cell::new(false));
    let seen = called.clone();
    let mut service = layer.layer(service_fn(move |_request: Request<()>| {
        seen.set(true);
        Response::new("inner".to_owned())
    }));
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = h.clone();
    let response = block_on(service.call(request)).unwrap_or_else(|never| match never {});
    let (parts, body) = body_bytes(response);
    let acao = parts
        .headers
        .get("access-control-allow-origin")
        .map(|v| v.as_bytes().to_vec());
    let vary_origin = parts.headers.get_all("vary").iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"origin"))
    });
    let context = format!("{expect:?} for {method} {uri} {h:?}");
    match expect {
        Expect::Bypass => {
            assert_eq!(parts.status, StatusCode::OK, "{context}");
            assert!(called.get(), "{context}");
        }
        Expect::Inner(origin) => {
            assert_eq!(parts.status, StatusCode::OK, "{context}");
            assert!(called.get(), "{context}");
            assert_eq!(&body[..], b"inner", "{context}");
            assert_eq!(acao, origin, "{context}");
            assert!(vary_origin, "{context}");
        }
        Expect::Preflight(origin) => {
            assert_eq!(parts.status, StatusCode::NO_CONTENT, "{context}");
            assert!(!called.get(), "{context}");
            assert_eq!(acao, Some(origin), "{context}");
            assert!(vary_origin, "{context}");
        }
        Expect::Refuse(code) => {
            assert_eq!(parts.status, StatusCode::FORBIDDEN, "{context}");
            assert!(!called.get(), "{context}");
            assert_eq!(acao, None, "{context}");
            assert!(vary_origin, "{context}");
            assert_eq!(
                assert_json_refusal(
                    &body,
                    &[
                        "origin_not_allowed",
                        "method_not_allowed",
                        "header_not_allowed"
                    ]
                ),
                code,
                "{context}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let extra = text(lines.first().copied().unwrap_or_default());
    for allow_http in [false, true] {
        if let Ok(parsed) = AllowedOrigin::parse(&extra, allow_http) {
            assert_ne!(extra.trim(), "*");
            assert_ne!(extra.trim(), "null");
            let again = AllowedOrigin::parse(parsed.as_str(), allow_http).unwrap_or_else(|err| {
                panic!("canonical {:?} of {extra:?} fails: {err}", parsed.as_str())
            });
            assert_eq!(again.as_str(), parsed.as_str());
            assert_eq!(again.is_wildcard(), parsed.is_wildcard());
            assert_eq!(parsed.is_wildcard(), parsed.as_str().contains('*'));
        }
    }
    let request_line = text(lines.get(1).copied().unwrap_or_default());
    let (method, path) = request_line
        .split_once(' ')
        .unwrap_or((&request_line, "/api"));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let uri = path
        .parse::<Uri>()
        .ok()
        .filter(|u| u.path().starts_with('/'))
        .unwrap_or_else(|| Uri::from_static("/api"));
    let h = headers(lines.iter().skip(2).copied());
    let extra = (!extra.is_empty()).then_some(extra.as_str());
    for config in [
        Config {
            same_site: false,
            server_to_server: true,
        },
        Config {
            same_site: true,
            server_to_server: false,
        },
    ] {
        run(&config, extra, &method, &uri, &h);
    }
});
