//! The Punycode encoder of RFC 3492, used to turn internationalised host labels into the
//! `xn--` form browsers put into the `Origin` header.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

/// RFC 3492 section 6.1.
fn adapt(mut delta: u32, num_points: u32, first_time: bool) -> u32 {
    delta /= if first_time { DAMP } else { 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (((BASE - T_MIN + 1) * delta) / (delta + SKEW))
}

/// The base-36 digits: `a`-`z` are 0-25, `0`-`9` are 26-35.
const DIGITS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The digit `d` (always below 36 in the algorithm).
fn digit(d: u32) -> char {
    char::from(DIGITS[d as usize % DIGITS.len()])
}

/// Encodes `input` (one label, already lowercased) without the `xn--` prefix. `None` on
/// arithmetic overflow, which only absurdly long labels reach.
pub(crate) fn encode(input: &[char]) -> Option<String> {
    let mut output: String = input.iter().filter(|c| c.is_ascii()).collect();
    let basic = u32::try_from(output.len()).ok()?;
    if basic > 0 {
        output.push('-');
    }
    let total = u32::try_from(input.len()).ok()?;
    let mut n = INITIAL_N;
    let mut delta: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut handled = basic;
    while handled < total {
        // The smallest code point not yet handled.
        let m = input.iter().map(|&c| c as u32).filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in input {
            let c = c as u32;
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::encode;

    fn enc(s: &str) -> String {
        encode(&s.chars().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn rfc_3492_and_well_known_labels() {
        assert_eq!(enc("bücher"), "bcher-kva");
        assert_eq!(enc("münchen"), "mnchen-3ya");
        assert_eq!(enc("mañana"), "maana-pta");
        assert_eq!(enc("пример"), "e1afmkfd");
        assert_eq!(enc("中国"), "fiqs8s");
        assert_eq!(enc("한국"), "3e0b707e");
        assert_eq!(enc("例え"), "r8jz45g");
        assert_eq!(enc("テスト"), "zckzah");
        // RFC 3492 section 7.1, sample (L), lowercased as hosts are.
        assert_eq!(enc("3年b組金八先生"), "3b-ww4c5e180e575a65lsy2b");
        // Sample (A), Arabic (Egyptian).
        assert_eq!(
            enc(
                "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}"
            ),
            "egbpdaj6bu4bxfgehfvwxn"
        );
        assert_eq!(enc("abc"), "abc-");
    }
}
