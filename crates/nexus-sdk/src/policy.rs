//! The action policy on disk, and the audit log: what every frontend
//! (gateway, MCP, CLI) checks before it acts, and where each decision is
//! written. The deciding is `nexus_core::policy`'s; the chain is
//! `nexus_core::audit`'s.
//!
//! Files: the user's `NEXUS_HOME/policy.yaml`; the admin's, which wins, at
//! `NEXUS_ADMIN_POLICY` or `/etc/nexus/policy.yaml`; the log at
//! `NEXUS_HOME/logs/audit.jsonl` (0600), appended under a lock so two
//! processes never fork the chain.

use std::io::Write as _;
use std::path::PathBuf;

use nexus_core::audit::{Chain, Entry};
use nexus_core::policy::{decide, Action, ApprovalMode, Decision, Policy, PolicyError, Verdict};
use nexus_core::{Clock, NexusHome, SystemClock};

/// The policies in force.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// The admin's, if any.
    pub admin: Option<Policy>,
    /// The user's, if any.
    pub user: Option<Policy>,
    /// Where the admin's came from.
    pub admin_path: Option<PathBuf>,
}

fn read(path: &std::path::Path) -> Result<Option<Policy>, PolicyError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Policy::from_yaml(&t)
            .map(Some)
            .map_err(|e| PolicyError(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PolicyError(format!("{}: {e}", path.display()))),
    }
}

/// The admin policy's path.
pub fn admin_path() -> PathBuf {
    std::env::var_os("NEXUS_ADMIN_POLICY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/nexus/policy.yaml"))
}

impl Policies {
    /// Loads both files of `home`. A file that does not parse is an error:
    /// a broken policy must not silently allow.
    pub fn load(home: &NexusHome) -> Result<Policies, PolicyError> {
        let admin_path = admin_path();
        Ok(Policies {
            admin: read(&admin_path)?,
            user: read(&home.join("policy.yaml"))?,
            admin_path: Some(admin_path),
        })
    }

    /// Decides `action` under `mode`.
    pub fn decide(&self, mode: ApprovalMode, action: &Action<'_>) -> Verdict {
        decide(self.admin.as_ref(), self.user.as_ref(), mode, action)
    }
}

/// The audit log of a home.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// `home`'s log.
    pub fn of(home: &NexusHome) -> AuditLog {
        AuditLog {
            path: home.join("logs").join("audit.jsonl"),
        }
    }

    /// Its file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends a decision, chained to the last line (under a lock).
    pub fn record(
        &self,
        actor: &str,
        action: &Action<'_>,
        verdict: &Verdict,
    ) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            nexus_core::private_dir(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true).read(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&self.path)?;
        f.lock()?;
        let text = std::fs::read_to_string(&self.path)?;
        let mut chain = Chain::resume(&text);
        let decision = match verdict.decision {
            Decision::Allow => "allow",
            Decision::Prompt => "prompt",
            Decision::Deny => "deny",
        };
        let line = chain.line(Entry {
            at_ms: SystemClock.now_millis(),
            actor: actor.to_string(),
            resource: action.resource.to_string(),
            verb: action.verb.to_string(),
            decision: decision.to_string(),
            reason: verdict.reason.clone(),
            detail: serde_json::json!({"mesh": action.mesh, "peer": action.peer}),
            prev: String::new(),
            hash: String::new(),
        });
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }

    /// Checks the chain: the number of entries, or where it breaks.
    pub fn verify(&self) -> Result<usize, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.to_string()),
        };
        nexus_core::audit::verify(&text).map_err(|b| b.to_string())
    }
}

/// Decides `action` for `actor`, a caller already holding a grant (an API
/// key's scope, the user's own MCP session) with no one to ask: no
/// matching rule leaves the grant in force, a `prompt` rule is a deny.
/// The decision is written to the audit log; a failed write is returned
/// beside it (the decision stands). With no policy file and the default
/// mode nothing is decided (the grant stands) and nothing is written: no
/// fsync on every request of a gateway or MCP session that has no policy.
pub fn check_unattended(
    home: &NexusHome,
    policies: &Policies,
    mode: ApprovalMode,
    actor: &str,
    action: &Action<'_>,
) -> (Verdict, std::io::Result<()>) {
    if policies.admin.is_none() && policies.user.is_none() && mode == ApprovalMode::Write {
        let v = Verdict {
            decision: Decision::Allow,
            reason: "no policy in force; the caller's grant decides".into(),
            source: nexus_core::policy::Source::Default,
        };
        return (v, Ok(()));
    }
    let mut v = policies.decide(mode, action);
    if v.decision == Decision::Prompt {
        if v.source == nexus_core::policy::Source::Default {
            v.decision = Decision::Allow;
            v.reason = "no rule matches; the caller's grant decides".into();
        } else {
            v.decision = Decision::Deny;
            v.reason = format!("{} (a rule asks, and no one is here to answer)", v.reason);
        }
    }
    let written = AuditLog::of(home).record(actor, action, &v);
    (v, written)
}
