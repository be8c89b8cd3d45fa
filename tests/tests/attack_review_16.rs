//! Attack review 16: `IpRangesHandle` read in place through a sequence lock (issue 17, the
//! "Mirror" of a handle's ranges in atomic words).
//!
//! Every test here is a regression test of an attack the code withstood: a decision made
//! from words of two versions, a request that starts after `store()` returned and still sees
//! the replaced set, a torn `any` flag for a peer-less request, a chain (pinned loads) judging
//! two hops with two versions, sets that outgrow the copy and shrink back into it.
//!
//! How the stress tests see a version: a cycle of [`K`] range sets whose answers to the same
//! request are pairwise distinct. A writer stores set `n % K` and then publishes `n`; a reader
//! reads the published number before (`p0`) and after (`p1`) its request. The request must
//! have been judged by exactly one of the versions `p0..=p1 + 1` (`p1 + 1` may be a store in
//! progress; anything older than `p0` was replaced by a completed `store`), so its answer
//! must be one of theirs. A torn read answers something no single version gives (checked
//! when the window is narrower than the cycle).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::client_ip::{
    ClientIp, ClientIpSource, IpAllowlistLayer, IpRanges, IpRangesHandle, ListHeader, PeerAddr,
    ResolveClientIpLayer,
};
use tower::{ServiceBuilder, ServiceExt};

/// Versions in the cycle.
const K: usize = 6;
/// Hops in the `X-Forwarded-For` list (right of the client).
const HOPS: usize = 12;
/// How long each stress test runs its readers.
const RUN: Duration = Duration::from_millis(1500);

/// Hop `j` counted from the right: IPv4, IPv6 and IPv4-mapped IPv6 in turn.
fn hop(j: usize) -> String {
    match j % 3 {
        0 => format!("10.0.0.{}", j + 1),
        1 => format!("2001:db8::{:x}", j + 1),
        _ => format!("::ffff:10.0.1.{}", j + 1),
    }
}

/// The range trusting hop `j` alone, spelled differently from the header where it can be
/// (an IPv4-mapped hop is trusted through its IPv4 range, and one IPv4 hop through a mapped
/// range), so the canonical forms are what match.
fn hop_range(j: usize) -> String {
    match j % 3 {
        0 if j.is_multiple_of(2) => format!("::ffff:10.0.0.{}/128", j + 1),
        0 => format!("10.0.0.{}/32", j + 1),
        1 => format!("2001:db8::{:x}/128", j + 1),
        _ => format!("10.0.1.{}/32", j + 1),
    }
}

/// `X-Forwarded-For: 203.0.113.9, hop 11, ..., hop 0`.
fn xff() -> HeaderValue {
    let mut list = vec!["203.0.113.9".to_owned()];
    list.extend((0..HOPS).rev().map(hop));
    HeaderValue::from_str(&list.join(", ")).unwrap()
}

fn join(items: impl IntoIterator<Item = String>) -> IpRanges {
    items
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
        .parse()
        .unwrap()
}

/// The cycle of trusted-proxy sets; `peer` is the range of the socket peer.
///
/// - 0: none (the peer is the client)
/// - 1: the peer and hops 0..3, small (read in place)
/// - 2: 40 IPv4 and 20 IPv6 fillers, the peer and hops 0..9: more than the copy holds (32
///   IPv4, 16 IPv6), read whole; the next store shrinks back into the copy
/// - 3: every address (`any`: the peer-less single-header source reads its header)
/// - 4: hops 5..0 in reverse order after 10 IPv6 fillers, the peer (other slots, other length)
/// - 5: `0.0.0.0/0` and hop 0 only: every IPv4 address but not `any`, and not hop 1 (IPv6)
fn versions(peer: &str) -> Vec<IpRanges> {
    let trusted = |n: usize| (0..n).map(hop_range);
    vec![
        IpRanges::none(),
        join(std::iter::once(peer.to_owned()).chain(trusted(3))),
        join(
            (0..40)
                .map(|i| format!("198.18.{i}.0/24"))
                .chain((0..20).map(|i| format!("2001:db8:f:{i:x}::/64")))
                .chain(std::iter::once(peer.to_owned()))
                .chain(trusted(9)),
        ),
        IpRanges::any(),
        join(
            (0..10)
                .map(|i| format!("2001:db8:f:{i:x}::/64"))
                .chain((0..6).rev().map(hop_range))
                .chain(std::iter::once(peer.to_owned())),
        ),
        join(["0.0.0.0/0".to_owned(), hop_range(0)]),
    ]
}

