//! A small HTTP/1.1 server: keep-alive, `Content-Length` request bodies,
//! `Content-Length` or chunked responses. Enough to drive real clients, and
//! precise about the byte-level failures real servers produce.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{self, Answer, Api, Counts};
use crate::{Recorded, Script, State};

const MAX_HEAD: usize = 64 * 1024;

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Request>> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let first = lines.next().unwrap_or_default();
            let mut parts = first.split(' ');
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut headers = HashMap::new();
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let start = end + 4;
            while buf.len() < start + len {
                let mut tmp = [0u8; 16 * 1024];
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[start..start + len].to_vec();
            buf.drain(..start + len);
            return Ok(Some(Request {
                method,
                path,
                headers,
                body,
            }));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut tmp = [0u8; 16 * 1024];
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn respond(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    sock.write_all(&out).await
}

async fn stream_head(sock: &mut TcpStream, headers: &[(String, String)]) -> std::io::Result<()> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n",
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await
}

async fn chunk(sock: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let msg = format!("{:x}\r\n{data}\r\n", data.len());
    sock.write_all(msg.as_bytes()).await
}

async fn end_chunks(sock: &mut TcpStream) -> std::io::Result<()> {
    sock.write_all(b"0\r\n\r\n").await
}

/// Routes a path to a family and an operation.
fn route(method: &str, path: &str) -> Option<(Api, Op)> {
    let p = path.split('?').next().unwrap_or(path);
    if method == "GET" {
        return match p {
            "/v1/models" => {
                // Anthropic and OpenAI share this path; the caller picks by headers.
                Some((Api::OpenAi, Op::Models))
            }
            "/openrouter/v1/models" => Some((Api::OpenRouter, Op::Models)),
            "/xai/v1/models" => Some((Api::Xai, Op::Models)),
            "/deepseek/models" => Some((Api::DeepSeek, Op::Models)),
            "/compat/v1/models" => Some((Api::Compatible, Op::Models)),
            "/v1beta/models" => Some((Api::Gemini, Op::Models)),
            _ => None,
        };
    }
    match p {
        "/v1/messages" => Some((Api::Anthropic, Op::Chat(None))),
        "/v1/chat/completions" => Some((Api::OpenAi, Op::Chat(None))),
        "/openrouter/v1/chat/completions" => Some((Api::OpenRouter, Op::Chat(None))),
        "/xai/v1/chat/completions" => Some((Api::Xai, Op::Chat(None))),
        "/deepseek/chat/completions" | "/deepseek/v1/chat/completions" => {
            Some((Api::DeepSeek, Op::Chat(None)))
        }
        "/compat/v1/chat/completions" => Some((Api::Compatible, Op::Chat(None))),
        _ => {
            let rest = p.strip_prefix("/v1beta/models/")?;
            if let Some(m) = rest.strip_suffix(":streamGenerateContent") {
                Some((Api::Gemini, Op::GeminiStream(m.to_string())))
            } else {
                rest.strip_suffix(":generateContent")
                    .map(|m| (Api::Gemini, Op::Chat(Some(m.to_string()))))
            }
        }
    }
}

enum Op {
    Models,
    /// A chat call; Gemini carries the model in the path.
    Chat(Option<String>),
    GeminiStream(String),
}

fn presented_key(api: Api, h: &HashMap<String, String>) -> Option<String> {
    match api {
        Api::Anthropic => h.get("x-api-key").cloned(),
        Api::Gemini => h.get("x-goog-api-key").cloned(),
        _ => h
            .get("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string),
    }
}

/// The last user message's text, in any family's request shape.
fn last_user_text(api: Api, body: &Value) -> String {
    let (list, role) = match api {
        Api::Gemini => (body.get("contents"), "user"),
        _ => (body.get("messages"), "user"),
    };
    let Some(msgs) = list.and_then(Value::as_array) else {
        return String::new();
    };
    for m in msgs.iter().rev() {
        if m.get("role").and_then(Value::as_str) != Some(role) {
            continue;
        }
        let content = if api == Api::Gemini {
            m.get("parts")
        } else {
            m.get("content")
        };
        match content {
            Some(Value::String(s)) => return s.clone(),
            Some(Value::Array(parts)) => {
                return parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("")
            }
            _ => {}
        }
    }
    String::new()
}

/// The tool output the request ends with, if its last message carries one:
/// OpenAI's `tool` role, Anthropic's `tool_result` blocks, Gemini's
/// `functionResponse` parts. Several results are joined with `; `.
fn last_tool_results(api: Api, body: &Value) -> Option<String> {
    let list = match api {
        Api::Gemini => body.get("contents"),
        _ => body.get("messages"),
    }?
    .as_array()?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    match api {
        Api::Anthropic => {
            for part in list.last()?.get("content")?.as_array()? {
                if part.get("type").and_then(Value::as_str) == Some("tool_result") {
                    out.push(text(part.get("content")?));
                }
            }
        }
        Api::Gemini => {
            for part in list.last()?.get("parts")?.as_array()? {
                if let Some(r) = part.get("functionResponse").and_then(|f| f.get("response")) {
                    out.push(text(r.get("content").or_else(|| r.get("error"))?));
                }
            }
        }
        _ => {
            for m in list.iter().rev() {
                if m.get("role").and_then(Value::as_str) != Some("tool") {
                    break;
                }
                out.push(text(m.get("content")?));
            }
            out.reverse();
        }
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// Whether the request asks for JSON natively (OpenAI's `response_format`,
/// Gemini's `responseMimeType`).
fn wants_json(body: &Value) -> bool {
    body.get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("json"))
        || body
            .pointer("/generationConfig/responseMimeType")
            .and_then(Value::as_str)
            == Some("application/json")
}

fn count_words(api: Api, body: &Value) -> u64 {
    // Every text field in the request, like the echo protocol's usage.
    fn walk(v: &Value, n: &mut u64) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("text" | "content" | "system", Value::String(s)) => {
                            *n += s.split_whitespace().count() as u64
                        }
                        _ => walk(x, n),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, n)),
            _ => {}
        }
    }
    let mut n = 0;
    let _ = api;
    for key in ["system", "systemInstruction", "messages", "contents"] {
        if let Some(v) = body.get(key) {
            if let Value::String(s) = v {
                n += s.split_whitespace().count() as u64;
            } else {
                walk(v, &mut n);
            }
        }
    }
    n.max(1)
}

