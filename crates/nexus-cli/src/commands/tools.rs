//! `nexus chat --tool NAME=COMMAND`: local commands as tools, the way
//! `llm --functions` offers Python functions.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use nexus_sdk::{ResponseFormat, Tool, ToolCall};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::exit::CliError;

/// How long one tool command may run.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The most of a tool's output sent back to the model.
const MAX_OUTPUT: usize = 64 * 1024;

fn split(spec: &str) -> Result<(&str, &str), CliError> {
    let (name, command) = spec
        .split_once('=')
        .ok_or_else(|| CliError::config(format!("--tool `{spec}`: write it as NAME=COMMAND")))?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok || command.trim().is_empty() {
        return Err(CliError::config(format!(
            "--tool `{spec}`: the name must be 1-64 letters, digits, `_` or `-`, and the command non-empty"
        )));
    }
    Ok((name, command))
}

/// The tool definitions the model sees.
pub(crate) fn definitions(specs: &[String]) -> Result<Vec<Tool>, CliError> {
    specs
        .iter()
        .map(|s| {
            let (name, command) = split(s)?;
            Ok(Tool {
                name: name.to_string(),
                description: format!(
                    "Runs the local command `{command}`. Pass its input as JSON arguments; it returns the command's output."
                ),
                input_schema: json!({"type": "object", "additionalProperties": true}),
            })
        })
        .collect()
}

/// Tool name → command.
pub(crate) fn commands(specs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    specs
        .iter()
        .map(|s| split(s).map(|(n, c)| (n.to_string(), c.to_string())))
        .collect()
}

/// `--schema`: inline JSON, or `@FILE`.
pub(crate) fn schema(arg: &str) -> Result<ResponseFormat, CliError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::config(format!("cannot read the schema {path}: {e}")))?,
        None => arg.to_string(),
    };
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::config(format!("--schema is not JSON: {e}")))?;
    if !schema.is_object() {
        return Err(CliError::config("--schema must be a JSON Schema object"));
    }
    Ok(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema,
    })
}

/// Runs one call: the arguments on stdin and in `NEXUS_TOOL_ARGS`, stdout
/// back (capped); a failure, a timeout or an unknown tool is an `Err` the
/// model sees.
pub(crate) async fn run(
    commands: &BTreeMap<String, String>,
    call: ToolCall,
) -> Result<String, String> {
    let Some(command) = commands.get(&call.name) else {
        return Err(format!("there is no tool named `{}`", call.name));
    };
    let args = call.arguments.to_string();
    eprintln!("tool {}({args})", call.name);
    let work = async {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("NEXUS_TOOL_NAME", &call.name)
            .env("NEXUS_TOOL_ARGS", &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not run `{command}`: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(args.as_bytes()).await;
        }
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = stdout.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
        }
        let mut err = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let _ = stderr.take(4096).read_to_end(&mut err).await;
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        let out = String::from_utf8_lossy(&out).trim_end().to_string();
        if status.success() {
            Ok(out)
        } else {
            Err(format!(
                "`{command}` failed ({status}): {}",
                String::from_utf8_lossy(&err).trim()
            ))
        }
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(r) => {
            match &r {
                Ok(out) => eprintln!("tool {} → {} bytes", call.name, out.len()),
                Err(e) => eprintln!("tool {} failed: {e}", call.name),
            }
            r
        }
        Err(_) => Err(format!(
            "`{command}` took longer than {} s",
            TIMEOUT.as_secs()
        )),
    }
}
