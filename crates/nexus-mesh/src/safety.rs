//! Safety numbers: Signal's numeric fingerprint, so two people can compare
//! 60 digits and know they hold each other's real keys.
//!
//! For each side: `hash = version(0, 2 bytes BE) ‖ key ‖ stable id`, then
//! 5,200 times `hash = SHA-512(hash ‖ key)`; the first 30 bytes become six
//! 5-digit groups (each 5 bytes, big-endian, mod 100,000). The two 30-digit
//! halves are ordered so both sides print the same 60 digits. Unlike the
//! seed system's scheme, every group is a uniform reduction of 40 bits,
//! so no digit is biased beyond 2⁻²³.

use ring::digest::{Context, SHA512};

/// Iterations, as in Signal.
pub const ITERATIONS: u32 = 5200;

fn half(key: &[u8], stable_id: &[u8], iterations: u32) -> String {
    let mut hash = Vec::with_capacity(2 + key.len() + stable_id.len());
    hash.extend_from_slice(&0u16.to_be_bytes());
    hash.extend_from_slice(key);
    hash.extend_from_slice(stable_id);
    for _ in 0..iterations {
        let mut c = Context::new(&SHA512);
        c.update(&hash);
        c.update(key);
        hash = c.finish().as_ref().to_vec();
    }
    let mut out = String::with_capacity(30);
    for chunk in hash[..30].chunks(5) {
        let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

/// The 60-digit safety number of two (key, stable id) pairs; the same
/// whichever side computes it.
pub fn safety_number(
    local_key: &[u8],
    local_id: &[u8],
    remote_key: &[u8],
    remote_id: &[u8],
) -> String {
    let a = half(local_key, local_id, ITERATIONS);
    let b = half(remote_key, remote_id, ITERATIONS);
    if a <= b {
        a + &b
    } else {
        b + &a
    }
}

/// Groups of five digits, four groups a line, as people read them aloud.
pub fn format_groups(digits: &str) -> String {
    let groups: Vec<&str> = digits
        .as_bytes()
        .chunks(5)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    groups
        .chunks(4)
        .map(|l| l.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::unhex;

    /// libsignal's published known-answer vector (NumericFingerprintGenerator,
    /// 5200 iterations).
    #[test]
    fn signal_known_answer_vector() {
        let alice =
            unhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868").unwrap();
        let bob =
            unhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b").unwrap();
        let expected = "300354477692869396892869876765458257569162576843440918079131";
        assert_eq!(
            safety_number(&alice, b"+14152222222", &bob, b"+14153333333"),
            expected
        );
        assert_eq!(
            safety_number(&bob, b"+14153333333", &alice, b"+14152222222"),
            expected
        );
        assert_ne!(
            safety_number(&alice, b"+14152222222", &bob, b"+14153333334"),
            expected
        );
    }

    #[test]
    fn grouping() {
        let g = format_groups("300354477692869396892869876765458257569162576843440918079131");
        assert_eq!(g.lines().count(), 3);
        assert!(g.starts_with("30035 44776 92869 39689"));
    }
}
