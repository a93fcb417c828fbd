//! Task classification: which category a request belongs to.
//!
//! The built-in [`RuleClassifier`] is deterministic and allocation-free:
//! an explicit tag wins (`[plan] ...`), then the context (a scheduled run is
//! a heartbeat; a read-only task is a review), then keyword heuristics, then
//! `daily`.

use serde::{Deserialize, Serialize};

use crate::config::Category;

/// What the caller knows about a task besides its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    /// Started by a schedule, not a person.
    pub scheduled: bool,
    /// The task may only read (no edits, no writes).
    pub read_only: bool,
}

/// Why a category was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The caller named it.
    Explicit,
    /// A `[tag]` at the start of the prompt.
    Tag,
    /// The task context.
    Context,
    /// Keywords in the prompt.
    Keywords,
    /// Nothing matched.
    Default,
}

/// A classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// The category.
    pub category: Category,
    /// Why.
    pub basis: Basis,
}

/// Decides a request's category.
pub trait TaskClassifier: Send + Sync {
    /// Classifies `prompt` in `ctx`.
    fn classify(&self, prompt: &str, ctx: TaskContext) -> Classification;
}

/// The built-in deterministic classifier.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleClassifier;

const TAGS: &[(&str, Category)] = &[
    ("heartbeat", Category::Heartbeat),
    ("hb", Category::Heartbeat),
    ("daily", Category::Daily),
    ("plan", Category::Planning),
    ("planning", Category::Planning),
    ("code", Category::Coding),
    ("coding", Category::Coding),
    ("review", Category::Review),
];

fn keyword(word: &str) -> Option<(Category, u8)> {
    // Lowercase into a stack buffer, then one `match` the compiler turns
    // into a length-and-bytes decision tree: no allocation, no scan of a list.
    let mut buf = [0u8; 12];
    let bytes = word.as_bytes();
    let lower = buf.get_mut(..bytes.len())?;
    for (d, s) in lower.iter_mut().zip(bytes) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &*lower {
        b"review" | b"audit" | b"critique" | b"proofread" | b"assess" | b"evaluate"
        | b"feedback" | b"lint" => (Category::Review, 3),
        b"plan" | b"planning" | b"roadmap" | b"strategy" | b"design" | b"architecture"
        | b"milestones" | b"steps" | b"schedule" | b"prioritize" | b"prioritise" | b"outline" => {
            (Category::Planning, 2)
        }
        b"code" | b"function" | b"bug" | b"bugs" | b"compile" | b"compiler" | b"refactor"
        | b"implement" | b"rust" | b"python" | b"javascript" | b"typescript" | b"regex"
        | b"stacktrace" | b"traceback" | b"api" | b"unittest" | b"test" | b"tests" | b"debug"
        | b"script" | b"sql" | b"class" | b"struct" | b"loop" | b"loops" | b"variable"
        | b"variables" | b"array" | b"pointer" | b"segfault" | b"panic" | b"exception"
        | b"recursion" | b"algorithm" | b"method" | b"module" | b"syntax" | b"crash" | b"java"
        | b"golang" | b"kotlin" | b"swift" | b"bash" | b"shell" | b"dockerfile" | b"endpoint"
        | b"iterator" | b"closure" | b"null" | b"typo" | b"lambda" | b"async" | b"html"
        | b"css" | b"json" | b"yaml" | b"git" | b"merge" | b"commit" => (Category::Coding, 2),
        b"fix" | b"fixing" | b"error" | b"errors" | b"index" | b"build" => (Category::Coding, 1),
        b"heartbeat" | b"ping" | b"status" | b"healthcheck" | b"uptime" => (Category::Heartbeat, 1),
        _ => return None,
    })
}

/// Splits a leading `[tag]` off a prompt: `([tag], rest)`.
pub fn split_tag(prompt: &str) -> Option<(Category, &str)> {
    let p = prompt.trim_start();
    let rest = p.strip_prefix('[')?;
    let end = rest.find(']')?;
    let tag = rest[..end].trim();
    TAGS.iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(tag))
        .map(|(_, c)| (*c, rest[end + 1..].trim_start()))
}

impl TaskClassifier for RuleClassifier {
    fn classify(&self, prompt: &str, ctx: TaskContext) -> Classification {
        if let Some((category, _)) = split_tag(prompt) {
            return Classification {
                category,
                basis: Basis::Tag,
            };
        }
        if ctx.scheduled {
            return Classification {
                category: Category::Heartbeat,
                basis: Basis::Context,
            };
        }
        if ctx.read_only {
            return Classification {
                category: Category::Review,
                basis: Basis::Context,
            };
        }
        // Fenced code is the strongest hint there is.
        if prompt.contains("```") {
            return Classification {
                category: Category::Coding,
                basis: Basis::Keywords,
            };
        }
        let mut score = [0u8; 5];
        // Code-shaped text: off-by-one, `a::b`, `f(x)`, `x == y`, `a -> b`.
        let lower_has = |needle: &str| {
            prompt
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        };
        if lower_has("off-by-one")
            || prompt.contains("::")
            || prompt.contains("()")
            || prompt.contains(" == ")
            || prompt.contains("->")
        {
            score[Category::Coding as usize] = 3;
        }
        for word in prompt
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| (2..=12).contains(&w.len()))
        {
            if let Some((c, w)) = keyword(word) {
                let i = c as usize;
                score[i] = score[i].saturating_add(w);
            }
        }
        let (best, &s) = score
            .iter()
            .enumerate()
            .max_by_key(|(i, s)| (**s, std::cmp::Reverse(*i)))
            .unwrap_or((1, &0));
        if s == 0 {
            return Classification {
                category: Category::Daily,
                basis: Basis::Default,
            };
        }
        Classification {
            category: Category::ALL[best],
            basis: Basis::Keywords,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> Category {
        RuleClassifier.classify(p, TaskContext::default()).category
    }

    #[test]
    fn tags_win_over_everything() {
        let r = RuleClassifier.classify(
            "[plan] fix this bug",
            TaskContext {
                scheduled: true,
                read_only: true,
            },
        );
        assert_eq!((r.category, r.basis), (Category::Planning, Basis::Tag));
        assert_eq!(
            split_tag("  [Heartbeat]  all good?"),
            Some((Category::Heartbeat, "all good?"))
        );
        assert_eq!(split_tag("[unknown] x"), None);
    }

    #[test]
    fn context_then_keywords_then_daily() {
        let sched = TaskContext {
            scheduled: true,
            ..Default::default()
        };
        assert_eq!(
            RuleClassifier.classify("anything", sched).category,
            Category::Heartbeat
        );
        let ro = TaskContext {
            read_only: true,
            ..Default::default()
        };
        assert_eq!(
            RuleClassifier.classify("implement it", ro).category,
            Category::Review
        );
        assert_eq!(
            c("Implement a function that parses dates in Rust"),
            Category::Coding
        );
        assert_eq!(
            c("Draft a roadmap and milestones for Q3"),
            Category::Planning
        );
        assert_eq!(c("Please review this paragraph"), Category::Review);
        assert_eq!(c("```\nfn main() {}\n```"), Category::Coding);
        // Issue 14, defect 9: the README's own example.
        assert_eq!(c("Fix the off-by-one in this loop"), Category::Coding);
        assert_eq!(c("why does parse() return None here"), Category::Coding);
        assert_eq!(c("what should I cook tonight"), Category::Daily);
        assert_eq!(c("review my essay"), Category::Review);
        assert_eq!(c("What's a good name for a cat?"), Category::Daily);
    }
}
