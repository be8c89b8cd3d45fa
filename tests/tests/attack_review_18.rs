//! Attack review 18: the `rightmost-trusted-range` walk writes its decision into a local
//! (`decision = decide_range(..)`) from inside the read of an `IpRangesHandle` (commit
//! bc5a086) instead of handing it back through `Ranges::trust_in`.
//!
//! The read runs the closure on the handle's in-place copy; when a store overlapped it, the
//! closure runs again on a version loaded whole and only that last run may count. The
//! attacks: a first-run decision (made from words of two versions) surviving the fallback,
//! a chain sharing one handle (pinned loads), the peer-less `any` check torn from the
//! walk's words, sets larger than the copy, IPv6 and IPv4-mapped peers, duplicated and
//! re-cased list lines. Every answer must be one that a single version of the ranges gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate::client_ip::{
    ClientIp, ClientIpSource, ExtractError, IpRanges, IpRangesHandle, ListHeader,
    ResolveClientIpLayer,
};

/// How long each stress test runs its reader.
const RUN: Duration = Duration::from_millis(1200);

fn join(items: impl IntoIterator<Item = String>) -> IpRanges {
    items
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
        .parse()
        .unwrap()
}

/// What one request made of it, as text to compare.
fn answer(result: Result<ClientIp, ExtractError>) -> String {
    match result {
        Ok(ip) => format!("{} {:?}", ip.ip(), ip.origin()),
        Err(err) => format!("error {err:?}"),
    }
}

/// Runs `read` on this thread while another thread stores `a` and `b` in turn into
/// `handle` with no pause, for [`RUN`]. Every answer must be one of `allowed`; returns the
/// answers seen (so a test can check that both versions were seen).
fn race(
    handle: &IpRangesHandle,
    a: &IpRanges,
    b: &IpRanges,
    allowed: &[String],
    read: impl Fn() -> String,
) -> BTreeSet<String> {
    let done = AtomicBool::new(false);
    let mut seen = BTreeSet::new();
    let (reads, stores) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut stores = 0u64;
            while !done.load(Ordering::Relaxed) {
                handle.store(if stores.is_multiple_of(2) {
                    b.clone()
                } else {
                    a.clone()
                });
                stores += 1;
            }
            stores
        });
        let started = Instant::now();
        let mut reads = 0u64;
        let mut wrong = None;
        while started.elapsed() < RUN {
            let got = read();
            reads += 1;
            if !allowed.contains(&got) {
                wrong = Some(got.clone());
            }
            seen.insert(got);
            if wrong.is_some() {
                break;
            }
        }
        done.store(true, Ordering::Relaxed);
        let stores = writer.join().unwrap();
        if let Some(wrong) = wrong {
            panic!(
                "answered {wrong:?}, which no single version gives (allowed {allowed:?}) \
                 after {reads} reads and {stores} stores"
            );
        }
        (reads, stores)
    });
    assert!(stores > 100, "only {stores} stores ran");
    assert!(reads > 1000, "only {reads} reads ran");
    seen
}

/// Hops in the long list.
const HOPS: usize = 24;

/// Hop `j` from the right (IPv4 when `v6` is false).
fn hop(j: usize, v6: bool) -> String {
    if v6 {
        format!("2001:db8:0:{:x}::{:x}", j + 1, j + 1)
    } else {
        format!("10.0.{}.{}", j + 1, j + 1)
    }
}

/// Two sets of the same length, the peer in the first slot of both: `short` trusts hops
/// 0 and 1 and pads with ranges no hop is in, `long` trusts hop `j` in slot `j + 1`. A read
/// torn while a store rewrites the slots trusts some hops of `long` and not others, so its
/// walk stops at a hop between 2 and `HOPS - 1`: no version answers that.
fn short_and_long(peer: &str, v6: bool) -> (IpRanges, IpRanges) {
    let pad = |j: usize| {
        if v6 {
            format!("2001:db8:ffff:{j:x}::/64")
        } else {
            format!("198.18.{j}.0/24")
        }
    };
    let short = join(
        std::iter::once(peer.to_owned())
            .chain((0..2).map(|j| hop(j, v6)))
            .chain((2..HOPS).map(pad)),
    );
    let long = join(std::iter::once(peer.to_owned()).chain((0..HOPS).map(|j| hop(j, v6))));
    (short, long)
}

