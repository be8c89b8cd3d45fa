//! Byte-level parsing of forwarding headers: one node (`ip`, `ip:port`, `[v6]:port`, zones),
//! `X-Forwarded-For` elements and RFC 7239 `Forwarded` elements, walked right to left
//! without allocating.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
pub(crate) use tollgate_core::header::trim_ows;

/// The canonical form of an address: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) folded to IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// A port after an address: decimal digits, or an RFC 7239 obfuscated port (`_abc`).
fn is_port(bytes: &[u8]) -> bool {
    match bytes.first() {
        None => false,
        Some(b'_') => {
            bytes.len() > 1
                && bytes[1..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        Some(_) => is_numeric_port(bytes),
    }
}

/// A decimal port, 0 to 65535.
fn is_numeric_port(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= 5
        && bytes.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(bytes).is_ok_and(|port| port.parse::<u16>().is_ok())
}

/// A dotted-quad IPv4 address, exactly as `Ipv4Addr::from_str` accepts it (four decimal
/// octets of one to three digits, no leading zeros, each at most 255), read straight from
/// the bytes in one pass: the common hop of a forwarding header, so it skips the UTF-8
/// check and the standard library's general-purpose parser.
fn parse_v4(bytes: &[u8]) -> Option<Ipv4Addr> {
    if bytes.len() < 7 || bytes.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut at = 0usize;
    for (index, octet) in octets.iter_mut().enumerate() {
        if index > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        // One to three digits per octet, read octet by octet rather than byte by byte.
        let first = digit(bytes.get(at))?;
        at += 1;
        let mut value = u16::from(first);
        if let Some(second) = digit(bytes.get(at)) {
            // A second digit after a leading `0` (`01`, `00`): refused, as octal would be.
            if first == 0 {
                return None;
            }
            value = value * 10 + u16::from(second);
            at += 1;
            if let Some(third) = digit(bytes.get(at)) {
                value = value * 10 + u16::from(third);
                at += 1;
            }
        }
        *octet = u8::try_from(value).ok()?;
    }
    if at != bytes.len() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// The value of an ASCII digit, `None` for anything else (or nothing).
#[inline]
fn digit(byte: Option<&u8>) -> Option<u8> {
    let value = byte?.wrapping_sub(b'0');
    (value < 10).then_some(value)
}

/// An IPv6 literal with an optional `%zone`, which is dropped (an empty zone too, as Go's
/// `net.SplitHostZone` allows).
fn parse_v6(bytes: &[u8]) -> Option<Ipv6Addr> {
    let address = match bytes.iter().position(|b| *b == b'%') {
        Some(at) => &bytes[..at],
        None => bytes,
    };
    std::str::from_utf8(address).ok()?.parse().ok()
}

/// What sits inside `[...]`: an IPv6 literal (with an optional zone) or, leniently, an
/// IPv4 address (`[192.0.2.1]:80`, which some proxies write and Go's `SplitHostPort`
/// accepts).
fn parse_bracketed(bytes: &[u8]) -> Option<IpAddr> {
    if bytes.contains(&b':') {
        Some(IpAddr::V6(parse_v6(bytes)?))
    } else {
        Some(IpAddr::V4(parse_v4(bytes)?))
    }
}

/// The output rule: canonical, never unspecified.
fn usable(ip: IpAddr) -> Option<IpAddr> {
    let ip = canonical(ip);
    if ip.is_unspecified() { None } else { Some(ip) }
}

/// One node of a forwarding header: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:8080`, `fe80::1%eth0`, `[192.0.2.1]:80`. The port and
/// zone are dropped, IPv4-mapped IPv6 is folded to IPv4, and `0.0.0.0` / `::` are refused.
/// Anything else (`unknown`, `_hidden`, empty, garbage) is `None`.
pub(crate) fn parse_node(bytes: &[u8]) -> Option<IpAddr> {
    let bytes = trim_ows(bytes);
    // The common hop first: a plain IPv4 address (never mapped, so already canonical).
    if let Some(v4) = parse_v4(bytes) {
        return (!v4.is_unspecified()).then_some(IpAddr::V4(v4));
    }
    let ip = if let Some(rest) = bytes.strip_prefix(b"[") {
        let close = rest.iter().position(|b| *b == b']')?;
        let after = &rest[close + 1..];
        if !after.is_empty() {
            let port = after.strip_prefix(b":")?;
            if !is_port(port) {
                return None;
            }
        }
        parse_bracketed(&rest[..close])?
    } else {
        match bytes.iter().position(|b| *b == b':') {
            // No colon and not an IPv4 address (tried above).
            None => return None,
            Some(at) if !bytes[at + 1..].contains(&b':') => {
                if !is_port(&bytes[at + 1..]) {
                    return None;
                }
                let v4 = parse_v4(&bytes[..at])?;
                return (!v4.is_unspecified()).then_some(IpAddr::V4(v4));
            }
            Some(_) => IpAddr::V6(parse_v6(bytes)?),
        }
    };
    usable(ip)
}

/// Parses one address as forwarding headers and socket peers write it, the way every source
/// of this crate reads a hop (the counterpart of realclientip-go's `ParseIPAddr`).
///
/// Accepted: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:8080`, `fe80::1%eth0` and `[fe80::1%eth0]:80` (the zone is dropped),
/// `[192.0.2.1]:80`, surrounding spaces and tabs. The result is canonical: IPv4-mapped IPv6
/// folded to IPv4, no port, no zone. `None` for anything else, including `0.0.0.0`, `::`,
/// `unknown`, obfuscated identifiers (`_hidden`), lists and quoted strings.
///
/// ```
/// use std::net::IpAddr;
/// use tollgate_client_ip::parse_ip;
///
/// assert_eq!(parse_ip("[2001:db8:cafe::17]:4711"), Some("2001:db8:cafe::17".parse().unwrap()));
/// assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
/// assert_eq!(parse_ip("::ffff:192.0.2.128"), Some("192.0.2.128".parse().unwrap()));
/// assert_eq!(parse_ip("unknown"), None);
/// assert_eq!(parse_ip("0.0.0.0"), None);
/// ```
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    parse_node(text.as_bytes())
}

/// A node that always carries a port, as in CloudFront's `CloudFront-Viewer-Address`
/// (`198.51.100.10:46532`, and IPv6 *without* brackets: `2001:db8::17:46532`). An
/// unbracketed IPv6 text is ambiguous (`2001:db8::1:443` is also a valid address), so the
/// last `:digits` is taken as the port first; without a parseable address left of it the
/// text is read as a plain node.
pub(crate) fn parse_node_with_port(bytes: &[u8]) -> Option<IpAddr> {
    let bytes = trim_ows(bytes);
    if bytes.first() != Some(&b'[')
        && bytes.iter().filter(|b| **b == b':').count() > 1
        && let Some(at) = bytes.iter().rposition(|b| *b == b':')
        && let port = &bytes[at + 1..]
        && is_numeric_port(port)
        && let Some(v6) = parse_v6(&bytes[..at])
    {
        return usable(IpAddr::V6(v6));
    }
    parse_node(bytes)
}

/// Splits one `Forwarded` line into elements at commas outside quoted strings, left to
/// right. An unterminated quoted string runs to the end of the line (one bad element).
pub(crate) struct ForwardedElements<'a> {
    line: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> ForwardedElements<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            pos: 0,
            done: false,
        }
    }
}

