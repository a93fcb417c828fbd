//! The action policy: first-match rules `{resource, verb, mesh?, peer?,
//! decision, reason}` from the user's `policy.yaml`, under an admin policy
//! that wins when present, and an approval mode (`plan`, `read-only`,
//! `write`, `yolo`) that bounds what any rule allows. Pure: the files are
//! read elsewhere; this decides.
//!
//! ```yaml
//! rules:
//!   - {resource: messages, verb: send, peer: "ci-*", decision: deny, reason: "CI bots do not take DMs"}
//!   - {resource: "*", verb: read, decision: allow, reason: reading is fine}
//! ```
//!
//! `resource`, `verb`, `mesh` and `peer` match exactly, or with `*` as a
//! wildcard (`mesh.*`, `ci-*`); an absent `mesh`/`peer` matches any.
//! Nothing matching means `prompt`. A `prompt` with no one to ask is a deny.

use serde::{Deserialize, Serialize};

/// The longest policy file read, bytes.
pub const MAX_POLICY: usize = 256 * 1024;
/// The most rules a file may hold.
pub const MAX_RULES: usize = 1000;

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Ask the user (a deny where no one can be asked).
    Prompt,
    /// Refuse.
    Deny,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// What is acted on: `messages`, `topics`, `peers`, `store`, `models`, `files`, `exec`, `*`.
    pub resource: String,
    /// The action: `read`, `send`, `write`, `admin`, `*`, or a verb name.
    pub verb: String,
    /// Only in this mesh.
    #[serde(default)]
    pub mesh: Option<String>,
    /// Only for this peer.
    #[serde(default)]
    pub peer: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// Why, shown to whoever is refused.
    #[serde(default)]
    pub reason: String,
}

/// A policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// First match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Why a policy file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// Parses a policy file's YAML (bounded in size and rule count).
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY {
            return Err(PolicyError(format!(
                "a policy file is at most {} KiB",
                MAX_POLICY / 1024
            )));
        }
        if text.trim().is_empty() {
            return Ok(Policy::default());
        }
        let p: Policy =
            serde_norway::from_str(text).map_err(|e| PolicyError(format!("not a policy: {e}")))?;
        if p.rules.len() > MAX_RULES {
            return Err(PolicyError(format!(
                "a policy holds at most {MAX_RULES} rules"
            )));
        }
        for (i, r) in p.rules.iter().enumerate() {
            if r.resource.is_empty() || r.verb.is_empty() {
                return Err(PolicyError(format!(
                    "rule {}: resource and verb are required",
                    i + 1
                )));
            }
        }
        Ok(p)
    }
}

/// How much the agent may do on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMode {
    /// Nothing that acts: reads only, and they still follow the rules.
    Plan,
    /// Reads as the rules say; every write is denied.
    ReadOnly,
    /// The rules as written (the default).
    #[default]
    Write,
    /// Prompts become allows; denies still deny.
    Yolo,
}

impl std::str::FromStr for ApprovalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ApprovalMode, String> {
        match s {
            "plan" => Ok(ApprovalMode::Plan),
            "read-only" => Ok(ApprovalMode::ReadOnly),
            "write" => Ok(ApprovalMode::Write),
            "yolo" => Ok(ApprovalMode::Yolo),
            o => Err(format!(
                "unknown approval mode `{o}`: plan, read-only, write or yolo"
            )),
        }
    }
}

/// An action to decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// What is acted on.
    pub resource: &'a str,
    /// The action.
    pub verb: &'a str,
    /// The mesh, if any.
    pub mesh: Option<&'a str>,
    /// The peer, if any.
    pub peer: Option<&'a str>,
}

impl Action<'_> {
    /// Whether the action only reads.
    pub fn reads(&self) -> bool {
        matches!(
            self.verb,
            "read" | "list" | "history" | "peers" | "get" | "stream"
        )
    }
}

/// Where a verdict came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Source {
    /// A rule of the admin policy (1-based).
    Admin(usize),
    /// A rule of the user's policy (1-based).
    User(usize),
    /// The approval mode.
    Mode,
    /// No rule matched.
    Default,
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// Where it came from.
    pub source: Source,
}

