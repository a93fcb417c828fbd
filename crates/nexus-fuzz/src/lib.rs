//! One function per decoder of bytes from outside: what each fuzz target
//! in `fuzz/` runs, and what this crate's stable tests run over seed
//! corpora and property-generated inputs. Each function must return (not
//! panic, not overflow its stack, not allocate without bound) for any
//! input; a few also check what must hold of what decodes.

use std::sync::Arc;

use nexus_core::{ChatRequest, Secret};
use nexus_mesh::frame::{self, Frame};
use nexus_providers::dialect::{Dialect, ResponseMeta};
use nexus_providers::sse::SseDecoder;
use nexus_providers::Credential;

/// The stack the frame decoder gets: a fraction of a tokio worker's, so
/// recursion shows up as a crash here long before it could in the broker.
pub const SMALL_STACK: usize = 128 * 1024;

/// A mesh frame, version 1, 2 or 3 (with a request id), decoded on a
/// small stack; what decodes re-encodes to a frame (and id) that decodes
/// to the same.
pub fn frame(data: &[u8]) {
    let data = data.to_vec();
    let run = move || {
        if let Ok((id, f)) = Frame::decode_addressed(&data) {
            let bytes = id.map_or_else(|| f.encode(), |id| f.encode_request(id));
            let again = Frame::decode_addressed(&bytes);
            assert_eq!(
                again.ok().as_ref(),
                Some(&(id, f.clone())),
                "re-encoding changed the frame"
            );
            assert_eq!(Frame::request_id(&data), id);
        }
        let _ = Frame::decode(&data);
        let _ = frame::PublishView::parse(&data);
        let _ = frame::is_pre_auth(&data);
    };
    let joined = std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(run)
        .map(std::thread::JoinHandle::join);
    if let Ok(Err(panic)) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// A transport batch, and every frame in it.
pub fn batch(data: &[u8]) {
    let mut b = vec![frame::VERSION, frame::BATCH];
    b.extend_from_slice(data);
    for bytes in [bytes::Bytes::copy_from_slice(data), bytes::Bytes::from(b)] {
        if let Ok(parts) = frame::split_batch(&bytes) {
            for p in parts {
                assert!(!frame::is_batch(&p), "a batch inside a batch");
                let _ = Frame::decode(&p);
            }
        }
    }
}

/// An invite link or code, a short code, and a sealed short-code entry.
pub fn invite(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(i) = nexus_mesh::auth::Invite::parse(&s) {
        let _ = i.verify(&i.owner, 0);
        let _ = i.short_code();
    }
    let _ = nexus_mesh::auth::is_short_code(&s);
    let _ = nexus_mesh::auth::normalize_short(&s);
    let _ = nexus_mesh::auth::open_invite_code("ABCD-EF01-2345-6789", &s);
}

/// A status or summary as a broker hands it out (sealed or not), opened
/// with a key for every epoch.
pub fn presence(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = nexus_mesh::presence::reveal(&s, "peer", "status", |_| Some([7; 32]));
    let _ = nexus_mesh::presence::reveal(&s, "peer", "summary", |_| None);
}

/// Structured output: a JSON Schema and a model's answer (split at the
/// first NUL) through the bounded checker, and the whole input as a
/// conversation the bindings send (`Vec<Message>`), on a small stack.
pub fn structured(data: &[u8]) {
    let data = data.to_vec();
    let run = move || {
        let (schema, answer) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (&data[..], &b"null"[..]),
        };
        if let (Ok(s), Ok(v)) = (
            serde_json::from_slice::<serde_json::Value>(schema),
            serde_json::from_slice::<serde_json::Value>(answer),
        ) {
            let _ = nexus_core::schema::validate(&s, &v);
        }
        let _ = serde_json::from_slice::<Vec<nexus_core::Message>>(&data);
    };
    // The checker recurses at most MAX_DEPTH (64) levels; in a debug build
    // each takes a few KiB, so this target gets four times the frame
    // decoder's stack: still an eighth of a tokio worker's, where the SDK
    // runs it.
    let joined = std::thread::Builder::new()
        .stack_size(4 * SMALL_STACK)
        .spawn(run)
        .map(std::thread::JoinHandle::join);
    if let Ok(Err(panic)) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// What an extension package and its signature bring in: the manifest
/// (TOML), a minisign signature and public key, permission strings. None
/// may panic; what parses must hold its invariants.
pub fn extension(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = nexus_ext::manifest::Manifest::parse(&text, "fuzz") {
        assert!(nexus_ext::manifest::valid_id(&m.id));
        assert!(!m.command.is_empty());
        let _ = m.permissions();
    }
    if let Ok(sig) = nexus_ext::sign::Signature::parse(&text) {
        assert!(sig.trusted_comment.len() <= text.len());
    }
    if let Ok(k) = nexus_ext::sign::PublicKey::parse(&text) {
        assert_eq!(
            nexus_ext::sign::PublicKey::parse(&k.to_file()).ok(),
            Some(k)
        );
    }
    for line in text.lines().take(64) {
        if let Ok(p) = line.parse::<nexus_ext::permissions::Permission>() {
            assert_eq!(
                p.to_string()
                    .parse::<nexus_ext::permissions::Permission>()
                    .ok(),
                Some(p)
            );
        }
    }
}

/// The action policy's YAML and the audit log's chain: a parsed policy
/// decides every action without panicking (and within the rule bound), and
/// verifying any text either counts entries or names a line.
pub fn policy(data: &[u8]) {
    use nexus_core::policy::{decide, Action, ApprovalMode, Policy, MAX_RULES};
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = Policy::from_yaml(&text) {
        assert!(p.rules.len() <= MAX_RULES);
        for mode in [
            ApprovalMode::Plan,
            ApprovalMode::ReadOnly,
            ApprovalMode::Write,
            ApprovalMode::Yolo,
        ] {
            let a = Action {
                resource: "messages",
                verb: "send",
                mesh: Some("m"),
                peer: Some("p"),
            };
            let _ = decide(Some(&p), Some(&p), mode, &a);
        }
    }
    match nexus_core::audit::verify(&text) {
        Ok(n) => assert!(n <= text.lines().count()),
        Err(b) => assert!(b.line >= 1 && b.line <= text.lines().count().max(1)),
    }
}

/// A bridged message's plaintext and a bridge file: an envelope that
/// decodes has bounded fields and encodes back to itself; a bridge file
/// that parses decides any message without panicking.
pub fn bridge(data: &[u8]) {
    use nexus_mesh::bridge::{Arrived, Bridge, Config, Envelope, MAX_HOPS_LIMIT};
    let mut plain = nexus_mesh::bridge::MAGIC.to_vec();
    plain.extend_from_slice(data);
    let envelope = match Envelope::decode(&plain) {
        Some(Ok(e)) => {
            assert!(e.hops >= 1 && e.hops <= MAX_HOPS_LIMIT);
            assert!(e.origin.id.len() == 32 && e.origin.mesh.len() == 32);
            assert_eq!(Envelope::decode(&e.encode()), Some(Ok(e.clone())));
            Some(e)
        }
        Some(Err(_)) => None,
        None => unreachable!("the magic was there"),
    };
    assert!(Envelope::decode(data).is_none_or(|_| data.starts_with(nexus_mesh::bridge::MAGIC)));
    if let Ok(c) = Config::from_yaml(&String::from_utf8_lossy(data)) {
        let meshes = c.meshes.clone();
        let b = Bridge::new(c, "me", ["a".repeat(32), "b".repeat(32)]);
        for mesh in &meshes {
            let _ = b.decide(&Arrived {
                mesh,
                id: "0123456789abcdef0123456789abcdef",
                topic: "news",
                from: "peer",
                from_name: "peer",
                text: "text",
                bridged: envelope.as_ref().map(|e| (&e.origin, e.hops)),
            });
        }
    }
}

/// An extension archive (`.tar.gz` or `.tar`): every entry handed on is a
/// relative path of normal components within the depth bound, and no more
/// bytes come out than the bounds allow.
pub fn archive(data: &[u8]) {
    use nexus_ext::archive::{walk, MAX_DEPTH, MAX_UNPACKED};
    let mut total = 0u64;
    let _ = walk(data, |path, _kind, body| {
        assert!(path.is_relative());
        assert!(path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_))));
        assert!(path.components().count() <= MAX_DEPTH);
        total += std::io::copy(body, &mut std::io::sink()).unwrap_or(0);
        assert!(total <= MAX_UNPACKED);
        Ok(())
    });
}

