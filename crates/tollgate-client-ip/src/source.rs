//! [`ClientIpSource`]: where the client IP is read from, and the pure extraction.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::error::ExtractError;
use crate::handle::{Pinned, Ranges, Trusted};
use crate::parse::{ForwardedElements, canonical, forwarded_for, parse_node, parse_node_with_port};
use crate::{ClientIp, IpOrigin, IpRanges, IpRangesHandle};

/// A list header that proxies append to: `X-Forwarded-For` or RFC 7239 `Forwarded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1;proto=https` (RFC 7239): only `for` is read.
    Forwarded,
}

/// `x-forwarded-for`, built at compile time (`from_static` validates at run time otherwise).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The names again, as statics, so lookups borrow them instead of building one per request.
static X_FORWARDED_FOR_REF: HeaderName = X_FORWARDED_FOR;
static FORWARDED_REF: HeaderName = header::FORWARDED;

impl ListHeader {
    /// The header's name.
    pub fn name(self) -> HeaderName {
        match self {
            Self::XForwardedFor => X_FORWARDED_FOR,
            Self::Forwarded => header::FORWARDED,
        }
    }

    /// The header's name, borrowed (for `HeaderMap` lookups).
    fn name_ref(self) -> &'static HeaderName {
        match self {
            Self::XForwardedFor => &X_FORWARDED_FOR_REF,
            Self::Forwarded => &FORWARDED_REF,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("x-forwarded-for") {
            Some(Self::XForwardedFor)
        } else if text.eq_ignore_ascii_case("forwarded") {
            Some(Self::Forwarded)
        } else {
            None
        }
    }
}

impl fmt::Display for ListHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the client IP comes from, and which peers are trusted to say so.
///
/// Trust is decided on the socket peer, the one address a client cannot forge: a header is
/// only read when the peer is a trusted proxy for that source. When the peer is not trusted,
/// the peer itself is the client and the result is the peer's address
/// ([`IpOrigin::Peer`]), whatever the headers say.
///
/// Build one with the named constructors, combine them with [`or`](ClientIpSource::or), or
/// parse one from configuration ([`FromStr`](std::str::FromStr), grammar in the
/// [crate docs](crate#configuration-grammar)).
///
/// | constructor | reads | peer trusted when |
/// |---|---|---|
/// | [`remote_addr`](Self::remote_addr) | the socket peer | — |
/// | [`header`](Self::header) | one single-IP header (`cf-connecting-ip`, `x-real-ip`, ...) | in the given ranges |
/// | [`cloudflare`](Self::cloudflare) | `cf-connecting-ip` | in Cloudflare's ranges |
/// | [`rightmost_trusted_range`](Self::rightmost_trusted_range) | the rightmost hop outside the ranges | in the ranges |
/// | [`rightmost_trusted_count`](Self::rightmost_trusted_count) | the N-th hop from the right | always |
/// | [`rightmost_non_private`](Self::rightmost_non_private) | the rightmost public hop | private |
/// | [`leftmost_non_private`](Self::leftmost_non_private) | the leftmost public hop (**spoofable**) | private |
///
/// The output is always one canonical [`IpAddr`] (IPv4-mapped IPv6 folded to IPv4, no port,
/// no zone, never `0.0.0.0` or `::`), valid as an `x-user-ip` value.
///
/// ```
/// use http::HeaderMap;
/// use tollgate_client_ip::{ClientIpSource, IpRanges, ListHeader};
///
/// let source = ClientIpSource::rightmost_trusted_range(
///     ListHeader::XForwardedFor,
///     "10.0.0.0/8".parse::<IpRanges>().unwrap(),
/// );
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap());
///
/// // From our load balancer (10.0.0.1): the rightmost address it did not add itself.
/// let ip = source.extract(&headers, Some("10.0.0.1".parse().unwrap())).unwrap();
/// assert_eq!(ip.ip().to_string(), "203.0.113.9");
///
/// // Sent straight to us from the internet: the header is ignored.
/// let ip = source.extract(&headers, Some("198.51.100.4".parse().unwrap())).unwrap();
/// assert_eq!(ip.ip().to_string(), "198.51.100.4");
/// assert!(ip.is_from_peer());
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientIpSource {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    RemoteAddr,
    Header {
        name: HeaderName,
        proxies: Ranges,
        /// The value always ends in `:port` (`cloudfront-viewer-address`).
        with_port: bool,
    },
    RightmostTrustedRange {
        list: ListHeader,
        proxies: Ranges,
    },
    RightmostTrustedCount {
        list: ListHeader,
        count: NonZeroUsize,
    },
    RightmostNonPrivate {
        list: ListHeader,
        private: IpRanges,
    },
    LeftmostNonPrivate {
        list: ListHeader,
        private: IpRanges,
    },
    Chain(Vec<ClientIpSource>),
}