/// `pattern` matches `value` exactly, or with `*` standing for any run.
pub fn glob(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() || !value.ends_with(last)
    {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn matches(rule: &Rule, a: &Action<'_>) -> bool {
    let opt = |p: &Option<String>, v: Option<&str>| match p {
        None => true,
        Some(p) => v.is_some_and(|v| glob(p, v)),
    };
    glob(&rule.resource, a.resource)
        && glob(&rule.verb, a.verb)
        && opt(&rule.mesh, a.mesh)
        && opt(&rule.peer, a.peer)
}

fn first(policy: Option<&Policy>, a: &Action<'_>) -> Option<(usize, Rule)> {
    policy?
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| matches(r, a))
        .map(|(i, r)| (i + 1, r.clone()))
}

/// Decides `action`: the admin policy's first match, else the user's, else
/// prompt; then the approval mode bounds it.
pub fn decide(
    admin: Option<&Policy>,
    user: Option<&Policy>,
    mode: ApprovalMode,
    action: &Action<'_>,
) -> Verdict {
    let ruled = match (first(admin, action), first(user, action)) {
        (Some((i, r)), _) => Verdict {
            decision: r.decision,
            reason: r.reason,
            source: Source::Admin(i),
        },
        (None, Some((i, r))) => Verdict {
            decision: r.decision,
            reason: r.reason,
            source: Source::User(i),
        },
        (None, None) => Verdict {
            decision: Decision::Prompt,
            reason: "no rule matches; the user decides".into(),
            source: Source::Default,
        },
    };
    let admin_rule = matches!(ruled.source, Source::Admin(_));
    match mode {
        ApprovalMode::Plan | ApprovalMode::ReadOnly if !action.reads() => Verdict {
            decision: Decision::Deny,
            reason: format!(
                "approval mode `{}` allows no {} of {}",
                if mode == ApprovalMode::Plan {
                    "plan"
                } else {
                    "read-only"
                },
                action.verb,
                action.resource
            ),
            source: Source::Mode,
        },
        ApprovalMode::Yolo if ruled.decision == Decision::Prompt && !admin_rule => Verdict {
            decision: Decision::Allow,
            reason: format!("approval mode `yolo` ({})", ruled.reason),
            source: Source::Mode,
        },
        _ => ruled,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn act<'a>(resource: &'a str, verb: &'a str, peer: Option<&'a str>) -> Action<'a> {
        Action {
            resource,
            verb,
            mesh: Some("team"),
            peer,
        }
    }

    #[test]
    fn first_match_admin_wins_and_modes_bound() {
        let user = Policy::from_yaml(
            "rules:\n  - {resource: messages, verb: send, peer: 'ci-*', decision: deny, reason: no DMs to bots}\n  - {resource: messages, verb: send, decision: allow, reason: chat freely}\n  - {resource: '*', verb: read, decision: allow}\n",
        )
        .unwrap();
        let admin = Policy::from_yaml("rules:\n  - {resource: exec, verb: '*', decision: deny, reason: company rule}\n  - {resource: store, verb: write, decision: prompt, reason: ask first}\n").unwrap();
        let w = ApprovalMode::Write;
        let v = decide(
            Some(&admin),
            Some(&user),
            w,
            &act("messages", "send", Some("ci-runner")),
        );
        assert_eq!(
            (v.decision, v.source.clone()),
            (Decision::Deny, Source::User(1))
        );
        assert_eq!(v.reason, "no DMs to bots");
        assert_eq!(
            decide(
                Some(&admin),
                Some(&user),
                w,
                &act("messages", "send", Some("bob"))
            )
            .decision,
            Decision::Allow
        );
        let v = decide(
            Some(&admin),
            Some(&user),
            ApprovalMode::Yolo,
            &act("exec", "run", None),
        );
        assert_eq!(
            (v.decision, v.source),
            (Decision::Deny, Source::Admin(1)),
            "yolo never lifts a deny"
        );
        let v = decide(
            Some(&admin),
            Some(&user),
            ApprovalMode::Yolo,
            &act("store", "write", None),
        );
        assert_eq!(v.decision, Decision::Prompt, "nor an admin prompt");
        assert_eq!(
            decide(None, None, ApprovalMode::Yolo, &act("topics", "send", None)).decision,
            Decision::Allow
        );
        assert_eq!(
            decide(None, None, w, &act("topics", "send", None)).decision,
            Decision::Prompt
        );
        let v = decide(
            None,
            Some(&user),
            ApprovalMode::ReadOnly,
            &act("messages", "send", Some("bob")),
        );
        assert_eq!((v.decision, v.source), (Decision::Deny, Source::Mode));
        assert_eq!(
            decide(
                None,
                Some(&user),
                ApprovalMode::Plan,
                &act("topics", "read", None)
            )
            .decision,
            Decision::Allow
        );
    }

    #[test]
    fn globs_and_bad_files() {
        assert!(
            glob("*", "")
                && glob("mesh.*", "mesh.send")
                && glob("a*c", "abbc")
                && glob("*x*", "axb")
        );
        assert!(!glob("mesh.*", "mesh") && !glob("a*c", "ab") && !glob("ci-*", "prod"));
        assert!(Policy::from_yaml("rules: [{resource: x}]").is_err());
        assert!(Policy::from_yaml("rules:\n  - {resource: x, verb: y, decision: maybe}").is_err());
        assert!(Policy::from_yaml("nope: 1").is_err());
        assert!(Policy::from_yaml(&"x".repeat(MAX_POLICY + 1)).is_err());
        assert_eq!(Policy::from_yaml("").unwrap(), Policy::default());
        assert_eq!(
            "read-only".parse::<ApprovalMode>().unwrap(),
            ApprovalMode::ReadOnly
        );
    }
}