/// `Host` and `Origin` headers as the gateway judges them (the DNS
/// rebinding and cross-site guards, and the tunnel's any-port rule): no
/// panic; a name the tunnel rule accepts is a loopback one on that port,
/// and nothing else passes without being configured.
pub fn host(data: &[u8]) {
    use nexus_gateway::guard::{host_allowed, loopback_port, origin_allowed};
    let text = String::from_utf8_lossy(data);
    if let Some(port) = loopback_port(&text) {
        assert!(host_allowed(&text, port, &[]), "{text:?}");
        let name = text.trim().to_ascii_lowercase();
        assert!(
            ["127.0.0.1:", "localhost:", "[::1]:"]
                .iter()
                .any(|p| name.starts_with(p)),
            "{text:?}"
        );
    }
    if host_allowed(&text, 18789, &[]) {
        assert_eq!(loopback_port(&text), Some(18789), "{text:?}");
    }
    let _ = origin_allowed(&text, 18789, &[]);
}

/// The SSE decoder, fed `data` in pieces split where its first byte says.
pub fn sse(data: &[u8]) {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for chunk in rest.chunks(step) {
        if d.feed(chunk, &mut out).is_err() {
            return;
        }
    }
}

fn dialects() -> Vec<Arc<dyn Dialect>> {
    use nexus_providers::openai::Flavor;
    let key = || Credential::ApiKey(Secret::new("sk-fuzz-0123456789"));
    let mut v: Vec<Arc<dyn Dialect>> = vec![
        Arc::new(nexus_providers::anthropic::Anthropic::new(
            "anthropic",
            "http://127.0.0.1:1",
            key(),
        )),
        Arc::new(nexus_providers::gemini::Gemini::new(
            "gemini",
            "http://127.0.0.1:1",
            key(),
        )),
    ];
    for f in [
        Flavor::OpenAi,
        Flavor::OpenRouter,
        Flavor::Xai,
        Flavor::DeepSeek,
        Flavor::Compatible,
    ] {
        v.push(Arc::new(nexus_providers::openai::OpenAi::new(
            "openai",
            "http://127.0.0.1:1/v1",
            key(),
            f,
        )));
    }
    v
}

