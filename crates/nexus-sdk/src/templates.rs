//! Prompt templates: a saved system prompt, prompt and model, used as
//! `nexus chat -t NAME INPUT`. Each is a TOML file under
//! `NEXUS_HOME/templates/`, written atomically.

use std::path::PathBuf;

use nexus_core::{atomic_write, FileMode, NexusHome};
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorCode, Result};

/// The most bytes a template file may have.
const MAX_BYTES: u64 = 256 * 1024;

/// A saved template. In `prompt`, `$input` is replaced by what the user
/// gives; a prompt without it gets the input after a blank line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Its name.
    #[serde(skip)]
    pub name: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The prompt, with `$input` where the input goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The model to use unless one is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Template {
    /// The prompt for `input`.
    pub fn render(&self, input: &str) -> String {
        match &self.prompt {
            None => input.to_string(),
            Some(p) if p.contains("$input") => p.replace("$input", input),
            Some(p) if input.is_empty() => p.clone(),
            Some(p) => format!("{p}\n\n{input}"),
        }
    }
}

/// The templates of one `NEXUS_HOME`.
#[derive(Debug, Clone)]
pub struct Templates {
    dir: PathBuf,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "template name `{}`: use 1-64 letters, digits, `-` or `_`",
            name.chars().take(64).collect::<String>()
        )))
    }
}

impl Templates {
    /// The templates under `home`.
    pub fn new(home: &NexusHome) -> Templates {
        Templates {
            dir: home.join("templates"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    /// Saves `t` under its name, replacing one of the same name.
    pub fn save(&self, t: &Template) -> Result<()> {
        check_name(&t.name)?;
        if t.system.is_none() && t.prompt.is_none() && t.model.is_none() {
            return Err(Error::config(
                "a template needs a system prompt, a prompt or a model",
            ));
        }
        nexus_core::private_dir(&self.dir)
            .map_err(|e| Error::config(format!("{}: {e}", self.dir.display())))?;
        let text =
            toml::to_string(t).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        atomic_write(&self.path(&t.name), text.as_bytes(), FileMode::Normal)?;
        Ok(())
    }

    /// Template `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<Template>> {
        check_name(name)?;
        let path = self.path(name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::config(format!("{}: {e}", path.display()))),
        };
        if meta.len() > MAX_BYTES {
            return Err(Error::config(format!(
                "{} is larger than {MAX_BYTES} bytes",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
        let mut t: Template = toml::from_str(&text)
            .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))?;
        t.name = name.to_string();
        Ok(Some(t))
    }

    /// Every template, by name.
    pub fn list(&self) -> Result<Vec<Template>> {
        let mut names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".toml"))
                        .map(str::to_string)
                })
                .filter(|n| check_name(n).is_ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::config(format!("{}: {e}", self.dir.display()))),
        };
        names.sort();
        names
            .iter()
            .filter_map(|n| self.get(n).transpose())
            .collect()
    }

    /// Removes template `name`; whether there was one.
    pub fn remove(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::config(format!("{e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_save_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let ts = Templates::new(&NexusHome::at(d.path()));
        let t = Template {
            name: "sum".into(),
            system: Some("be brief".into()),
            prompt: Some("Summarise: $input".into()),
            model: None,
        };
        assert_eq!(t.render("the text"), "Summarise: the text");
        ts.save(&t).unwrap();
        assert_eq!(ts.get("sum").unwrap().unwrap(), t);
        assert_eq!(ts.list().unwrap().len(), 1);
        assert!(
            ts.get("../etc").is_err(),
            "names cannot leave the directory"
        );
        assert!(ts
            .save(&Template {
                name: "empty".into(),
                ..Default::default()
            })
            .is_err());
        assert!(ts.remove("sum").unwrap());
        assert!(!ts.remove("sum").unwrap());
        let plain = Template {
            prompt: Some("Explain".into()),
            ..Default::default()
        };
        assert_eq!(plain.render("x"), "Explain\n\nx");
    }
}
