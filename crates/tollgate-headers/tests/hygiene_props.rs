//! Property tests: any header map through the hygiene layer. Nothing panics; afterwards no
//! hop-by-hop, `Connection`-nominated or denylisted header remains (unless kept), the
//! allowlist holds, and every header recorded in `InjectedHeaders` survives unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use proptest::prelude::*;
// The preset's lists, from the crate itself (`tests/server_to_server_table.rs` checks them
// against the documented table); what they remove is checked here independently.
use tollgate_headers::__private::{
    HOP_BY_HOP, SERVER_TO_SERVER as DENIED, SERVER_TO_SERVER_PREFIXES as DENIED_PREFIXES,
};
use tollgate_headers::{HeaderHygieneLayer, InjectedHeaders};
use tower::{Layer, ServiceExt, service_fn};

const INJECTABLE: [&str; 3] = ["x-api-key", "access-token", "authorization"];

/// Header names: the interesting ones, in any case, and random tokens.
fn name() -> impl Strategy<Value = String> {
    let known: Vec<&'static str> = HOP_BY_HOP
        .iter()
        .chain(DENIED.iter())
        .chain(INJECTABLE.iter())
        .chain(
            [
                "content-type",
                "accept",
                "user-agent",
                "x-foo",
                "http2-settings",
            ]
            .iter(),
        )
        .copied()
        .collect();
    prop_oneof![
        3 => proptest::sample::select(known).prop_map(str::to_owned),
        1 => (
            proptest::sample::select(DENIED_PREFIXES.to_vec()),
            "[a-z0-9]{0,6}"
        )
            .prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
        2 => "[a-zA-Z][a-zA-Z0-9!#$%&'*+.^_`|~-]{0,10}",
    ]
}

/// Any bytes a header value may hold (visible ASCII, space, tab, obs-text).
fn value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            8 => 0x20u8..=0x7e,
            1 => Just(b'\t'),
            1 => 0x80u8..=0xff,
        ],
        0..24,
    )
}

/// A `Connection` value: names and junk separated by commas and odd whitespace.
fn connection_value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        (
            prop_oneof![
                3 => name().prop_map(String::into_bytes),
                1 => value(),
            ],
            proptest::sample::select(vec![",", ", ", " ,\t", ",,", "\t,", " , , "]),
        ),
        0..6,
    )
    .prop_map(|parts| {
        let mut out = Vec::new();
        for (token, separator) in parts {
            out.extend_from_slice(&token);
            out.extend_from_slice(separator.as_bytes());
        }
        out
    })
}

fn header_map() -> impl Strategy<Value = HeaderMap> {
    (
        proptest::collection::vec((name(), value()), 0..24),
        proptest::collection::vec(connection_value(), 0..3),
    )
        .prop_map(|(pairs, connections)| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) else {
                    continue;
                };
                headers.append(name, value);
            }
            for connection in connections {
                if let Ok(value) = HeaderValue::from_bytes(&connection) {
                    headers.append(header::CONNECTION, value);
                }
            }
            headers
        })
}

