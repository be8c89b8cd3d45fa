//! [`IpRanges`]: a set of CIDR ranges, canonicalised so IPv4-mapped IPv6 matches IPv4.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::ConfigError;
use crate::parse::canonical;

/// The date Cloudflare's ranges in [`IpRanges::cloudflare`] were copied from
/// <https://www.cloudflare.com/ips-v4> and <https://www.cloudflare.com/ips-v6>.
///
/// Cloudflare changes these lists rarely and announces changes ahead; compare the lists with
/// the published ones when upgrading, or build your own set with [`IpRanges::new`] from the
/// published files at deploy time.
pub const CLOUDFLARE_RANGES_DATE: &str = "2025-01-15";

/// Cloudflare's published IPv4 ranges as of [`CLOUDFLARE_RANGES_DATE`].
pub const CLOUDFLARE_IPV4: &[&str] = &[
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
];

/// Cloudflare's published IPv6 ranges as of [`CLOUDFLARE_RANGES_DATE`].
pub const CLOUDFLARE_IPV6: &[&str] = &[
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
];

/// Ranges that are not publicly routable: loopback, RFC 1918 private, link-local, CGNAT
/// shared space (`100.64.0.0/10`), IPv6 unique-local and link-local.
const PRIVATE: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

const LINK_LOCAL: &[&str] = &["169.254.0.0/16", "fe80::/10"];

const UNIQUE_LOCAL: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// A set of IP ranges (CIDRs or single addresses), used for trusted proxies and allowlists.
///
/// Ranges are canonicalised like addresses: an IPv4-mapped IPv6 range
/// (`::ffff:10.0.0.0/104`) is stored as the IPv4 range it maps (`10.0.0.0/8`), and
/// [`contains`](IpRanges::contains) folds IPv4-mapped addresses to IPv4 before matching, so
/// a dual-stack socket's `::ffff:10.1.2.3` peer matches `10.0.0.0/8`. Cheap to clone.
///
/// Parse a comma-separated list with [`FromStr`]: CIDRs (`10.0.0.0/8`, or with a dotted
/// netmask as Express's `proxy-addr` accepts, `10.0.0.0/255.0.0.0`), bare addresses, and the
/// names `cloudflare`, `private`, `loopback`, `linklocal` and `uniquelocal` for the built-in
/// sets (the last three as in `proxy-addr`).
///
/// ```
/// use tollgate_client_ip::IpRanges;
///
/// let proxies: IpRanges = "10.0.0.0/8, 192.0.2.7, 2001:db8::/32".parse().unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("192.0.2.7".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
/// assert_eq!(proxies.to_string(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IpRanges {
    nets: Arc<[IpNet]>,
    /// The IPv4 ranges as `(network, netmask)`, for a lookup that is one AND and one compare
    /// per range.
    v4: Arc<[(u32, u32)]>,
    /// The IPv6 ranges, likewise.
    v6: Arc<[(u128, u128)]>,
    any: bool,
}

impl IpRanges {
    /// A set of these ranges (canonicalised, in order).
    pub fn new(ranges: impl IntoIterator<Item = IpNet>) -> Self {
        let nets: Arc<[IpNet]> = ranges.into_iter().map(canonical_net).collect();
        let any = nets
            .iter()
            .any(|net| matches!(net, IpNet::V4(v4) if v4.prefix_len() == 0))
            && nets
                .iter()
                .any(|net| matches!(net, IpNet::V6(v6) if v6.prefix_len() == 0));
        let v4 = nets
            .iter()
            .filter_map(|net| match net {
                IpNet::V4(v4) => Some((u32::from(v4.network()), u32::from(v4.netmask()))),
                IpNet::V6(_) => None,
            })
            .collect();
        let v6 = nets
            .iter()
            .filter_map(|net| match net {
                IpNet::V6(v6) => Some((u128::from(v6.network()), u128::from(v6.netmask()))),
                IpNet::V4(_) => None,
            })
            .collect();
        Self { nets, v4, v6, any }
    }

