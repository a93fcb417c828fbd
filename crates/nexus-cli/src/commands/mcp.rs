//! `nexus mcp ...`: serve Nexus over MCP, and the registry of MCP servers.
//! The work is `nexus_mcp`'s; this module parses and renders.

use std::path::PathBuf;
use std::sync::Arc;

use nexus_core::NexusHome;
use nexus_mcp::client::{self, ClientError};
use nexus_mcp::registry::{self, Registry, RegistryError, Server, Transport};
use serde_json::{json, Map, Value};

use crate::cli::McpCommand;
use crate::exit::{Class, CliError};
use crate::output;

fn reg_err(e: RegistryError) -> CliError {
    match e {
        RegistryError::Io { .. } => CliError::internal(e.to_string()),
        _ => CliError::config(e.to_string()),
    }
}

fn client_err(e: ClientError) -> CliError {
    match e {
        ClientError::Denied { .. } => CliError::new(Class::Auth, e.to_string()),
        ClientError::Initialize { .. } | ClientError::Start { .. } => {
            CliError::new(Class::Protocol, e.to_string())
        }
        ClientError::Call { .. } => CliError::new(Class::Protocol, e.to_string()),
    }
}

/// The prefix that names an extension as an MCP server.
const EXT: &str = "ext:";

/// Extensions that declare tools, as (id, tools).
fn extension_servers(home: &NexusHome) -> Vec<(String, Vec<nexus_ext::manifest::Offer>)> {
    let paths = nexus_ext::host::Paths::new(home.clone());
    nexus_ext::host::State::load(&paths)
        .0
        .into_iter()
        .filter(|(_, i)| i.enabled)
        .filter_map(|(id, _)| {
            let m = nexus_ext::manifest::Manifest::load(&paths.dir(&id)).ok()?;
            (!m.tools.is_empty()).then_some((id, m.tools))
        })
        .collect()
}

fn default_file(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from(".mcp.json"))
}

fn parse_args(args: Option<&str>) -> Result<Map<String, Value>, CliError> {
    match args {
        None => Ok(Map::new()),
        Some(a) => match serde_json::from_str::<Value>(a) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(CliError::config("tool arguments are a JSON object")),
            Err(e) => Err(CliError::config(format!(
                "tool arguments are not JSON: {e}"
            ))),
        },
    }
}

