//! Exact money: US dollars held as an integer count of picodollars.
//!
//! Catalog prices are USD per million tokens with at most six decimals, so a
//! price is a whole number of microdollars per million tokens, and
//! `tokens × price` is a whole number of picodollars. Sums never round.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in US dollars, exact to the picodollar (10⁻¹² USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(u64);

const PICOS_PER_USD: u64 = 1_000_000_000_000;

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// From picodollars.
    pub const fn from_picos(picos: u64) -> Self {
        Usd(picos)
    }

    /// In picodollars.
    pub const fn picos(self) -> u64 {
        self.0
    }

    /// From a decimal dollar amount, rounded to the nearest picodollar.
    /// Negative and non-finite inputs become zero.
    pub fn from_dollars(dollars: f64) -> Self {
        if !dollars.is_finite() || dollars <= 0.0 {
            return Usd::ZERO;
        }
        Usd((dollars * PICOS_PER_USD as f64).round() as u64)
    }

    /// As a decimal dollar amount (for display and JSON).
    pub fn dollars(self) -> f64 {
        self.0 as f64 / PICOS_PER_USD as f64
    }

    /// The cost of `tokens` at `price` per million tokens. Exact.
    pub fn for_tokens(tokens: u64, price: PricePerMillion) -> Self {
        // price is in microdollars per 1M tokens == picodollars per token.
        Usd(tokens.saturating_mul(price.0))
    }

    /// Saturating sum.
    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// Saturating difference.
    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        self.saturating_add(rhs)
    }
}

impl std::ops::AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        *self = self.saturating_add(rhs);
    }
}

impl std::iter::Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Usd::saturating_add)
    }
}

impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Up to six decimals, trailing zeros trimmed to at least cents:
        // $20.00, $1.2345, $0.000123.
        let s = format!("{:.6}", self.dollars());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let frac = frac.trim_end_matches('0');
        if frac.len() < 2 {
            write!(f, "${int}.{frac:0<2}")
        } else {
            write!(f, "${int}.{frac}")
        }
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Ok(Usd::from_dollars(v))
    }
}

/// A price in USD per million tokens, held as whole microdollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PricePerMillion(u64);

impl PricePerMillion {
    /// Free.
    pub const FREE: PricePerMillion = PricePerMillion(0);

    /// From dollars per million tokens (rounded to the microdollar).
    pub fn from_dollars(dollars: f64) -> Self {
        if !dollars.is_finite() || dollars <= 0.0 {
            return PricePerMillion(0);
        }
        PricePerMillion((dollars * 1_000_000.0).round() as u64)
    }

    /// As dollars per million tokens.
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Microdollars per million tokens (equivalently, picodollars per token).
    pub fn micros(self) -> u64 {
        self.0
    }
}

impl Serialize for PricePerMillion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for PricePerMillion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || v < 0.0 {
            return Err(serde::de::Error::custom(
                "a price must be a non-negative number",
            ));
        }
        Ok(PricePerMillion::from_dollars(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_costs_are_exact() {
        // $0.075 per 1M tokens, 1 token: 0.075 microdollars = 75_000 picos.
        let p = PricePerMillion::from_dollars(0.075);
        assert_eq!(Usd::for_tokens(1, p).picos(), 75_000);
        // Summing a million single-token costs equals one million-token cost.
        let mut sum = Usd::ZERO;
        for _ in 0..1_000_000 {
            sum += Usd::for_tokens(1, p);
        }
        assert_eq!(sum, Usd::for_tokens(1_000_000, p));
        assert_eq!(sum, Usd::from_dollars(0.075));
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Usd::from_dollars(1.5).to_string(), "$1.50");
        assert_eq!(Usd::from_dollars(20.0).to_string(), "$20.00");
        assert_eq!(Usd::from_dollars(1.2345).to_string(), "$1.2345");
        assert_eq!(Usd::from_dollars(0.000123).to_string(), "$0.000123");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
    }
}