/// Position of the next `delim` in `bytes` outside a quoted string, or `bytes.len()`.
fn next_unquoted(bytes: &[u8], delim: u8) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if *b == b'\\' {
                escaped = true;
            } else if *b == b'"' {
                quoted = false;
            }
        } else if *b == b'"' {
            quoted = true;
        } else if *b == delim {
            return i;
        }
    }
    bytes.len()
}

impl<'a> Iterator for ForwardedElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let rest = &self.line[self.pos..];
        let end = next_unquoted(rest, b',');
        if end == rest.len() {
            self.done = true;
        }
        self.pos += end + 1;
        Some(&rest[..end])
    }
}

/// The node of the `for` parameter of one `Forwarded` element (`for=192.0.2.1;proto=https`,
/// `for="[2001:db8::1]:443"`). `None` when the element has no `for`, has it twice, or is
/// malformed; then the node is an invalid hop.
pub(crate) fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let mut rest = element;
    let mut found: Option<&[u8]> = None;
    loop {
        let end = next_unquoted(rest, b';');
        let pair = trim_ows(&rest[..end]);
        if !pair.is_empty() {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let name = trim_ows(&pair[..eq]);
            let value = trim_ows(&pair[eq + 1..]);
            if name.is_empty() || !name.iter().all(is_tchar) {
                return None;
            }
            if name.eq_ignore_ascii_case(b"for") {
                if found.is_some() {
                    return None;
                }
                found = Some(unquote(value)?);
            } else {
                // Other parameters must still be well formed.
                unquote(value)?;
            }
        }
        if end == rest.len() {
            break;
        }
        rest = &rest[end + 1..];
    }
    parse_node(found?)
}