/// What one request made of it, as text to compare.
fn answer(result: Result<ClientIp, tollgate::client_ip::ExtractError>) -> String {
    match result {
        Ok(ip) => format!("{} {:?}", ip.ip(), ip.origin()),
        Err(err) => format!("error {err:?}"),
    }
}

/// The sources every stress reader asks, built over `ranges` (a live handle or fixed ranges).
fn sources(ranges: impl Fn() -> IpRangesHandle) -> Vec<ClientIpSource> {
    vec![
        // The walk read in place: the peer check and every hop with one version.
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, ranges()),
        // A chain: both sources pinned to one loaded version. The first answers only when
        // its single hop is untrusted (version 5), else the second walks `X-Forwarded-For`.
        ClientIpSource::rightmost_trusted_range(ListHeader::Forwarded, ranges()).or(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, ranges()),
        ),
        // The peer-less single-header source: trusted only when the flag `any` is set.
        ClientIpSource::header(HeaderName::from_static("x-real-ip"), ranges()),
        // The peer-less walk: `any` and the words in one decision. A torn read (`any` of
        // version 3 with another version's words) would answer a hop; every version answers
        // `MissingPeer` or `AllTrusted`.
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, ranges()),
    ]
}

fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", xff());
    headers.insert(
        "forwarded",
        HeaderValue::from_static("for=\"[2001:db8::2]\""),
    );
    headers.insert("x-real-ip", HeaderValue::from_static("198.51.100.200"));
    headers
}

/// The peers each source is asked with (the last two without a peer).
fn peers(peer: IpAddr) -> [Option<IpAddr>; 4] {
    [Some(peer), Some(peer), None, None]
}

/// `expected[version][source]`, from fixed ranges (no handle involved).
fn expected(peer: IpAddr, sets: &[IpRanges]) -> Vec<Vec<String>> {
    let headers = headers();
    sets.iter()
        .map(|set| {
            sources(|| set.clone().into())
                .iter()
                .zip(peers(peer))
                .map(|(source, peer)| answer(source.extract(&headers, peer)))
                .collect()
        })
        .collect()
}

/// Whether `seen` is the answer of one of the versions `p0..=p1 + 1`; `None` when the window
/// spans the whole cycle (nothing to check).
fn in_window(seen: &str, answers: impl Fn(usize) -> String, p0: u64, p1: u64) -> Option<bool> {
    let width = p1 + 2 - p0;
    if width >= K as u64 {
        return None;
    }
    Some((p0..=p1 + 1).any(|n| answers(usize::try_from(n).unwrap() % K) == seen))
}

/// The writer: stores version `n % K` then publishes `n`, until `done`. Returns the count.
fn write_cycle(
    handles: &[(&IpRangesHandle, &[IpRanges])],
    published: &AtomicU64,
    done: &AtomicBool,
) -> u64 {
    let mut n = 0u64;
    while !done.load(Ordering::Relaxed) {
        n += 1;
        let at = usize::try_from(n).unwrap() % K;
        for (handle, sets) in handles {
            handle.store(sets[at].clone());
        }
        published.store(n, Ordering::Release);
        // A breath between stores, so readers also see versions stay put (narrow windows).
        for _ in 0..200 {
            std::hint::spin_loop();
        }
    }
    n
}

const PEER: &str = "::ffff:10.255.0.1";
const PEER_RANGE: &str = "10.255.0.1/32";

/// Baseline: every version of the cycle, stored in turn into one handle (growing past the
/// copy's capacity and shrinking back into it, toggling `any`, IPv4, IPv6 and mapped hops),
/// answers each source exactly as the same ranges fixed at build time do; and the cycle's
/// answers are pairwise distinct for the walk, so the stress tests below can tell versions
/// apart.
#[test]
fn every_version_read_through_the_handle_answers_as_fixed_ranges() {
    let peer: IpAddr = PEER.parse().unwrap();
    let sets = versions(PEER_RANGE);
    let expected = expected(peer, &sets);
    for (a, first) in expected.iter().enumerate() {
        for second in &expected[a + 1..] {
            assert_ne!(first[0], second[0], "versions must answer the walk apart");
        }
    }
    let handle = IpRangesHandle::new(IpRanges::none());
    let live = sources(|| handle.clone());
    let headers = headers();
    for round in 0..3 {
        for (at, set) in sets.iter().enumerate().skip(usize::from(round == 0)) {
            handle.store(set.clone());
            for (i, (source, peer)) in live.iter().zip(peers(peer)).enumerate() {
                assert_eq!(
                    answer(source.extract(&headers, peer)),
                    expected[at][i],
                    "round {round}, version {at}, source {i}"
                );
            }
        }
    }
}