/// `X-Forwarded-For: 203.0.113.9, hop 23, ..., hop 0`, split over two lines (the second
/// line holds the rightmost hops, as a second proxy would append it).
fn long_xff(headers: &mut HeaderMap, v6: bool) {
    let hops: Vec<String> = (0..HOPS).rev().map(|j| hop(j, v6)).collect();
    let (left, right) = hops.split_at(HOPS / 2);
    let first = format!("203.0.113.9, {}", left.join(", "));
    headers.append("x-forwarded-for", HeaderValue::from_str(&first).unwrap());
    headers.append(
        "x-forwarded-for",
        HeaderValue::from_str(&right.join(",")).unwrap(),
    );
}

fn stress_the_walk(peer: &str, peer_range: &str, v6: bool) {
    let peer: IpAddr = peer.parse().unwrap();
    let (short, long) = short_and_long(peer_range, v6);
    let mut headers = HeaderMap::new();
    long_xff(&mut headers, v6);
    let fixed = |set: &IpRanges| {
        answer(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, set.clone())
                .extract(&headers, Some(peer)),
        )
    };
    let allowed = [fixed(&short), fixed(&long)];
    assert_eq!(
        allowed,
        [
            format!(
                "{} ListHop {{ header: \"x-forwarded-for\", hop: 2 }}",
                hop(2, v6)
            ),
            "203.0.113.9 ListHop { header: \"x-forwarded-for\", hop: 24 }".to_owned(),
        ]
    );
    let handle = IpRangesHandle::new(short.clone());
    let source = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, handle.clone());
    let seen = race(&handle, &short, &long, &allowed, || {
        answer(source.extract(&headers, Some(peer)))
    });
    assert_eq!(seen.len(), 2, "both versions must be seen: {seen:?}");
}

/// The in-place walk over IPv4 words, from an IPv4-mapped peer, while a writer rewrites the
/// slots in a tight loop: a walk a store overlapped must never answer from its first run.
#[test]
fn an_overlapped_ipv4_walk_never_keeps_its_first_run_decision() {
    stress_the_walk("::ffff:10.255.0.1", "10.255.0.1", false);
}

/// The same over the IPv6 words (four per range, so a range itself can be torn).
#[test]
fn an_overlapped_ipv6_walk_never_keeps_its_first_run_decision() {
    stress_the_walk("2001:db8:aaaa::1", "2001:db8:aaaa::1/128", true);
}

/// No peer: only `any` trusts it, and then every hop is trusted (`AllTrusted`); any other
/// version answers `MissingPeer`. The `any` set puts its `/0` ranges after 20 others, so a
/// decision that read `any` from one version and the slots from the next (20 narrow ranges
/// where the `/0` was) would answer a hop: no version does.
#[test]
fn a_peerless_walk_never_reads_any_from_one_version_and_the_slots_from_another() {
    let narrow = |n: usize| (0..n).map(|i| format!("198.18.{i}.0/24"));
    let any = join(narrow(20).chain(["0.0.0.0/0".to_owned(), "::/0".to_owned()]));
    assert!(any.is_any());
    let not_any = join(narrow(22));
    let mut headers = HeaderMap::new();
    long_xff(&mut headers, false);
    let allowed = [
        "error AllTrusted { header: \"x-forwarded-for\" }".to_owned(),
        "error MissingPeer".to_owned(),
    ];
    for (set, expected) in [(&any, &allowed[0]), (&not_any, &allowed[1])] {
        let fixed = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, set.clone());
        assert_eq!(&answer(fixed.extract(&headers, None)), expected);
    }
    let handle = IpRangesHandle::new(not_any.clone());
    let source = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, handle.clone());
    let seen = race(&handle, &any, &not_any, &allowed, || {
        answer(source.extract(&headers, None))
    });
    assert_eq!(seen.len(), 2, "both versions must be seen: {seen:?}");
}