    /// The empty set: contains nothing.
    pub fn none() -> Self {
        Self::new([])
    }

    /// Every address (`0.0.0.0/0` and `::/0`).
    ///
    /// As the trusted proxies of a single-header source it means "believe the header from any
    /// peer", which is only right when nothing but your proxy can reach the server.
    pub fn any() -> Self {
        Self::from_static(&["0.0.0.0/0", "::/0"])
    }

    /// Cloudflare's published ranges ([`CLOUDFLARE_IPV4`], [`CLOUDFLARE_IPV6`]), as of
    /// [`CLOUDFLARE_RANGES_DATE`].
    pub fn cloudflare() -> Self {
        Self::from_static_iter(CLOUDFLARE_IPV4.iter().chain(CLOUDFLARE_IPV6))
    }

    /// Loopback, RFC 1918 private, link-local, CGNAT (`100.64.0.0/10`), IPv6 unique-local
    /// (`fc00::/7`) and link-local (`fe80::/10`).
    pub fn private() -> Self {
        Self::from_static(PRIVATE)
    }

    /// `127.0.0.0/8` and `::1`.
    pub fn loopback() -> Self {
        Self::from_static(LOOPBACK)
    }

    /// Link-local: `169.254.0.0/16` and `fe80::/10` (`linklocal` in the grammar).
    pub fn link_local() -> Self {
        Self::from_static(LINK_LOCAL)
    }

    /// RFC 1918 private and IPv6 unique-local: `10.0.0.0/8`, `172.16.0.0/12`,
    /// `192.168.0.0/16` and `fc00::/7` (`uniquelocal` in the grammar).
    pub fn unique_local() -> Self {
        Self::from_static(UNIQUE_LOCAL)
    }

    fn from_static(list: &[&str]) -> Self {
        Self::from_static_iter(list.iter())
    }

    fn from_static_iter<'a>(list: impl Iterator<Item = &'a &'a str>) -> Self {
        Self::new(list.filter_map(|net| net.parse::<IpNet>().ok()))
    }

    /// This set and `other`'s ranges.
    #[must_use]
    pub fn union(&self, other: &IpRanges) -> Self {
        Self::new(self.nets.iter().chain(other.nets.iter()).copied())
    }

    /// Whether `ip` (canonicalised) is inside one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                self.v4.iter().any(|&(network, mask)| ip & mask == network)
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                self.v6.iter().any(|&(network, mask)| ip & mask == network)
            }
        }
    }

    /// The IPv4 ranges as `(network, netmask)`.
    pub(crate) fn v4_pairs(&self) -> &[(u32, u32)] {
        &self.v4
    }

    /// The IPv6 ranges as `(network, netmask)`.
    pub(crate) fn v6_pairs(&self) -> &[(u128, u128)] {
        &self.v6
    }

    /// Whether the set covers every IPv4 and IPv6 address.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The ranges, canonicalised.
    pub fn iter(&self) -> impl Iterator<Item = &IpNet> {
        self.nets.iter()
    }
}

/// `::ffff:a.b.c.d/n` (n >= 96) becomes `a.b.c.d/(n-96)`; other ranges are truncated to
/// their network address.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4net.trunc());
    }
    net.trunc()
}

impl FromStr for IpRanges {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mut nets = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            match item {
                "" => {
                    return Err(ConfigError::new(format!(
                        "empty entry in the range list `{s}`"
                    )));
                }
                "cloudflare" => nets.extend(IpRanges::cloudflare().nets.iter().copied()),
                "private" => nets.extend(IpRanges::private().nets.iter().copied()),
                "loopback" => nets.extend(IpRanges::loopback().nets.iter().copied()),
                "linklocal" => nets.extend(IpRanges::link_local().nets.iter().copied()),
                "uniquelocal" => nets.extend(IpRanges::unique_local().nets.iter().copied()),
                _ => nets.push(parse_range(item)?),
            }
        }
        Ok(Self::new(nets))
    }
}

impl FromIterator<IpNet> for IpRanges {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::new(iter)
    }
}