impl ClientIpSource {
    /// The socket peer's address. Right when clients connect directly, with no proxy in
    /// front.
    pub fn remote_addr() -> Self {
        Self {
            kind: Kind::RemoteAddr,
        }
    }

    /// A header holding exactly one IP (`cf-connecting-ip`, `true-client-ip`,
    /// `fastly-client-ip`, `x-real-ip`, any name), believed only when the peer is inside
    /// `trusted_proxies` (the proxies that set it); from any other peer the peer is the
    /// client.
    ///
    /// The value may carry a port (`192.0.2.1:5000`, `[2001:db8::1]:5000`), which is dropped.
    /// A list (`a, b`) or anything not an address is [`ExtractError::InvalidHeader`]. When the
    /// header appears on several lines, the last line (added by the closest proxy) is read.
    /// Pass [`IpRanges::any`] only when nothing but the proxy can reach the server.
    ///
    /// `cloudfront-viewer-address` is read as CloudFront writes it, `ip:port` with IPv6
    /// unbracketed (`2001:db8::17:46532`): the last `:digits` is the port.
    ///
    /// Do not name a list header (`x-forwarded-for`, `forwarded`) here: a client's own
    /// entries come first in it. The configuration grammar refuses them; use
    /// [`rightmost_trusted_range`](Self::rightmost_trusted_range).
    ///
    /// `trusted_proxies` is an [`IpRanges`] (fixed) or an [`IpRangesHandle`] to refresh the
    /// proxies' ranges while the service runs (loaded once per request).
    pub fn header(name: HeaderName, trusted_proxies: impl Into<IpRangesHandle>) -> Self {
        let with_port = name == "cloudfront-viewer-address";
        Self {
            kind: Kind::Header {
                name,
                proxies: Ranges::new(trusted_proxies.into()),
                with_port,
            },
        }
    }

    /// `cf-connecting-ip`, believed only from Cloudflare's published ranges
    /// ([`IpRanges::cloudflare`]). A `cf-connecting-ip` sent by a client that connects
    /// directly (bypassing Cloudflare) is ignored: the peer is the client.
    pub fn cloudflare() -> Self {
        Self::header(
            HeaderName::from_static("cf-connecting-ip"),
            IpRanges::cloudflare(),
        )
    }