/// A chain sharing one handle: `header:x-real-ip` then the walk. With the peer untrusted
/// both pass (the peer answers); with it trusted the header answers. The walk answers only
/// if the two sources judged the peer with two versions (pinned loads forbid it).
#[test]
fn a_chain_sharing_a_handle_never_judges_its_sources_with_two_versions() {
    let peer: IpAddr = "10.255.0.1".parse().unwrap();
    let untrusted = join(["192.0.2.1".to_owned()]);
    let trusted = join(["10.255.0.0/24".to_owned()]);
    let mut headers = HeaderMap::new();
    headers.insert("x-real-ip", HeaderValue::from_static("198.51.100.7"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    let chain = |ranges: &dyn Fn() -> IpRangesHandle| {
        ClientIpSource::header(HeaderName::from_static("x-real-ip"), ranges()).or(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, ranges()),
        )
    };
    let allowed = [
        "10.255.0.1 Peer".to_owned(),
        "198.51.100.7 Header(\"x-real-ip\")".to_owned(),
    ];
    for (set, expected) in [(&untrusted, &allowed[0]), (&trusted, &allowed[1])] {
        let fixed = chain(&|| set.clone().into());
        assert_eq!(&answer(fixed.extract(&headers, Some(peer))), expected);
    }
    // The walk alone from the trusted peer answers what a mixed chain would.
    let walk = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, trusted.clone());
    assert_eq!(
        answer(walk.extract(&headers, Some(peer))),
        "203.0.113.9 ListHop { header: \"x-forwarded-for\", hop: 0 }"
    );
    let handle = IpRangesHandle::new(untrusted.clone());
    let source = chain(&|| handle.clone());
    let seen = race(&handle, &untrusted, &trusted, &allowed, || {
        answer(source.extract(&headers, Some(peer)))
    });
    assert_eq!(seen.len(), 2, "both versions must be seen: {seen:?}");
}

/// A set that fits the copy and one larger than it (read whole through the per-thread
/// cache), stored in turn: the walk answers with one of the two, never a mix, and never the
/// words the copy kept from the last set that fitted (they are not rewritten when a set
/// does not fit).
#[test]
fn a_walk_racing_stores_between_a_set_in_the_copy_and_one_past_it_answers_one_of_them() {
    let peer: IpAddr = "10.255.0.1".parse().unwrap();
    let (short, long) = short_and_long("10.255.0.1", false);
    // 85 IPv4 ranges, more than the copy holds (sized for the first, 25-range set: 50),
    // trusting hops 0 and 1 only, as `short` does.
    let huge = join(
        (0..82)
            .map(|i| format!("198.19.{i}.0/24"))
            .chain(std::iter::once("10.255.0.1".to_owned()))
            .chain((0..2).map(|j| hop(j, false))),
    );
    let mut headers = HeaderMap::new();
    long_xff(&mut headers, false);
    let allowed = [
        format!(
            "{} ListHop {{ header: \"x-forwarded-for\", hop: 2 }}",
            hop(2, false)
        ),
        "203.0.113.9 ListHop { header: \"x-forwarded-for\", hop: 24 }".to_owned(),
    ];
    let handle = IpRangesHandle::new(short);
    let source = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, handle.clone());
    let seen = race(&handle, &long, &huge, &allowed, || {
        answer(source.extract(&headers, Some(peer)))
    });
    assert_eq!(seen.len(), 2, "both versions must be seen: {seen:?}");
    // After the race, each store is what the next walk answers with: the huge set's, not
    // the words `long` left in the copy.
    for _ in 0..3 {
        handle.store(long.clone());
        assert_eq!(answer(source.extract(&headers, Some(peer))), allowed[1]);
        handle.store(huge.clone());
        assert_eq!(answer(source.extract(&headers, Some(peer))), allowed[0]);
    }
}

