use super::*;

fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml).unwrap()
}

#[test]
fn envelopes_round_trip_and_plain_text_is_not_one() {
    let e = Envelope {
        text: "deploy at 5".into(),
        origin: Origin {
            mesh: "0".repeat(32),
            mesh_name: "lab".into(),
            id: "ab".repeat(16),
            from: "alice".into(),
        },
        hops: 1,
    };
    assert_eq!(Envelope::decode(&e.encode()).unwrap().unwrap(), e);
    assert!(Envelope::decode(b"deploy at 5").is_none());
    assert!(Envelope::decode(b"").is_none());
    for bad in [
        &b"\0nxb1\n{"[..],
        b"\0nxb1\n[]",
        b"\0nxb1\n{\"text\":\"x\",\"origin\":{\"mesh\":\"../..\",\"mesh_name\":\"\",\"id\":\"x\",\"from\":\"\"},\"hops\":1}",
    ] {
        assert!(Envelope::decode(bad).unwrap().is_err(), "{bad:?}");
    }
    let mut far = e.clone();
    far.hops = MAX_HOPS_LIMIT + 1;
    assert!(Envelope::decode(&far.encode()).unwrap().is_err());
    let mut unknown = e.encode();
    unknown.truncate(unknown.len() - 1);
    unknown.extend_from_slice(b",\"extra\":1}");
    assert!(Envelope::decode(&unknown).unwrap().is_err());
}

#[test]
fn bridge_files_are_checked_with_what_is_wrong() {
    let c = config("meshes: [lab, ops]\ntopics: [news, {name: alerts, direction: lab->ops}]\n");
    assert_eq!(c.max_hops, DEFAULT_MAX_HOPS);
    assert_eq!(c.topic_names(), ["news", "alerts"]);
    for (yaml, says) in [
        ("meshes: [lab]\ntopics: [a]", "two different meshes"),
        ("meshes: [lab, lab]\ntopics: [a]", "two different meshes"),
        ("meshes: [lab, ops]\ntopics: []", "at least one topic"),
        (
            "meshes: [lab, ops]\ntopics: [a]\nmax_hops: 0",
            "between 1 and",
        ),
        (
            "meshes: [lab, ops]\ntopics: [a]\nmax_hops: 99",
            "between 1 and",
        ),
        (
            "meshes: [lab, ops]\ntopics: [{name: a, direction: lab->dev}]",
            "`lab->ops` or `ops->lab`",
        ),
        (
            "meshes: [lab, ops]\ntopics: [a]\nfiltre: {}",
            "unknown field",
        ),
        (
            "meshes: [lab, ops]\ntopics: [a]\nfilter: {from: 3}",
            "does not parse",
        ),
    ] {
        let e = Config::from_yaml(yaml).unwrap_err().to_string();
        assert!(e.contains(says), "{yaml}: {e}");
    }
    let huge = format!("meshes: [a, b]\ntopics: [{}]", "t, ".repeat(40_000));
    assert!(Config::from_yaml(&huge)
        .unwrap_err()
        .to_string()
        .contains("at most"));
}

fn arrived<'a>(mesh: &'a str, id: &'a str, from: &'a str, text: &'a str) -> Arrived<'a> {
    Arrived {
        mesh,
        id,
        topic: "news",
        from,
        from_name: from,
        text,
        bridged: None,
    }
}

#[test]
fn decisions_follow_direction_filter_hops_and_origin() {
    let c = config(
        "meshes: [lab, ops]\ntopics: [{name: news, direction: lab->ops}]\nfilter: {not_from: [bot], not_contains: [secret]}\n",
    );
    let b = Bridge::new(c, "me", ["1".repeat(32), "2".repeat(32)]);
    let id = "ab".repeat(16);
    let Decision::Forward(f) = b.decide(&arrived("lab", &id, "alice", "hello")) else {
        panic!()
    };
    assert_eq!((f.mesh.as_str(), f.envelope.hops), ("ops", 1));
    assert_eq!(f.id, copy_id(&f.envelope.origin, &"2".repeat(32)));
    assert_eq!(f.envelope.origin.from, "alice");
    let skip = |m: Arrived<'_>| match b.decide(&m) {
        Decision::Skip(s) => s,
        Decision::Forward(f) => panic!("forwarded {f:?}"),
    };
    assert_eq!(
        skip(arrived("ops", &id, "alice", "hello")),
        Skip::NotForwarded
    );
    assert_eq!(skip(arrived("lab", &id, "me", "hello")), Skip::Own);
    assert_eq!(skip(arrived("lab", &id, "bot", "hello")), Skip::Filtered);
    assert_eq!(
        skip(arrived("lab", &id, "alice", "a secret")),
        Skip::Filtered
    );
    let mut m = arrived("lab", &id, "alice", "hello");
    m.topic = "other";
    assert_eq!(skip(m), Skip::NotForwarded);
    let far = Origin {
        mesh: "3".repeat(32),
        mesh_name: "dev".into(),
        id: id.clone(),
        from: "carol".into(),
    };
    let mut m = arrived("lab", &id, "bridge2", "hello");
    m.bridged = Some((&far, 2));
    assert_eq!(skip(m.clone()), Skip::MaxHops);
    m.bridged = Some((&far, 1));
    assert!(
        matches!(b.decide(&m), Decision::Forward(ref f) if f.envelope.hops == 2 && f.envelope.origin == far)
    );
    let home = Origin {
        mesh: "2".repeat(32),
        ..far.clone()
    };
    m.bridged = Some((&home, 1));
    assert_eq!(skip(m), Skip::Origin);
}

