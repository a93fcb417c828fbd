//! `nexus-standin`: serves every provider API on loopback for tests in other
//! languages. Prints one JSON line with the base URLs, then serves until
//! killed or until standard input closes.
//!
//! ```text
//! nexus-standin [--listen 127.0.0.1:0] [--require-key KEY]
//! ```

use std::io::Write;

use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut key = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "--require-key" => key = args.next(),
            "-h" | "--help" => {
                println!("usage: nexus-standin [--listen ADDR] [--require-key KEY]");
                return;
            }
            other => {
                eprintln!("nexus-standin: unknown argument `{other}`; see --help");
                std::process::exit(2);
            }
        }
    }
    let server = match nexus_testkit::StandIn::start_on(&listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nexus-standin: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(k) = key {
        server.require_key(&k);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", nexus_testkit::describe(&server));
    let _ = out.flush();
    // Serve until stdin reaches EOF (the parent test closed it or died).
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