/// Each dialect's parsers (chat answer, error body, model list) and its
/// stream decoder over `data`: the first byte picks the dialect and the
/// status, the rest is the body (or the SSE stream).
pub fn provider(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let all = dialects();
    let d = &all[usize::from(pick) % all.len()];
    let meta = ResponseMeta {
        status: [200, 400, 401, 429, 500, 529][usize::from(pick >> 4) % 6],
        ..ResponseMeta::default()
    };
    let _ = d.parse_chat(body, &meta);
    let _ = d.parse_error(body, &meta);
    let _ = d.parse_models(body);
    let mut sse = SseDecoder::new();
    let mut events = Vec::new();
    if sse.feed(body, &mut events).is_err() {
        return;
    }
    let mut dec = d.stream_decoder(&ChatRequest::new("m", "hi"), &meta);
    let mut out = Vec::new();
    for ev in &events {
        if dec.on_event(ev, &mut out).is_err() {
            return;
        }
    }
    let _ = dec.finish(&mut out);
}

/// A vault file: opened with a passphrase, it is refused (or, were it a
/// forgery that authenticates, read) without panicking or deriving past
/// the KDF bounds.
///
/// Costs the bounds allow but that would make one input take seconds
/// (up to 256 MiB × 10 passes) are checked against the bounds only: the
/// fuzzer looks for crashes, not for slow but legal derivations.
pub fn vault_file(data: &[u8]) {
    use nexus_vault::file::{FileVault, KdfParams, KeySource};
    let u32_at = |i: usize| {
        data.get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let kdf = KdfParams {
        m_cost_kib: u32_at(9),
        t_cost: u32_at(13),
        p_cost: u32_at(17),
    };
    if kdf.check().is_ok() && u64::from(kdf.m_cost_kib) * u64::from(kdf.t_cost) > 8192 {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("vault.enc");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let source = KeySource::Passphrase(Secret::new("fuzz passphrase"));
    if let Ok(v) = FileVault::open_with(&path, source, KdfParams::INSECURE_FOR_TESTS) {
        let _ = nexus_core::Vault::list(&v, "");
    }
}

/// A mesh backup file.
///
/// As with the vault, legal but slow costs are only checked.
pub fn backup_file(data: &[u8]) {
    let u32_at = |i: usize| {
        data.get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let kdf = nexus_mesh::backup::BackupKdf {
        opslimit: u32_at(8),
        memlimit: u32_at(12),
    };
    if kdf.check().is_ok() && u64::from(kdf.memlimit >> 20) * u64::from(kdf.opslimit) > 8 {
        return;
    }
    let _ = nexus_mesh::backup::restore(data, "fuzz passphrase");
}

/// A history page `depth` deep, as an attacker writes it (the seed that
/// found the broker's stack overflow).
pub fn nested_page(depth: usize) -> Vec<u8> {
    fn put(w: &mut Vec<u8>, b: &[u8]) {
        let mut n = b.len() as u64;
        while n >= 0x80 {
            w.push((n as u8) | 0x80);
            n >>= 7;
        }
        w.push(n as u8);
        w.extend_from_slice(b);
    }
    let mut f = Frame::Ack { id: "x".into() }.encode();
    for _ in 0..depth {
        let mut w = vec![frame::VERSION, 16];
        put(&mut w, b"t");
        w.push(1);
        w.push(1);
        put(&mut w, &f);
        f = w;
    }
    f
}

/// The same in the version-1 JSON encoding.
pub fn nested_page_json(depth: usize) -> Vec<u8> {
    let mut json = String::from("{\"ack\":{\"id\":\"x\"}}");
    for _ in 0..depth {
        json = format!("{{\"history_page\":{{\"topic\":\"t\",\"entries\":[[1,{json}]]}}}}");
    }
    let mut v = vec![frame::LEGACY_VERSION, 16];
    v.extend_from_slice(json.as_bytes());
    v
}
