//! The user's MCP servers: `NEXUS_HOME/mcp.json`, in the shape Claude
//! Code's `.mcp.json` uses (`{"mcpServers": {NAME: {"type": "stdio",
//! "command", "args", "env"} | {"type": "http", "url"}}}`), so import and
//! export are a merge of JSON objects that keeps every key Nexus does not
//! know. Nexus's own per-server policy (allow and deny lists) lives beside,
//! under `nexusPolicy`, and is never exported.
//!
//! Deny wins over allow: a tool is callable when it is not denied and the
//! allow list is empty or names it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nexus_core::NexusHome;
use serde_json::{json, Map, Value};

/// The largest `.mcp.json` read, bytes.
const MAX_FILE: u64 = 4 << 20;

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read or written.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The file is not the `.mcp.json` shape.
    #[error("{path} is not an MCP config ({why}); it needs {{\"mcpServers\": {{...}}}}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No such server.
    #[error("no MCP server `{0}`; `nexus mcp list` shows them")]
    NotFound(String),
    /// A bad name or entry.
    #[error("{0}")]
    Bad(String),
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A child process speaking stdio.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment.
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
    },
}

/// One registered server, as the tools see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// Tools allowed (empty: all not denied).
    pub allow: Vec<String>,
    /// Tools denied.
    pub deny: Vec<String>,
}

impl Server {
    /// Whether `tool` may be called: deny wins, then allow (if any).
    pub fn permits(&self, tool: &str) -> bool {
        !self.deny.iter().any(|d| d == tool)
            && (self.allow.is_empty() || self.allow.iter().any(|a| a == tool))
    }
}

/// The registry document.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    path: PathBuf,
    doc: Map<String, Value>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads a `.mcp.json`-shaped file (bounded); an absent file is empty.
