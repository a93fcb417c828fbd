//! `nexus mesh ...` and `nexus up`.

use std::time::Duration;

use nexus_core::{Config, NexusHome};
use nexus_mesh::peer::Incoming;
use serde_json::json;

use crate::cli::{MeshArgs, MeshCommand, PresenceCommand, TopicCommand};
use crate::exit::CliError;
use crate::output;

/// Runs the broker under NEXUS_HOME until Ctrl-C or SIGTERM, with the
/// limits of config.toml's `[broker]` table under the flags, and (unless
/// `daemon` is false or one runs already) the resident Nexus in the same
/// process: both stop together.
pub(crate) async fn up(serve: &nexus_broker::ServeArgs, daemon: bool) -> Result<(), CliError> {
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
    // So do `nats` and `replicas`: a node of a JetStream-backed cluster.
    let nats = match table.remove("nats") {
        Some(toml::Value::String(s)) => Some(s),
        Some(other) => {
            return Err(CliError::config(format!(
                "broker.nats is `{other}`; use \"nats://HOST:4222[,nats://...]\""
            )))
        }
        None => None,
    };
    let replicas = match table.remove("replicas") {
        Some(toml::Value::Integer(n)) if (1..=5).contains(&n) => Some(n as u8),
        Some(other) => {
            return Err(CliError::config(format!(
                "broker.replicas is `{other}`; use 1 to 5"
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
    let nats = serve.nats.clone().or(nats);
    let started = nexus_broker::start(
        &serve.listen,
        &db,
        nats.as_deref(),
        serve.replicas.or(replicas).unwrap_or(1),
        limits,
        options,
    )
    .await?;
    let (url, task, store) = (started.url, started.task, started.store);
    let vault = if daemon && nexus_daemon::call(&home, "status").await.is_err() {
        // Never a prompt here: the broker comes up first, whatever the vault.
        match super::vault::open_quietly(&home, &config) {
            Ok((v, _)) => Some(v),
            Err(_) => {
                eprintln!(
                    "not starting the resident Nexus (nexusd): its vault opens only with a keyring or NEXUS_VAULT_PASSPHRASE; `nexus daemon start` asks for the passphrase"
                );
                None
            }
        }
    } else {
        None
    };
    let resident = if let Some(vault) = vault {
        let (h, stopped) = (home.clone(), tokio::sync::oneshot::channel::<()>());
        let run = tokio::spawn(async move {
            nexus_daemon::run(h, vault, async {
                let _ = stopped.1.await;
            })
            .await
        });
        Some((run, stopped.0))
    } else {
        None
    };
    let resident_line = match (&resident, daemon) {
        (Some(_), _) => {
            "the resident Nexus (nexusd) runs in this process too; `nexus daemon status` shows it"
        }
        (None, true) => "the resident Nexus is not started here (running already, or no vault)",
        (None, false) => "no resident Nexus (--no-daemon)",
    };
    output::print_str(&format!(
        "Nexus mesh broker listening on {url}\n  store: {store}\n  {}\n  {resident_line}\n\nConnect from any machine that can reach it:\n  nexus mesh create team --broker {url} --name YOUR_NAME\n  nexus mesh invite            # prints a nexus://join/... link for others\n  nexus mesh join LINK --name THEIR_NAME\n\nCtrl-C stops the broker; messages already accepted are kept in its store.\n",
        line
    ))?;
    tokio::select! {
        _ = task => {}
        why = stop => eprintln!("stopping the broker ({why})"),
    }
    if let Some((run, stop)) = resident {
        let _ = stop.send(());
        match run.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("nexusd: {e}"),
            Err(e) => eprintln!("nexusd: {e}"),
        }
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
            bridged: None,
            ..
        } => format!("[#{topic}] {from_name} ({}): {text}\n", short(from)),
        Incoming::Topic {
            topic,
            from,
            from_name,
            text,
            bridged: Some(b),
            ..
        } => format!(
            "[#{topic}] {}@{} via {from_name} ({}): {text}\n",
            b.origin.from,
            b.origin.mesh_name,
            short(from)
        ),
        Incoming::Notice { text } => format!("* {text}\n"),
    };
    output::write_str(&line)
}

/// Whether the daemon can run `command` alone: then this process need not
/// open the vault (no passphrase derivation, no prompt).
fn daemon_verb(command: &MeshCommand) -> bool {
    matches!(
        command,
        MeshCommand::Send { .. }
            | MeshCommand::Peers { .. }
            | MeshCommand::Inbox { .. }
            | MeshCommand::Unread { .. }
            | MeshCommand::Topic(TopicCommand::Send { .. } | TopicCommand::History { .. })
            | MeshCommand::Status(_)
            | MeshCommand::Summary(_)
            | MeshCommand::Grant { .. }
            | MeshCommand::Revoke { .. }
            | MeshCommand::Block { .. }
            | MeshCommand::Approve { peer: Some(_), .. }
            | MeshCommand::RequestKey
            | MeshCommand::Invite { .. }
            | MeshCommand::Bridge(_)
    )
}

/// The mesh: through the daemon when one runs (a verb it runs alone
/// opens no vault here), else in this process with the vault this command
/// opened (prompting if it must).
async fn open_mesh(
    home: &NexusHome,
    config: &Config,
    command: &MeshCommand,
) -> Result<nexus_sdk::Mesh, CliError> {
    let in_process = std::env::var("NEXUS_MESH_ROUTE").is_ok_and(|r| r == "in_process");
    if !in_process && daemon_verb(command) && nexus_daemon::call(home, "status").await.is_ok() {
        let client = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
            home: Some(home.root().to_path_buf()),
            ..Default::default()
        })?;
        return Ok(client.mesh_routed(nexus_sdk::MeshRoute::Daemon)?);
    }
    let (vault, _) = super::vault::open(home, config)?;
    let client = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
        home: Some(home.root().to_path_buf()),
        vault: Some(vault),
        ..Default::default()
    })?;
    Ok(client.mesh()?)
}

