//! Writes the seed corpus in fuzz/corpus: `cargo run -p nexus-fuzz
//! --example seeds`. Seeds are valid inputs of each decoder plus the
//! attacks found so far (deep nesting that ran the broker's stack out, in
//! both frame versions), so every fuzz run starts from them.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_mesh::frame::{self, Frame};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let publish = Frame::Publish {
        id: "m1".into(),
        from: "p".into(),
        topic: "t".into(),
        epoch: 3,
        nonce: [7; 24],
        body: vec![9; 40],
    };
    let page = Frame::HistoryPage {
        topic: "t".into(),
        entries: vec![(1, publish.clone()), (2, publish.clone())],
    };
    let frames = [
        ("publish", publish.encode()),
        ("page", page.encode()),
        ("list_peers", Frame::ListPeers.encode()),
        ("page_answer_v3", Frame::address(&page.encode(), 1 << 40)),
        (
            "history_request_v3",
            Frame::History {
                topic: "t".into(),
                before: Some(9),
                limit: 500,
            }
            .encode_request(7),
        ),
        (
            "hello",
            Frame::Hello {
                mesh: "lab".into(),
                peer: "ab".repeat(16),
                key: "cd".repeat(32),
                ts: 1_795_219_200_000,
                nonce: "0123456789abcdef".into(),
                sig: "ef".repeat(64),
            }
            .encode(),
        ),
        (
            "member_joined_v2_0",
            Frame::MemberJoined {
                peer: "p".into(),
                name: "n".into(),
                x25519: "x".into(),
                invite: "i".into(),
            }
            .encode(),
        ),
        ("nested_page_1800", nexus_fuzz::nested_page(1_800)),
        ("nested_page_20000", nexus_fuzz::nested_page(20_000)),
        ("nested_page_json_2000", nexus_fuzz::nested_page_json(2_000)),
    ];
    for (name, bytes) in &frames {
        write("frame", name, bytes);
    }
    let parts: Vec<Vec<u8>> = frames.iter().take(4).map(|(_, b)| b.clone()).collect();
    write("batch", "four", &frame::encode_batch(&parts)[2..]);
    write(
        "batch",
        "nested",
        &frame::encode_batch(&[frame::encode_batch(&parts)])[2..],
    );
    write("invite", "short", b"ABCD-EF01-2345-6789");
    write(
        "invite",
        "link",
        b"nexus://join/eyJtZXNoIjoibGFiIiwiaWQiOiIwMTIzIiwicm9sZSI6Im1lbWJlciIsImV4cGlyZXNfbXMiOjEsIm1heF91c2VzIjoxLCJicm9rZXIiOiJ3czovL2giLCJvd25lciI6IiIsInNpZyI6IiJ9",
    );
    let sealed = nexus_mesh::presence::seal(&[7; 32], 2, "peer", "status", "busy").unwrap();
    write("presence", "sealed", sealed.as_bytes());
    write("presence", "plain", b"reviewing PR 7");
    let sse = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n: comment\r\ndata: a\r\ndata: b\r\n\r\nretry: 10\nid: 7\ndata: [DONE]\n\n";
    write("sse", "mixed", &[&[3u8][..], &sse[..]].concat());
    let chat = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    let stream =
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\"}}]}\n\ndata: [DONE]\n\n";
    let anthropic = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    write("provider", "openai_chat", &[&[2u8][..], &chat[..]].concat());
    write(
        "provider",
        "openai_stream",
        &[&[2u8][..], &stream[..]].concat(),
    );
    write(
        "provider",
        "anthropic_stream",
        &[&[0u8][..], &anthropic[..]].concat(),
    );
    write(
        "provider",
        "gemini_error",
        &[
            &[0x31u8][..],
            br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#,
        ]
        .concat(),
    );
    // A vault header asking for 8 GiB, and a backup asking for 1 GiB x 64.
    let mut vault = b"NXVAULT1".to_vec();
    vault.push(1);
    vault.extend_from_slice(&(8u32 << 20).to_le_bytes());
    vault.extend_from_slice(&3u32.to_le_bytes());
    vault.extend_from_slice(&1u32.to_le_bytes());
    vault.resize(77 + 40, 0);
    write("vault_file", "huge_memory", &vault);
    let mut backup = b"NXMBAK01".to_vec();
    backup.extend_from_slice(&64u32.to_le_bytes());
    backup.extend_from_slice(&(1u32 << 30).to_le_bytes());
    backup.resize(120, 0);
    write("backup_file", "huge_costs", &backup);
}