pub(crate) async fn run(cmd: McpCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    match cmd {
        McpCommand::Serve { approval_mode } => serve(&home, &approval_mode).await,
        McpCommand::InstallClaude { user, file } => {
            let path = if user {
                let h = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .ok_or_else(|| CliError::config("HOME is not set"))?;
                h.join(".claude.json")
            } else {
                default_file(file)
            };
            let exe = std::env::current_exe().map_err(|e| CliError::internal(e.to_string()))?;
            // Pin the home when it is not the default, so Claude Code's
            // session reaches this one.
            let pinned = std::env::var_os("NEXUS_HOME").map(|_| home.root().to_path_buf());
            registry::install_claude(&path, &exe, pinned.as_deref()).map_err(reg_err)?;
            eprintln!(
                "added `nexus` to {}; Claude Code starts it as `{} mcp serve`",
                path.display(),
                exe.display()
            );
            Ok(())
        }
        McpCommand::Add {
            name,
            url,
            env,
            command,
        } => {
            let transport = match (url, command.split_first()) {
                (Some(url), _) => Transport::Http { url },
                (None, Some((cmd, args))) => Transport::Stdio {
                    command: cmd.clone(),
                    args: args.to_vec(),
                    env: env
                        .iter()
                        .map(|kv| {
                            kv.split_once('=')
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .ok_or_else(|| {
                                    CliError::config(format!("--env wants KEY=VALUE, not `{kv}`"))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                },
                (None, None) => return Err(CliError::config(
                    "say how to reach it: `nexus mcp add NAME -- COMMAND ARGS...` or `--url URL`",
                )),
            };
            let mut r = Registry::load(&home).map_err(reg_err)?;
            r.add(&name, &transport).map_err(reg_err)?;
            r.save().map_err(reg_err)?;
            eprintln!("added MCP server {name}; `nexus mcp test {name}` tries it");
            Ok(())
        }
        McpCommand::List { json } => {
            let r = Registry::load(&home).map_err(reg_err)?;
            let mut rows: Vec<Value> = r
                .list()
                .iter()
                .map(|s| {
                    let (kind, target) = match &s.transport {
                        Transport::Stdio { command, args, .. } => {
                            ("stdio", format!("{command} {}", args.join(" ")).trim().to_string())
                        }
                        Transport::Http { url } => ("http", url.clone()),
                    };
                    json!({"name": s.name, "type": kind, "target": target, "allow": s.allow, "deny": s.deny})
                })
                .collect();
            for (id, tools) in extension_servers(&home) {
                rows.push(json!({"name": format!("{EXT}{id}"), "type": "extension", "target": format!("{} tool(s)", tools.len()), "allow": [], "deny": []}));
            }
            if json {
                return output::json(&rows);
            }
            if rows.is_empty() {
                return output::print_str(
                    "no MCP servers; `nexus mcp add NAME -- COMMAND ARGS` or `nexus mcp import` adds some\n",
                );
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r["name"].as_str().unwrap_or_default().into(),
                        r["type"].as_str().unwrap_or_default().into(),
                        r["target"].as_str().unwrap_or_default().into(),
                        r["deny"]
                            .as_array()
                            .filter(|d| !d.is_empty())
                            .map(|d| {
                                format!(
                                    "deny {}",
                                    d.iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(",")
                                )
                            })
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["NAME", "TYPE", "RUNS", "POLICY"], &table)
        }
        McpCommand::Remove { name } => {
            let mut r = Registry::load(&home).map_err(reg_err)?;
            r.remove(&name).map_err(reg_err)?;
            r.save().map_err(reg_err)?;
            eprintln!("removed MCP server {name}");
            Ok(())
        }
        McpCommand::Test { name, json } => {
            let server = Registry::load(&home)
                .map_err(reg_err)?
                .get(&name)
                .map_err(reg_err)?;
            let report = client::test(&server, &home.join("logs"))
                .await
                .map_err(client_err)?;
            if json {
                return output::json(&report);
            }
            output::print_str(&format!(
                "{}: ok, protocol {}, {} ({} ms to initialize), {} tool(s)\n",
                report.name,
                report.protocol_version,
                report.server,
                report.initialize_ms,
                report.tools
            ))
        }
        McpCommand::Tools { name, json } => {
            let rows = if let Some(id) = name.strip_prefix(EXT) {
                extension_servers(&home)
                    .into_iter()
                    .find(|(i, _)| i == id)
                    .ok_or_else(|| CliError::config(format!("no enabled extension `{id}` offers tools")))?
                    .1
                    .iter()
                    .map(|t| json!({"name": t.name, "description": t.description, "allowed": true, "input_schema": t.input_schema}))
                    .collect::<Vec<_>>()
            } else {
                let server = Registry::load(&home)
                    .map_err(reg_err)?
                    .get(&name)
                    .map_err(reg_err)?;
                let conn = client::connect(&server, &home.join("logs"))
                    .await
                    .map_err(client_err)?;
                let tools = conn.tools().await;
                conn.close().await;
                tools
                    .map_err(client_err)?
                    .iter()
                    .map(|t| {
                        json!({"name": t.name, "description": t.description, "allowed": server.permits(&t.name), "input_schema": *t.input_schema})
                    })
                    .collect()
            };
            if json {
                return output::json(&rows);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r["name"].as_str().unwrap_or_default().into(),
                        if r["allowed"] == true {
                            "allowed"
                        } else {
                            "DENIED"
                        }
                        .into(),
                        r["description"]
                            .as_str()
                            .unwrap_or_default()
                            .chars()
                            .take(70)
                            .collect(),
                    ]
                })
                .collect();
            output::table(&["TOOL", "POLICY", "DESCRIPTION"], &table)
        }
        McpCommand::Call { name, tool, args } => {
            let args = parse_args(args.as_deref())?;
            if let Some(id) = name.strip_prefix(EXT) {
                let exts = nexus_sdk::extensions::Extensions::new(home.clone());
                let v = exts
                    .call(
                        id,
                        &tool,
                        Value::Object(args),
                        Arc::new(nexus_ext::host::DenyAll),
                    )
                    .await
                    .map_err(|e| CliError::new(Class::Protocol, e.to_string()))?;
                return output::json(&v);
            }
            let server: Server = Registry::load(&home)
                .map_err(reg_err)?
                .get(&name)
                .map_err(reg_err)?;
            // The policy is checked before anything starts.
            if !server.permits(&tool) {
                return Err(client_err(ClientError::Denied { name, tool }));
            }
            let conn = client::connect(&server, &home.join("logs"))
                .await
                .map_err(client_err)?;
            let result = conn.call(&tool, args).await;
            conn.close().await;
            let result = result.map_err(client_err)?;
            let v = serde_json::to_value(&result).map_err(|e| CliError::internal(e.to_string()))?;
            if result.is_error == Some(true) {
                output::json(&v)?;
                return Err(CliError::new(
                    Class::Protocol,
                    format!("`{tool}` reported an error"),
                ));
            }
            output::json(&v)
        }
        McpCommand::Allow { name, tool } | McpCommand::Deny { name, tool }
            if name.starts_with(EXT) =>
        {
            Err(CliError::config(format!(
                "`{name}` is an extension: its permissions are `nexus ext permissions {}`",
                name.trim_start_matches(EXT)
            )))
            .map(|()| drop(tool))
        }
        McpCommand::Allow { name, tool } => policy(&home, &name, &tool, true),
        McpCommand::Deny { name, tool } => policy(&home, &name, &tool, false),
        McpCommand::Import { file } => {
            let path = default_file(file);
            if !path.exists() {
                return Err(CliError::config(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            let doc = registry::read_config(&path).map_err(reg_err)?;
            let mut r = Registry::load(&home).map_err(reg_err)?;
            let names = r.import(&doc);
            r.save().map_err(reg_err)?;
            eprintln!(
                "imported {} server(s) from {}: {}",
                names.len(),
                path.display(),
                names.join(", ")
            );
            Ok(())
        }
        McpCommand::Export { file } => {
            let path = default_file(file);
            let mut doc = registry::read_config(&path).map_err(reg_err)?;
            let r = Registry::load(&home).map_err(reg_err)?;
            r.export_into(&mut doc);
            registry::write_config(&path, &doc).map_err(reg_err)?;
            eprintln!(
                "exported {} server(s) to {}",
                r.list().len(),
                path.display()
            );
            Ok(())
        }
    }
}

fn policy(home: &NexusHome, name: &str, tool: &str, allow: bool) -> Result<(), CliError> {
    let mut r = Registry::load(home).map_err(reg_err)?;
    r.set_policy(name, tool, allow).map_err(reg_err)?;
    r.save().map_err(reg_err)?;
    eprintln!(
        "{} `{tool}` of {name}",
        if allow { "allowed" } else { "denied" }
    );
    Ok(())
}

/// `nexus mcp serve`: logs go to `logs/mcp.jsonl`, never to stdout.
async fn serve(home: &NexusHome, mode: &str) -> Result<(), CliError> {
    let mode: nexus_core::policy::ApprovalMode = mode.parse().map_err(CliError::config)?;
    static LOG: std::sync::OnceLock<nexus_daemon::logs::Writer> = std::sync::OnceLock::new();
    let writer = LOG.get_or_init(|| {
        nexus_daemon::logs::Writer::new(
            &home.join("logs"),
            "mcp",
            nexus_daemon::logs::Redactor::from_env(),
        )
    });
    nexus_daemon::logs::TracingToLog::install(writer);
    let client = super::Context::load()?.client()?;
    nexus_mcp::server::serve_stdio(client, mode)
        .await
        .map_err(|e| CliError::new(Class::Protocol, e))
}