fn caps_of(who: &str, caps: &str) -> Result<Vec<String>, CliError> {
    let caps: Vec<String> = caps
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if caps.is_empty() {
        return Err(CliError::config(format!(
            "say which capabilities to change for {who}: read, dm, broadcast, admin"
        )));
    }
    Ok(caps)
}

/// Prints the inbox (marking read only what was printed), or follows it.
async fn inbox(
    mesh: &nexus_sdk::Mesh,
    name: Option<&str>,
    json: bool,
    follow: bool,
) -> Result<(), CliError> {
    let closed = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    if follow {
        let mut f = mesh.follow(name).await?;
        loop {
            let i = f.next().await?;
            match render(&i.message, json) {
                Ok(()) => f.commit().await?,
                // `inbox --follow | head -1`: what was not printed stays unread.
                Err(e) if closed(&e) => return Ok(()),
                Err(e) => return Err(CliError::internal(format!("cannot write to stdout: {e}"))),
            }
        }
    }
    let mut shown = Vec::new();
    let mut failed = None;
    for i in mesh.inbox(name).await? {
        if let Err(e) = render(&i.message, json) {
            failed = Some(e);
            break;
        }
        shown.extend(i.seq);
    }
    mesh.mark_read(name, &shown).await?;
    match failed {
        Some(e) if !closed(&e) => Err(CliError::internal(format!("cannot write to stdout: {e}"))),
        _ => Ok(()),
    }
}

