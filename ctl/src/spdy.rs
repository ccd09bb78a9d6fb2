//! The client half of SPDY/3.1 that `port-forward` needs, as pure
//! encode/decode: SYN_STREAM with a header block, DATA (with FIN), PING
//! echo, and a frame splitter for what the server sends. Header blocks are
//! sent as zlib streams of *stored* deflate blocks announcing the SPDY/3
//! dictionary (FDICT): valid for any SPDY peer without a compressor here.
//! The server's header blocks are skipped, not inflated (kcctl only needs
//! the stream ids of its replies).

/// Control frame types used.
pub const SYN_STREAM: u16 = 1;
pub const RST_STREAM: u16 = 3;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const WINDOW_UPDATE: u16 = 9;
pub const FLAG_FIN: u8 = 0x01;

/// zlib's Adler-32 of the SPDY/3 header dictionary (every peer's FDICT id).
const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    Control {
        kind: u16,
        flags: u8,
        body: Vec<u8>,
    },
}

/// Header compression state of our direction (the zlib stream continues
/// across frames; only the first block carries the zlib header).
#[derive(Default)]
pub struct Encoder {
    started: bool,
}

impl Encoder {
    /// A SYN_STREAM opening `stream` with `headers`.
    pub fn syn_stream(&mut self, stream: u32, headers: &[(&str, &str)], fin: bool) -> Vec<u8> {
        let mut block = Vec::new();
        block.extend((headers.len() as u32).to_be_bytes());
        for (k, v) in headers {
            block.extend((k.len() as u32).to_be_bytes());
            block.extend(k.as_bytes());
            block.extend((v.len() as u32).to_be_bytes());
            block.extend(v.as_bytes());
        }
        let mut z = Vec::new();
        if !self.started {
            // CMF 0x78 (deflate, 32K window), FLG with FDICT, then DICTID.
            let cmf = 0x78u16;
            let mut flg = 0x20u16 | 0x80;
            flg += 31 - ((cmf << 8) | flg) % 31;
            z.push(cmf as u8);
            z.push(flg as u8);
            z.extend(DICTIONARY_ID.to_be_bytes());
            self.started = true;
        }
        for chunk in block.chunks(u16::MAX as usize) {
            // A non-final stored block: byte-aligned header, LEN, NLEN.
            z.push(0x00);
            let len = chunk.len() as u16;
            z.extend(len.to_le_bytes());
            z.extend((!len).to_le_bytes());
            z.extend(chunk);
        }
        let mut body = Vec::new();
        body.extend((stream & 0x7fff_ffff).to_be_bytes());
        body.extend(0u32.to_be_bytes());
        body.extend([0u8, 0u8]);
        body.extend(z);
        control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &body)
    }
}

/// A control frame.
pub fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x03];
    out.extend(kind.to_be_bytes());
    out.push(flags);
    out.extend(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend(body);
    out
}

/// A DATA frame.
pub fn data(stream: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend((stream & 0x7fff_ffff).to_be_bytes());
    out.push(if fin { FLAG_FIN } else { 0 });
    out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend(payload);
    out
}

/// A WINDOW_UPDATE returning `delta` bytes of `stream`'s window.
pub fn window_update(stream: u32, delta: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(8);
    body.extend((stream & 0x7fff_ffff).to_be_bytes());
    body.extend((delta & 0x7fff_ffff).to_be_bytes());
    control(WINDOW_UPDATE, 0, &body)
}

/// Splits the byte stream from the server into frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([0, self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let frame: Vec<u8> = self.buf.drain(..8 + len).collect();
        let flags = frame[4];
        let body = frame[8..].to_vec();
        if frame[0] & 0x80 != 0 {
            Some(Frame::Control {
                kind: u16::from_be_bytes([frame[2], frame[3]]),
                flags,
                body,
            })
        } else {
            let stream = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) & 0x7fff_ffff;
            Some(Frame::Data {
                stream,
                fin: flags & FLAG_FIN != 0,
                data: body,
            })
        }
    }
}

/// The stream id a control frame (SYN_REPLY, RST_STREAM...) is about.
pub fn control_stream(body: &[u8]) -> u32 {
    if body.len() < 4 {
        return 0;
    }
    u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frames_round_trip_through_the_decoder() {
        let mut d = Decoder::default();
        let bytes = data(3, true, b"hello");
        d.push(&bytes[..4]);
        assert_eq!(d.next_frame(), None);
        d.push(&bytes[4..]);
        assert_eq!(
            d.next_frame(),
            Some(Frame::Data {
                stream: 3,
                fin: true,
                data: b"hello".to_vec()
            })
        );
    }

    #[test]
    fn window_update_names_stream_and_delta() {
        let f = window_update(5, 1024);
        assert_eq!(&f[..8], &[0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08]);
        assert_eq!(control_stream(&f[8..]), 5);
        assert_eq!(&f[12..], &1024u32.to_be_bytes());
    }

    #[test]
    fn syn_stream_carries_a_zlib_header_with_the_spdy_dictionary_once() {
        let mut e = Encoder::default();
        let first = e.syn_stream(1, &[("streamtype", "error")], false);
        let mut d = Decoder::default();
        d.push(&first);
        let Some(Frame::Control { kind, body, .. }) = d.next_frame() else {
            panic!("no frame")
        };
        assert_eq!(kind, SYN_STREAM);
        assert_eq!(control_stream(&body), 1);
        let z = &body[10..];
        assert_eq!(z[0], 0x78);
        assert_eq!(
            ((z[0] as u16) << 8 | z[1] as u16) % 31,
            0,
            "zlib header check bits"
        );
        assert_ne!(z[1] & 0x20, 0, "FDICT");
        assert_eq!(&z[2..6], &DICTIONARY_ID.to_be_bytes());
        let second = e.syn_stream(3, &[("a", "b")], false);
        assert_eq!(second[8 + 10], 0x00, "later blocks continue the stream");
    }
}
