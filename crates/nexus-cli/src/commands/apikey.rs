//! `nexus apikey ...`: keys for the gateway. The store is `nexus_gateway::keys`.

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