    /// The rightmost address of `list` that is not inside `trusted_proxies`.
    ///
    /// The peer must be inside `trusted_proxies` (else it is the client). Then the header is
    /// walked from the right, skipping trusted proxies; the first address that is not trusted
    /// is the client. An invalid hop stops the walk ([`ExtractError::InvalidHop`]): it is
    /// never skipped, since anything left of it was written by someone untrusted. When every
    /// hop is trusted there is no client IP ([`ExtractError::AllTrusted`]).
    ///
    /// This is the recommended source behind proxies whose addresses you know.
    ///
    /// `trusted_proxies` is an [`IpRanges`] (fixed) or an [`IpRangesHandle`] to refresh the
    /// proxies' ranges while the service runs: each request loads it once, so the whole walk
    /// is judged against one version.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tollgate_client_ip::{ClientIpSource, IpRangesHandle, ListHeader};
    ///
    /// let proxies = IpRangesHandle::new("10.0.0.5".parse().unwrap());
    /// let source = ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone());
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    /// let from = |peer: &str| source.extract(&headers, Some(peer.parse().unwrap())).unwrap().ip().to_string();
    /// assert_eq!(from("10.0.0.6"), "10.0.0.6"); // not a trusted proxy: the peer is the client
    /// proxies.store("10.0.0.5, 10.0.0.6".parse().unwrap());
    /// assert_eq!(from("10.0.0.6"), "203.0.113.9");
    /// ```
    pub fn rightmost_trusted_range(
        list: ListHeader,
        trusted_proxies: impl Into<IpRangesHandle>,
    ) -> Self {
        Self {
            kind: Kind::RightmostTrustedRange {
                list,
                proxies: Ranges::new(trusted_proxies.into()),
            },
        }
    }

    /// The `count`-th address of `list` from the right, 1-based, where `count` is the number
    /// of reverse proxies in front of the server.
    ///
    /// **The off-by-one:** the proxy that connects to you does not appear in the header (it
    /// is the socket peer); it appends the address *it* saw. So with one proxy the client is
    /// the rightmost entry (`count = 1`), with two proxies the second from the right
    /// (`count = 2`), and so on. A list shorter than `count` is
    /// [`ExtractError::TooFewHops`]; an invalid hop at or right of position `count` stops the
    /// walk.
    ///
    /// The peer is always trusted, so use this only when every request passes through
    /// exactly `count` proxies and nothing else can reach the server.
    pub fn rightmost_trusted_count(list: ListHeader, count: NonZeroUsize) -> Self {
        Self {
            kind: Kind::RightmostTrustedCount { list, count },
        }
    }

    /// The rightmost public (non-private) address of `list`, for proxies that all sit in
    /// private networks ([`IpRanges::private`]). A public peer is the client itself.
    pub fn rightmost_non_private(list: ListHeader) -> Self {
        Self {
            kind: Kind::RightmostNonPrivate {
                list,
                private: IpRanges::private(),
            },
        }
    }

    /// The leftmost public (non-private) address of `list`.
    ///
    /// Since every entry it can return is client-controlled anyway, invalid hops are
    /// *skipped* here (the leftmost **valid** public address, as realclientip-go does); when
    /// there is none and some hop was invalid the error is [`ExtractError::InvalidHop`] for
    /// the leftmost invalid one.
    ///
    /// # Security considerations
    ///
    /// **Spoofable.** The leftmost entries are whatever the client put in the header before
    /// any proxy appended to it. Use this only for analytics or display, never for
    /// allowlists, rate limits, sessions pinned to an IP, or `x-user-ip`.
    pub fn leftmost_non_private(list: ListHeader) -> Self {
        Self {
            kind: Kind::LeftmostNonPrivate {
                list,
                private: IpRanges::private(),
            },
        }
    }

