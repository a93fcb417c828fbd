//! `nexus-loadgen --jetstream`: the same load against the broker on
//! JetStream (one node on one `nats-server -js`; three nodes on a
//! three-server cluster, streams with three replicas, peers spread over
//! the nodes) and, as the floor, raw JetStream publishes with
//! acknowledgement (`async-nats`, the same window per publisher) read by
//! ordered consumers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use nexus_mesh::broker::Limits;

use super::{collect, drive, micros, Args, Report};

/// Broker nodes on `nats`, `replicas` copies of each stream; their URLs.
async fn nodes(
    args: &Args,
    nats: &[String],
    count: usize,
    replicas: u8,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<String>) {
    let limits = Limits {
        rate_per_sec: args.broker_rate,
        burst: args.broker_burst,
        ..Limits::default()
    };
    let mut tasks = Vec::new();
    let mut urls = Vec::new();
    for i in 0..count {
        // Each node talks to its own server first.
        let mut list = nats.to_vec();
        list.rotate_left(i % nats.len());
        let started = nexus_broker::start(
            "127.0.0.1:0",
            std::path::Path::new("unused.db"),
            Some(&list.join(",")),
            replicas,
            limits,
            nexus_mesh::server::ServeOptions::default(),
        )
        .await
        .unwrap();
        tasks.push(started.task);
        urls.push(started.url);
    }
    (tasks, urls)
}

/// Raw JetStream: each publisher keeps `window` acknowledged publishes in
/// flight; each subscriber reads the stream with an ordered consumer.
async fn raw(args: &Args, url: &str) -> Report {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let per = args.messages / args.publishers;
    let expected = per * args.publishers;
    let mut subs = Vec::new();
    for _ in 0..args.subscribers {
        let c = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(c.clone());
        let s = js.get_stream("RAW").await.unwrap();
        let consumer = s
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: c.new_inbox(),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        subs.push(tokio::spawn(async move {
            let _keep = c;
            let mut lat = Vec::with_capacity(expected);
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_secs(10), messages.next()).await
            {
                let sent = u64::from_be_bytes(m.message.payload[..8].try_into().unwrap());
                lat.push(micros().saturating_sub(sent));
                if lat.len() == expected {
                    break;
                }
            }
            (lat, Instant::now())
        }));
    }
    let start = Instant::now();
    let mut pubs = Vec::new();
    for _ in 0..args.publishers {
        let c = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(c);
        let (size, window) = (args.size, args.window.max(1));
        pubs.push(tokio::spawn(async move {
            let mut acks = VecDeque::new();
            for _ in 0..per {
                let mut payload = vec![0u8; size.max(8) + 16];
                payload[..8].copy_from_slice(&micros().to_be_bytes());
                acks.push_back(js.publish("raw", payload.into()).await.unwrap());
                if acks.len() >= window {
                    acks.pop_front().unwrap().await.unwrap();
                }
            }
            for a in acks {
                a.await.unwrap();
            }
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let (lat, end) = collect(subs).await;
    Report {
        name: "js-raw",
        delivered: lat.len(),
        secs: (end - start).as_secs_f64(),
        lat,
    }
}

/// The three JetStream runs, printed with their ratios.
pub async fn runs(args: &Args, sqlite_rate: f64) {
    if std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("jetstream not run: install nats-server (apt-get install nats-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (raw_rate, one_rate, three_rate) = {
        let one = nexus_testkit::nats::start(1, &dir.path().join("one")).unwrap();
        let urls = one.urls.clone();
        let (raw_rate, _, _) = raw(args, &urls[0]).await.print();
        let (tasks, brokers) = nodes(args, &urls, 1, 1).await;
        let (one_rate, _, _) = drive(args, &brokers, "nexus-js").await.print();
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
        let three = nexus_testkit::nats::start(3, &dir.path().join("three")).unwrap();
        let urls = three.urls.clone();
        let (tasks, brokers) = nodes(args, &urls, 3, 3).await;
        let (three_rate, _, _) = drive(args, &brokers, "nexus-3n").await.print();
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
        (raw_rate, one_rate, three_rate)
    };
    println!(
        "ratio   nexus-js/js-raw = {:.2} (goal 0.5); nexus-3n/js-raw = {:.2}; nexus(sqlite)/nexus-js = {:.2}",
        one_rate / raw_rate,
        three_rate / raw_rate,
        sqlite_rate / one_rate
    );
}
