//! Validators judge an answer; a failure escalates to the next tier.
//!
//! Built in: JSON, TOML and YAML syntax; the syntax of fenced code blocks
//! where a parser is at hand (json, toml, yaml, rust); an external command
//! (your tests) whose failure means "test failure"; and a hook for low
//! confidence.

use std::time::Duration;

use async_trait::async_trait;
use nexus_core::ChatResponse;
use tokio::io::AsyncWriteExt;

/// Judges an answer. `Err` carries a short reason shown to the user.
#[async_trait]
pub trait Validator: Send + Sync {
    /// A short name (`json`, `tests`, ...).
    fn name(&self) -> &str;
    /// Checks the answer.
    async fn validate(&self, response: &ChatResponse) -> Result<(), String>;
}

/// The answer's payload: the body of the first fenced block if the whole
/// answer is one, else the text itself.
pub fn payload(text: &str) -> &str {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("```") {
        if let Some(nl) = rest.find('\n') {
            let body = &rest[nl + 1..];
            if let Some(end) = body.rfind("```") {
                return &body[..end];
            }
        }
    }
    t
}

/// Structured formats a [`SyntaxValidator`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
}

impl Format {
    /// Parses `json`, `toml` or `yaml`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    fn check(self, text: &str) -> Result<(), String> {
        match self {
            Format::Json => serde_json::from_str::<serde_json::Value>(text)
                .map(|_| ())
                .map_err(|e| format!("not valid JSON: {e}")),
            Format::Toml => text
                .parse::<toml::Table>()
                .map(|_| ())
                .map_err(|e| format!("not valid TOML: {}", e.message())),
            // Any sentence is a YAML scalar: structured output means a
            // mapping or a list at the top.
            Format::Yaml => {
                let docs = yaml_rust2::YamlLoader::load_from_str(text)
                    .map_err(|e| format!("not valid YAML: {e}"))?;
                match docs.first() {
                    Some(yaml_rust2::Yaml::Hash(_) | yaml_rust2::Yaml::Array(_)) => Ok(()),
                    _ => Err(
                        "not a YAML mapping or list (plain text parses as a YAML string)".into(),
                    ),
                }
            }
        }
    }
}

/// The whole answer (or its single fenced block) must parse as a format.
#[derive(Debug, Clone, Copy)]
pub struct SyntaxValidator(pub Format);

#[async_trait]
impl Validator for SyntaxValidator {
    fn name(&self) -> &str {
        match self.0 {
            Format::Json => "json",
            Format::Toml => "toml",
            Format::Yaml => "yaml",
        }
    }

    async fn validate(&self, r: &ChatResponse) -> Result<(), String> {
        self.0.check(payload(&r.text))
    }
}

/// Every fenced code block in a language with a parser at hand must parse:
/// `json`, `toml`, `yaml`/`yml`, and `rust`/`rs`. Other languages pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeBlockValidator;

/// The fenced blocks of `text`: `(language, body)`.
pub fn code_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(nl) = after.find('\n') else { break };
        let lang = after[..nl].trim();
        let body_start = &after[nl + 1..];
        let Some(end) = body_start.find("```") else {
            break;
        };
        out.push((lang, &body_start[..end]));
        rest = &body_start[end + 3..];
    }
    out
}

#[async_trait]
impl Validator for CodeBlockValidator {
    fn name(&self) -> &str {
        "code"
    }

