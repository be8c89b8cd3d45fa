//! The configuration grammar of [`ClientIpSource`]: `FromStr` and serde `Deserialize`.

use std::num::NonZeroUsize;
use std::str::FromStr;

use http::HeaderName;

use crate::error::ConfigError;
use crate::{ClientIpSource, IpRanges, ListHeader};

const EXPECTED: &str = "expected one of `remote-addr`, `cloudflare`, `header:<name>[:<ranges>]`, \
     `rightmost-trusted-range:<x-forwarded-for|forwarded>:<ranges>`, \
     `rightmost-trusted-count:<x-forwarded-for|forwarded>:<n>`, \
     `rightmost-non-private:<x-forwarded-for|forwarded>`, \
     `leftmost-non-private:<x-forwarded-for|forwarded>`";

impl FromStr for ClientIpSource {
    type Err = ConfigError;

    /// Parses the [configuration grammar](crate#configuration-grammar).
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mut chain: Option<ClientIpSource> = None;
        for part in s.split(" or ") {
            let source = parse_one(part.trim())?;
            chain = Some(match chain {
                None => source,
                Some(chain) => chain.or(source),
            });
        }
        chain.ok_or_else(|| ConfigError::new(format!("empty client IP source; {EXPECTED}")))
    }
}

fn parse_one(text: &str) -> Result<ClientIpSource, ConfigError> {
    if text.is_empty() {
        return Err(ConfigError::new(format!(
            "empty client IP source; {EXPECTED}"
        )));
    }
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (text, None),
    };
    match (kind, rest) {
        ("remote-addr", None) => Ok(ClientIpSource::remote_addr()),
        ("cloudflare", None) => Ok(ClientIpSource::cloudflare()),
        ("header", Some(rest)) => {
            let (name, ranges) = match rest.split_once(':') {
                Some((name, ranges)) => (name, Some(ranges)),
                None => (rest, None),
            };
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| ConfigError::new(format!("`{name}` is not a valid header name")))?;
            if let Some(list) = ListHeader::parse(name.as_str()) {
                return Err(ConfigError::new(format!(
                    "`header` reads a single-IP header, but `{list}` is a list that clients \
                     write into; use `rightmost-trusted-range:{list}:<ranges>`"
                )));
            }
            let proxies = match ranges {
                Some(ranges) => ranges.parse::<IpRanges>()?,
                None => IpRanges::any(),
            };
            Ok(ClientIpSource::header(name, proxies))
        }
        ("rightmost-trusted-range", Some(rest)) => {
            let (list, ranges) = list_and(kind, rest)?;
            let ranges = ranges.ok_or_else(|| {
                ConfigError::new(format!(
                    "`{kind}` needs trusted proxy ranges: `{kind}:<x-forwarded-for|forwarded>:<cidr>[,<cidr>...]`"
                ))
            })?;
            Ok(ClientIpSource::rightmost_trusted_range(
                list,
                ranges.parse::<IpRanges>()?,
            ))
        }
        ("rightmost-trusted-count", Some(rest)) => {
            let (list, count) = list_and(kind, rest)?;
            let count = count.ok_or_else(|| {
                ConfigError::new(format!(
                    "`{kind}` needs a hop count: `{kind}:<x-forwarded-for|forwarded>:<n>`"
                ))
            })?;
            let count = count
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(NonZeroUsize::new)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "`{kind}` needs a hop count of at least 1, got `{count}`"
                    ))
                })?;
            Ok(ClientIpSource::rightmost_trusted_count(list, count))
        }
        ("rightmost-non-private" | "leftmost-non-private", Some(rest)) => {
            let (list, extra) = list_and(kind, rest)?;
            if let Some(extra) = extra {
                return Err(ConfigError::new(format!(
                    "`{kind}` takes only a header, unexpected `:{extra}`"
                )));
            }
            Ok(if kind == "rightmost-non-private" {
                ClientIpSource::rightmost_non_private(list)
            } else {
                ClientIpSource::leftmost_non_private(list)
            })
        }
        ("remote-addr" | "cloudflare", Some(_)) => Err(ConfigError::new(format!(
            "`{kind}` takes no arguments, got `{text}`"
        ))),
        (
            "header"
            | "rightmost-trusted-range"
            | "rightmost-trusted-count"
            | "rightmost-non-private"
            | "leftmost-non-private",
            None,
        ) => Err(ConfigError::new(format!(
            "`{kind}` needs arguments after `:`; {EXPECTED}"
        ))),
        _ => Err(ConfigError::new(format!(
            "unknown client IP source `{text}`; {EXPECTED}"
        ))),
    }
}

/// `<x-forwarded-for|forwarded>[:<rest>]`.
fn list_and<'a>(kind: &str, rest: &'a str) -> Result<(ListHeader, Option<&'a str>), ConfigError> {
    let (list, more) = match rest.split_once(':') {
        Some((list, more)) => (list, Some(more)),
        None => (rest, None),
    };
    let list = ListHeader::parse(list.trim()).ok_or_else(|| {
        ConfigError::new(format!(
            "`{kind}` reads `x-forwarded-for` or `forwarded`, got `{list}`"
        ))
    })?;
    Ok((list, more))
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for ClientIpSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
