//! `nexus mesh ...` and `nexus up`.

use std::time::Duration;

use nexus_core::{Config, NexusHome};
use nexus_mesh::peer::{Incoming, Peer};
use serde_json::json;

use crate::cli::{MeshArgs, MeshCommand, PresenceCommand, TopicCommand};
use crate::exit::CliError;
use crate::output;

/// Runs the broker under NEXUS_HOME until Ctrl-C or SIGTERM, with the
/// limits of config.toml's `[broker]` table under the flags.
pub(crate) async fn up(serve: &nexus_broker::ServeArgs) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    home.ensure()?;
    let config = Config::load(&home)?;
    // `durability` sits in the same [broker] table as the limits.
    let mut table: toml::Table = config.section("broker")?;
    let durability = match table.remove("durability") {
        Some(toml::Value::String(s)) => Some(s),
        Some(other) => {
            return Err(CliError::config(format!(
                "broker.durability is `{other}`; use \"full\" or \"normal\""
            )))
        }
        None => None,
    };
    let base: nexus_mesh::broker::Limits = toml::Value::Table(table)
        .try_into()
        .map_err(|e| CliError::config(format!("the [broker] table of config.toml: {e}")))?;
    let limits = serve.limits(base)?;
    let options = serve.options(durability.as_deref())?;
    let line = nexus_broker::describe(&limits, &options);
    let db = home.join("broker.db");
    let stop = nexus_broker::shutdown_signal();
    let (url, task) = nexus_mesh::server::start(&serve.listen, &db, limits, options).await?;
    output::print_str(&format!(
        "Nexus mesh broker listening on {url}\n  database: {}\n  {}\n\nConnect from any machine that can reach it:\n  nexus mesh create team --broker {url} --name YOUR_NAME\n  nexus mesh invite            # prints a nexus://join/... link for others\n  nexus mesh join LINK --name THEIR_NAME\n\nCtrl-C stops the broker; messages already accepted are kept in the database.\n",
        db.display(),
        line
    ))?;
    tokio::select! {
        _ = task => {}
        why = stop => eprintln!("stopping the broker ({why})"),
    }
    Ok(())
}

fn parse_duration(s: &str) -> Result<Duration, CliError> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n
        .parse()
        .map_err(|_| CliError::config(format!("`{s}` is not a duration like 30m, 24h or 7d")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(CliError::config(format!(
                "`{s}` is not a duration like 30m, 24h or 7d"
            )))
        }
    };
    Ok(Duration::from_secs(secs))
}

fn passphrase(what: &str, confirm: bool) -> Result<String, CliError> {
    if let Ok(p) = std::env::var("NEXUS_BACKUP_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password(format!("{what}: ")).map_err(|e| {
        CliError::config(format!(
            "set NEXUS_BACKUP_PASSPHRASE or run in a terminal ({e})"
        ))
    })?;
    if confirm && rpassword::prompt_password("Repeat it: ").ok().as_deref() != Some(p.as_str()) {
        return Err(CliError::config("the passphrases differ"));
    }
    Ok(p)
}

/// Prints one inbox item; an error (stdout closed) leaves it unread.
fn render(i: &Incoming, json: bool) -> std::io::Result<()> {
    if json {
        return output::write_str(&format!(
            "{}\n",
            serde_json::to_string(i).unwrap_or_default()
        ));
    }
    // The short peer id goes next to every name: names are unique in a
    // mesh, but a reader should not have to trust that.
    let short = |id: &str| id.chars().take(8).collect::<String>();
    let line = match i {
        Incoming::Dm {
            from,
            from_name,
            text,
            ..
        } => format!("[dm] {from_name} ({}): {text}\n", short(from)),
        Incoming::Topic {
            topic,
            from,
            from_name,
            text,
            ..
        } => format!("[#{topic}] {from_name} ({}): {text}\n", short(from)),
        Incoming::Notice { text } => format!("* {text}\n"),
    };
    output::write_str(&line)
}

