//! `NEXUS_LOAD_SHELL_ENV=1`: a daemon started by systemd or launchd does
//! not see what the user's shell profile exports (API keys, `PATH`). With
//! this set, nexusd asks the login shell (`$SHELL -l -c 'env -0'`, at most
//! 10 s) once at start, and gives what it exports to its services and to
//! its own key lookups, without changing its own environment.

use std::collections::BTreeMap;
use std::time::Duration;

/// Variables that describe the shell, not the user's setup.
const SKIP: [&str; 5] = ["PWD", "OLDPWD", "SHLVL", "_", "PS1"];

/// Whether `NEXUS_LOAD_SHELL_ENV` asks for it.
pub fn wanted() -> bool {
    std::env::var("NEXUS_LOAD_SHELL_ENV").is_ok_and(|v| v == "1" || v == "true")
}

/// The login shell's environment.
pub async fn load() -> Result<BTreeMap<String, String>, String> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_string());
    let run = tokio::process::Command::new(&shell)
        .args(["-l", "-c", "env -0"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| format!("`{shell} -l` took more than 10 s; its environment was not loaded"))?
        .map_err(|e| format!("cannot run `{shell} -l`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{shell} -l -c 'env -0'` failed ({})", out.status));
    }
    Ok(parse(&out.stdout))
}

/// `KEY=VALUE\0...`, without the shell's own variables.
pub fn parse(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            (!k.is_empty() && !SKIP.contains(&k)).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nul_separated_pairs_keep_newlines_and_equals() {
        let env = parse(b"A=1\0MULTI=line one\nline two\0EQ=a=b\0PWD=/x\0\0");
        assert_eq!(env["A"], "1");
        assert_eq!(env["MULTI"], "line one\nline two");
        assert_eq!(env["EQ"], "a=b");
        assert!(!env.contains_key("PWD"));
    }
}
