//! `nexus-ext-echo`: the smallest Rust extension (initialize, echo,
//! shutdown), for `nexus-ext-bench`'s round-trip figure.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let result = match msg["method"].as_str() {
            Some("initialize") => serde_json::json!({"name": "echo"}),
            Some("echo") => msg["params"].clone(),
            _ => serde_json::Value::Null,
        };
        let reply = serde_json::json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
        writeln!(out, "{reply}").unwrap();
        out.flush().unwrap();
    }
}