    /// A chain: this source, and `next` when this one yields no IP. Chains flatten, so
    /// `a.or(b).or(c)` tries `a`, `b`, `c` in order, and the first source that reads an IP
    /// from a header answers.
    ///
    /// A source that does not trust the peer *passes* inside a chain instead of answering
    /// with the peer, so `cloudflare or header:x-real-ip:10.0.0.5` reads `x-real-ip` from
    /// the nginx at `10.0.0.5` rather than stopping at "10.0.0.5 is not Cloudflare, so it is
    /// the client". Only when every source passes is the peer the client. A header is still
    /// read only from a peer that the source reading it trusts.
    /// [`remote_addr`](Self::remote_addr) trusts no proxy, so it passes too, wherever it
    /// stands: in a chain it adds nothing, and the peer is the client only when no other
    /// source trusts it.
    ///
    /// A source that trusts the peer but fails (header missing or invalid) does not make
    /// the peer the client: a later source that also trusts the peer may still read its
    /// own header, and otherwise the chain fails. The error is then
    /// [`ExtractError::MissingPeer`] if any source failed for lack of a peer (a deployment
    /// error wins), else the first source's error.
    ///
    /// # Security considerations
    ///
    /// `cloudflare or remote-addr` does not fall back to the peer when a request from
    /// Cloudflare carries no valid `cf-connecting-ip`: the peer is Cloudflare, not the
    /// client, so there is no client IP (400 from [`ResolveClientIpLayer`](crate::ResolveClientIpLayer)).
    /// realclientip-go's `ChainStrategy` answers the peer there.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tollgate_client_ip::{ClientIpSource, ExtractError};
    ///
    /// let source = ClientIpSource::cloudflare().or(ClientIpSource::remote_addr());
    /// assert_eq!(source.to_string(), "header:cf-connecting-ip:cloudflare or remote-addr");
    ///
    /// // From Cloudflare without `cf-connecting-ip`: no client IP, never Cloudflare's address.
    /// let err = source.extract(&HeaderMap::new(), Some("173.245.48.1".parse().unwrap()));
    /// assert!(matches!(err, Err(ExtractError::MissingHeader { .. })));
    /// // From anyone else: the peer.
    /// let ip = source.extract(&HeaderMap::new(), Some("198.51.100.4".parse().unwrap())).unwrap();
    /// assert!(ip.is_from_peer());
    /// ```
    #[must_use]
    pub fn or(self, next: ClientIpSource) -> Self {
        let mut chain = match self.kind {
            Kind::Chain(sources) => sources,
            kind => vec![Self { kind }],
        };
        match next.kind {
            Kind::Chain(sources) => chain.extend(sources),
            kind => chain.push(Self { kind }),
        }
        Self {
            kind: Kind::Chain(chain),
        }
    }