impl From<Vec<IpNet>> for IpRanges {
    fn from(nets: Vec<IpNet>) -> Self {
        Self::new(nets)
    }
}

impl fmt::Display for IpRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for IpRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.nets.iter()).finish()
    }
}

/// One CIDR (`10.0.0.0/8`, `10.0.0.0/255.0.0.0`) or bare address.
fn parse_range(item: &str) -> Result<IpNet, ConfigError> {
    if let Ok(net) = item.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    if let Some((address, mask)) = item.split_once('/')
        && let (Ok(address), Ok(mask)) = (address.parse::<IpAddr>(), mask.parse::<IpAddr>())
    {
        let prefix = match (address, mask) {
            (IpAddr::V4(_), IpAddr::V4(mask)) => contiguous_prefix(&mask.octets()),
            (IpAddr::V6(_), IpAddr::V6(mask)) => contiguous_prefix(&mask.octets()),
            _ => None,
        };
        return prefix
            .and_then(|prefix| IpNet::new(address, prefix).ok())
            .ok_or_else(|| {
                ConfigError::new(format!(
                    "`{item}` has a netmask that is not contiguous or does not match the address"
                ))
            });
    }
    Err(ConfigError::new(format!(
        "`{item}` is not a CIDR range or IP address \
         (expected e.g. `10.0.0.0/8`, `2001:db8::/32` or `192.0.2.7`)"
    )))
}

