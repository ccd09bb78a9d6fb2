//! SPDY/3.1 framing, as kubectl port-forward speaks it inside WebSocket
//! binary messages (subprotocol `SPDY/3.1+portforward.k8s.io`).
//!
//! Pure: bytes in, [`Frame`]s out and back. The message boundaries of the
//! WebSocket mean nothing to SPDY, so [`Codec::push`] accumulates bytes and
//! [`Codec::next_frame`] yields whole frames. Header blocks are zlib streams
//! with the SPDY/3 preset dictionary, one compression context per direction
//! for the whole session (so the codec must see every frame, in order).
//! Flow control (WINDOW_UPDATE, SETTINGS) is parsed and ignored, as
//! kubectl's SPDY library (spdystream) does not enforce it either.

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The WebSocket subprotocol of port-forward.
pub const WEBSOCKET_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
pub const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The largest frame body SPDY can express (24-bit length).
const MAX_LENGTH: usize = (1 << 24) - 1;
/// The largest decompressed header block accepted.
const MAX_HEADERS: usize = 256 * 1024;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;
pub const RST_INTERNAL_ERROR: u32 = 6;

pub type Headers = Vec<(String, String)>;

/// One SPDY frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// A control frame of a type this codec does not know (skipped).
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY control frame of version {0}; only SPDY/3 is spoken")]
    Version(u16),
    #[error("malformed SPDY {what} frame: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("SPDY header compression failed: {0}")]
    Compression(String),
    #[error("SPDY frame of {0} bytes is too large")]
    TooLarge(usize),
}

fn malformed(what: &'static str, why: impl Into<String>) -> SpdyError {
    SpdyError::Malformed {
        what,
        why: why.into(),
    }
}

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1):
/// length-prefixed common header names and values, then common strings.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
            "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
            "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=",
            "iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// Frame reader and writer of one SPDY session (one per connection).
pub struct Codec {
    buf: Vec<u8>,
    inflate: Decompress,
    deflate: Compress,
    deflate_started: bool,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Codec {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            inflate: Decompress::new(true),
            deflate: Compress::new(Compression::default(), true),
            deflate_started: false,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (u32_at(&self.buf, 4) & 0x00ff_ffff) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let head: Vec<u8> = self.buf.drain(..8 + len).collect();
        let flags = head[4];
        let body = &head[8..];
        if head[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: u32_at(&head, 0) & 0x7fff_ffff,
                fin: flags & FLAG_FIN != 0,
                data: body.to_vec(),
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |what: &'static str, n: usize| {
            if body.len() < n {
                Err(malformed(
                    what,
                    format!("{} bytes, at least {n} needed", body.len()),
                ))
            } else {
                Ok(())
            }
        };
        let fin = flags & FLAG_FIN != 0;
        let frame = match kind {
            SYN_STREAM => {
                need("SYN_STREAM", 10)?;
                Frame::SynStream {
                    stream_id: u32_at(body, 0) & 0x7fff_ffff,
                    associated: u32_at(body, 4) & 0x7fff_ffff,
                    priority: body[8] >> 5,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.inflate_headers(&body[10..])?,
                }
            }
            SYN_REPLY => {
                need("SYN_REPLY", 4)?;
                Frame::SynReply {
                    stream_id: u32_at(body, 0) & 0x7fff_ffff,
                    fin,
                    headers: self.inflate_headers(&body[4..])?,
                }
            }
            HEADERS => {
                need("HEADERS", 4)?;
                Frame::Headers {
                    stream_id: u32_at(body, 0) & 0x7fff_ffff,
                    fin,
                    headers: self.inflate_headers(&body[4..])?,
                }
            }
            RST_STREAM => {
                need("RST_STREAM", 8)?;
                Frame::RstStream {
                    stream_id: u32_at(body, 0) & 0x7fff_ffff,
                    status: u32_at(body, 4),
                }
            }
            SETTINGS => Frame::Settings,
            PING => {
                need("PING", 4)?;
                Frame::Ping {
                    id: u32_at(body, 0),
                }
            }
            GOAWAY => {
                need("GOAWAY", 4)?;
                Frame::GoAway {
                    last_good: u32_at(body, 0) & 0x7fff_ffff,
                    status: if body.len() >= 8 { u32_at(body, 4) } else { 0 },
                }
            }
            WINDOW_UPDATE => {
                need("WINDOW_UPDATE", 8)?;
                Frame::WindowUpdate {
                    stream_id: u32_at(body, 0) & 0x7fff_ffff,
                    delta: u32_at(body, 4) & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown { kind: other },
        };
        Ok(Some(frame))
    }

    fn inflate_headers(&mut self, input: &[u8]) -> Result<Headers, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0;
        loop {
            out.reserve(4096);
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let res = self
                .inflate
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.inflate.total_in() - in0) as usize;
            let produced = self.inflate.total_out() - out0;
            match res {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
            }
            if out.len() > MAX_HEADERS {
                return Err(SpdyError::TooLarge(out.len()));
            }
            // Done once all input is in and the output was not the limit.
            if pos >= input.len() && out.len() < out.capacity() {
                break;
            }
            if pos >= input.len() && produced == 0 {
                break;
            }
        }
        parse_header_block(&out)
    }

