//! `nexus ext ...`: install, run and sign extensions, and manage what they
//! may do. The host itself is `nexus_ext`; this module parses and renders.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Config, NexusHome, Vault};
use nexus_ext::host::{Approver, DenyAll, Paths, Shared};
use nexus_ext::manifest::Manifest;
use nexus_ext::permissions::Answer;
use nexus_ext::sign::{self, PublicKey};
use nexus_ext::trust::{self, TrustError};
use nexus_sdk::extensions::{Extensions, ExtensionsError};
use serde_json::{json, Value};

use crate::cli::{DataCommand, ExtCommand, TokenCommand, TrustCommand};
use crate::exit::CliError;
use crate::output;

fn ext_err(e: nexus_ext::host::ExtError) -> CliError {
    use nexus_ext::host::ExtError as E;
    match e {
        E::NotInstalled(_) | E::Disabled(_) | E::Manifest(_) | E::Archive(_) => {
            CliError::config(e.to_string())
        }
        E::Signature(_) => CliError::new(crate::exit::Class::Auth, e.to_string()),
        E::Call { .. } => CliError::new(crate::exit::Class::Protocol, e.to_string()),
        _ => CliError::internal(e.to_string()),
    }
}

fn exts_err(e: ExtensionsError) -> CliError {
    match e {
        ExtensionsError::Ext(e) => ext_err(e),
        ExtensionsError::Daemon(e) => CliError::internal(e.to_string()),
    }
}

fn trust_err(e: TrustError) -> CliError {
    match e {
        TrustError::Key(e) => CliError::config(e.to_string()),
        TrustError::Vault(e) => e.into(),
    }
}

fn vault(home: &NexusHome) -> Result<Arc<dyn Vault>, CliError> {
    let config = Config::load(home)?;
    Ok(super::vault::open(home, &config)?.0)
}

fn trusted(home: &NexusHome) -> Result<Vec<PublicKey>, CliError> {
    Ok(trust::trusted(&*vault(home)?)?)
}

/// Asks on the terminal (stderr, stdin); 60 s (or the timeout) without an
/// answer is a no.
struct Terminal;

#[async_trait::async_trait]
impl Approver for Terminal {
    async fn ask(&self, id: &str, capability: &str, detail: &str, timeout: Duration) -> Answer {
        eprint!(
            "extension `{id}` asks for `{capability}`{}. Allow? [y]es, [a]lways, [n]o, n[e]ver (no answer in {} s: no): ",
            if detail.is_empty() { String::new() } else { format!(" ({detail})") },
            timeout.as_secs()
        );
        let read = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        });
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(Ok(line))) => match line.trim() {
                "y" | "yes" => Answer::Allow,
                "a" | "always" => Answer::AllowAlways,
                "e" | "never" => Answer::DenyAlways,
                _ => Answer::Deny,
            },
            Ok(_) => Answer::Deny,
            Err(_) => {
                eprintln!();
                Answer::TimedOut
            }
        }
    }
}