/// The prefix length of a netmask whose set bits are contiguous from the left.
fn contiguous_prefix(mask: &[u8]) -> Option<u8> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let expected = mask.iter().enumerate().all(|(i, byte)| {
        let before = u32::try_from(i * 8).unwrap_or(u32::MAX);
        let ones_here = ones.saturating_sub(before).min(8);
        let want = if ones_here == 0 {
            0
        } else {
            0xffu8 << (8 - ones_here)
        };
        *byte == want
    });
    if expected {
        u8::try_from(ones).ok()
    } else {
        None
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for IpRanges {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_ranges_are_canonicalised() {
        let ranges: IpRanges = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(ranges.to_string(), "10.0.0.0/8");
        assert!(ranges.contains(ip("10.9.9.9")));
        assert!(ranges.contains(ip("::ffff:10.9.9.9")));
        assert!(!ranges.contains(ip("11.0.0.1")));
    }

    #[test]
    fn host_bits_are_truncated_and_bare_ips_are_single_hosts() {
        let ranges: IpRanges = "10.1.2.3/8, 2001:db8::1".parse().unwrap();
        assert_eq!(ranges.to_string(), "10.0.0.0/8,2001:db8::1/128");
    }

    #[test]
    fn named_sets() {
        let cf: IpRanges = "cloudflare".parse().unwrap();
        assert_eq!(cf, IpRanges::cloudflare());
        assert_eq!(
            cf.iter().count(),
            CLOUDFLARE_IPV4.len() + CLOUDFLARE_IPV6.len()
        );
        assert!(cf.contains(ip("104.16.1.1")));
        assert!(cf.contains(ip("2606:4700::1")));
        assert!(!cf.contains(ip("192.0.2.1")));
        let private = IpRanges::private();
        for inside in [
            "10.0.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(private.contains(ip(inside)), "{inside}");
        }
        for outside in ["172.32.0.1", "8.8.8.8", "2001:db8::1", "100.128.0.1"] {
            assert!(!private.contains(ip(outside)), "{outside}");
        }
        assert!(IpRanges::any().is_any());
        assert!(!IpRanges::private().is_any());
        assert!(IpRanges::none().is_empty());
        assert_eq!(
            "loopback,private".parse::<IpRanges>().unwrap(),
            IpRanges::loopback().union(&IpRanges::private())
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = "10.0.0.0/8, nope".parse::<IpRanges>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`nope` is not a CIDR range or IP address (expected e.g. `10.0.0.0/8`, `2001:db8::/32` or `192.0.2.7`)"
        );
        let err = "10.0.0.0/8,,".parse::<IpRanges>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "empty entry in the range list `10.0.0.0/8,,`"
        );
        assert!("10.0.0.0/33".parse::<IpRanges>().is_err());
        let err = "10.0.0.0/255.0.255.0".parse::<IpRanges>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.0.0.0/255.0.255.0` has a netmask that is not contiguous or does not match the address"
        );
        assert!("10.0.0.0/ffff::".parse::<IpRanges>().is_err());
    }

    #[test]
    fn netmask_notation() {
        let ranges: IpRanges = "10.0.0.1/255.255.255.0, 192.168.0.0/255.255.0.0, 127.0.0.1/255.255.255.255, 0.0.0.0/0.0.0.0, 2001:db8::/ffff:ffff::"
            .parse()
            .unwrap();
        assert_eq!(
            ranges.to_string(),
            "10.0.0.0/24,192.168.0.0/16,127.0.0.1/32,0.0.0.0/0,2001:db8::/32"
        );
    }

    #[test]
    fn proxy_addr_names() {
        let link: IpRanges = "linklocal".parse().unwrap();
        assert_eq!(link, IpRanges::link_local());
        assert!(link.contains(ip("169.254.10.1")));
        assert!(link.contains(ip("fe80::1")));
        assert!(link.contains(ip("::ffff:169.254.10.1")));
        assert!(!link.contains(ip("10.0.0.1")));
        let unique: IpRanges = "uniquelocal".parse().unwrap();
        assert_eq!(unique, IpRanges::unique_local());
        for inside in [
            "10.1.1.1",
            "172.16.0.1",
            "192.168.0.1",
            "fc00::1",
            "fd12::1",
        ] {
            assert!(unique.contains(ip(inside)), "{inside}");
        }
        assert!(!unique.contains(ip("127.0.0.1")));
        assert!(!unique.contains(ip("fe80::1")));
        let all: IpRanges = "loopback, linklocal, uniquelocal".parse().unwrap();
        for ip_text in ["127.0.0.1", "::1", "169.254.0.1", "10.0.0.1", "fc00::1"] {
            assert!(all.contains(ip(ip_text)), "{ip_text}");
        }
        assert!(!all.contains(ip("8.8.8.8")));
    }

    proptest::proptest! {
        /// The precomputed masks answer as `ipnet` does on the canonical address.
        #[test]
        fn contains_agrees_with_ipnet(
            v4 in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32), 0..4),
            v6 in proptest::collection::vec((proptest::prelude::any::<u128>(), 0u8..=128), 0..4),
            probes in proptest::collection::vec(proptest::prelude::any::<u128>(), 1..16),
        ) {
            let nets: Vec<IpNet> = v4
                .iter()
                .map(|&(addr, len)| IpNet::V4(Ipv4Net::new(addr.into(), len).unwrap()))
                .chain(v6.iter().map(|&(addr, len)| {
                    IpNet::V6(ipnet::Ipv6Net::new(addr.into(), len).unwrap())
                }))
                .collect();
            let ranges = IpRanges::new(nets);
            // Probe inside each range too, not only at random.
            let mut addresses: Vec<IpAddr> = Vec::new();
            for probe in probes {
                let low = u32::try_from(probe & u128::from(u32::MAX)).unwrap();
                addresses.push(IpAddr::V6(probe.into()));
                addresses.push(IpAddr::V4((low).into()));
                addresses.push(IpAddr::V6(std::net::Ipv4Addr::from(low).to_ipv6_mapped()));
                for net in ranges.iter() {
                    addresses.push(match net {
                        IpNet::V4(v4) => IpAddr::V4(
                            (u32::from(v4.network()) | (low & u32::from(v4.hostmask()))).into(),
                        ),
                        IpNet::V6(v6) => IpAddr::V6(
                            (u128::from(v6.network()) | (probe & u128::from(v6.hostmask()))).into(),
                        ),
                    });
                }
            }
            for address in addresses {
                let want = ranges.iter().any(|net| net.contains(&canonical(address)));
                proptest::prop_assert_eq!(ranges.contains(address), want, "{}", address);
            }
        }
    }
}
