//! The model hierarchy: task categories, each with ordered tiers of models.
//!
//! This crate grows the escalation engine, presets and the cost ledger; today
//! it holds the category and tier types the rest builds on.

use serde::{Deserialize, Serialize};

/// What kind of work a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Scheduled check-ins: cheapest and fastest.
    Heartbeat,
    /// Everyday questions.
    Daily,
    /// Multi-step planning.
    Planning,
    /// Writing code.
    Coding,
    /// Reviewing work.
    Review,
}

impl Category {
    /// Every category, in order.
    pub const ALL: [Category; 5] = [
        Category::Heartbeat,
        Category::Daily,
        Category::Planning,
        Category::Coding,
        Category::Review,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Heartbeat => "heartbeat",
            Category::Daily => "daily",
            Category::Planning => "planning",
            Category::Coding => "coding",
            Category::Review => "review",
        }
    }
}

impl std::str::FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown category `{s}`; use heartbeat, daily, planning, coding or review")
            })
    }
}

/// One rung of a category's ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// `provider/model` or a catalog id.
    pub model: String,
    /// Caps the answer's length at this tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Skips this tier when the estimated cost is higher (USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_request: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_parse_case_insensitively() {
        assert_eq!("Coding".parse::<Category>(), Ok(Category::Coding));
        assert!("cooking".parse::<Category>().is_err());
    }
}