pub(crate) async fn run(args: MeshArgs) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    home.ensure()?;
    let config = Config::load(&home)?;
    if let MeshCommand::Restore { file, force } = &args.command {
        let bytes = std::fs::read(file)
            .map_err(|e| CliError::config(format!("cannot read {}: {e}", file.display())))?;
        let (vault, _) = super::vault::open(&home, &config)?;
        let p = passphrase("Backup passphrase", false)?;
        let peer = Peer::restore(home, vault, &bytes, &p, *force)?;
        eprintln!(
            "restored {} ({}) with {} mesh(es)",
            peer.identity().name(),
            peer.identity().peer_id(),
            peer.state().meshes.len()
        );
        return Ok(());
    }
    let (vault, _) = super::vault::open(&home, &config)?;
    let alias = match &args.command {
        MeshCommand::Create { alias, .. } | MeshCommand::Join { alias, .. } => Some(alias.as_str()),
        _ => None,
    };
    let mut peer = Peer::load(home, vault, alias)?;
    match args.command {
        MeshCommand::Create { name, broker, .. } => {
            peer.create(&name, &broker).await?;
            output::print_str(&format!(
                "created mesh {name} on {broker} as {} ({})\ninvite others with: nexus mesh invite\n",
                peer.identity().name(),
                peer.identity().peer_id()
            ))
        }
        MeshCommand::Invite {
            expires,
            uses,
            role,
            json,
        } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let inv = peer
                .invite(&mesh, parse_duration(&expires)?, uses, &role)
                .await?;
            if json {
                return output::json(&json!({
                    "link": inv.link(), "code": inv.code(), "short_code": inv.short_code(),
                    "broker": inv.broker, "mesh": mesh, "expires_ms": inv.expires_ms, "uses": uses, "role": role,
                }));
            }
            eprintln!(
                "short code: {} (join with: nexus mesh join {} --broker {} --name NAME)",
                inv.short_code(),
                inv.short_code(),
                inv.broker
            );
            output::print_str(&format!("{}\n", inv.link()))
        }
        MeshCommand::Join { link, broker, .. } => {
            let mesh = peer.join(&link, broker.as_deref()).await?;
            let key = if peer.root(&mesh)?.is_some() {
                "the mesh key arrived"
            } else {
                "the mesh key arrives when the owner is next online (`nexus mesh inbox` picks it up)"
            };
            output::print_str(&format!(
                "joined {mesh} as {} ({}); {key}\n",
                peer.identity().name(),
                peer.identity().peer_id()
            ))
        }
        MeshCommand::Peers { json } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let peers = peer.peers(&mesh).await?;
            if json {
                return output::json(&peers);
            }
            let rows: Vec<Vec<String>> = peers
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.peer.clone(),
                        if p.blocked {
                            "blocked"
                        } else if p.online {
                            "online"
                        } else {
                            "offline"
                        }
                        .to_string(),
                        p.status.clone(),
                        p.summary.clone(),
                        p.caps.join(","),
                    ]
                })
                .collect();
            output::table(
                &["NAME", "PEER", "PRESENCE", "STATUS", "SUMMARY", "CAPS"],
                &rows,
            )
        }
        MeshCommand::Send { peer: to, text } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let id = peer.send(&mesh, &to, &text).await?;
            eprintln!("sent ({id})");
            Ok(())
        }
        MeshCommand::Inbox { json, follow } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let mut closed = None;
            let result = peer
                .inbox(&mesh, follow, &mut |i| {
                    render(i, json).map_err(|e| {
                        let m = nexus_mesh::MeshError::Io(format!("cannot write to stdout: {e}"));
                        closed = Some(e);
                        m
                    })
                })
                .await;
            match (result, closed) {
                // `inbox | head -1`: what was not printed stays unread.
                (Err(_), Some(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                (r, _) => r.map_err(Into::into),
            }
        }
        MeshCommand::Unread { json } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let counts = peer.unread(&mesh)?;
            if json {
                let m: serde_json::Map<String, serde_json::Value> =
                    counts.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
                return output::json(&m);
            }
            if counts.is_empty() {
                return output::print_str("nothing unread\n");
            }
            let rows: Vec<Vec<String>> = counts
                .iter()
                .map(|(k, n)| vec![k.clone(), n.to_string()])
                .collect();
            output::table(&["WHERE", "UNREAD"], &rows)
        }
        MeshCommand::Topic(t) => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            match t {
                TopicCommand::Create { name } | TopicCommand::Join { name } => {
                    peer.topic(&mesh, &name, true)?;
                    eprintln!("joined #{name}");
                    Ok(())
                }
                TopicCommand::Leave { name } => {
                    peer.topic(&mesh, &name, false)?;
                    eprintln!("left #{name}");
                    Ok(())
                }
                TopicCommand::List { json } => {
                    let topics = peer
                        .state()
                        .meshes
                        .get(&mesh)
                        .map(|m| m.topics.clone())
                        .unwrap_or_default();
                    if json {
                        return output::json(&topics);
                    }
                    output::print_str(&topics.iter().map(|t| format!("#{t}\n")).collect::<String>())
                }
                TopicCommand::Send { name, text } => {
                    let id = peer.publish(&mesh, &name, &text).await?;
                    eprintln!("published to #{name} ({id})");
                    Ok(())
                }
                TopicCommand::History {
                    name,
                    before,
                    limit,
                    json,
                } => {
                    let page = peer.history(&mesh, &name, before, limit).await?;
                    if json {
                        return output::json(
                            &page
                                .iter()
                                .map(|(s, i)| json!({"seq": s, "message": i}))
                                .collect::<Vec<_>>(),
                        );
                    }
                    for (seq, i) in &page {
                        // History is read, not consumed: a closed pipe just ends it.
                        if output::write_str(&format!("{seq:>6} ")).is_err()
                            || render(i, false).is_err()
                        {
                            break;
                        }
                    }
                    Ok(())
                }
            }
        }
        MeshCommand::Status(PresenceCommand::Set { text }) => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            peer.set_presence(&mesh, Some(&text), None).await?;
            eprintln!("status set");
            Ok(())
        }
        MeshCommand::Summary(PresenceCommand::Set { text }) => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            peer.set_presence(&mesh, None, Some(&text)).await?;
            eprintln!("summary set");
            Ok(())
        }
        MeshCommand::Grant { peer: who, caps } | MeshCommand::Revoke { peer: who, caps }
            if caps.trim().is_empty() =>
        {
            Err(CliError::config(format!(
                "say which capabilities to change for {who}: read, dm, broadcast, admin"
            )))
        }
        c @ (MeshCommand::Grant { .. } | MeshCommand::Revoke { .. }) => {
            let (who, caps, revoke) = match c {
                MeshCommand::Grant { peer, caps } => (peer, caps, false),
                MeshCommand::Revoke { peer, caps } => (peer, caps, true),
                _ => unreachable!("matched above"),
            };
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let caps: Vec<&str> = caps
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            peer.grant(&mesh, &who, &caps, revoke).await?;
            eprintln!(
                "{} {who}",
                if revoke { "revoked from" } else { "granted to" }
            );
            Ok(())
        }
        MeshCommand::Block { peer: who } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let epoch = peer.block(&mesh, &who).await?;
            eprintln!("blocked {who}; the mesh key rotated to epoch {epoch} and was sent to the remaining members");
            Ok(())
        }
        MeshCommand::Approve { peer: who, json } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            if let Some(who) = who {
                let name = peer.approve(&mesh, &who).await?;
                eprintln!("sent the {mesh} key to {name}");
                return Ok(());
            }
            let waiting = peer.pending(&mesh)?;
            if json {
                let list: Vec<_> = waiting
                    .iter()
                    .map(|(p, j)| json!({"peer": p, "name": j.name, "invite": j.invite}))
                    .collect();
                return output::json(&list);
            }
            if waiting.is_empty() {
                return output::print_str("no one is waiting for the mesh key\n");
            }
            let mut text = String::from("waiting for the mesh key (`nexus mesh approve PEER`):\n");
            for (p, j) in &waiting {
                text.push_str(&format!("  {}  {p}  (invite {})\n", j.name, j.invite));
            }
            output::print_str(&text)
        }
        MeshCommand::RequestKey => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let n = peer.request_key(&mesh).await?;
            eprintln!("asked {n} owner/admin(s) for the {mesh} key; it arrives with `nexus mesh inbox` once one of them is online");
            Ok(())
        }
        MeshCommand::Verify { peer: who } => {
            let mesh = peer.mesh_name(args.mesh.as_deref())?;
            let (p, groups) = peer.verify(&mesh, &who).await?;
            output::print_str(&format!(
                "Safety number with {} ({}):\n\n{groups}\n\nCompare it with theirs (`nexus mesh verify {}` on their side). If it matches, no one is in between.\n",
                p.name,
                p.peer,
                peer.identity().name()
            ))
        }
        MeshCommand::Backup { file } => {
            let p = passphrase("New backup passphrase", true)?;
            peer.backup_to(&file, &p)?;
            eprintln!(
                "backed up your identity and mesh keys to {}",
                file.display()
            );
            Ok(())
        }
        MeshCommand::Restore { .. } => unreachable!("handled above"),
    }
}