/// A request of the differential test: the peer and the header lines (name as sent, value).
type Case = (Option<IpAddr>, Vec<(&'static str, &'static str)>);

/// The requests of the differential test.
fn requests() -> Vec<Case> {
    let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
    let xff = "X-Forwarded-For";
    let lines = vec![
        vec![(xff, "198.51.100.1, 10.0.0.2")],
        vec![
            (xff, "198.51.100.1"),
            ("x-FORWARDED-for", "::ffff:10.0.0.2"),
            ("X-FORWARDED-FOR", "10.0.0.3"),
        ],
        vec![(xff, "198.51.100.1, 2001:db8::2, [2001:db8::3]:443")],
        vec![(xff, "198.51.100.1, bogus, 10.0.0.2")],
        vec![(xff, "10.0.0.2, 10.0.0.3")],
        vec![(xff, "")],
        vec![],
        vec![
            ("Forwarded", "for=198.51.100.1;proto=https"),
            ("FORWARDED", "for=\"[2001:db8::2]:443\", for=10.0.0.2"),
        ],
        vec![("forwarded", "for=unknown, for=10.0.0.2")],
        vec![(
            "forwarded",
            "for=\"_hidden\";by=10.0.0.1, for=\"[::ffff:10.0.0.3]\"",
        )],
    ];
    let peers = [
        ip("10.0.0.1"),
        ip("::ffff:10.0.0.1"),
        ip("2001:db8::1"),
        ip("198.51.100.9"),
        ip("0.0.0.0"),
        ip("::ffff:0.0.0.0"),
        ip("::"),
        None,
    ];
    peers
        .iter()
        .flat_map(|&peer| lines.iter().map(move |lines| (peer, lines.clone())))
        .collect()
}

/// The range sets of the differential test.
fn sets() -> Vec<IpRanges> {
    let mut sets: Vec<IpRanges> = [
        "10.0.0.0/24",
        "::ffff:10.0.0.0/120, 2001:db8::/124",
        "10.0.0.1, 10.0.0.2, 2001:db8::1",
        "0.0.0.0/0, ::/0",
        "0.0.0.0/0",
        "::/0",
        "::ffff:0:0/96",
        "10.0.0.0/8, 2001:db8::/32, 198.51.100.0/24",
    ]
    .iter()
    .map(|text| text.parse().unwrap())
    .collect();
    sets.push(IpRanges::none());
    // Larger than the copy: read whole.
    sets.push(join(
        (0..70)
            .map(|i| format!("198.18.{i}.0/24"))
            .chain((0..40).map(|i| format!("2001:db8:f:{i:x}::/64")))
            .chain(["10.0.0.0/24".to_owned(), "2001:db8::/124".to_owned()]),
    ));
    sets
}

