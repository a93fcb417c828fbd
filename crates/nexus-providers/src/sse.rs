//! An incremental Server-Sent Events decoder (the WHATWG event-stream
//! grammar), fed with arbitrary byte chunks.
//!
//! It works on bytes and allocates only for the data it returns: field names
//! are compared as byte slices, and lines are found with `memchr`. Splitting
//! the input at any byte boundary yields the same events.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, or empty for the default `message` type.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The decoder's state between chunks.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of an unfinished line.
    partial: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` at the start of the next one
    /// belongs to the same line ending.
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
    /// Comment lines seen (`: OPENROUTER PROCESSING` and keep-alives).
    comments: u64,
    /// Bytes seen since the last dispatched event, to bound memory.
    pending_bytes: usize,
    bom_checked: bool,
}

/// The most bytes one event may hold before the stream is judged broken.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The stream broke the SSE grammar in a way we refuse to buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseTooLarge;

impl SseDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Comment lines seen so far.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_pending(&self) -> bool {
        !self.partial.is_empty() || self.has_data
    }

    /// Feeds a chunk, appending every completed event to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if !self.bom_checked && !chunk.is_empty() {
            // A UTF-8 BOM may open the stream; it can be split across chunks.
            let need = 3usize.saturating_sub(self.partial.len());
            let mut head = self.partial.clone();
            head.extend_from_slice(&chunk[..need.min(chunk.len())]);
            if head.len() < 3 && b"\xEF\xBB\xBF".starts_with(&head) {
                self.partial = head;
                return Ok(());
            }
            self.bom_checked = true;
            if head.starts_with(b"\xEF\xBB\xBF") {
                let from_chunk = 3 - self.partial.len();
                self.partial.clear();
                chunk = &chunk[from_chunk..];
            }
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            // An empty chunk must not end the CRLF: only real bytes do.
            self.skip_lf = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            match memchr::memchr2(b'\n', b'\r', chunk) {
                None => {
                    self.pending_bytes += chunk.len();
                    if self.pending_bytes > MAX_EVENT_BYTES {
                        return Err(SseTooLarge);
                    }
                    self.partial.extend_from_slice(chunk);
                    return Ok(());
                }
                Some(i) => {
                    let ending = chunk[i];
                    let mut next = i + 1;
                    if ending == b'\r' {
                        if next < chunk.len() {
                            if chunk[next] == b'\n' {
                                next += 1;
                            }
                        } else {
                            self.skip_lf = true;
                        }
                    }
                    if self.partial.is_empty() {
                        self.line(&chunk[..i], out);
                    } else {
                        self.partial.extend_from_slice(&chunk[..i]);
                        let line = std::mem::take(&mut self.partial);
                        self.line(&line, out);
                        self.partial = line;
                        self.partial.clear();
                    }
                    self.pending_bytes += next;
                    if self.pending_bytes > MAX_EVENT_BYTES {
                        return Err(SseTooLarge);
                    }
                    chunk = &chunk[next..];
                }
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            } else {
                self.event.clear();
            }
            self.has_data = false;
            self.pending_bytes = 0;
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
            }
            // `id` and `retry` matter to browsers reconnecting; model APIs
            // do not resume streams, so they are read and dropped.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn parses_events_data_and_comments() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(
            b": OPENROUTER PROCESSING\n\nevent: ping\ndata: {}\n\ndata: a\ndata: b\n\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                SseEvent {
                    event: "ping".into(),
                    data: "{}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "a\nb".into()
                },
            ]
        );
        assert_eq!(d.comments(), 1);
    }

    #[test]
    fn handles_crlf_and_cr_split_across_chunks() {
        let out = decode_all(&[b"data: x\r", b"\n\r", b"\ndata: y\r\r"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, "x");
        assert_eq!(out[1].data, "y");
    }

    #[test]
    fn strips_a_split_bom_and_keeps_unfinished_events_pending() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"\xEF\xBB", &mut out).unwrap();
        d.feed(b"\xBFdata: 1\n\ndata: 2", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "1");
        assert!(d.has_pending());
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_is_not_a_blank_line() {
        let out = decode_all(&[b"data: a\r", b"", b"\ndata: b\n\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "a\nb");
    }

    #[test]
    fn field_without_colon_and_without_space() {
        let out = decode_all(&[b"data\n\ndata:x\n\n"]);
        assert_eq!(out[0].data, "");
        assert_eq!(out[1].data, "x");
    }

    fn sample_stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(b"\xEF\xBB\xBF: comment\r\n\r\n");
        for i in 0..20 {
            s.extend_from_slice(
                format!("event: e{i}\r\ndata: {{\"n\":{i},\"t\":\"h\u{e9}llo\"}}\n").as_bytes(),
            );
            if i % 3 == 0 {
                s.extend_from_slice(b"data: more\r");
            }
            s.extend_from_slice(b"\n");
        }
        s
    }

    proptest! {
        #[test]
        fn any_split_yields_identical_events(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
            let bytes = sample_stream();
            let whole = decode_all(&[&bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&bytes[last..p]);
                last = p;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(decode_all(&chunks), whole);
        }

        #[test]
        fn byte_at_a_time_matches_whole(data in "[a-z{}\":,\r\n ]{0,200}") {
            let bytes = data.as_bytes();
            let whole = decode_all(&[bytes]);
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(decode_all(&singles), whole);
        }
    }
}