/// A seqlock race: four sources sharing one handle (the in-place walk, a pinned chain, a
/// peer-less single-header source reading the `any` flag, a peer-less walk reading `any`
/// and the words in one decision) and an IP allowlist on a second
/// handle, judged by two reader threads while a writer cycles both handles through sets of
/// other lengths, families and capacities. Every answer must come from one version no older
/// than the last completed store (never a mix of two, never the replaced set).
#[test]
fn decisions_under_a_store_loop_come_from_one_version_no_older_than_the_last_store() {
    let peer: IpAddr = PEER.parse().unwrap();
    let sets = versions(PEER_RANGE);
    let expected = expected(peer, &sets);
    // Allowlist versions: the client hop of the walk's answer is allowed in some only.
    let allow_sets: Vec<IpRanges> = vec![
        IpRanges::any(),
        join([hop_range(3), hop_range(6)]),
        IpRanges::none(),
        join(["0.0.0.0/0".to_owned(), hop_range(1)]),
        join([hop_range(9), "2001:db8::/32".to_owned()]),
        join(["::/0".to_owned()]),
    ];
    // The allowlist is asked about every hop of the header and the peer.
    let probes: Vec<IpAddr> = (0..HOPS)
        .map(|j| hop(j).parse().unwrap())
        .chain([peer])
        .collect();
    let allowed = |at: usize, probe: IpAddr| allow_sets[at].contains(probe);

    let proxies = IpRangesHandle::new(sets[0].clone());
    let allow = IpRangesHandle::new(allow_sets[0].clone());
    let live = sources(|| proxies.clone());
    let allowlist = ServiceBuilder::new()
        .layer(IpAllowlistLayer::with_handle(allow.clone()))
        .service(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let published = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    // Answers checked per source (the allowlist last).
    let checked: [AtomicUsize; 5] = Default::default();
    let headers = headers();
    let stores = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|reader| {
                let (live, headers, expected, probes) = (&live, &headers, &expected, &probes);
                let (published, checked, allowlist) = (&published, &checked, allowlist.clone());
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let started = Instant::now();
                    let mut i = 0usize;
                    while started.elapsed() < RUN {
                        i += 1;
                        let which = (i + reader) % (live.len() + 1);
                        let p0 = published.load(Ordering::Acquire);
                        let (seen, answers): (String, Box<dyn Fn(usize) -> String>) =
                            if which < live.len() {
                                let seen = answer(live[which].extract(headers, peers(peer)[which]));
                                (seen, Box::new(move |at| expected[at][which].clone()))
                            } else {
                                let probe = probes[i % probes.len()];
                                let mut request = Request::new(());
                                request
                                    .extensions_mut()
                                    .insert(PeerAddr::new(SocketAddr::new(probe, 443)));
                                let status = runtime
                                    .block_on(allowlist.clone().oneshot(request))
                                    .unwrap()
                                    .status();
                                (
                                    status.to_string(),
                                    Box::new(move |at| {
                                        if allowed(at, probe) {
                                            StatusCode::OK.to_string()
                                        } else {
                                            StatusCode::FORBIDDEN.to_string()
                                        }
                                    }),
                                )
                            };
                        let p1 = published.load(Ordering::Acquire);
                        match in_window(&seen, answers, p0, p1) {
                            Some(true) => {
                                checked[which].fetch_add(1, Ordering::Relaxed);
                            }
                            Some(false) => panic!(
                                "source {which} answered {seen:?}, which no version \
                                 {p0}..={} (mod {K}) gives",
                                p1 + 1
                            ),
                            None => {}
                        }
                    }
                })
            })
            .collect();
        let writer = scope.spawn(|| {
            write_cycle(
                &[(&proxies, &sets), (&allow, &allow_sets)],
                &published,
                &done,
            )
        });
        let results: Vec<_> = readers.into_iter().map(|reader| reader.join()).collect();
        done.store(true, Ordering::Relaxed);
        for result in results {
            if let Err(failure) = result {
                std::panic::resume_unwind(failure);
            }
        }
        writer.join().unwrap()
    });
    let checked = checked.map(AtomicUsize::into_inner);
    assert!(stores > 100, "only {stores} stores ran");
    assert!(
        checked.iter().all(|&count| count > 200),
        "too few answers were checked: {checked:?}"
    );
}