pub fn read_config(path: &Path) -> Result<Map<String, Value>, RegistryError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| RegistryError::Io {
        path: shown.clone(),
        why: e.to_string(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > MAX_FILE {
        return Err(RegistryError::Invalid {
            path: shown,
            why: format!("larger than {} MiB", MAX_FILE >> 20),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| RegistryError::Invalid {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let Value::Object(doc) = v else {
        return Err(RegistryError::Invalid {
            path: shown,
            why: "not a JSON object".into(),
        });
    };
    if !matches!(doc.get("mcpServers"), None | Some(Value::Object(_))) {
        return Err(RegistryError::Invalid {
            path: shown,
            why: "`mcpServers` is not an object".into(),
        });
    }
    Ok(doc)
}

/// Writes `doc` atomically (0600: env may hold secrets).
pub fn write_config(path: &Path, doc: &Map<String, Value>) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(doc).map_err(|e| RegistryError::Bad(e.to_string()))?;
    nexus_core::atomic_write(path, &bytes, nexus_core::FileMode::Secret).map_err(|e| {
        RegistryError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        }
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Registry {
    /// The registry of `home`.
    pub fn load(home: &NexusHome) -> Result<Registry, RegistryError> {
        let path = home.join("mcp.json");
        Ok(Registry {
            doc: read_config(&path)?,
            path,
        })
    }

    /// Saves it.
    pub fn save(&self) -> Result<(), RegistryError> {
        if let Some(dir) = self.path.parent() {
            nexus_core::private_dir(dir).map_err(|e| RegistryError::Io {
                path: dir.display().to_string(),
                why: e.to_string(),
            })?;
        }
        write_config(&self.path, &self.doc)
    }

    fn servers(&self) -> Option<&Map<String, Value>> {
        self.doc.get("mcpServers").and_then(Value::as_object)
    }

    fn servers_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("mcpServers")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    fn policy(&self, name: &str) -> (Vec<String>, Vec<String>) {
        let p = self.doc.get("nexusPolicy").and_then(|p| p.get(name));
        (
            strings(p.and_then(|p| p.get("allow"))),
            strings(p.and_then(|p| p.get("deny"))),
        )
    }

    /// Every server, by name.
    pub fn list(&self) -> Vec<Server> {
        self.servers()
            .into_iter()
            .flatten()
            .filter_map(|(name, entry)| self.parse(name, entry))
            .collect()
    }

    fn parse(&self, name: &str, entry: &Value) -> Option<Server> {
        let transport = if let Some(url) = entry.get("url").and_then(Value::as_str) {
            Transport::Http { url: url.into() }
        } else {
            Transport::Stdio {
                command: entry.get("command")?.as_str()?.to_string(),
                args: strings(entry.get("args")),
                env: entry
                    .get("env")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        };
        let (allow, deny) = self.policy(name);
        Some(Server {
            name: name.to_string(),
            transport,
            allow,
            deny,
        })
    }

    /// Server `name`.
    pub fn get(&self, name: &str) -> Result<Server, RegistryError> {
        self.servers()
            .and_then(|s| s.get(name))
            .and_then(|e| self.parse(name, e))
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))
    }

    /// Adds (or replaces) server `name`.
    pub fn add(&mut self, name: &str, transport: &Transport) -> Result<(), RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::Bad(format!(
                "`{name}` is not a server name (1-64 of letters, digits, - _ .)"
            )));
        }
        let entry = match transport {
            Transport::Stdio { command, args, env } => {
                let mut e = json!({"type": "stdio", "command": command, "args": args});
                if !env.is_empty() {
                    e["env"] = json!(env);
                }
                e
            }
            Transport::Http { url } => json!({"type": "http", "url": url}),
        };
        self.servers_mut().insert(name.to_string(), entry);
        Ok(())
    }

    /// Removes server `name` and its policy.
    pub fn remove(&mut self, name: &str) -> Result<(), RegistryError> {
        if self.servers_mut().remove(name).is_none() {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        if let Some(Value::Object(p)) = self.doc.get_mut("nexusPolicy") {
            p.remove(name);
        }
        Ok(())
    }

    /// Allows (`allow`) or denies tool `tool` of server `name`. Allowing a
    /// denied tool lifts the deny; denying takes it off the allow list.
    pub fn set_policy(&mut self, name: &str, tool: &str, allow: bool) -> Result<(), RegistryError> {
        self.get(name)?;
        let policies = self
            .doc
            .entry("nexusPolicy")
            .or_insert_with(|| Value::Object(Map::new()));
        if !policies.is_object() {
            *policies = Value::Object(Map::new());
        }
        let p = &mut policies[name];
        if !p.is_object() {
            *p = json!({"allow": [], "deny": []});
        }
        let (add_to, take_from) = if allow {
            ("allow", "deny")
        } else {
            ("deny", "allow")
        };
        let mut list = strings(p.get(add_to));
        if !list.iter().any(|t| t == tool) {
            list.push(tool.to_string());
        }
        let other: Vec<String> = strings(p.get(take_from))
            .into_iter()
            .filter(|t| t != tool)
            .collect();
        p[add_to] = json!(list);
        p[take_from] = json!(other);
        Ok(())
    }

    /// Merges the servers (and unknown top-level keys) of `other` in: a
    /// server of the same name is replaced, whole, keys and all. The names
    /// imported.
    pub fn import(&mut self, other: &Map<String, Value>) -> Vec<String> {
        let mut names = Vec::new();
        for (k, v) in other {
            if k == "mcpServers" {
                for (name, entry) in v.as_object().into_iter().flatten() {
                    if valid_name(name) && entry.is_object() {
                        self.servers_mut().insert(name.clone(), entry.clone());
                        names.push(name.clone());
                    }
                }
            } else if k != "nexusPolicy" && !self.doc.contains_key(k) {
                self.doc.insert(k.clone(), v.clone());
            }
        }
        names
    }

    /// Merges this registry into `target` (a `.mcp.json` document): every
    /// server, with all its keys; the target's other keys stay. Nexus's
    /// policy is not exported.
    pub fn export_into(&self, target: &mut Map<String, Value>) {
        for (k, v) in &self.doc {
            if k == "mcpServers" || k == "nexusPolicy" {
                continue;
            }
            target.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let servers = target
            .entry("mcpServers")
            .or_insert_with(|| Value::Object(Map::new()));
        if !servers.is_object() {
            *servers = Value::Object(Map::new());
        }
        if let (Value::Object(out), Some(mine)) = (servers, self.servers()) {
            for (name, entry) in mine {
                out.insert(name.clone(), entry.clone());
            }
        }
    }
}

/// Writes (or merges) the `nexus` server into the `.mcp.json`-shaped file
/// at `path`, running `exe mcp serve`, keeping every other key.
pub fn install_claude(path: &Path, exe: &Path, home: Option<&Path>) -> Result<(), RegistryError> {
    let mut doc = read_config(path)?;
    let mut entry =
        json!({"type": "stdio", "command": exe.display().to_string(), "args": ["mcp", "serve"]});
    if let Some(h) = home {
        entry["env"] = json!({"NEXUS_HOME": h.display().to_string()});
    }
    let servers = doc
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(s) = servers {
        // Keys a user added to an earlier entry stay.
        let merged = match s.remove("nexus") {
            Some(Value::Object(mut old)) => {
                if let Value::Object(new) = entry {
                    for (k, v) in new {
                        old.insert(k, v);
                    }
                }
                Value::Object(old)
            }
            _ => entry,
        };
        s.insert("nexus".into(), merged);
    }
    write_config(path, &doc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn import_export_round_trip_keeps_unknown_keys_and_policy_stays_home() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path().join("nexus"));
        let source: Map<String, Value> = serde_json::from_value(json!({
            "mcpServers": {
                "everything": {"type": "stdio", "command": "npx", "args": ["-y", "x"], "env": {"A": "1"}, "timeout": 30, "x-vendor": {"k": [1, 2]}},
                "web": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"X": "y"}}
            },
            "someTopLevel": {"kept": true}
        }))
        .unwrap();
        let mut r = Registry::load(&home).unwrap();
        let mut names = r.import(&source);
        names.sort();
        assert_eq!(names, ["everything", "web"]);
        r.set_policy("everything", "echo", false).unwrap();
        r.save().unwrap();
        let r = Registry::load(&home).unwrap();
        assert!(!r.get("everything").unwrap().permits("echo"));
        let mut out = Map::new();
        out.insert("projectKey".into(), json!(1));
        r.export_into(&mut out);
        assert_eq!(
            out["mcpServers"], source["mcpServers"],
            "every key survives"
        );
        assert_eq!(out["someTopLevel"], source["someTopLevel"]);
        assert_eq!(out["projectKey"], 1);
        assert!(!out.contains_key("nexusPolicy"));
        assert_eq!(
            r.get("web").unwrap().transport,
            Transport::Http {
                url: "http://127.0.0.1:9/mcp".into()
            }
        );
    }

    #[test]
    fn deny_wins_over_allow_and_they_move_a_tool_between_lists() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Registry::load(&NexusHome::at(d.path())).unwrap();
        r.add(
            "s",
            &Transport::Stdio {
                command: "x".into(),
                args: vec![],
                env: BTreeMap::new(),
            },
        )
        .unwrap();
        assert!(r.get("s").unwrap().permits("anything"));
        r.set_policy("s", "a", true).unwrap();
        let s = r.get("s").unwrap();
        assert!(s.permits("a") && !s.permits("b"), "an allow list limits");
        r.set_policy("s", "a", false).unwrap();
        assert!(!r.get("s").unwrap().permits("a"));
        let mut s = r.get("s").unwrap();
        s.allow = vec!["a".into()];
        s.deny = vec!["a".into()];
        assert!(!s.permits("a"), "deny wins");
        assert!(r.add("bad name", &s.transport).is_err());
        assert!(matches!(
            r.set_policy("nope", "a", true),
            Err(RegistryError::NotFound(_))
        ));
        r.remove("s").unwrap();
        assert!(r.list().is_empty());
    }

    #[test]
    fn install_claude_merges_and_keeps_what_it_does_not_know() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".mcp.json");
        std::fs::write(
            &p,
            r#"{"mcpServers": {"other": {"command": "o"}, "nexus": {"command": "old", "alwaysAllow": ["mesh_peers"]}}, "extra": 1}"#,
        )
        .unwrap();
        install_claude(&p, Path::new("/usr/bin/nexus"), None).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["extra"], 1);
        assert_eq!(v["mcpServers"]["other"]["command"], "o");
        assert_eq!(v["mcpServers"]["nexus"]["command"], "/usr/bin/nexus");
        assert_eq!(v["mcpServers"]["nexus"]["args"], json!(["mcp", "serve"]));
        assert_eq!(
            v["mcpServers"]["nexus"]["alwaysAllow"],
            json!(["mesh_peers"])
        );
        std::fs::write(&p, "[1]").unwrap();
        assert!(
            install_claude(&p, Path::new("n"), None).is_err(),
            "not an object: refused, untouched"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[1]");
    }
}
