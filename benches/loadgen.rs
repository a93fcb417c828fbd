//! `nexus-loadgen`: N publishers, M subscribers, messages of S bytes over
//! loopback, against the Nexus broker (WebSocket, SQLite persistence on,
//! topic messages encrypted with XChaCha20-Poly1305: a `topic::Sealer` per
//! publisher, a `topic::Opener` per subscriber) and, in the same run,
//! against `nats-server` core pub/sub driven through `async-nats` with the
//! same shape. Reports delivered msgs/s and p50/p99 publish-to-receive
//! latency for each. A Nexus publish counts as sent when the broker has
//! stored it and acknowledged it; each publisher keeps `--window` of them
//! in flight. NATS core publishes without acknowledgement.
//!
//! ```sh
//! apt-get install nats-server     # Debian
//! cargo run --release -p nexus-benches --bin nexus-loadgen -- \
//!     --publishers 4 --subscribers 4 --size 256 --messages 300000
//! cargo run --release -p nexus-benches --bin nexus-loadgen -- --rate 2500 --messages 40000
//! cargo run --release -p nexus-benches --bin nexus-loadgen -- --peers 1000
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

// The broker binaries use mimalloc (glibc's allocator contends on its
// arena locks across the broker's threads); measure what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use nexus_core::SystemClock;
use nexus_mesh::auth::Invite;
use nexus_mesh::broker::{Broker, Limits};
use nexus_mesh::client::Connection;
use nexus_mesh::frame::Frame;
use nexus_mesh::identity::hex;
use nexus_mesh::store::SqliteStore;
use nexus_mesh::{server, topic, Identity};
use nexus_testkit::tls::TestCertificate;

#[path = "loadgen_js.rs"]
mod js;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Publishing connections.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Subscribing connections.
    #[arg(long, default_value_t = 4)]
    subscribers: usize,
    /// Message payload bytes (before encryption).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages in total, across publishers.
    #[arg(long, default_value_t = 300_000)]
    messages: usize,
    /// Total publish rate, msgs/s (0: as fast as acknowledgements allow).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Unacknowledged publishes each Nexus publisher keeps in flight (a
    /// persistent publish waits for its ack; NATS JetStream's async
    /// publish allows 4,000 pending by default).
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// Instead: connect this many peers at once and report.
    #[arg(long, default_value_t = 0)]
    peers: usize,
    /// Skip the NATS run.
    #[arg(long)]
    no_nats: bool,
    /// Run both over TLS: the Nexus broker with `wss://`, nats-server with
    /// `--tls`, both with one certificate from a throwaway CA (openssl).
    #[arg(long)]
    tls: bool,
    /// The broker's per-connection rate limit for the run, frames/s (the
    /// stock default is 2,000; lifted here to measure the broker, not the
    /// limiter: `nexus up --rate`).
    #[arg(long, default_value_t = 1_000_000)]
    broker_rate: u32,
    /// The broker's burst allowance for the run (stock default 4,000).
    #[arg(long, default_value_t = 1_000_000)]
    broker_burst: u32,
    /// The broker store's durability: normal (the default) or full (an
    /// fsync per group commit).
    #[arg(long, default_value = "normal")]
    durability: String,
    /// Also run the broker on JetStream (one node on one nats-server, then
    /// three nodes on a three-server cluster) and raw JetStream
    /// acknowledged publishes, all with the same shape.
    #[arg(long)]
    jetstream: bool,
}

fn micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

struct Report {
    name: &'static str,
    delivered: usize,
    secs: f64,
    lat: Vec<u64>,
}