/// The stack the README recommends, over real sockets: `ResolveClientIpLayer` (rightmost
/// trusted range on a handle) then `IpAllowlistLayer` (on a second handle), while a writer
/// cycles both. A response must come from one version of each handle no older than the last
/// store completed before the request was sent: its status and client IP are those of such a
/// pair of versions (the two layers read their handles separately, so each has its window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recommended_stack_over_sockets_never_answers_with_a_replaced_or_torn_set() {
    let sets = versions("127.0.0.1");
    let allow_sets: Vec<IpRanges> = vec![
        join([hop_range(3), hop_range(6)]),
        IpRanges::any(),
        join([hop_range(9), "::ffff:127.0.0.1".to_owned()]),
        IpRanges::none(),
        join(["2001:db8::/32".to_owned(), hop_range(3)]),
        join(["0.0.0.0/0".to_owned()]),
    ];
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let headers = headers();
    let walk = |at: usize| {
        let source =
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, sets[at].clone());
        source.extract(&headers, Some(peer))
    };
    // (status, client IP when let through) for proxies version `a` and allowlist version `b`.
    let respond = |a: usize, b: usize| match walk(a) {
        Ok(ip) if allow_sets[b].contains(ip.ip()) => format!("200 {}", ip.ip()),
        Ok(_) => "403".to_owned(),
        Err(_) => "400".to_owned(),
    };

    let proxies = IpRangesHandle::new(sets[0].clone());
    let allow = IpRangesHandle::new(allow_sets[0].clone());
    let app = Router::new()
        .route(
            "/ip",
            get(|ip: ClientIp| async move { ip.ip().to_string() }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(ResolveClientIpLayer::new(
                    ClientIpSource::rightmost_trusted_range(
                        ListHeader::XForwardedFor,
                        proxies.clone(),
                    ),
                ))
                .layer(IpAllowlistLayer::with_handle(allow.clone())),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let published = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (published, done, sets, allow_sets) = (
            published.clone(),
            done.clone(),
            sets.clone(),
            allow_sets.clone(),
        );
        let (proxies, allow) = (proxies.clone(), allow.clone());
        std::thread::spawn(move || {
            write_cycle(
                &[(&proxies, &sets), (&allow, &allow_sets)],
                &published,
                &done,
            )
        })
    };
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let (mut sent, mut checked) = (0usize, 0usize);
    let mut seen_statuses = std::collections::BTreeSet::new();
    while started.elapsed() < RUN {
        let request = Request::get(format!("http://{addr}/ip"))
            .header("x-forwarded-for", xff())
            .body(Empty::new())
            .unwrap();
        let p0 = published.load(Ordering::Acquire);
        let response = client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let p1 = published.load(Ordering::Acquire);
        sent += 1;
        let seen = if status == StatusCode::OK {
            format!("200 {}", String::from_utf8_lossy(&body))
        } else {
            status.as_str().to_owned()
        };
        seen_statuses.insert(status.as_u16());
        if p1 + 2 - p0 < K as u64 {
            let versions = || (p0..=p1 + 1).map(|n| usize::try_from(n).unwrap() % K);
            let possible = versions().any(|a| versions().any(|b| respond(a, b) == seen));
            assert!(
                possible,
                "request {sent} got {seen:?}, which no pair of versions {p0}..={} gives",
                p1 + 1
            );
            checked += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    let stores = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert!(stores > 100, "only {stores} stores ran");
    assert!(
        checked > 100,
        "only {checked} of {sent} responses were checked"
    );
    assert_eq!(
        seen_statuses.into_iter().collect::<Vec<_>>(),
        [200, 400, 403],
        "the cycle should let some requests through, refuse some, and fail some"
    );
}

/// A set larger than the copy's minimum as the first one sizes the copy for it (twice its
/// size); a smaller set stored later leaves the larger set's words past its length in place.
/// Those leftovers must never be trusted or allowed: the walk, the peer check and the
/// allowlist read only the current length, and a read torn between the two lengths is thrown
/// away. Then the set grows again within the copy and back past it.
#[test]
fn leftover_words_of_a_larger_earlier_set_are_never_trusted_or_allowed() {
    let big = join(
        (0..100)
            .map(|i| format!("10.{i}.0.0/16"))
            .chain((0..40).map(|i| format!("2001:db8:{i:x}::/48"))),
    );
    let proxies = IpRangesHandle::new(big.clone());
    let allow = IpRangesHandle::new(big);
    let source =
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone());
    let allowlist = ServiceBuilder::new()
        .layer(IpAllowlistLayer::with_handle(allow.clone()))
        .service(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let status = |ip: &str| {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(PeerAddr::new(SocketAddr::new(ip.parse().unwrap(), 443)));
        runtime
            .block_on(allowlist.clone().oneshot(request))
            .unwrap()
            .status()
    };
    let walk = |xff: &str, peer: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        answer(source.extract(&headers, Some(peer.parse().unwrap())))
    };
    assert_eq!(
        walk("198.51.100.1, 10.99.0.1", "10.50.0.1"),
        walk_answer("198.51.100.1", 1)
    );
    assert_eq!(status("::ffff:10.99.1.1"), StatusCode::OK);

    for (small, inside) in [
        ("192.0.2.0/24", "192.0.2.9"),
        ("2001:db8:ffff::/48, 192.0.2.0/24", "2001:db8:ffff::9"),
        ("", ""),
    ] {
        let set = if small.is_empty() {
            IpRanges::none()
        } else {
            small.parse().unwrap()
        };
        proxies.store(set.clone());
        allow.store(set);
        // Leftovers at every position past the new length: never trusted, never allowed.
        for i in [0, 1, 2, 3, 50, 99] {
            let left = format!("10.{i}.0.1");
            assert_eq!(
                walk("198.51.100.1", &left),
                peer_answer(&left),
                "{small} / {left}"
            );
            assert_eq!(status(&left), StatusCode::FORBIDDEN, "{small} / {left}");
            assert_eq!(status(&format!("::ffff:{left}")), StatusCode::FORBIDDEN);
        }
        for i in [0, 1, 2, 39] {
            let left = format!("2001:db8:{i:x}::1");
            assert_eq!(
                walk("198.51.100.1", &left),
                peer_answer(&left),
                "{small} / {left}"
            );
            assert_eq!(status(&left), StatusCode::FORBIDDEN, "{small} / {left}");
        }
        if !inside.is_empty() {
            assert_eq!(walk("198.51.100.1", inside), walk_answer("198.51.100.1", 0));
            assert_eq!(status(inside), StatusCode::OK);
        }
    }
    // Growing again within the copy (150 of 200 IPv4 words), then past it (250), then back.
    for size in [150usize, 250, 3] {
        let set = join((0..size).map(|i| format!("172.{}.{}.0/24", 16 + i / 256, i % 256)));
        proxies.store(set.clone());
        allow.store(set);
        let last = format!("172.{}.{}.7", 16 + (size - 1) / 256, (size - 1) % 256);
        assert_eq!(
            walk("198.51.100.1", &last),
            walk_answer("198.51.100.1", 0),
            "{size}"
        );
        assert_eq!(status(&last), StatusCode::OK, "{size}");
        assert_eq!(status("10.0.0.1"), StatusCode::FORBIDDEN, "{size}");
        let past = format!("172.{}.{}.7", 16 + size / 256, size % 256);
        assert_eq!(walk("198.51.100.1", &past), peer_answer(&past), "{size}");
        assert_eq!(status(&past), StatusCode::FORBIDDEN, "{size}");
    }
}

/// The text [`answer`] gives for hop `hop` of `X-Forwarded-For` at `ip`.
fn walk_answer(ip: &str, hop: usize) -> String {
    let origin = tollgate::client_ip::IpOrigin::ListHop {
        header: HeaderName::from_static("x-forwarded-for"),
        hop,
    };
    answer(Ok(ClientIp::new(ip.parse().unwrap(), origin)))
}

/// The text [`answer`] gives for the peer `ip` as the client.
fn peer_answer(ip: &str) -> String {
    answer(Ok(ClientIp::new(
        ip.parse().unwrap(),
        tollgate::client_ip::IpOrigin::Peer,
    )))
}