fn is_tchar(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

/// A token, or a quoted string without escapes (an address never needs one).
fn unquote(value: &[u8]) -> Option<&[u8]> {
    if let Some(inner) = value.strip_prefix(b"\"") {
        let inner = inner.strip_suffix(b"\"")?;
        if inner.iter().any(|b| *b == b'"' || *b == b'\\') {
            return None;
        }
        Some(inner)
    } else if !value.is_empty()
        && value
            .iter()
            .all(|b| is_tchar(b) || matches!(b, b':' | b'[' | b']'))
    {
        Some(value)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> Option<IpAddr> {
        parse_node(s.as_bytes())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nodes_with_ports_zones_and_brackets() {
        assert_eq!(node("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(node(" 192.0.2.1\t"), Some(ip("192.0.2.1")));
        assert_eq!(node("192.0.2.1:8080"), Some(ip("192.0.2.1")));
        assert_eq!(node("192.0.2.1:65535"), Some(ip("192.0.2.1")));
        assert_eq!(node("192.0.2.1:0"), Some(ip("192.0.2.1")));
        assert_eq!(node("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(node("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(node("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(node("fe80::1%eth0"), Some(ip("fe80::1")));
        assert_eq!(node("[fe80::1%25eth0]:80"), Some(ip("fe80::1")));
        assert_eq!(node("::ffff:192.0.2.9"), Some(ip("192.0.2.9")));
        assert_eq!(node("[::ffff:c000:209]:1"), Some(ip("192.0.2.9")));
        assert_eq!(node("2001:DB8::A"), Some(ip("2001:db8::a")));
        // Lenient like Go's `net.SplitHostPort` + `SplitHostZone`: bracketed IPv4, an
        // empty zone.
        assert_eq!(node("[192.0.2.1]"), Some(ip("192.0.2.1")));
        assert_eq!(node("[192.0.2.1]:80"), Some(ip("192.0.2.1")));
        assert_eq!(node("2001:db8::1%"), Some(ip("2001:db8::1")));
        assert_eq!(node("[fe80::1%]:80"), Some(ip("fe80::1")));
    }

    #[test]
    fn ipv4_matches_the_standard_parser() {
        let std_v4 = |s: &str| s.parse::<Ipv4Addr>().ok();
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.3.999",
            "1.2.3.0255",
            "01.2.3.4",
            "1.2.3.00",
            "1.2.3.0",
            "100.200.10.1",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "1.2.3.4.5",
            "1.2.3.-4",
            "1.2.3.+4",
            "1.2.3.4 ",
            " 1.2.3.4",
            "",
            "....",
            "1234.1.1.1",
            "1.2.3.4a",
            "١.2.3.4",
            "00.0.0.0",
            "0.0.0.00",
            "1.2.3.4444",
            "255.255.255.2555",
            "255.255.255.25",
            "199.99.9.0",
            "1.2.3.04",
            "1.2.3.300",
            "1.2.3.260",
            "1.2.3.1000",
            "1.2:3.4",
        ] {
            assert_eq!(parse_v4(text.as_bytes()), std_v4(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn ipv4_agrees_with_the_standard_parser(text in "[0-9.+a ]{0,18}") {
            proptest::prop_assert_eq!(parse_v4(text.as_bytes()), text.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn ipv4_agrees_on_near_valid_addresses(
            octets in proptest::collection::vec("0{0,2}[0-9]{0,3}", 3..6),
        ) {
            let text = octets.join(".");
            proptest::prop_assert_eq!(parse_v4(text.as_bytes()), text.parse::<Ipv4Addr>().ok());
        }
    }

    #[test]
    fn nodes_that_always_carry_a_port() {
        let with_port = |s: &str| parse_node_with_port(s.as_bytes());
        assert_eq!(with_port("198.51.100.10:46532"), Some(ip("198.51.100.10")));
        assert_eq!(
            with_port("2a09:bac1:3b20:38::17:3c9:46532"),
            Some(ip("2a09:bac1:3b20:38::17:3c9"))
        );
        // Ambiguous without brackets: the last group is the port.
        assert_eq!(with_port("2001:db8::1:443"), Some(ip("2001:db8::1")));
        assert_eq!(with_port("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        // No port after all: read as a plain node.
        assert_eq!(with_port("198.51.100.10"), Some(ip("198.51.100.10")));
        assert_eq!(with_port("2001:db8::"), Some(ip("2001:db8::")));
        assert_eq!(with_port("::ffff:192.0.2.1:80"), Some(ip("192.0.2.1")));
        for bad in [
            "",
            ":::80",
            "::",
            "0.0.0.0:80",
            "::0:80",
            "garbage:80",
            "_x",
        ] {
            assert_eq!(with_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn invalid_nodes() {
        for bad in [
            "",
            " ",
            "unknown",
            "_hidden",
            "_x",
            "0.0.0.0",
            "::",
            "[::]:80",
            "::ffff:0.0.0.0",
            "192.0.2",
            "192.0.2.1.5",
            "192.0.2.256",
            "010.0.0.1",
            "192.0.2.1:",
            "192.0.2.1:port",
            "192.0.2.1:123456",
            "192.0.2.1:65536",
            "[2001:db8::1]:99999",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[192.0.2.1%eth0]",
            "192.0.2.1%eth0",
            "[192.0.2]:80",
            "[]",
            "[]:80",
            "2001:db8::g",
            "192.0.2.1 192.0.2.2",
            "\"192.0.2.1\"",
            "1.2.3.4/32",
        ] {
            assert_eq!(node(bad), None, "{bad:?}");
        }
        assert_eq!(parse_node(b"\xff\xfe"), None);
    }

    #[test]
    fn obfuscated_port_is_accepted_but_obfuscated_node_is_not() {
        assert_eq!(node("[2001:db8::1]:_p1"), Some(ip("2001:db8::1")));
        assert_eq!(node("192.0.2.1:_x"), Some(ip("192.0.2.1")));
        assert_eq!(node("192.0.2.1:_"), None);
    }

    fn elements(line: &str) -> Vec<&str> {
        ForwardedElements::new(line.as_bytes())
            .map(|e| std::str::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn forwarded_elements_respect_quotes() {
        assert_eq!(
            elements(r#"for=a, for="x,y";by=b ,for=c"#),
            ["for=a", r#" for="x,y";by=b "#, "for=c"]
        );
        assert_eq!(
            elements(r#"for="a\",b", for=c"#),
            [r#"for="a\",b""#, " for=c"]
        );
        assert_eq!(elements(r#"for="open, for=c"#), [r#"for="open, for=c"#]);
        assert_eq!(elements(""), [""]);
        assert_eq!(elements("a,"), ["a", ""]);
    }

    #[test]
    fn forwarded_for_parameter() {
        let f = |s: &str| forwarded_for(s.as_bytes());
        assert_eq!(
            f("for=192.0.2.60;proto=http;by=203.0.113.43"),
            Some(ip("192.0.2.60"))
        );
        assert_eq!(
            f("For=\"[2001:db8:cafe::17]:4711\""),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(
            f(" proto=https ; for = 198.51.100.17 "),
            Some(ip("198.51.100.17"))
        );
        assert_eq!(f("for=\"192.0.2.1:80\""), Some(ip("192.0.2.1")));
        assert_eq!(f("for=unknown"), None);
        assert_eq!(f("for=_hidden"), None);
        assert_eq!(f("for=\"_gazonk\""), None);
        assert_eq!(f("proto=https"), None);
        assert_eq!(f("for=192.0.2.1;for=192.0.2.2"), None);
        assert_eq!(f("for=\"192.0.2.1"), None);
        assert_eq!(f("for=192.0.2.1;proto"), None);
        assert_eq!(f("for=192.0.2.1;by=\"a\\\"b\""), None);
        assert_eq!(f("for=\"[2001:db8::1]\\\"\""), None);
        assert_eq!(f(""), None);
        assert_eq!(f("for=192.0.2.1;;proto=http"), Some(ip("192.0.2.1")));
    }

    /// Every way an address is written in a header parses back to the address.
    mod round_trip {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn parse_ip_round_trips_every_written_form(
                raw in prop_oneof![
                    any::<[u8; 4]>().prop_map(IpAddr::from),
                    any::<[u16; 8]>().prop_map(IpAddr::from),
                    any::<[u8; 4]>().prop_map(|b| IpAddr::V6(std::net::Ipv4Addr::from(b).to_ipv6_mapped())),
                ],
                port in any::<u16>(),
            ) {
                let want = canonical(raw);
                let forms = match raw {
                    IpAddr::V4(v4) => vec![v4.to_string(), format!("{v4}:{port}"), format!("[{v4}]:{port}")],
                    IpAddr::V6(v6) => vec![
                        v6.to_string(),
                        format!("[{v6}]"),
                        format!("[{v6}]:{port}"),
                        format!("{v6}%eth0"),
                        format!("[{v6}%25en0]:{port}"),
                        format!("{v6:?}"),
                    ],
                };
                for form in forms {
                    let got = parse_ip(&form);
                    if want.is_unspecified() {
                        prop_assert_eq!(got, None, "{}", form);
                    } else {
                        prop_assert_eq!(got, Some(want), "{}", form);
                    }
                }
            }
        }
    }
}