    /// The client IP for a request with these headers from this peer, or why there is none.
    ///
    /// `peer` is the socket peer's address (`None` when unknown: then only a single-header
    /// source trusting [`IpRanges::any`] can answer). The common path does not allocate: list
    /// headers are walked right to left over the header bytes.
    pub fn extract(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<ClientIp, ExtractError> {
        match &self.kind {
            // The count source answers the same alone as through `resolve`, without the
            // wrapping that chains need.
            Kind::RightmostTrustedCount { list, count } => {
                peer_ip(peer)?;
                rightmost_count(headers, *list, *count)
            }
            _ => match self.resolve(headers, peer, None)? {
                Resolved::Read(ip) | Resolved::Untrusted(ip) => Ok(ip),
            },
        }
    }

    /// `pinned`: the handle versions this request has loaded (a chain's sources share it).
    fn resolve(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        pinned: Option<&mut Pinned>,
    ) -> Result<Resolved, ExtractError> {
        match &self.kind {
            // `remote-addr` trusts no proxy: like a source that does not trust the peer, it
            // passes inside a chain, so the peer answers only when no source trusts it.
            Kind::RemoteAddr => peer_ip(peer)
                .map(|ip| Resolved::Untrusted(ClientIp::from_canonical(ip, IpOrigin::Peer))),
            Kind::Header {
                name,
                proxies,
                with_port,
            } => {
                // Only the peer's trust depends on the ranges: decided on one version, then
                // the header is read.
                if let Some(answer) = proxies
                    .trust_in(pinned, |proxies| peer_trust(peer, proxies))
                    .unless_trusted(peer)
                {
                    return answer;
                }
                let Some(value) = headers.get_all(name).iter().next_back() else {
                    return Err(ExtractError::MissingHeader {
                        header: name.clone(),
                    });
                };
                let parsed = if *with_port {
                    parse_node_with_port(value.as_bytes())
                } else {
                    parse_node(value.as_bytes())
                };
                match parsed {
                    Some(ip) => Ok(Resolved::Read(ClientIp::from_canonical(
                        ip,
                        IpOrigin::Header(name.clone()),
                    ))),
                    None => Err(ExtractError::InvalidHeader {
                        header: name.clone(),
                    }),
                }
            }
            // One version of the trusted proxies for the peer check and the whole walk. The
            // walk decides; the answer is made after the read.
            Kind::RightmostTrustedRange { list, proxies } => {
                // The decision is written where it is read, not handed back through the read
                // of a handle: copied out right after the walk wrote it, it cost more than the
                // walk's last steps (the copy's wide loads wait for the walk's narrow stores).
                // Every run of the closure overwrites the whole decision, so when a store
                // overlapped the first run, the second run's decision is the one read
                // (tests/tests/attack_review_18.rs races this).
                let mut decision = RangeDecision::Peer(PeerTrust::Missing);
                proxies.trust_in(pinned, |proxies| {
                    decision = decide_range(headers, *list, peer, proxies);
                });
                decision.resolve(*list, peer)
            }
            Kind::RightmostNonPrivate { list, private } => {
                let private = Trusted::Ranges(private);
                if let Some(client) = untrusted_peer(peer, private)? {
                    return Ok(Resolved::Untrusted(client));
                }
                rightmost_outside(headers, *list, private).map(Resolved::Read)
            }
            Kind::RightmostTrustedCount { list, count } => {
                peer_ip(peer)?;
                rightmost_count(headers, *list, *count).map(Resolved::Read)
            }
            Kind::LeftmostNonPrivate { list, private } => {
                let private = Trusted::Ranges(private);
                if let Some(client) = untrusted_peer(peer, private)? {
                    return Ok(Resolved::Untrusted(client));
                }
                leftmost_outside(headers, *list, private).map(Resolved::Read)
            }
            // A source that trusts the peer either reads a header (the answer) or fails; a
            // failure is kept, so the peer can no longer be the client: the chain answers a
            // later source's header or the first error, never the trusted peer.
            Kind::Chain(sources) => {
                let mut first: Option<ExtractError> = None;
                let mut missing_peer = false;
                let mut passed: Option<ClientIp> = None;
                // One version of each handle for the whole chain.
                let mut pinned = Pinned::default();
                for source in sources {
                    match source.resolve(headers, peer, Some(&mut pinned)) {
                        Ok(Resolved::Read(ip)) => return Ok(Resolved::Read(ip)),
                        Ok(Resolved::Untrusted(ip)) => {
                            passed.get_or_insert(ip);
                        }
                        Err(err) => {
                            missing_peer |= err.is_misconfiguration();
                            first.get_or_insert(err);
                        }
                    }
                }
                match (first, passed) {
                    (Some(_), _) if missing_peer => Err(ExtractError::MissingPeer),
                    (Some(err), _) => Err(err),
                    (None, Some(ip)) => Ok(Resolved::Untrusted(ip)),
                    (None, None) => Err(ExtractError::MissingPeer),
                }
            }
        }
    }

    /// [`extract`](Self::extract) without the reason.
    pub fn extract_opt(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<ClientIp> {
        self.extract(headers, peer).ok()
    }
}

/// What one source made of a request.
enum Resolved {
    /// The source trusts the peer and read the client IP from a header.
    Read(ClientIp),
    /// The source does not trust the peer (`remote-addr` trusts no one), so the peer is the
    /// client, unless another source of the chain trusts it.
    Untrusted(ClientIp),
}

fn rightmost_count(
    headers: &HeaderMap,
    list: ListHeader,
    count: NonZeroUsize,
) -> Result<ClientIp, ExtractError> {
    let want = count.get() - 1;
    if want == 0 && list == ListHeader::XForwardedFor {
        return rightmost_xff(headers);
    }
    let walked = walk_right(headers, list, |hop, ip| match ip {
        None => ControlFlow::Break(Err(hop)),
        Some(ip) if hop == want => ControlFlow::Break(Ok(ip)),
        Some(_) => ControlFlow::Continue(()),
    });
    match walked {
        Walk::Found(Ok(ip)) => Ok(ClientIp::from_canonical(
            ip,
            IpOrigin::ListHop {
                header: list.name(),
                hop: want,
            },
        )),
        Walk::Found(Err(hop)) => Err(ExtractError::InvalidHop {
            header: list.name(),
            hop,
        }),
        Walk::Missing => Err(ExtractError::MissingHeader {
            header: list.name(),
        }),
        Walk::Exhausted(found) => Err(ExtractError::TooFewHops {
            header: list.name(),
            needed: count.get(),
            found,
        }),
    }
}

/// `rightmost-trusted-count:x-forwarded-for:1`, the common case, without the general walk:
/// the rightmost element of the last line, as [`walk_right`] visits it first.
fn rightmost_xff(headers: &HeaderMap) -> Result<ClientIp, ExtractError> {
    let Some(line) = headers.get_all(&X_FORWARDED_FOR_REF).iter().next_back() else {
        return Err(ExtractError::MissingHeader {
            header: X_FORWARDED_FOR,
        });
    };
    let bytes = line.as_bytes();
    let last = match bytes.iter().rposition(|b| *b == b',') {
        Some(comma) => &bytes[comma + 1..],
        None => bytes,
    };
    match parse_node(last) {
        Some(ip) => Ok(ClientIp::from_canonical(
            ip,
            IpOrigin::ListHop {
                header: X_FORWARDED_FOR,
                hop: 0,
            },
        )),
        None => Err(ExtractError::InvalidHop {
            header: X_FORWARDED_FOR,
            hop: 0,
        }),
    }
}

/// The peer, canonical and usable, or a misconfiguration.
fn peer_ip(peer: Option<IpAddr>) -> Result<IpAddr, ExtractError> {
    match peer.map(canonical) {
        Some(ip) if !ip.is_unspecified() => Ok(ip),
        _ => Err(ExtractError::MissingPeer),
    }
}

/// `Some(peer as client)` when the peer is not trusted; `None` when the header may be read.
fn untrusted_peer(
    peer: Option<IpAddr>,
    trusted: Trusted<'_>,
) -> Result<Option<ClientIp>, ExtractError> {
    peer_trust(peer, trusted).client(peer)
}

/// Whether the peer may forward a client's address, as [`untrusted_peer`] decides it, kept
/// small: the single-header source's read of a handle hands it back and may throw it away
/// (see `Ranges::trust_in`), and the answer is made after the read.
#[derive(Clone, Copy)]
enum PeerTrust {
    /// The peer is a trusted proxy (or there is none and every address is trusted).
    Trusted,
    /// The peer is not trusted: it is the client.
    Untrusted,
    /// No usable peer address (see [`peer_ip`]).
    Missing,
}

fn peer_trust(peer: Option<IpAddr>, trusted: Trusted<'_>) -> PeerTrust {
    if peer.is_none() && trusted.is_any() {
        return PeerTrust::Trusted;
    }
    match peer_ip(peer) {
        Err(_) => PeerTrust::Missing,
        Ok(ip) if trusted.contains(ip) => PeerTrust::Trusted,
        Ok(_) => PeerTrust::Untrusted,
    }
}

impl PeerTrust {
    /// `Some(peer as client)` when the peer is not trusted; `None` when the header may be
    /// read; an error when there is no usable peer.
    fn client(self, peer: Option<IpAddr>) -> Result<Option<ClientIp>, ExtractError> {
        match self {
            Self::Trusted => Ok(None),
            Self::Untrusted => {
                peer_ip(peer).map(|ip| Some(ClientIp::from_canonical(ip, IpOrigin::Peer)))
            }
            Self::Missing => Err(ExtractError::MissingPeer),
        }
    }

    /// The answer when the peer is not trusted (the peer itself, or no peer); `None` when
    /// the header may be read.
    fn unless_trusted(self, peer: Option<IpAddr>) -> Option<Result<Resolved, ExtractError>> {
        self.client(peer)
            .transpose()
            .map(|answer| answer.map(Resolved::Untrusted))
    }
}

/// What a trusted-range walk decided, before any [`ClientIp`] is made.
enum RangeDecision {
    /// The peer is not trusted, or missing.
    Peer(PeerTrust),
    /// The peer is trusted: the walk's outcome.
    Walked(Walk<Result<(usize, IpAddr), usize>>),
}

/// [`untrusted_peer`] then [`rightmost_outside`], deciding only.
fn decide_range(
    headers: &HeaderMap,
    list: ListHeader,
    peer: Option<IpAddr>,
    trusted: Trusted<'_>,
) -> RangeDecision {
    match peer_trust(peer, trusted) {
        PeerTrust::Trusted => {}
        other => return RangeDecision::Peer(other),
    }
    RangeDecision::Walked(walk_outside(headers, list, trusted))
}

impl RangeDecision {
    fn resolve(self, list: ListHeader, peer: Option<IpAddr>) -> Result<Resolved, ExtractError> {
        match self {
            Self::Peer(trust) => trust
                .unless_trusted(peer)
                .unwrap_or(Err(ExtractError::MissingPeer)),
            Self::Walked(walked) => finish(walked, list).map(Resolved::Read),
        }
    }
}

fn rightmost_outside(
    headers: &HeaderMap,
    list: ListHeader,
    trusted: Trusted<'_>,
) -> Result<ClientIp, ExtractError> {
    finish(walk_outside(headers, list, trusted), list)
}

/// The rightmost hop outside `trusted` (or the first hop that is no address), walking right
/// to left.
fn walk_outside(
    headers: &HeaderMap,
    list: ListHeader,
    trusted: Trusted<'_>,
) -> Walk<Result<(usize, IpAddr), usize>> {
    walk_right(headers, list, |hop, ip| match ip {
        None => ControlFlow::Break(Err(hop)),
        Some(ip) if trusted.contains(ip) => ControlFlow::Continue(()),
        Some(ip) => ControlFlow::Break(Ok((hop, ip))),
    })
}

fn leftmost_outside(
    headers: &HeaderMap,
    list: ListHeader,
    private: Trusted<'_>,
) -> Result<ClientIp, ExtractError> {
    // Left to right: positions are only known from the right after counting.
    let total = match walk_right(headers, list, |_, _| ControlFlow::<()>::Continue(())) {
        Walk::Exhausted(total) => total,
        Walk::Missing | Walk::Found(()) => {
            return Err(ExtractError::MissingHeader {
                header: list.name(),
            });
        }
    };
    let mut index = 0usize;
    let mut outcome: Option<Result<(usize, IpAddr), usize>> = None;
    let mut first_invalid: Option<usize> = None;
    let mut visit = |ip: Option<IpAddr>| {
        let hop = total - 1 - index;
        index += 1;
        match ip {
            // Client-controlled either way: skip it, remember it for the error.
            None => {
                first_invalid.get_or_insert(hop);
                ControlFlow::Continue(())
            }
            Some(ip) if private.contains(ip) => ControlFlow::Continue(()),
            Some(ip) => ControlFlow::Break(Ok((hop, ip))),
        }
    };
    'lines: for line in headers.get_all(list.name_ref()).iter() {
        let bytes = line.as_bytes();
        let flow = match list {
            ListHeader::XForwardedFor => bytes
                .split(|b| *b == b',')
                .try_for_each(|el| visit(parse_node(el))),
            ListHeader::Forwarded => {
                ForwardedElements::new(bytes).try_for_each(|el| visit(forwarded_for(el)))
            }
        };
        if let ControlFlow::Break(result) = flow {
            outcome = Some(result);
            break 'lines;
        }
    }
    match (outcome, first_invalid) {
        (Some(result), _) => finish(Walk::Found(result), list),
        (None, Some(hop)) => finish(Walk::Found(Err(hop)), list),
        (None, None) => finish(Walk::Exhausted(total), list),
    }
}

fn finish(
    walked: Walk<Result<(usize, IpAddr), usize>>,
    list: ListHeader,
) -> Result<ClientIp, ExtractError> {
    match walked {
        Walk::Found(Ok((hop, ip))) => Ok(ClientIp::from_canonical(
            ip,
            IpOrigin::ListHop {
                header: list.name(),
                hop,
            },
        )),
        Walk::Found(Err(hop)) => Err(ExtractError::InvalidHop {
            header: list.name(),
            hop,
        }),
        Walk::Missing => Err(ExtractError::MissingHeader {
            header: list.name(),
        }),
        Walk::Exhausted(_) => Err(ExtractError::AllTrusted {
            header: list.name(),
        }),
    }
}

enum Walk<R> {
    /// The header is absent.
    Missing,
    /// The visitor stopped with this value.
    Found(R),
    /// Every hop was visited; this many.
    Exhausted(usize),
}

/// Visits the hops of `list` right to left (all lines merged in order, the last line's last
/// element first) with their position from the right, without allocating for up to 32
/// `Forwarded` elements per line.
fn walk_right<R>(
    headers: &HeaderMap,
    list: ListHeader,
    mut visit: impl FnMut(usize, Option<IpAddr>) -> ControlFlow<R>,
) -> Walk<R> {
    let lines = headers.get_all(list.name_ref());
    let mut hop = 0usize;
    let mut present = false;
    for line in lines.iter().rev() {
        present = true;
        let bytes = line.as_bytes();
        let flow = match list {
            ListHeader::XForwardedFor => bytes.rsplit(|b| *b == b',').try_for_each(|el| {
                let flow = visit(hop, parse_node(el));
                hop += 1;
                flow
            }),
            ListHeader::Forwarded => forwarded_right(line, |el| {
                let flow = visit(hop, forwarded_for(el));
                hop += 1;
                flow
            }),
        };
        if let ControlFlow::Break(value) = flow {
            return Walk::Found(value);
        }
    }
    if present {
        Walk::Exhausted(hop)
    } else {
        Walk::Missing
    }
}

const STACK_ELEMENTS: usize = 32;

/// The elements of one `Forwarded` line, right to left. Quoted strings make commas
/// ambiguous from the right, so the line is split left to right into a stack buffer first.
fn forwarded_right<R>(
    line: &HeaderValue,
    mut visit: impl FnMut(&[u8]) -> ControlFlow<R>,
) -> ControlFlow<R> {
    let mut stack: [&[u8]; STACK_ELEMENTS] = [&[]; STACK_ELEMENTS];
    let mut count = 0usize;
    let mut elements = ForwardedElements::new(line.as_bytes());
    for element in elements.by_ref() {
        stack[count] = element;
        count += 1;
        if count == STACK_ELEMENTS {
            break;
        }
    }
    let rest: Vec<&[u8]> = elements.collect();
    for element in rest.iter().rev() {
        visit(element)?;
    }
    for element in stack[..count].iter().rev() {
        visit(element)?;
    }
    ControlFlow::Continue(())
}

impl fmt::Display for ClientIpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::RemoteAddr => f.write_str("remote-addr"),
            Kind::Header { name, proxies, .. } => proxies.with(|proxies| {
                if proxies.is_any() {
                    write!(f, "header:{name}")
                } else if *proxies == IpRanges::cloudflare() {
                    write!(f, "header:{name}:cloudflare")
                } else {
                    write!(f, "header:{name}:{proxies}")
                }
            }),
            Kind::RightmostTrustedRange { list, proxies } => {
                write!(f, "rightmost-trusted-range:{list}:{proxies}")
            }
            Kind::RightmostTrustedCount { list, count } => {
                write!(f, "rightmost-trusted-count:{list}:{count}")
            }
            Kind::RightmostNonPrivate { list, .. } => write!(f, "rightmost-non-private:{list}"),
            Kind::LeftmostNonPrivate { list, .. } => write!(f, "leftmost-non-private:{list}"),
            Kind::Chain(sources) => {
                for (i, source) in sources.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{source}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ClientIpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientIpSource")
            .field(&format_args!("{self}"))
            .finish()
    }
}

#[cfg(test)]
mod tests;