impl Report {
    fn print(&mut self) -> (f64, f64, f64) {
        self.lat.sort_unstable();
        let p = |q: f64| {
            self.lat
                .get(((self.lat.len() as f64 * q) as usize).min(self.lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        let rate = self.delivered as f64 / self.secs;
        let (p50, p99) = (p(0.50), p(0.99));
        println!(
            "{:<7} delivered {:>8} msgs in {:>6.2}s = {:>9.0} msgs/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
            self.name, self.delivered, self.secs, rate, p50, p99
        );
        (rate, p50, p99)
    }
}

fn pacing(args: &Args) -> Option<Duration> {
    (args.rate > 0).then(|| Duration::from_secs_f64(args.publishers as f64 / args.rate as f64))
}

async fn nexus(args: &Args, tls: Option<&TestCertificate>) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let durability = nexus_mesh::store::Durability::parse(&args.durability).unwrap();
    let store =
        Arc::new(SqliteStore::open_with(&dir.path().join("broker.db"), durability).unwrap());
    // Every other limit as shipped; the rate limit as the flags say.
    let limits = Limits {
        rate_per_sec: args.broker_rate,
        burst: args.broker_burst,
        ..Limits::default()
    };
    println!("broker  {limits:?}, durability {durability:?}");
    let broker = Arc::new(Broker::new(store, Arc::new(SystemClock), limits).with_group_commit());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = server::ServeOptions {
        tls: tls.map(|c| nexus_mesh::tls::acceptor(&c.cert, &c.key).unwrap()),
        durability,
    };
    let url = match tls {
        Some(c) => {
            std::env::set_var(nexus_mesh::tls::CA_FILE_ENV, &c.ca);
            format!("wss://localhost:{port}")
        }
        None => format!("ws://127.0.0.1:{port}"),
    };
    let _task = server::serve_with(listener, broker.clone(), options);
    let report = drive(args, &[url], "nexus").await;
    let st = broker.stats();
    println!(
        "broker  {} frames in, {} messages stored in {} commits ({:.1} a commit)",
        st.frames,
        st.committed,
        st.commits,
        st.committed as f64 / st.commits.max(1) as f64
    );
    report
}

/// The load itself, against brokers at `urls` (peers spread over them in
/// turn): the owner makes the mesh on the first, subscribers and
/// publishers join.
async fn drive(args: &Args, urls: &[String], name: &'static str) -> Report {
    let url = urls[0].clone();
    let at = |i: usize| urls[i % urls.len()].clone();
    let owner = Identity::generate("owner").unwrap();
    let oc = Connection::open(&url).await.unwrap();
    oc.create_mesh(&owner, "bench").await.unwrap();
    let n = args.publishers + args.subscribers;
    let invite = Invite::new(&owner, "bench", &url, "member", u64::MAX / 2, n as u32).unwrap();
    let root = [7u8; 32];
    let key = topic::topic_key(&root, "load", 0).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    // Each subscriber receives every message.
    let expected = (args.messages / args.publishers * args.publishers) as u64;
    let mut subs = Vec::new();
    for i in 0..args.subscribers {
        let id = Identity::generate(format!("sub{i}")).unwrap();
        let c = Connection::open(&at(i)).await.unwrap();
        c.join(&id, &invite).await.unwrap();
        let key = key.clone();
        let received = received.clone();
        subs.push(tokio::spawn(async move {
            let mut opener = topic::Opener::new(&key, "load", 0);
            let mut lat = Vec::with_capacity(expected as usize);
            // Take what has arrived without a timer; wait (with one) only
            // when nothing has.
            while let Some(f) = match c.try_recv() {
                Some(f) => Some(f),
                None => c.recv_timeout(Duration::from_secs(10)).await,
            } {
                if let Frame::Publish {
                    from, nonce, body, ..
                } = f
                {
                    let plain = opener.open(&from, &nonce, body).unwrap();
                    let sent = u64::from_be_bytes(plain[..8].try_into().unwrap());
                    lat.push(micros().saturating_sub(sent));
                    received.fetch_add(1, Ordering::Relaxed);
                    if lat.len() as u64 == expected {
                        break;
                    }
                }
            }
            (lat, Instant::now())
        }));
    }
    let per = args.messages / args.publishers;
    let start = Instant::now();
    let mut pubs = Vec::new();
    for i in 0..args.publishers {
        let id = Identity::generate(format!("pub{i}")).unwrap();
        let c = Connection::open(&at(i + 1)).await.unwrap();
        c.join(&id, &invite).await.unwrap();
        let key = key.clone();
        let size = args.size;
        let gap = pacing(args);
        let window = args.window;
        pubs.push(tokio::spawn(async move {
            let from = id.peer_id().to_string();
            let mut sealer = topic::Sealer::new(&key, "load", 0, &from).unwrap();
            let window = window.max(1);
            let mut outstanding = 0usize;
            let mut next = Instant::now();
            for k in 0..per {
                if let Some(g) = gap {
                    // Keep the average rate exact despite the timer's 1 ms
                    // granularity: sleep only when well ahead of schedule.
                    next += g;
                    if next > Instant::now() + Duration::from_millis(2) {
                        tokio::time::sleep_until(next.into()).await;
                    }
                }
                let mut payload = vec![0u8; size.max(8)];
                payload[..8].copy_from_slice(&micros().to_be_bytes());
                let (n, ct) = sealer.seal(&payload).unwrap();
                c.send(&Frame::Publish {
                    id: format!("{from}-{k}"),
                    from: from.clone(),
                    topic: "load".into(),
                    epoch: 0,
                    nonce: n,
                    body: ct,
                })
                .unwrap();
                outstanding += 1;
                while let Some(f) = c.try_recv() {
                    outstanding -= acked(&f);
                }
                while outstanding >= window {
                    match c.recv_timeout(Duration::from_secs(10)).await {
                        Some(f) => outstanding -= acked(&f),
                        None => panic!("no acknowledgement from the broker in 10 s"),
                    }
                }
            }
            while outstanding > 0 {
                match c.recv_timeout(Duration::from_secs(10)).await {
                    Some(f) => outstanding -= acked(&f),
                    None => break,
                }
            }
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let (lat, end) = collect(subs).await;
    Report {
        name,
        delivered: lat.len(),
        secs: (end - start).as_secs_f64(),
        lat,
    }
}

/// 1 for an acknowledgement, 0 for anything else; a refusal ends the run
/// with what it said (a publisher over the broker's rate limit has its
/// publishes refused, and would wait for their acks forever).
fn acked(f: &Frame) -> usize {
    match f {
        Frame::Ack { .. } => 1,
        Frame::Error { code, message } => panic!(
            "the broker refused a publish: {code}: {message} (the stock rate limit is 2,000 frames/s per connection; lift it with --broker-rate and --broker-burst, as `nexus up --rate/--burst` does)"
        ),
        _ => 0,
    }
}

/// All latencies, and when the last subscriber got its last message.
async fn collect(subs: Vec<tokio::task::JoinHandle<(Vec<u64>, Instant)>>) -> (Vec<u64>, Instant) {
    let mut lat = Vec::new();
    let mut end: Option<Instant> = None;
    for s in subs {
        let (l, t) = s.await.unwrap();
        lat.extend(l);
        end = Some(end.map_or(t, |e| e.max(t)));
    }
    (lat, end.unwrap_or_else(Instant::now))
}

async fn nats(args: &Args, tls: Option<&TestCertificate>) -> Option<Report> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server_args = vec![
        "-a".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    if let Some(c) = tls {
        server_args.push("--tls".into());
        server_args.push("--tlscert".into());
        server_args.push(c.cert.display().to_string());
        server_args.push("--tlskey".into());
        server_args.push(c.key.display().to_string());
    }
    let connect = |url: String| {
        let ca = tls.map(|c| c.ca.clone());
        async move {
            let mut o = async_nats::ConnectOptions::new();
            if let Some(ca) = ca {
                o = o.add_root_certificates(ca).require_tls(true);
            }
            o.connect(url).await
        }
    };
    let mut child = std::process::Command::new("nats-server")
        .args(&server_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = match tls {
        Some(_) => format!("tls://localhost:{port}"),
        None => format!("nats://127.0.0.1:{port}"),
    };
    let received = Arc::new(AtomicU64::new(0));
    let per = args.messages / args.publishers;
    let expected = (per * args.publishers) as u64;
    let mut subs = Vec::new();
    for _ in 0..args.subscribers {
        let c = connect(url.clone()).await.ok()?;
        let mut sub = c.subscribe("load").await.ok()?;
        c.flush().await.ok()?;
        let received = received.clone();
        subs.push(tokio::spawn(async move {
            let _keep = c;
            let mut lat = Vec::with_capacity(expected as usize);
            let mut last = Instant::now();
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), sub.next()).await
            {
                let sent = u64::from_be_bytes(m.payload[..8].try_into().unwrap());
                lat.push(micros().saturating_sub(sent));
                last = Instant::now();
                received.fetch_add(1, Ordering::Relaxed);
                if lat.len() as u64 == expected {
                    break;
                }
            }
            // Core NATS drops messages for slow consumers: time the run to
            // the last message that did arrive, and report the shortfall.
            (lat, last)
        }));
    }
    let start = Instant::now();
    let mut pubs = Vec::new();
    for _ in 0..args.publishers {
        let c = connect(url.clone()).await.ok()?;
        let size = args.size;
        let gap = pacing(args);
        pubs.push(tokio::spawn(async move {
            let mut next = Instant::now();
            for _ in 0..per {
                if let Some(g) = gap {
                    // Keep the average rate exact despite the timer's 1 ms
                    // granularity: sleep only when well ahead of schedule.
                    next += g;
                    if next > Instant::now() + Duration::from_millis(2) {
                        tokio::time::sleep_until(next.into()).await;
                    }
                }
                let mut payload = vec![0u8; size.max(8)];
                payload[..8].copy_from_slice(&micros().to_be_bytes());
                if c.publish("load", payload.into()).await.is_err() {
                    break;
                }
            }
            let _ = c.flush().await;
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let (lat, end) = collect(subs).await;
    let dropped = expected as usize * args.subscribers - lat.len();
    if dropped > 0 {
        println!("nats    dropped {dropped} messages (core NATS is at-most-once: slow consumers lose them)");
    }
    let r = Report {
        name: "nats",
        delivered: lat.len(),
        secs: (end - start).as_secs_f64(),
        lat,
    };
    let _ = child.kill();
    Some(r)
}

async fn many_peers(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("broker.db")).unwrap());
    let broker = Arc::new(Broker::new(store, Arc::new(SystemClock), Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let _task = server::serve(listener, broker.clone());
    let owner = Identity::generate("owner").unwrap();
    let oc = Connection::open(&url).await.unwrap();
    oc.create_mesh(&owner, "many").await.unwrap();
    let invite = Invite::new(&owner, "many", &url, "member", u64::MAX / 2, n as u32).unwrap();
    let start = Instant::now();
    let mut conns = Vec::new();
    for i in 0..n {
        let id = Identity::generate(format!("p{i}")).unwrap();
        let c = Connection::open(&url).await.unwrap();
        c.join(&id, &invite).await.unwrap();
        conns.push((id, c));
    }
    let joined = start.elapsed();
    // Everyone online at once; a DM from the last to the first still flows.
    let (last, lc) = conns.last().unwrap();
    let (first, fc) = &conns[0];
    let t = Instant::now();
    lc.send_dm(
        last,
        first.peer_id().as_str(),
        &hex(&first.x25519_public()),
        b"ping",
    )
    .unwrap();
    while !matches!(
        fc.recv_timeout(Duration::from_secs(10)).await,
        Some(Frame::Dm { .. }) | None
    ) {}
    println!(
        "peers   {n} peers joined and stayed connected in {:.2}s ({} open connections); a DM across them took {:.2} ms",
        joined.as_secs_f64(),
        broker.connections(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.peers > 0 {
        many_peers(args.peers).await;
        return;
    }
    println!(
        "load: {} publishers, {} subscribers, {} messages of {} bytes, rate {}, {}",
        args.publishers,
        args.subscribers,
        args.messages,
        args.size,
        if args.rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{} msgs/s", args.rate)
        },
        if args.tls { "TLS on" } else { "TLS off" }
    );
    let dir = tempfile::tempdir().unwrap();
    let certs = args
        .tls
        .then(|| nexus_testkit::tls::certificate(dir.path()));
    let (nexus_rate, _, _) = nexus(&args, certs.as_ref()).await.print();
    if !args.no_nats {
        match nats(&args, certs.as_ref()).await {
            Some(mut r) => {
                let (nats_rate, _, _) = r.print();
                println!(
                    "ratio   nexus/nats throughput = {:.2}",
                    nexus_rate / nats_rate
                );
            }
            None => println!("nats    not run: install nats-server (apt-get install nats-server)"),
        }
    }
    if args.jetstream {
        js::runs(&args, nexus_rate).await;
    }
}