    fn deflate_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        if !self.deflate_started {
            self.deflate
                .set_dictionary(dictionary())
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            self.deflate_started = true;
        }
        let block = header_block(headers);
        let mut out = Vec::with_capacity(block.len() + 256);
        let mut pos = 0;
        loop {
            out.reserve(4096);
            let (in0, out0) = (self.deflate.total_in(), self.deflate.total_out());
            self.deflate
                .compress_vec(&block[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            pos += (self.deflate.total_in() - in0) as usize;
            let produced = self.deflate.total_out() - out0;
            if pos >= block.len() && (out.len() < out.capacity() || produced == 0) {
                return Ok(out);
            }
        }
    }

    /// Encodes `frame` (compressing its headers in this session's context).
    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>, SpdyError> {
        let (kind, flags, body) = match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_LENGTH {
                    return Err(SpdyError::TooLarge(data.len()));
                }
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(if *fin { FLAG_FIN } else { 0 });
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                return Ok(out);
            }
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let mut b = Vec::new();
                b.extend_from_slice(&stream_id.to_be_bytes());
                b.extend_from_slice(&associated.to_be_bytes());
                b.push(priority << 5);
                b.push(0);
                b.extend(self.deflate_headers(headers)?);
                let flags = if *fin { FLAG_FIN } else { 0 }
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                (SYN_STREAM, flags, b)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let mut b = stream_id.to_be_bytes().to_vec();
                b.extend(self.deflate_headers(headers)?);
                (SYN_REPLY, if *fin { FLAG_FIN } else { 0 }, b)
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let mut b = stream_id.to_be_bytes().to_vec();
                b.extend(self.deflate_headers(headers)?);
                (HEADERS, if *fin { FLAG_FIN } else { 0 }, b)
            }
            Frame::RstStream { stream_id, status } => {
                let mut b = stream_id.to_be_bytes().to_vec();
                b.extend_from_slice(&status.to_be_bytes());
                (RST_STREAM, 0, b)
            }
            Frame::Settings => (SETTINGS, 0, 0u32.to_be_bytes().to_vec()),
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway { last_good, status } => {
                let mut b = last_good.to_be_bytes().to_vec();
                b.extend_from_slice(&status.to_be_bytes());
                (GOAWAY, 0, b)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut b = stream_id.to_be_bytes().to_vec();
                b.extend_from_slice(&delta.to_be_bytes());
                (WINDOW_UPDATE, 0, b)
            }
            Frame::Unknown { kind } => (*kind, 0, Vec::new()),
        };
        if body.len() > MAX_LENGTH {
            return Err(SpdyError::TooLarge(body.len()));
        }
        let mut out = Vec::with_capacity(8 + body.len());
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.push(flags);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend(body);
        Ok(out)
    }
}

/// The uncompressed header block: count, then length-prefixed names and values.
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut b = (headers.len() as u32).to_be_bytes().to_vec();
    for (k, v) in headers {
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Parses an uncompressed header block.
pub fn parse_header_block(b: &[u8]) -> Result<Headers, SpdyError> {
    let short = || malformed("header block", "ends early");
    let take = |at: &mut usize| -> Result<String, SpdyError> {
        if *at + 4 > b.len() {
            return Err(short());
        }
        let n = u32_at(b, *at) as usize;
        *at += 4;
        if n > b.len() - *at {
            return Err(short());
        }
        let s = String::from_utf8_lossy(&b[*at..*at + n]).into_owned();
        *at += n;
        Ok(s)
    };
    if b.len() < 4 {
        return Err(short());
    }
    let count = u32_at(b, 0) as usize;
    if count > b.len() / 8 {
        return Err(malformed(
            "header block",
            format!("{count} headers announced"),
        ));
    }
    let mut at = 4;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let k = take(&mut at)?;
        let v = take(&mut at)?;
        out.push((k, v));
    }
    Ok(out)
}

