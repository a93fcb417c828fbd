//! `nexus-gateway-bench`: REST requests per second through the gateway's
//! full stack (Host/Origin guard, bearer-key lookup and constant-time
//! compare, error-schema layer, body limit) on `GET /api/v1/whoami`,
//! beside a bare axum handler answering the same size of JSON, both in this
//! process, both driven by `wrk` (Debian) with the same settings.
//!
//! `cargo build --release -p nexus-benches --bin nexus-gateway-bench && target/release/nexus-gateway-bench`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::process::Command;

use axum::routing::get;
use nexus_core::NexusHome;
use nexus_gateway::keys::{NewKey, Scope};

fn wrk(url: &str, header: Option<&str>) -> String {
    let mut c = Command::new("wrk");
    c.args(["-t2", "-c32", "-d10s", "--latency"]);
    if let Some(h) = header {
        c.args(["-H", h]);
    }
    let o = c.arg(url).output().expect("wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .map(|l| l.trim_start_matches("Requests/sec:").trim().to_string())
        .unwrap_or_else(|| text.clone());
    let p50 = text
        .lines()
        .find(|l| l.trim_start().starts_with("50%"))
        .map(|l| l.trim().trim_start_matches("50%").trim().to_string())
        .unwrap_or_default();
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .map(|l| l.trim().trim_start_matches("99%").trim().to_string())
        .unwrap_or_default();
    format!("{rps} | {p50} | {p99}")
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let home = NexusHome::at(dir.path());
    home.ensure().unwrap();
    let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = bare.local_addr().unwrap();
    let body = serde_json::json!({"id": "0123456789ab", "mesh": "team", "scopes": ["read"], "topics": [], "label": "", "expires_ms": 1u64});
    let app = axum::Router::new().route(
        "/hello",
        get(move || async move { axum::Json(body.clone()) }),
    );
    tokio::spawn(async move { axum::serve(bare, app).await.unwrap() });

    let gw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = gw.local_addr().unwrap();
    let client = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
        home: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let config = nexus_gateway::Config {
        listen: gw_addr,
        port: gw_addr.port(),
        ..Default::default()
    };
    let shared = nexus_gateway::Shared::new(client, &home, config);
    // 51 keys in the store, as a real one holds; the bench uses the last.
    let mut key = String::new();
    for _ in 0..51 {
        key = shared
            .keys
            .create(
                &NewKey {
                    mesh: "team".into(),
                    scopes: vec![Scope::Read],
                    ..NewKey::default()
                },
                1,
            )
            .unwrap()
            .0;
    }
    let router = nexus_gateway::router(shared, None);
    tokio::spawn(async move {
        nexus_gateway::serve(gw, router, std::future::pending())
            .await
            .unwrap()
    });

    let auth = format!("Authorization: Bearer {key}");
    let r = tokio::task::spawn_blocking(move || {
        let bare = wrk(&format!("http://{bare_addr}/hello"), None);
        let gateway = wrk(&format!("http://{gw_addr}/api/v1/whoami"), Some(&auth));
        (bare, gateway)
    })
    .await
    .unwrap();
    println!("| server (wrk -t2 -c32 -d10s) | requests/s | p50 | p99 |");
    println!("|---|---|---|---|");
    println!("| bare axum handler, same JSON | {} |", r.0);
    println!(
        "| gateway `GET /api/v1/whoami` with a bearer key (51 keys stored) | {} |",
        r.1
    );
}
