//! `nexus mesh bridge`: check a bridge file, or run the bridge.

use nexus_mesh::bridge::{Config, TopicRoute, MAX_CONFIG_BYTES};
use nexus_sdk::bridge::BridgeEvent;
use serde_json::json;

use crate::cli::BridgeCommand;
use crate::exit::CliError;
use crate::output;

/// Reads and checks a bridge file (bounded before it is read).
fn load(file: &std::path::Path) -> Result<Config, CliError> {
    let cannot =
        |e: std::io::Error| CliError::config(format!("cannot read {}: {e}", file.display()));
    let len = std::fs::metadata(file).map_err(cannot)?.len();
    if len > MAX_CONFIG_BYTES as u64 {
        return Err(CliError::config(format!(
            "{} is {len} bytes; a bridge file is at most {MAX_CONFIG_BYTES}",
            file.display()
        )));
    }
    let text = std::fs::read_to_string(file).map_err(cannot)?;
    Config::from_yaml(&text).map_err(|e| CliError::config(format!("{}: {e}", file.display())))
}

fn direction(c: &Config, t: &TopicRoute) -> String {
    match t {
        TopicRoute::Directed { direction, .. } if direction != "both" => {
            direction.replace("->", " → ")
        }
        _ => format!("{} ⇄ {}", c.meshes[0], c.meshes[1]),
    }
}

pub(crate) async fn run(mesh: &nexus_sdk::Mesh, command: BridgeCommand) -> Result<(), CliError> {
    match command {
        BridgeCommand::Check { file, json } => {
            let c = load(&file)?;
            let home = mesh.home();
            for m in &c.meshes {
                nexus_mesh::peer::mesh_fingerprint(&home, m)
                    .map_err(|e| CliError::config(format!("{}: {e}", file.display())))?;
            }
            if json {
                let topics: Vec<_> = c
                    .topics
                    .iter()
                    .zip(c.topic_names())
                    .map(|(t, n)| json!({"topic": n, "direction": direction(&c, t)}))
                    .collect();
                return output::json(&json!({
                    "meshes": c.meshes, "topics": topics, "max_hops": c.max_hops,
                    "filter": {
                        "from": c.filter.from, "not_from": c.filter.not_from,
                        "contains": c.filter.contains, "not_contains": c.filter.not_contains,
                        "max_bytes": c.filter.max_bytes,
                    },
                }));
            }
            let mut out = format!(
                "{} is a bridge between {} and {} (max {} hops)\n",
                file.display(),
                c.meshes[0],
                c.meshes[1],
                c.max_hops
            );
            for (t, n) in c.topics.iter().zip(c.topic_names()) {
                out.push_str(&format!("  #{n}: {}\n", direction(&c, t)));
            }
            output::print_str(&out)
        }
        BridgeCommand::Run { file, json } => {
            let c = load(&file)?;
            let mut broken = false;
            nexus_sdk::bridge::run(mesh, c, |e| {
                if broken {
                    return;
                }
                let line = if json {
                    Some(format!(
                        "{}\n",
                        serde_json::to_string(e).unwrap_or_default()
                    ))
                } else {
                    match e {
                        BridgeEvent::Started {
                            meshes,
                            topics,
                            daemon,
                        } => {
                            eprintln!(
                                "bridging #{} between {} and {}{}",
                                topics.join(", #"),
                                meshes[0],
                                meshes[1],
                                if *daemon { " (through nexusd)" } else { "" }
                            );
                            None
                        }
                        BridgeEvent::Forwarded {
                            from,
                            to,
                            topic,
                            origin_from,
                            hops,
                            ..
                        } => Some(format!(
                            "#{topic} {origin_from}: {from} → {to} (hop {hops})\n"
                        )),
                        BridgeEvent::Skipped { .. } => None,
                        BridgeEvent::Trouble { text } => {
                            eprintln!("{text}");
                            None
                        }
                    }
                };
                // A closed stdout stops the report, not the bridge.
                if let Some(l) = line {
                    broken = output::write_str(&l).is_err();
                }
            })
            .await?;
            Ok(())
        }
    }
}