#[test]
fn the_remembered_set_is_bounded_and_only_holds_acknowledged_copies() {
    let c = config("meshes: [lab, ops]\ntopics: [news]\n");
    let mut b = Bridge::new(c, "me", ["1".repeat(32), "2".repeat(32)]);
    let id = "cd".repeat(16);
    let Decision::Forward(f) = b.decide(&arrived("lab", &id, "alice", "x")) else {
        panic!()
    };
    // Not acknowledged yet: decided again.
    assert!(matches!(
        b.decide(&arrived("lab", &id, "alice", "x")),
        Decision::Forward(_)
    ));
    b.forwarded(&f);
    assert_eq!(
        b.decide(&arrived("lab", &id, "alice", "x")),
        Decision::Skip(Skip::Forwarded)
    );
    for i in 0..REMEMBERED + 10 {
        let id = format!("{i:032x}");
        let Decision::Forward(f) = b.decide(&arrived("lab", &id, "alice", "x")) else {
            panic!()
        };
        b.forwarded(&f);
    }
    assert!(b.seen.len() <= REMEMBERED && b.order.len() <= REMEMBERED);
}

/// A small seeded generator: the interleavings are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One mesh's topic as its broker keeps it: one message per id.
#[derive(Default)]
struct Log(Vec<(String, String, Vec<u8>)>);

impl Log {
    fn append(&mut self, id: &str, from: &str, plain: Vec<u8>) {
        if !self.0.iter().any(|(i, _, _)| i == id) {
            self.0.push((id.to_string(), from.to_string(), plain));
        }
    }
}

/// A ring of three meshes and three bridges, messages published in every
/// mesh, delivered in a random order, bridges "crashing" (forgetting what
/// they forwarded and reading again from an earlier point, as an
/// at-least-once inbox does): every message is in every mesh exactly once.
#[test]
fn a_ring_of_three_delivers_each_message_once_per_mesh_under_any_interleaving() {
    let names = ["m0", "m1", "m2"];
    let prints: Vec<String> = (0..3).map(|i| format!("{i}").repeat(32)).collect();
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut logs: Vec<Log> = (0..3).map(|_| Log::default()).collect();
        // Bridge k joins mesh k and mesh k+1.
        let make = |k: usize| {
            let (a, b) = (k, (k + 1) % 3);
            let c = config(&format!(
                "meshes: [{}, {}]\ntopics: [news]\n",
                names[a], names[b]
            ));
            Bridge::new(
                c,
                &format!("bridge{k}"),
                [prints[a].clone(), prints[b].clone()],
            )
        };
        let mut bridges: Vec<Bridge> = (0..3).map(make).collect();
        // What each bridge has read of each of its two meshes.
        let mut cursors = [[0usize; 2]; 3];
        let mut published = 0;
        for _ in 0..600 {
            match rng.below(10) {
                0 if published < 30 => {
                    let m = rng.below(3);
                    let id = format!("{:032x}", seed << 32 | published);
                    logs[m].append(&id, "user", format!("message {published}").into_bytes());
                    published += 1;
                }
                1 => {
                    let k = rng.below(3);
                    bridges[k] = make(k);
                    for c in &mut cursors[k] {
                        *c = c.saturating_sub(rng.below(4));
                    }
                }
                _ => {
                    let k = rng.below(3);
                    let side = rng.below(2);
                    step(
                        &mut bridges[k],
                        &mut cursors[k][side],
                        &mut logs,
                        side,
                        k,
                        &names,
                    );
                }
            }
        }
        // Then run until nothing moves.
        loop {
            let mut moved = false;
            for k in 0..3 {
                for side in 0..2 {
                    moved |= step(
                        &mut bridges[k],
                        &mut cursors[k][side],
                        &mut logs,
                        side,
                        k,
                        &names,
                    );
                }
            }
            if !moved {
                break;
            }
        }
        for (m, log) in logs.iter().enumerate() {
            let mut origins: Vec<String> = log
                .0
                .iter()
                .map(|(id, _, plain)| match Envelope::decode(plain) {
                    Some(e) => e.unwrap().origin.id,
                    None => id.clone(),
                })
                .collect();
            let n = origins.len();
            origins.sort();
            origins.dedup();
            assert_eq!(origins.len(), n, "seed {seed}: a duplicate in mesh {m}");
            assert_eq!(
                n, published as usize,
                "seed {seed}: mesh {m} misses messages"
            );
        }
    }
}

/// Bridge `k` reads the next message of its `side` mesh; true if it read one.
fn step(
    b: &mut Bridge,
    cursor: &mut usize,
    logs: &mut [Log],
    side: usize,
    k: usize,
    names: &[&str; 3],
) -> bool {
    let mesh = if side == 0 { k } else { (k + 1) % 3 };
    let Some((id, from, plain)) = logs[mesh].0.get(*cursor).cloned() else {
        return false;
    };
    let env = Envelope::decode(&plain).map(Result::unwrap);
    let text = env.as_ref().map_or_else(
        || String::from_utf8(plain.clone()).unwrap(),
        |e| e.text.clone(),
    );
    let arrived = Arrived {
        mesh: names[mesh],
        id: &id,
        topic: "news",
        from: &from,
        from_name: &from,
        text: &text,
        bridged: env.as_ref().map(|e| (&e.origin, e.hops)),
    };
    if let Decision::Forward(f) = b.decide(&arrived) {
        let to = names.iter().position(|n| *n == f.mesh).unwrap();
        logs[to].append(&f.id, &format!("bridge{k}"), f.envelope.encode());
        b.forwarded(&f);
    }
    *cursor += 1;
    true
}