pub(crate) async fn serve_connection(
    mut sock: TcpStream,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut sock, &mut buf).await? {
        let asked_to_close = req
            .headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let keep = handle(&mut sock, &state, req).await?;
        if !keep || asked_to_close {
            return Ok(());
        }
    }
    Ok(())
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Handles one request; returns whether the connection stays open.
async fn handle(
    sock: &mut TcpStream,
    state: &Arc<Mutex<State>>,
    req: Request,
) -> std::io::Result<bool> {
    let fixed = state.lock().unwrap().statics.get(&req.path).cloned();
    if let Some((status, body)) = fixed {
        respond(sock, status, &[], body.as_bytes()).await?;
        return Ok(true);
    }
    if req.method == "POST" && req.path == "/_standin/script" {
        // Cross-language tests queue scripts here: `{"api": "openai",
        // "scripts": [{"status": 429, "headers": {"retry-after": "1"}}, ...]}`.
        let (status, body) = match control_scripts(&req.body) {
            Ok((api, scripts)) => {
                let n = scripts.len();
                let mut st = state.lock().unwrap();
                st.scripts.entry(api).or_default().extend(scripts);
                (200, format!("{{\"queued\":{n}}}"))
            }
            Err(e) => (400, serde_json::json!({ "error": e }).to_string()),
        };
        respond(sock, status, &[], body.as_bytes()).await?;
        return Ok(true);
    }
    if req.method == "GET" && req.path == "/_standin/requests" {
        let n = state.lock().unwrap().recorded.len();
        respond(sock, 200, &[], format!("{{\"count\":{n}}}").as_bytes()).await?;
        return Ok(true);
    }
    let Some((mut api, op)) = route(&req.method, &req.path) else {
        let body = br#"{"error":{"message":"no such route on the stand-in","type":"invalid_request_error"}}"#;
        respond(sock, 404, &[], body).await?;
        return Ok(true);
    };
    if matches!(op, Op::Models)
        && api == Api::OpenAi
        && req.headers.contains_key("anthropic-version")
    {
        api = Api::Anthropic;
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let (script, required) = {
        let mut st = state.lock().unwrap();
        st.recorded.push(Recorded {
            api,
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: body.clone(),
        });
        let script = if matches!(op, Op::Models) {
            None
        } else {
            st.scripts.get_mut(&api).and_then(|q| q.pop_front())
        };
        (script, st.required_key.clone())
    };
    let rid = vec![
        ("request-id".to_string(), "req_011CStandIn".to_string()),
        ("x-request-id".to_string(), "req_standin_1".to_string()),
    ];
    if let Some(k) = required {
        if presented_key(api, &req.headers).as_deref() != Some(k.as_str()) {
            let msg = "invalid x-api-key";
            respond(
                sock,
                401,
                &rid,
                &json_bytes(&wire::error_body(api, 401, msg)),
            )
            .await?;
            return Ok(true);
        }
    }
    if matches!(op, Op::Models) {
        respond(sock, 200, &rid, &json_bytes(&wire::models_body(api))).await?;
        return Ok(true);
    }
    let (model, stream) = match &op {
        Op::GeminiStream(m) => (m.clone(), true),
        Op::Chat(Some(m)) => (m.clone(), false),
        _ => (
            body.get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        ),
    };
    if body.is_null() {
        let e = wire::error_body(api, 400, "the request body is not valid JSON");
        respond(sock, 400, &rid, &json_bytes(&e)).await?;
        return Ok(true);
    }
    let prompt = last_user_text(api, &body);
    // The echo protocol's `fail STATUS`, unless a script says otherwise.
    let script = script.or_else(|| {
        prompt
            .strip_prefix("fail ")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .map(|status| {
                if status == 429 {
                    Script::StatusWithHeaders(429, vec![("retry-after".into(), "0".into())])
                } else {
                    Script::Status(status)
                }
            })
    });
    let tool_output = last_tool_results(api, &body);
    let answer = match &script {
        Some(Script::Reply(t) | Script::Burst(t)) => Answer::Text(t.clone()),
        // The echo protocol's tool loop: a request that ends with tool
        // results is answered with them.
        _ if tool_output.is_some() => Answer::Text(format!(
            "the tool said: {}",
            tool_output.unwrap_or_default()
        )),
        // Native JSON mode: the echo as a JSON object.
        _ if wants_json(&body) => Answer::Text(serde_json::json!({ "echo": prompt }).to_string()),
        _ => match prompt
            .strip_prefix("tool ")
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, j)| serde_json::from_str::<Value>(j).ok().map(|a| (n, a)))
        {
            Some((name, args)) => Answer::Tool {
                name: name.to_string(),
                args,
            },
            None => Answer::Text(format!("echo: {prompt}")),
        },
    };
    let out_words = match &answer {
        Answer::Text(t) => t.split_whitespace().count().max(1) as u64,
        Answer::Tool { .. } => 1,
    };
    let counts = Counts {
        input: count_words(api, &body),
        output: out_words,
    };
    let status_error =
        |status: u16| wire::error_body(api, status, &format!("stand-in error {status}"));
    match script {
        Some(Script::Status(s)) => {
            respond(sock, s, &rid, &json_bytes(&status_error(s))).await?;
            return Ok(true);
        }
        Some(Script::StatusWithHeaders(s, h)) => {
            let mut hs = rid.clone();
            hs.extend(h);
            respond(sock, s, &hs, &json_bytes(&status_error(s))).await?;
            return Ok(true);
        }
        Some(Script::InsufficientQuota) => {
            respond(
                sock,
                429,
                &rid,
                &json_bytes(&wire::insufficient_quota_body()),
            )
            .await?;
            return Ok(true);
        }
        Some(Script::Raw(s, b)) => {
            respond(sock, s, &rid, b.as_bytes()).await?;
            return Ok(true);
        }
        Some(Script::Hang) => {
            // Hold the connection open, answering nothing, until the client gives up.
            let mut tmp = [0u8; 1024];
            while sock.read(&mut tmp).await? > 0 {}
            return Ok(false);
        }
        Some(Script::Malformed) if !stream => {
            respond(sock, 200, &rid, b"{\"id\": \"x\", \"choices\": [ {not json").await?;
            return Ok(true);
        }
        _ => {}
    }
    if !stream {
        let b = wire::response_body(api, &model, &answer, counts);
        respond(sock, 200, &rid, &json_bytes(&b)).await?;
        return Ok(true);
    }
    let frames = wire::stream_frames(api, &model, &answer, counts);
    stream_head(sock, &rid).await?;
    let content_frames = |n: usize| frames.iter().take(n + 1).cloned().collect::<Vec<_>>();
    match script {
        Some(Script::MidStreamError(n)) => {
            for f in content_frames(n) {
                chunk(sock, &f).await?;
            }
            chunk(sock, &wire::stream_error_frame(api)).await?;
            end_chunks(sock).await?;
        }
        Some(Script::Truncate(n)) => {
            for f in content_frames(n) {
                chunk(sock, &f).await?;
            }
            end_chunks(sock).await?;
        }
        Some(Script::Drop(n)) => {
            for f in content_frames(n) {
                chunk(sock, &f).await?;
            }
            // Half a chunk, then close: the HTTP body itself is broken.
            sock.write_all(b"40\r\ndata: {\"partial").await?;
            sock.shutdown().await?;
            return Ok(false);
        }
        Some(Script::Malformed) => {
            chunk(sock, &frames[0]).await?;
            chunk(sock, "data: {\"choices\": [ {oops\n\n").await?;
            end_chunks(sock).await?;
        }
        Some(Script::Burst(_)) if stream => {
            let mut all = String::new();
            for f in &frames {
                all.push_str(&format!("{:x}\r\n{f}\r\n", f.len()));
            }
            all.push_str("0\r\n\r\n");
            sock.write_all(all.as_bytes()).await?;
        }
        Some(Script::Drip(pause)) => {
            for f in &frames {
                tokio::time::sleep(pause).await;
                chunk(sock, f).await?;
            }
            end_chunks(sock).await?;
        }
        _ => {
            // Real servers flush events as they go; send them in a few
            // writes rather than one, so clients see partial chunks.
            for f in &frames {
                chunk(sock, f).await?;
            }
            end_chunks(sock).await?;
        }
    }
    Ok(true)
}

/// Parses a control request body into the family and its scripts.
fn control_scripts(body: &[u8]) -> Result<(Api, Vec<Script>), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let name = v
        .get("api")
        .and_then(Value::as_str)
        .ok_or("missing `api`")?;
    let api = Api::ALL
        .into_iter()
        .find(|a| a.provider() == name)
        .ok_or_else(|| format!("unknown api `{name}`"))?;
    let list = v
        .get("scripts")
        .and_then(Value::as_array)
        .ok_or("missing `scripts` array")?;
    let scripts = list
        .iter()
        .map(Script::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((api, scripts))
}
