//! `nexus-ttft`: what a user feels — from starting the command to the first
//! token on stdout, and to the end — for `nexus chat` and for `llm` (PyPI),
//! both streaming from the same local OpenAI stand-in, runs interleaved.
//!
//! ```sh
//! python3 -m venv /tmp/llmenv && /tmp/llmenv/bin/pip install llm
//! cargo build --release -p nexus-cli -p nexus-benches --bin nexus --bin nexus-ttft
//! target/release/nexus-ttft --llm /tmp/llmenv/bin/llm
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use nexus_testkit::{Api, StandIn};

#[derive(Parser)]
struct Args {
    /// Timed runs of each command.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// The `llm` executable to compare with.
    #[arg(long)]
    llm: Option<PathBuf>,
    /// The `nexus` binary (default: next to this one).
    #[arg(long)]
    nexus: Option<PathBuf>,
}

/// Time to the first stdout byte, and to exit.
fn time(mut cmd: Command) -> (Duration, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    let n = out.read(&mut byte).unwrap();
    assert_eq!(n, 1, "no output");
    let first = started.elapsed();
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    (first, started.elapsed())
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "{:.1} ms (p10 {:.1}, p90 {:.1})",
        ms(p(0.5)),
        ms(p(0.1)),
        ms(p(0.9))
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let nexus = args
        .nexus
        .clone()
        .unwrap_or_else(|| std::env::current_exe().unwrap().with_file_name("nexus"));
    let s = StandIn::start().await;
    let base = s.base_url(Api::OpenAi);
    let home = tempfile::tempdir().unwrap();
    let llm_home = tempfile::tempdir().unwrap();
    std::fs::write(
        llm_home.path().join("extra-openai-models.yaml"),
        format!("- model_id: standin\n  model_name: gpt-4o-mini\n  api_base: \"{base}\"\n  api_key_name: standin\n"),
    )
    .unwrap();
    std::fs::write(
        llm_home.path().join("keys.json"),
        r#"{"standin": "sk-standin-test"}"#,
    )
    .unwrap();
    let prompt = "hello there, how are you today";
    let nexus_cmd = || {
        let mut c = Command::new(&nexus);
        c.args(["chat", "-m", "openai/gpt-4o-mini", prompt])
            .env("NEXUS_HOME", home.path())
            .env("OPENAI_BASE_URL", &base)
            .env("OPENAI_API_KEY", "sk-standin-test");
        c
    };
    let llm_cmd = |llm: &PathBuf| {
        let mut c = Command::new(llm);
        c.args(["-m", "standin", prompt])
            .env("LLM_USER_PATH", llm_home.path());
        c
    };
    // Warm both (page cache, .pyc files, the SQLite files).
    let _ = time(nexus_cmd());
    if let Some(l) = &args.llm {
        let _ = time(llm_cmd(l));
    }
    let (mut nf, mut nt, mut lf, mut lt) = (vec![], vec![], vec![], vec![]);
    for _ in 0..args.runs {
        let (f, t) = time(nexus_cmd());
        nf.push(f);
        nt.push(t);
        if let Some(l) = &args.llm {
            let (f, t) = time(llm_cmd(l));
            lf.push(f);
            lt.push(t);
        }
    }
    println!(
        "{} runs each, interleaved, streaming from the same local OpenAI stand-in",
        args.runs
    );
    println!("| command | first token | whole answer |");
    println!("|---|---|---|");
    println!("| `nexus chat` | {} | {} |", stats(nf), stats(nt));
    if !lf.is_empty() {
        println!(
            "| `llm` {} | {} | {} |",
            llm_version(args.llm.as_ref().unwrap()),
            stats(lf),
            stats(lt)
        );
    }
}

fn llm_version(llm: &PathBuf) -> String {
    Command::new(llm)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .replace("llm, version ", "")
        })
        .unwrap_or_default()
}
