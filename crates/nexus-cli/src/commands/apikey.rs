//! `nexus apikey ...`: keys for the gateway (the store is
//! `nexus_gateway::keys`); `nexus policy explain` and `nexus audit verify`
//! (the policy and the chain are `nexus_core`'s, the files `nexus_sdk`'s).

use nexus_core::{Clock, NexusHome, SystemClock};
use nexus_gateway::keys::{self, KeyStore, NewKey, Scope};
use serde_json::json;

use crate::cli::ApikeyCommand;
use crate::exit::CliError;
use crate::output;

fn key_err(e: keys::KeyError) -> CliError {
    match e {
        keys::KeyError::Io(_) => CliError::internal(e.to_string()),
        _ => CliError::config(e.to_string()),
    }
}

fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub(crate) fn run(cmd: ApikeyCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    let store = KeyStore::at(nexus_gateway::key_file(&home));
    let now = SystemClock.now_millis();
    match cmd {
        ApikeyCommand::Create {
            mesh,
            scopes,
            topics,
            expires,
            label,
            json,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| s.trim().parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(CliError::config)?;
            let ttl = keys::parse_ttl(&expires).map_err(CliError::config)?;
            let (secret, key) = store
                .create(
                    &NewKey {
                        mesh,
                        scopes,
                        topics: topics.into_iter().filter(|t| !t.is_empty()).collect(),
                        ttl_ms: Some(ttl),
                        label,
                    },
                    now,
                )
                .map_err(key_err)?;
            if json {
                return output::json(&json!({"id": key.id, "key": secret, "mesh": key.mesh,
                    "scopes": key.scopes, "topics": key.topics, "expires_ms": key.expires_ms}));
            }
            eprintln!(
                "API key {} for mesh {} ({}), until {}; shown once, keep it:",
                key.id,
                key.mesh,
                key.scopes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                when(key.expires_ms)
            );
            output::print_str(&format!("{secret}\n"))
        }
        ApikeyCommand::List { json } => {
            let all = store.all().map_err(key_err)?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|k| {
                        json!({"id": k.id, "prefix": k.prefix, "mesh": k.mesh, "scopes": k.scopes,
                        "topics": k.topics, "label": k.label, "created_ms": k.created_ms,
                        "expires_ms": k.expires_ms, "revoked": k.revoked, "live": k.live(now)})
                    })
                    .collect();
                return output::json(&rows);
            }
            if all.is_empty() {
                return output::print_str(
                    "no API keys; `nexus apikey create --mesh M --scopes read` makes one\n",
                );
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        format!("nxk_{}…", k.prefix),
                        k.mesh.clone(),
                        k.scopes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        if k.revoked {
                            "revoked".into()
                        } else if k.live(now) {
                            format!("until {}", when(k.expires_ms))
                        } else {
                            "expired".into()
                        },
                        k.label.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "KEY", "MESH", "SCOPES", "STATE", "LABEL"], &rows)
        }
        ApikeyCommand::Local => {
            let config = nexus_core::Config::load(&home)?;
            let (vault, _) = super::vault::open(&home, &config)?;
            match vault.get("gateway/local-key")? {
                Some(k) => output::print_str(&format!("{}\n", k.expose())),
                None => Err(CliError::config(
                    "no local key yet: nexusd makes it when its gateway starts (`nexus daemon start`)",
                )),
            }
        }
        ApikeyCommand::Revoke { id } => {
            let was = store.revoke(&id).map_err(key_err)?;
            eprintln!(
                "{}",
                if was {
                    format!("revoked {id}")
                } else {
                    format!("{id} was already revoked")
                }
            );
            Ok(())
        }
    }
}

pub(crate) fn policy(cmd: crate::cli::ActionPolicyCommand) -> Result<(), CliError> {
    let crate::cli::ActionPolicyCommand::Explain {
        resource,
        verb,
        mesh,
        peer,
        approval_mode,
        json,
    } = cmd;
    let home = NexusHome::from_env()?;
    let mode: nexus_core::policy::ApprovalMode = approval_mode.parse().map_err(CliError::config)?;
    let policies =
        nexus_sdk::policy::Policies::load(&home).map_err(|e| CliError::config(e.to_string()))?;
    let action = nexus_core::policy::Action {
        resource: &resource,
        verb: &verb,
        mesh: mesh.as_deref(),
        peer: peer.as_deref(),
    };
    let v = policies.decide(mode, &action);
    let from = match &v.source {
        nexus_core::policy::Source::Admin(i) => format!(
            "rule {i} of the admin policy ({})",
            policies
                .admin_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        nexus_core::policy::Source::User(i) => {
            format!("rule {i} of {}", home.join("policy.yaml").display())
        }
        nexus_core::policy::Source::Mode => format!("the approval mode `{approval_mode}`"),
        nexus_core::policy::Source::Default => "no rule matches".to_string(),
    };
    if json {
        return output::json(
            &json!({"decision": v.decision, "reason": v.reason, "source": v.source, "from": from}),
        );
    }
    output::print_str(&format!(
        "{}: {} ({from})\n",
        serde_json::to_value(v.decision)
            .ok()
            .and_then(|d| d.as_str().map(str::to_string))
            .unwrap_or_default(),
        v.reason
    ))
}

pub(crate) fn audit(cmd: crate::cli::AuditCommand) -> Result<(), CliError> {
    let crate::cli::AuditCommand::Verify { json } = cmd;
    let home = NexusHome::from_env()?;
    let log = nexus_sdk::policy::AuditLog::of(&home);
    match log.verify() {
        Ok(n) => {
            if json {
                return output::json(&json!({"ok": true, "entries": n, "file": log.path()}));
            }
            output::print_str(&format!(
                "the audit log holds {n} entries, chain intact ({})\n",
                log.path().display()
            ))
        }
        Err(e) => {
            if json {
                output::json(&json!({"ok": false, "error": e, "file": log.path()}))?;
            }
            Err(CliError::new(crate::exit::Class::Auth, e))
        }
    }
}