pub(crate) async fn run(cmd: ExtCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    let paths = Paths::new(home.clone());
    let exts = Extensions::new(home.clone());
    match cmd {
        ExtCommand::Install {
            path,
            allow_unsigned,
        } => {
            let keys = if allow_unsigned {
                trusted(&home).unwrap_or_default()
            } else {
                trusted(&home)?
            };
            let (m, signed_by) = exts
                .install(&path, &keys, allow_unsigned, None)
                .await
                .map_err(exts_err)?;
            match signed_by {
                Some(k) => eprintln!("installed {} {} (signed by {k})", m.id, m.version),
                None => eprintln!(
                    "warning: installed {} {} UNSIGNED (--allow-unsigned); anyone who could change its files can run code as you",
                    m.id, m.version
                ),
            }
            if !m.permissions.is_empty() {
                eprintln!("it may ask for: {}", m.permissions.join(", "));
            }
            Ok(())
        }
        ExtCommand::List { json } => {
            let rows = exts.list().await;
            if json {
                return output::json(&rows);
            }
            if rows.is_empty() {
                return output::print_str("no extensions; `nexus ext install DIR` adds one\n");
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r["id"].as_str().unwrap_or_default().into(),
                        r["version"].as_str().unwrap_or_default().into(),
                        match (r["enabled"].as_bool(), r["disabled_because"].as_str()) {
                            (Some(true), _) => match r["pid"].as_u64() {
                                Some(pid) => format!("running (pid {pid})"),
                                None => "enabled".into(),
                            },
                            (_, Some(why)) => format!("disabled: {why}"),
                            _ => "disabled".into(),
                        },
                        r["signed_by"]
                            .as_str()
                            .map_or("UNSIGNED".into(), |k| format!("key {k}")),
                    ]
                })
                .collect();
            output::table(&["ID", "VERSION", "STATE", "SIGNED"], &table)
        }
        ExtCommand::Enable { id } => {
            exts.set_enabled(&id, true).await.map_err(exts_err)?;
            eprintln!("enabled {id}");
            Ok(())
        }
        ExtCommand::Disable { id } => {
            exts.set_enabled(&id, false).await.map_err(exts_err)?;
            eprintln!("disabled {id}");
            Ok(())
        }
        ExtCommand::Uninstall { id } => {
            let kept = exts.uninstall(&id).await.map_err(exts_err)?;
            eprintln!(
                "uninstalled {id}{}",
                if kept {
                    "; its data is kept (persistent_data), `nexus ext data clear ID` deletes it"
                } else {
                    ""
                }
            );
            Ok(())
        }
        ExtCommand::Call { id, method, params } => {
            let params: Value = match params.as_deref() {
                None => json!({}),
                Some(p) => serde_json::from_str(p)
                    .map_err(|e| CliError::config(format!("params are not JSON: {e}")))?,
            };
            // Ask at the terminal; else on the desktop; else nobody: no.
            let desktop = nexus_ext::approve::Notifications::default();
            let approver: Arc<dyn Approver> =
                if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                    Arc::new(Terminal)
                } else if desktop.available() {
                    Arc::new(desktop)
                } else {
                    Arc::new(DenyAll)
                };
            let v = exts
                .call(&id, &method, params, approver)
                .await
                .map_err(exts_err)?;
            output::json(&v)
        }
        ExtCommand::Logs { id } => {
            let text = std::fs::read_to_string(paths.log(&id))
                .map_err(|e| CliError::config(format!("no log for `{id}` ({e}); has it run?")))?;
            output::print_str(&text)
        }
        ExtCommand::Sign {
            path,
            print_comment,
        } => {
            let m = Manifest::load(&path).map_err(|e| CliError::config(e.to_string()))?;
            if print_comment {
                let c = sign::trusted_comment(&path, &m)
                    .map_err(|e| CliError::config(e.to_string()))?;
                return output::print_str(&format!("{c}\n"));
            }
            let (key, made) = trust::signing_key(&*vault(&home)?).map_err(trust_err)?;
            if made {
                eprintln!(
                    "made a signing key; it is in the vault as {}",
                    trust::SIGNING_KEY
                );
            }
            let out = sign::sign_extension(&path, &m, &key)
                .map_err(|e| CliError::config(e.to_string()))?;
            let pk = key.public();
            eprintln!("signed {} {} → {}", m.id, m.version, out.display());
            eprintln!(
                "users trust it with: nexus ext trust add {}",
                pk.to_base64()
            );
            output::print_str(&pk.to_file())
        }
        ExtCommand::RegisterUrlHandler => register_url_handler(),
        ExtCommand::Trust(TrustCommand::Add { key }) => {
            let text = if std::path::Path::new(&key).is_file() {
                std::fs::read_to_string(&key)
                    .map_err(|e| CliError::config(format!("{key}: {e}")))?
            } else {
                key
            };
            let pk = trust::add(&*vault(&home)?, &text).map_err(trust_err)?;
            eprintln!("trusting key {}", pk.id());
            Ok(())
        }
        ExtCommand::Trust(TrustCommand::List { json }) => {
            let ids: Vec<String> = trusted(&home)?.iter().map(PublicKey::id).collect();
            if json {
                return output::json(&ids);
            }
            output::print_str(&ids.iter().map(|i| format!("{i}\n")).collect::<String>())
        }
        ExtCommand::Trust(TrustCommand::Rm { key_id }) => {
            if trust::remove(&*vault(&home)?, &key_id)? {
                eprintln!("no longer trusting key {key_id}");
                Ok(())
            } else {
                Err(CliError::config(format!(
                    "key {key_id} is not trusted; see `nexus ext trust list`"
                )))
            }
        }
        ExtCommand::Data(DataCommand::Clear { id }) => {
            if !exts.clear_data(&id).await.map_err(exts_err)? {
                return Err(CliError::config(format!("`{id}` has no data")));
            }
            eprintln!("deleted the data of {id}");
            Ok(())
        }
        ExtCommand::Approvals { json } => {
            let qs = exts.approvals().await.map_err(exts_err)?;
            if json {
                return output::json(&qs);
            }
            if qs.is_empty() {
                return output::print_str("no questions waiting\n");
            }
            let now = nexus_core::Clock::now_millis(&nexus_core::SystemClock);
            let rows: Vec<Vec<String>> = qs
                .iter()
                .map(|q| {
                    vec![
                        q.n.to_string(),
                        q.extension.clone(),
                        q.capability.clone(),
                        q.detail.clone(),
                        format!("{} s", q.expires_ms.saturating_sub(now) / 1000),
                    ]
                })
                .collect();
            output::table(&["N", "EXTENSION", "ASKS FOR", "WHY", "DENIED IN"], &rows)
        }
        ExtCommand::Approve { n, always } => {
            let a = if always {
                Answer::AllowAlways
            } else {
                Answer::Allow
            };
            exts.answer(n, a).await.map_err(exts_err)?;
            eprintln!(
                "allowed question {n}{}",
                if always { " (remembered)" } else { "" }
            );
            Ok(())
        }
        ExtCommand::Deny { n, never } => {
            let a = if never {
                Answer::DenyAlways
            } else {
                Answer::Deny
            };
            exts.answer(n, a).await.map_err(exts_err)?;
            eprintln!(
                "denied question {n}{}",
                if never { " (remembered)" } else { "" }
            );
            Ok(())
        }
        ExtCommand::Token(TokenCommand::Issue { id, json }) => {
            let token = nexus_ext::tokens::issue(&*vault(&home)?, &id)?;
            if json {
                return output::json(&json!({"id": id, "token": token.expose()}));
            }
            eprintln!("a store token for {id} (shown once; any earlier one is revoked):");
            output::print_str(&format!("{}\n", token.expose()))
        }
        ExtCommand::Token(TokenCommand::List { json }) => {
            let ids = nexus_ext::tokens::holders(&*vault(&home)?)?;
            if json {
                return output::json(&ids);
            }
            output::print_str(&ids.iter().map(|i| format!("{i}\n")).collect::<String>())
        }
        ExtCommand::Token(TokenCommand::Revoke { id }) => {
            if nexus_ext::tokens::revoke(&*vault(&home)?, &id)? {
                eprintln!("revoked the store token of {id}");
                Ok(())
            } else {
                Err(CliError::config(format!(
                    "`{id}` holds no token; see `nexus ext token list`"
                )))
            }
        }
        ExtCommand::Permissions {
            id,
            revoke,
            revoke_all,
            json,
        } => {
            let shared = Shared::with_defaults(paths, Arc::new(DenyAll));
            if revoke.is_some() || revoke_all {
                let n = shared.revoke(&id, revoke.as_deref()).map_err(ext_err)?;
                eprintln!("forgot {n} decision(s) of {id}");
                return Ok(());
            }
            let remembered = shared.remembered().0.get(&id).cloned().unwrap_or_default();
            if json {
                return output::json(&remembered);
            }
            if remembered.is_empty() {
                return output::print_str(&format!("no remembered decisions for {id}\n"));
            }
            let rows: Vec<Vec<String>> = remembered
                .iter()
                .map(|(c, d)| vec![c.clone(), format!("{d:?}").to_lowercase()])
                .collect();
            output::table(&["CAPABILITY", "DECISION"], &rows)
        }
    }
}

