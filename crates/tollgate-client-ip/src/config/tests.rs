//! The configuration grammar: round trips, the errors' wording and serde.

use std::net::IpAddr;
use std::num::NonZeroUsize;

use http::HeaderName;

use crate::{ClientIpSource, IpRanges, ListHeader};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn src(text: &str) -> ClientIpSource {
    text.parse().unwrap()
}

fn name(header: &str) -> HeaderName {
    HeaderName::from_bytes(header.as_bytes()).unwrap()
}

fn n(count: usize) -> NonZeroUsize {
    NonZeroUsize::new(count).unwrap()
}

#[test]
fn grammar_round_trips() {
    for text in [
        "remote-addr",
        "header:x-real-ip",
        "header:cf-connecting-ip:cloudflare",
        "header:fastly-client-ip:192.0.2.0/24,2001:db8::/32",
        "rightmost-trusted-range:x-forwarded-for:10.0.0.0/8",
        "rightmost-trusted-range:forwarded:10.0.0.0/8,fd00::/8",
        "rightmost-trusted-count:x-forwarded-for:2",
        "rightmost-trusted-count:forwarded:1",
        "rightmost-non-private:x-forwarded-for",
        "leftmost-non-private:forwarded",
        "header:cf-connecting-ip:cloudflare or remote-addr",
    ] {
        let source = src(text);
        assert_eq!(source.to_string(), text);
        assert_eq!(src(&source.to_string()), source);
    }
    assert_eq!(src("cloudflare"), ClientIpSource::cloudflare());
    assert_eq!(
        src("  remote-addr   or   header:X-Real-IP:10.0.0.1 "),
        ClientIpSource::remote_addr().or(ClientIpSource::header(
            name("x-real-ip"),
            "10.0.0.1/32".parse::<IpRanges>().unwrap()
        ))
    );
    assert_eq!(
        src("rightmost-trusted-range:X-Forwarded-For:private"),
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, IpRanges::private())
    );
    assert_eq!(
        format!("{:?}", src("remote-addr")),
        "ClientIpSource(remote-addr)"
    );
}

#[test]
fn grammar_errors_say_what_is_wrong() {
    let err = |text: &str| text.parse::<ClientIpSource>().unwrap_err().to_string();
    assert!(
        err("remote")
            .starts_with("unknown client IP source `remote`; expected one of `remote-addr`")
    );
    assert!(err("").starts_with("empty client IP source; expected one of"));
    assert!(err("remote-addr or ").starts_with("empty client IP source;"));
    assert_eq!(
        err("remote-addr:x"),
        "`remote-addr` takes no arguments, got `remote-addr:x`"
    );
    assert!(err("header").starts_with("`header` needs arguments after `:`;"));
    assert_eq!(
        err("header:bad name"),
        "`bad name` is not a valid header name"
    );
    assert_eq!(
        err("header:x-real-ip:10.0.0.0/8,nope"),
        "`nope` is not a CIDR range or IP address (expected e.g. `10.0.0.0/8`, `2001:db8::/32` or `192.0.2.7`)"
    );
    assert_eq!(
        err("rightmost-trusted-range:x-forwarded-for"),
        "`rightmost-trusted-range` needs trusted proxy ranges: `rightmost-trusted-range:<x-forwarded-for|forwarded>:<cidr>[,<cidr>...]`"
    );
    assert_eq!(
        err("rightmost-trusted-range:x-real-ip:10.0.0.0/8"),
        "`rightmost-trusted-range` reads `x-forwarded-for` or `forwarded`, got `x-real-ip`"
    );
    assert_eq!(
        err("rightmost-trusted-count:x-forwarded-for:0"),
        "`rightmost-trusted-count` needs a hop count of at least 1, got `0`"
    );
    assert_eq!(
        err("rightmost-trusted-count:x-forwarded-for:two"),
        "`rightmost-trusted-count` needs a hop count of at least 1, got `two`"
    );
    assert_eq!(
        err("rightmost-trusted-count:forwarded"),
        "`rightmost-trusted-count` needs a hop count: `rightmost-trusted-count:<x-forwarded-for|forwarded>:<n>`"
    );
    assert_eq!(
        err("leftmost-non-private:x-forwarded-for:10.0.0.0/8"),
        "`leftmost-non-private` takes only a header, unexpected `:10.0.0.0/8`"
    );
    // List headers are not single-IP headers (realclientip-go refuses them too).
    assert_eq!(
        err("header:X-Forwarded-For:10.0.0.0/8"),
        "`header` reads a single-IP header, but `x-forwarded-for` is a list that clients write into; use `rightmost-trusted-range:x-forwarded-for:<ranges>`"
    );
    assert!(
        err("header:forwarded").starts_with("`header` reads a single-IP header, but `forwarded`")
    );
}

#[cfg(feature = "serde")]
#[test]
fn deserialize_from_the_grammar() {
    let source: ClientIpSource =
        serde_json::from_str("\"rightmost-trusted-count:x-forwarded-for:2\"").unwrap();
    assert_eq!(
        source,
        ClientIpSource::rightmost_trusted_count(ListHeader::XForwardedFor, n(2))
    );
    let err = serde_json::from_str::<ClientIpSource>("\"header\"").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`header` needs arguments after `:`")
    );
    let ranges: IpRanges = serde_json::from_str("\"10.0.0.0/8,loopback\"").unwrap();
    assert!(ranges.contains(ip("127.0.0.1")));
}