    async fn validate(&self, r: &ChatResponse) -> Result<(), String> {
        let blocks = code_blocks(&r.text);
        if blocks.is_empty() {
            return Err("the answer has no fenced code block".into());
        }
        for (i, (lang, body)) in blocks.into_iter().enumerate() {
            let n = i + 1;
            let lang = lang.split_whitespace().next().unwrap_or("");
            if let Some(f) = Format::parse(lang) {
                f.check(body)
                    .map_err(|e| format!("code block {n} ({lang}) is {e}"))?;
            } else if matches!(lang, "rust" | "rs") {
                syn::parse_file(body)
                    .map_err(|e| format!("code block {n} (rust) does not parse: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Runs a command (your tests) with the answer on stdin and in the file
/// named by `NEXUS_ANSWER_FILE`; a non-zero exit is a "test failure".
#[derive(Debug, Clone)]
pub struct CommandValidator {
    /// Run by `sh -c`.
    pub command: String,
    /// Killed after this long.
    pub timeout: Duration,
}

impl CommandValidator {
    /// A validator running `command` with a 5-minute limit.
    pub fn new(command: impl Into<String>) -> Self {
        CommandValidator {
            command: command.into(),
            timeout: Duration::from_secs(300),
        }
    }
}

#[async_trait]
impl Validator for CommandValidator {
    fn name(&self) -> &str {
        "tests"
    }

    async fn validate(&self, r: &ChatResponse) -> Result<(), String> {
        let dir = std::env::temp_dir();
        let file = dir.join(format!(
            "nexus-answer-{}-{}.txt",
            std::process::id(),
            nexus_core::RandomSource::next_u64(&nexus_core::SeededRandom::from_entropy())
        ));
        std::fs::write(&file, r.text.as_bytes())
            .map_err(|e| format!("could not write the answer for the test command: {e}"))?;
        let run = async {
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&self.command)
                .env("NEXUS_ANSWER_FILE", &file)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("could not run `{}`: {e}", self.command))?;
            if let Some(mut stdin) = child.stdin.take() {
                // A command that ignores stdin closes it early; that is fine.
                let _ = stdin.write_all(r.text.as_bytes()).await;
            }
            child
                .wait_with_output()
                .await
                .map_err(|e| format!("`{}` failed to run: {e}", self.command))
        };
        let result = tokio::time::timeout(self.timeout, run).await;
        let _ = std::fs::remove_file(&file);
        let out = result.map_err(|_| {
            format!(
                "test failure: `{}` took longer than {}s",
                self.command,
                self.timeout.as_secs()
            )
        })??;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .trim()
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        Err(format!(
            "test failure: `{}` exited with {}{}",
            self.command,
            out.status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| c.to_string()),
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ))
    }
}

/// A confidence hook: `score` rates an answer from 0 to 1; below
/// `threshold` is "low confidence".
pub struct LowConfidence<F> {
    /// The scorer.
    pub score: F,
    /// The lowest acceptable score.
    pub threshold: f64,
}

#[async_trait]
impl<F: Fn(&ChatResponse) -> f64 + Send + Sync> Validator for LowConfidence<F> {
    fn name(&self) -> &str {
        "confidence"
    }

    async fn validate(&self, r: &ChatResponse) -> Result<(), String> {
        let s = (self.score)(r);
        if s >= self.threshold {
            Ok(())
        } else {
            Err(format!("low confidence ({s:.2} < {:.2})", self.threshold))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(text: &str) -> ChatResponse {
        ChatResponse {
            text: text.into(),
            reasoning: String::new(),
            tool_calls: vec![],
            stop_reason: nexus_core::StopReason::EndTurn,
            model: "m".into(),
            request_id: None,
            usage: Default::default(),
            provider_cost: None,
        }
    }

    #[tokio::test]
    async fn syntax_validators() {
        let j = SyntaxValidator(Format::Json);
        assert!(j.validate(&resp("{\"a\": 1}")).await.is_ok());
        assert!(j.validate(&resp("```json\n{\"a\": 1}\n```")).await.is_ok());
        assert!(j.validate(&resp("{a: 1}")).await.is_err());
        let t = SyntaxValidator(Format::Toml);
        assert!(t.validate(&resp("a = 1\n[b]\nc = \"x\"")).await.is_ok());
        assert!(t.validate(&resp("a = = 1")).await.is_err());
        let y = SyntaxValidator(Format::Yaml);
        assert!(y.validate(&resp("a: 1\nb:\n  - x")).await.is_ok());
        assert!(y.validate(&resp("a: [1, 2")).await.is_err());
        // Issue 14, defect 9: a plain sentence is not structured output.
        let sentence = "Sure, here is what you asked for.";
        assert!(y.validate(&resp(sentence)).await.is_err());
        assert!(j.validate(&resp(sentence)).await.is_err());
        assert!(t.validate(&resp(sentence)).await.is_err());
    }

    #[tokio::test]
    async fn code_blocks_are_parsed_where_a_parser_exists() {
        let v = CodeBlockValidator;
        let good = "Here:\n```rust\nfn main() { println!(\"hi\"); }\n```\nand\n```python\nthis is not checked(\n```";
        assert!(v.validate(&resp(good)).await.is_ok());
        let bad = "```rust\nfn main( {\n```";
        let e = v.validate(&resp(bad)).await.unwrap_err();
        assert!(e.contains("code block 1 (rust)"), "{e}");
        assert!(v.validate(&resp("```json\n{oops}\n```")).await.is_err());
        // Issue 14, defect 9: an answer without code is not code.
        let e = v
            .validate(&resp("Sure, just add one to i."))
            .await
            .unwrap_err();
        assert!(e.contains("no fenced code block"), "{e}");
    }

    #[tokio::test]
    async fn a_failing_command_is_a_test_failure() {
        let ok = CommandValidator::new("grep -q 42");
        assert!(ok.validate(&resp("the answer is 42")).await.is_ok());
        let e = ok.validate(&resp("no idea")).await.unwrap_err();
        assert!(e.starts_with("test failure"), "{e}");
        let file = CommandValidator::new(
            "grep -q hello \"$NEXUS_ANSWER_FILE\" || { echo missing >&2; exit 3; }",
        );
        let e = file.validate(&resp("bye")).await.unwrap_err();
        assert!(e.contains("exited with 3") && e.contains("missing"), "{e}");
        let slow = CommandValidator {
            command: "sleep 5".into(),
            timeout: Duration::from_millis(100),
        };
        assert!(slow
            .validate(&resp("x"))
            .await
            .unwrap_err()
            .contains("longer than"));
    }

    #[tokio::test]
    async fn low_confidence_hook() {
        let v = LowConfidence {
            score: |r: &ChatResponse| if r.text.contains("maybe") { 0.2 } else { 0.9 },
            threshold: 0.5,
        };
        assert!(v.validate(&resp("certainly")).await.is_ok());
        assert!(v
            .validate(&resp("maybe?"))
            .await
            .unwrap_err()
            .contains("low confidence"));
    }
}