/// `nexus open URL`: what a nexus:// link asks for. Links come from outside
/// (a web page, a chat), so an install link needs the user's yes and a
/// trusted signature, and its id must be the package's.
pub(crate) async fn open(url: &str, alias: Option<String>, yes: bool) -> Result<(), CliError> {
    let rest = url
        .strip_prefix("nexus://")
        .ok_or_else(|| CliError::config(format!("`{url}` is not a nexus:// link")))?;
    if rest.starts_with("join/") {
        let alias = alias.ok_or_else(|| {
            CliError::config("a join link needs your display name: nexus open LINK --name NAME")
        })?;
        return super::mesh::run(crate::cli::MeshArgs {
            mesh: None,
            command: crate::cli::MeshCommand::Join {
                link: url.to_string(),
                broker: None,
                alias,
            },
        })
        .await;
    }
    let Some(install) = rest.strip_prefix("install/") else {
        return Err(CliError::config(format!(
            "unknown nexus:// link `{}`; nexus understands nexus://join/... and nexus://install/ID?src=DIR",
            url.chars().take(200).collect::<String>()
        )));
    };
    let (id, query) = install.split_once('?').unwrap_or((install, ""));
    if !nexus_ext::manifest::valid_id(id) {
        return Err(CliError::config("the link names no valid extension id"));
    }
    let src = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("src="))
        .map(percent_decode)
        .ok_or_else(|| CliError::config("the install link says nowhere to install from (src=)"))?;
    let dir = std::path::PathBuf::from(&src);
    let home = NexusHome::from_env()?;
    let exts = Extensions::new(home.clone());
    let m = nexus_ext::install::inspect(exts.paths(), &dir).map_err(ext_err)?;
    if m.id != id {
        return Err(CliError::config(format!(
            "the link says `{id}` but {src} holds `{}`; not installing",
            m.id
        )));
    }
    if !yes {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Err(CliError::config(
                "an install link needs your confirmation: run it on a terminal, or add --yes",
            ));
        }
        eprint!(
            "install extension `{}` {} from {src}? It asks for: {}. [y/N] ",
            m.id,
            m.version,
            if m.permissions.is_empty() {
                "nothing".to_string()
            } else {
                m.permissions.join(", ")
            }
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim(), "y" | "yes") {
            return Err(CliError::config("not installed"));
        }
    }
    // Never unsigned through a link, and only the id the link names.
    let (m, signed_by) = exts
        .install(&dir, &trusted(&home)?, false, Some(id))
        .await
        .map_err(exts_err)?;
    eprintln!(
        "installed {} {} (signed by {})",
        m.id,
        m.version,
        signed_by.unwrap_or_default()
    );
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes the XDG `.desktop` entry for nexus:// and registers it.
fn register_url_handler() -> Result<(), CliError> {
    if cfg!(target_os = "macos") {
        return output::print_str(
            "macOS: add to the app bundle's Info.plist:\n  CFBundleURLTypes = [{ CFBundleURLName = \"Nexus\"; CFBundleURLSchemes = [\"nexus\"]; }]\nand let it run `nexus open <url>`.\n",
        );
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share"))
        })
        .ok_or_else(|| CliError::config("neither XDG_DATA_HOME nor HOME is set"))?;
    let apps = data.join("applications");
    std::fs::create_dir_all(&apps)
        .map_err(|e| CliError::internal(format!("{}: {e}", apps.display())))?;
    let exe = std::env::current_exe().map_err(|e| CliError::internal(e.to_string()))?;
    let entry = format!(
        "[Desktop Entry]\nType=Application\nName=Nexus\nComment=Open nexus:// links\nExec={} open %u\nTerminal=true\nNoDisplay=true\nMimeType=x-scheme-handler/nexus;\n",
        exe.display()
    );
    let file = apps.join("nexus-url-handler.desktop");
    nexus_core::atomic_write(&file, entry.as_bytes(), nexus_core::FileMode::Normal)
        .map_err(|e| CliError::internal(e.to_string()))?;
    eprintln!("wrote {}", file.display());
    match std::process::Command::new("xdg-mime")
        .args(["default", "nexus-url-handler.desktop", "x-scheme-handler/nexus"])
        .status()
    {
        Ok(s) if s.success() => eprintln!("nexus:// links now open with `nexus open`"),
        Ok(s) => eprintln!("xdg-mime failed ({s}); run: xdg-mime default nexus-url-handler.desktop x-scheme-handler/nexus"),
        Err(_) => eprintln!(
            "xdg-mime is not installed (Debian: xdg-utils); run `xdg-mime default nexus-url-handler.desktop x-scheme-handler/nexus` once it is"
        ),
    }
    Ok(())
}