/// What the `Connection` fields name, read independently of the crate: split on commas,
/// trim spaces and tabs, lowercase, keep valid names.
fn nominated(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| {
            value
                .as_bytes()
                .split(|b| *b == b',')
                .filter_map(|token| {
                    let token = token
                        .iter()
                        .copied()
                        .skip_while(|b| *b == b' ' || *b == b'\t')
                        .collect::<Vec<_>>();
                    let end = token
                        .iter()
                        .rposition(|b| *b != b' ' && *b != b'\t')
                        .map_or(0, |i| i + 1);
                    HeaderName::from_bytes(&token[..end].to_ascii_lowercase()).ok()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Preset {
    ServerToServer,
    HopByHop,
    Only,
    GrpcKeepsTe,
}

fn hygiene(preset: Preset) -> HeaderHygieneLayer {
    match preset {
        Preset::ServerToServer => HeaderHygieneLayer::server_to_server()
            .substitute(header::USER_AGENT, HeaderValue::from_static("backend/1")),
        Preset::HopByHop => HeaderHygieneLayer::hop_by_hop(),
        Preset::Only => HeaderHygieneLayer::only([header::CONTENT_TYPE, header::ACCEPT])
            .substitute(
                header::ORIGIN,
                HeaderValue::from_static("https://shop.example"),
            ),
        Preset::GrpcKeepsTe => HeaderHygieneLayer::server_to_server().keep(header::TE),
    }
}

fn preset() -> impl Strategy<Value = Preset> {
    proptest::sample::select(vec![
        Preset::ServerToServer,
        Preset::HopByHop,
        Preset::Only,
        Preset::GrpcKeepsTe,
    ])
}

fn run(preset: Preset, input: HeaderMap, injected: &[bool]) -> (HeaderMap, HeaderMap) {
    let mut request = Request::new(());
    *request.headers_mut() = input;
    // What a secret layer outside hygiene would have done: insert and record.
    for (name, inject) in INJECTABLE.iter().zip(injected) {
        if *inject {
            let name = HeaderName::from_static(name);
            let mut value = HeaderValue::from_static("backend-secret");
            value.set_sensitive(true);
            request.headers_mut().insert(name.clone(), value);
            InjectedHeaders::record(request.extensions_mut(), name);
        }
    }
    let before = request.headers().clone();
    let service = hygiene(preset).layer(service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(request.headers().clone())
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let after = runtime.block_on(service.oneshot(request)).unwrap();
    (before, after)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hygiene_holds_on_any_header_map(
        preset in preset(),
        input in header_map(),
        injected in proptest::collection::vec(any::<bool>(), 3),
    ) {
        let (before, after) = run(preset, input, &injected);
        let injected: Vec<HeaderName> = INJECTABLE
            .iter()
            .zip(&injected)
            .filter(|(_, inject)| **inject)
            .map(|(name, _)| HeaderName::from_static(name))
            .collect();

        // Injected headers survive exactly.
        for name in &injected {
            let was: Vec<_> = before.get_all(name).iter().collect();
            let is: Vec<_> = after.get_all(name).iter().collect();
            prop_assert_eq!(&was, &is, "{}", name);
            prop_assert!(is.iter().all(|value| value.is_sensitive()));
        }

        // Every credential value that leaves is marked sensitive.
        for name in ["authorization", "proxy-authorization", "cookie", "x-api-key", "access-token"] {
            prop_assert!(after.get_all(name).iter().all(|value| value.is_sensitive()), "{}", name);
        }

        let nominated = nominated(&before);
        for name in after.keys() {
            if injected.contains(name) {
                continue;
            }
            let kept = match preset {
                Preset::GrpcKeepsTe => name == header::TE,
                Preset::Only => name == header::CONTENT_TYPE || name == header::ACCEPT,
                _ => false,
            };
            let substituted = match preset {
                Preset::ServerToServer => name == header::USER_AGENT,
                Preset::Only => name == header::ORIGIN,
                _ => false,
            };
            if kept || substituted {
                continue;
            }
            prop_assert!(!HOP_BY_HOP.contains(&name.as_str()), "hop-by-hop {} remains", name);
            prop_assert!(!nominated.contains(name), "nominated {} remains", name);
            match preset {
                Preset::ServerToServer | Preset::GrpcKeepsTe => {
                    prop_assert!(!DENIED.contains(&name.as_str()), "denied {} remains", name);
                    prop_assert!(
                        !DENIED_PREFIXES.iter().any(|p| name.as_str().starts_with(p)),
                        "prefixed {} remains", name
                    );
                }
                Preset::Only => prop_assert!(false, "{} is not on the allowlist", name),
                Preset::HopByHop => {}
            }
        }

        // Substitutes: one exact value; a kept TE: exactly `trailers`.
        match preset {
            Preset::ServerToServer => {
                let values: Vec<_> = after.get_all(header::USER_AGENT).iter().collect();
                prop_assert_eq!(values, ["backend/1"]);
            }
            Preset::Only => {
                let values: Vec<_> = after.get_all(header::ORIGIN).iter().collect();
                prop_assert_eq!(values, ["https://shop.example"]);
            }
            Preset::GrpcKeepsTe => {
                let values: Vec<_> = after.get_all(header::TE).iter().collect();
                prop_assert!(values.is_empty() || values == ["trailers"], "{:?}", values);
            }
            Preset::HopByHop => {
                // End-to-end headers nobody named pass untouched.
                for (name, value) in &before {
                    if !HOP_BY_HOP.contains(&name.as_str()) && !nominated.contains(name) {
                        prop_assert!(after.get_all(name).iter().any(|v| v == value));
                    }
                }
            }
        }
    }
}