/// Every request, judged through a handle's copy (after a store of each set, into a handle
/// whose copy holds it or not), through fixed ranges, and through a chain sharing the handle
/// (pinned loads), answers the same: the decision written from inside the read is the one
/// returned, whatever the path.
#[test]
fn the_copy_the_fixed_ranges_and_a_pinned_chain_answer_every_request_alike() {
    let requests = requests();
    let sets = sets();
    let lists = [ListHeader::XForwardedFor, ListHeader::Forwarded];
    // A handle sized by a small first set (the large set does not fit it), and one sized
    // by the large set.
    let small = IpRangesHandle::new(IpRanges::none());
    let large = IpRangesHandle::new(sets.last().unwrap().clone());
    let mut checked = 0usize;
    let mut answers = BTreeSet::new();
    for set in &sets {
        small.store(set.clone());
        large.store(set.clone());
        for list in lists {
            let fixed = ClientIpSource::rightmost_trusted_range(list, set.clone());
            let live = |handle: &IpRangesHandle| {
                [
                    ClientIpSource::rightmost_trusted_range(list, handle.clone()),
                    // A chain of the walk twice passes or fails as the walk alone does.
                    ClientIpSource::rightmost_trusted_range(list, handle.clone()).or(
                        ClientIpSource::rightmost_trusted_range(list, handle.clone()),
                    ),
                ]
            };
            let sources: Vec<ClientIpSource> =
                live(&small).into_iter().chain(live(&large)).collect();
            for (peer, lines) in &requests {
                let mut headers = HeaderMap::new();
                for (name, value) in lines {
                    headers.append(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(value).unwrap(),
                    );
                }
                let expected = answer(fixed.extract(&headers, *peer));
                for (i, source) in sources.iter().enumerate() {
                    // Twice: the first read may fill the thread's cache, the second hits it.
                    for _ in 0..2 {
                        assert_eq!(
                            answer(source.extract(&headers, *peer)),
                            expected,
                            "set {set}, {list}, source {i}, peer {peer:?}, lines {lines:?}"
                        );
                        checked += 1;
                    }
                }
                answers.insert(expected);
            }
        }
    }
    assert_eq!(checked, sets.len() * 2 * requests.len() * 4 * 2);
    // The requests reach every outcome: hops, the peer, and each error.
    for needle in [
        "ListHop",
        "Peer",
        "MissingPeer",
        "AllTrusted",
        "InvalidHop",
        "MissingHeader",
    ] {
        assert!(
            answers.iter().any(|answer| answer.contains(needle)),
            "no request answered {needle}: {answers:?}"
        );
    }
}

/// Over a real socket: `ResolveClientIpLayer` with the walk on a handle, fed duplicated and
/// re-cased `X-Forwarded-For` lines written raw on the wire, from the loopback peer. Each
/// store is seen by the next request, as the fixed ranges of that version answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_recased_lines_over_a_socket_answer_as_the_stored_version() {
    let handle = IpRangesHandle::new(IpRanges::none());
    let app = Router::new()
        .route(
            "/ip",
            get(|ip: ClientIp| async move { ip.ip().to_string() }),
        )
        .layer(ResolveClientIpLayer::new(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, handle.clone()),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let get_ip = || async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /ip HTTP/1.1\r\nHost: test\r\n\
                  X-Forwarded-For: 198.51.100.1, 203.0.113.4\r\n\
                  x-FORWARDED-for: ::ffff:10.0.0.2\r\n\
                  X-FORWARDED-FOR: 2001:db8::2,10.0.0.3\r\n\
                  Connection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().to_owned();
        (status, body.to_owned())
    };
    // Loopback untrusted: the peer is the client.
    assert_eq!(get_ip().await, ("200".to_owned(), "127.0.0.1".to_owned()));
    let cases = [
        ("127.0.0.1", "10.0.0.3"),
        ("127.0.0.1, 10.0.0.3", "2001:db8::2"),
        (
            "::ffff:127.0.0.1, 10.0.0.0/24, 2001:db8::/64",
            "203.0.113.4",
        ),
        (
            "127.0.0.0/8, 10.0.0.0/8, 2001:db8::/32, 203.0.113.0/24",
            "198.51.100.1",
        ),
        ("127.0.0.1, 10.0.0.0/8, 2001:db8::/32", "203.0.113.4"),
    ];
    for (set, client) in cases {
        handle.store(set.parse().unwrap());
        assert_eq!(
            get_ip().await,
            ("200".to_owned(), client.to_owned()),
            "set {set}"
        );
    }
    // Every hop trusted: no client IP, a 400.
    handle.store(IpRanges::any());
    assert_eq!(get_ip().await.0, "400");
}