pub(crate) async fn run(args: MeshArgs) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    home.ensure()?;
    let config = Config::load(&home)?;
    let mesh = open_mesh(&home, &config, &args.command).await?;
    let name = args.mesh.as_deref();
    match args.command {
        MeshCommand::Bridge(b) => super::bridge::run(&mesh, b).await,
        MeshCommand::Restore { file, force } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::config(format!("cannot read {}: {e}", file.display())))?;
            let p = passphrase("Backup passphrase", false)?;
            let (who, id) = mesh.restore(&bytes, &p, force).await?;
            let meshes = nexus_mesh::peer::memberships(&home)?.len();
            eprintln!("restored {who} ({id}) with {meshes} mesh(es)");
            Ok(())
        }
        MeshCommand::Create {
            name: mesh_name,
            broker,
            alias,
        } => {
            mesh.create(&mesh_name, &broker, Some(&alias)).await?;
            let (who, id) = mesh.identity().await?;
            output::print_str(&format!(
                "created mesh {mesh_name} on {broker} as {who} ({id})\ninvite others with: nexus mesh invite\n"
            ))
        }
        MeshCommand::Invite {
            expires,
            uses,
            role,
            json,
        } => {
            let inv = mesh
                .invite(name, parse_duration(&expires)?, uses, &role)
                .await?;
            if json {
                let current = mesh.current()?;
                return output::json(&json!({
                    "link": inv.link, "code": inv.code, "short_code": inv.short_code,
                    "broker": inv.broker, "mesh": name.unwrap_or(&current), "expires_ms": inv.expires_ms, "uses": uses, "role": role,
                }));
            }
            eprintln!(
                "short code: {} (join with: nexus mesh join {} --broker {} --name NAME)",
                inv.short_code, inv.short_code, inv.broker
            );
            output::print_str(&format!("{}\n", inv.link))
        }
        MeshCommand::Join {
            link,
            broker,
            alias,
        } => {
            let joined = mesh.join(&link, broker.as_deref(), Some(&alias)).await?;
            let key = if mesh.has_key(Some(&joined)).await? {
                "the mesh key arrived"
            } else {
                "the mesh key arrives when the owner is next online (`nexus mesh inbox` picks it up)"
            };
            let (who, id) = mesh.identity().await?;
            output::print_str(&format!("joined {joined} as {who} ({id}); {key}\n"))
        }
        MeshCommand::Peers { json } => {
            let peers = mesh.peers(name).await?;
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
            super::gate(&home, "messages", "send", name, Some(&to))?;
            let id = mesh.send(name, &to, &text).await?;
            eprintln!("sent ({id})");
            Ok(())
        }
        MeshCommand::Inbox { json, follow } => inbox(&mesh, name, json, follow).await,
        MeshCommand::Unread { json } => {
            let counts = mesh.unread(name).await?;
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
        MeshCommand::Topic(t) => match t {
            TopicCommand::Create { name: topic } | TopicCommand::Join { name: topic } => {
                mesh.topic(name, &topic, true).await?;
                eprintln!("joined #{topic}");
                Ok(())
            }
            TopicCommand::Leave { name: topic } => {
                mesh.topic(name, &topic, false).await?;
                eprintln!("left #{topic}");
                Ok(())
            }
            TopicCommand::List { json } => {
                let topics = mesh.topics(name).await?;
                if json {
                    return output::json(&topics);
                }
                output::print_str(&topics.iter().map(|t| format!("#{t}\n")).collect::<String>())
            }
            TopicCommand::Send { name: topic, text } => {
                super::gate(&home, "topics", "send", name, None)?;
                let id = mesh.publish(name, &topic, &text).await?;
                eprintln!("published to #{topic} ({id})");
                Ok(())
            }
            TopicCommand::History {
                name: topic,
                before,
                limit,
                json,
            } => {
                let page = mesh.history(name, &topic, before, limit).await?;
                if json {
                    return output::json(
                        &page
                            .iter()
                            .map(|e| json!({"seq": e.seq, "message": e.message}))
                            .collect::<Vec<_>>(),
                    );
                }
                for e in &page {
                    // History is read, not consumed: a closed pipe just ends it.
                    if output::write_str(&format!("{:>6} ", e.seq)).is_err()
                        || render(&e.message, false).is_err()
                    {
                        break;
                    }
                }
                Ok(())
            }
        },
        MeshCommand::Status(PresenceCommand::Set { text }) => {
            super::gate(&home, "presence", "write", name, None)?;
            mesh.set_status(name, &text).await?;
            eprintln!("status set");
            Ok(())
        }
        MeshCommand::Summary(PresenceCommand::Set { text }) => {
            super::gate(&home, "presence", "write", name, None)?;
            mesh.set_summary(name, &text).await?;
            eprintln!("summary set");
            Ok(())
        }
        MeshCommand::Grant { peer: who, caps } => {
            let caps = caps_of(&who, &caps)?;
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            mesh.grant(name, &who, &caps).await?;
            eprintln!("granted to {who}");
            Ok(())
        }
        MeshCommand::Revoke { peer: who, caps } => {
            let caps = caps_of(&who, &caps)?;
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            mesh.revoke(name, &who, &caps).await?;
            eprintln!("revoked from {who}");
            Ok(())
        }
        MeshCommand::Block { peer: who } => {
            let epoch = mesh.block(name, &who).await?;
            eprintln!("blocked {who}; the mesh key rotated to epoch {epoch} and was sent to the remaining members");
            Ok(())
        }
        MeshCommand::Approve { peer: who, json } => {
            if let Some(who) = who {
                let sent_to = mesh.approve(name, &who).await?;
                let current = mesh.current()?;
                eprintln!("sent the {} key to {sent_to}", name.unwrap_or(&current));
                return Ok(());
            }
            let waiting = mesh.pending(name).await?;
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
            let n = mesh.request_key(name).await?;
            let how = if mesh.daemon_running().await {
                "nexusd takes it as soon as one of them is online"
            } else {
                "it arrives with `nexus mesh inbox` once one of them is online"
            };
            eprintln!("asked {n} owner/admin(s) for the mesh key; {how}");
            Ok(())
        }
        MeshCommand::Verify { peer: who } => {
            let (p, groups) = mesh.verify(name, &who).await?;
            let (me, _) = mesh.identity().await?;
            output::print_str(&format!(
                "Safety number with {} ({}):\n\n{groups}\n\nCompare it with theirs (`nexus mesh verify {me}` on their side). If it matches, no one is in between.\n",
                p.name, p.peer,
            ))
        }
        MeshCommand::Backup { file } => {
            let p = passphrase("New backup passphrase", true)?;
            mesh.backup(&file, &p).await?;
            eprintln!(
                "backed up your identity and mesh keys to {}",
                file.display()
            );
            Ok(())
        }
    }
}