/// The value of header `name` (names are lower case in SPDY/3).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_the_spec_one() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\x00\x00\x00\x07options");
        assert!(d.ends_with(b"enq=0."));
        // zlib's Adler-32 of the SPDY/3 dictionary, as every SPDY/3 peer
        // announces it in the zlib header (FDICT).
        let mut c = Compress::new(Compression::default(), true);
        assert_eq!(c.set_dictionary(d).unwrap(), 0xe3c6_a7c2);
    }

    #[test]
    fn data_frames_are_parsed_from_bytes() {
        let mut c = Codec::new();
        // Stream 5, FIN, 3 bytes, split across two pushes.
        c.push(&[0, 0, 0, 5, 1, 0, 0]);
        assert_eq!(c.next_frame().unwrap(), None);
        c.push(&[3, b'a', b'b', b'c', 0, 0]);
        assert_eq!(
            c.next_frame().unwrap(),
            Some(Frame::Data {
                stream_id: 5,
                fin: true,
                data: b"abc".to_vec()
            })
        );
        assert_eq!(c.next_frame().unwrap(), None);
    }

    #[test]
    fn control_frames_are_parsed_from_bytes() {
        let mut c = Codec::new();
        // PING id 7.
        c.push(&[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        // RST_STREAM stream 3, CANCEL.
        c.push(&[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]);
        // GOAWAY last 9, OK.
        c.push(&[0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 0]);
        // WINDOW_UPDATE stream 1 +65536.
        c.push(&[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0]);
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Ping { id: 7 }));
        assert_eq!(
            c.next_frame().unwrap(),
            Some(Frame::RstStream {
                stream_id: 3,
                status: 5
            })
        );
        assert_eq!(
            c.next_frame().unwrap(),
            Some(Frame::GoAway {
                last_good: 9,
                status: 0
            })
        );
        assert_eq!(
            c.next_frame().unwrap(),
            Some(Frame::WindowUpdate {
                stream_id: 1,
                delta: 65536
            })
        );
        // SPDY/2 is refused, a short body is malformed, neither panics.
        c.push(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        assert_eq!(c.next_frame(), Err(SpdyError::Version(2)));
        c.push(&[0x80, 3, 0, 3, 0, 0, 0, 2, 0, 0]);
        assert!(matches!(c.next_frame(), Err(SpdyError::Malformed { .. })));
    }

    #[test]
    fn syn_stream_headers_survive_a_shared_compression_context() {
        // A client codec writes, a server codec reads: several frames share
        // one zlib stream, so later frames refer back to earlier ones.
        let mut client = Codec::new();
        let mut server = Codec::new();
        let frames = [
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                fin: true,
                unidirectional: false,
                headers: hdrs(&[
                    ("streamtype", "error"),
                    ("port", "5000"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: hdrs(&[("streamtype", "data"), ("port", "5000"), ("requestid", "0")]),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            },
            Frame::SynReply {
                stream_id: 5,
                fin: false,
                headers: hdrs(&[]),
            },
        ];
        for f in &frames {
            let bytes = client.encode(f).unwrap();
            // Delivered one byte at a time.
            let mut got = None;
            for b in bytes {
                server.push(&[b]);
                if let Some(frame) = server.next_frame().unwrap() {
                    assert!(got.is_none(), "one frame per encode");
                    got = Some(frame);
                }
            }
            assert_eq!(got.as_ref(), Some(f));
        }
    }

    #[test]
    fn header_blocks_parse_and_reject_lies() {
        let block = header_block(&hdrs(&[("port", "80")]));
        assert_eq!(
            block,
            b"\x00\x00\x00\x01\x00\x00\x00\x04port\x00\x00\x00\x0280".to_vec()
        );
        assert_eq!(parse_header_block(&block).unwrap(), hdrs(&[("port", "80")]));
        assert!(parse_header_block(b"\x00\x00\x00\x01\x00\x00\x00\xffport").is_err());
        assert!(parse_header_block(b"\xff\xff\xff\xff").is_err());
        assert_eq!(header(&hdrs(&[("Port", "80")]), "port"), Some("80"));
    }
}
