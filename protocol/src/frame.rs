//! Framing of kc's internal wire: `[length: u32 big-endian][bincode body]`.
//!
//! Every frame has a hard size limit, checked on the length prefix before
//! any body is read or allocated, and again by bincode while decoding (so a
//! lying length inside the body cannot make it allocate either). Each stream
//! starts with a `Hello` carrying the protocol version; a peer speaking
//! another version is refused with a clear error.
//!
//! Compatibility rule: a `Hello` has a major `version` and a `minor`. Peers
//! must share the major version (a different one is refused, naming both);
//! any two minors of one major interoperate, because a minor release only
//! adds (new enum variants appended at the end, new requests an older peer
//! answers with an error) and never changes or removes what exists. A
//! change that is not additive bumps the major. Nothing here panics on
//! bad input: garbage yields a `FrameError`, and the caller drops the
//! connection. Pure: the I/O lives with the transports that use it.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The major version of kc's internal wire protocol: peers must agree.
pub const PROTOCOL_VERSION: u32 = 1;
/// The minor version of this build: additions only (see the module doc).
/// 1: `NodeRequest::Usage` (resource usage samples for the metrics API).
pub const PROTOCOL_MINOR: u32 = 1;

/// The minor version this process announces: `PROTOCOL_MINOR`, unless a
/// test stands in for a newer build (`announce_minor`).
static ANNOUNCED_MINOR: AtomicU32 = AtomicU32::new(PROTOCOL_MINOR);

/// Announce another minor version in every `Hello` (rolling-upgrade tests
/// make an old build pose as a newer one).
pub fn announce_minor(minor: u32) {
    ANNOUNCED_MINOR.store(minor, Ordering::Relaxed);
}
/// The largest frame body accepted (16 MiB: a Raft snapshot chunk or a batch
/// of log entries fits; anything bigger is an attack or a bug).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
pub const HEADER_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("cannot encode frame: {0}")]
    Encode(String),
    #[error(
        "peer speaks kc wire protocol version {theirs}, this build speaks version {ours}: \
         the major versions must match (minor versions may differ); upgrade one side"
    )]
    Version { ours: u32, theirs: u32 },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encode `msg` as one frame (header included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; HEADER_LEN];
    bincode::serde::encode_into_std_write(msg, &mut out, config())
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            size: len,
            limit: MAX_FRAME,
        });
    }
    out[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// The body length a header announces, refused if over the limit.
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            size: len,
            limit: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Decode one frame body; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::Decode(format!(
            "{} trailing bytes after the message",
            body.len() - used
        )));
    }
    Ok(msg)
}

/// Accumulates bytes from a stream and yields whole frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` if more bytes are needed.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.buf[..HEADER_LEN]);
        let len = body_len(header)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let msg = decode(&self.buf[HEADER_LEN..HEADER_LEN + len]);
        self.buf.drain(..HEADER_LEN + len);
        msg.map(Some)
    }
}

/// Opaque bytes that bincode copies in one piece (a plain `Vec<u8>` goes
/// through serde element by element, which is slow for megabytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Blob(out))
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// The first frame of every stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// The major version: must be equal on both sides.
    pub version: u32,
    /// The minor version: informative; any minor of the same major is served.
    pub minor: u32,
}

impl Hello {
    pub fn current() -> Self {
        Hello {
            version: PROTOCOL_VERSION,
            minor: ANNOUNCED_MINOR.load(Ordering::Relaxed),
        }
    }

    pub fn check(&self) -> Result<(), FrameError> {
        if self.version != PROTOCOL_VERSION {
            return Err(FrameError::Version {
                ours: PROTOCOL_VERSION,
                theirs: self.version,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Msg {
        Ping(u64),
        Data { name: String, bytes: Vec<u8> },
    }

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let msgs = vec![
            Msg::Ping(7),
            Msg::Data {
                name: "x".into(),
                bytes: vec![1; 1000],
            },
            Msg::Ping(u64::MAX),
        ];
        let wire: Vec<u8> = msgs.iter().flat_map(|m| encode(m).unwrap()).collect();
        for chunk in [1, 3, 7, 100, wire.len()] {
            let mut r = FrameReader::default();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                r.push(piece);
                while let Some(m) = r.next_frame::<Msg>().unwrap() {
                    out.push(m);
                }
            }
            assert_eq!(out, msgs);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_body() {
        let mut r = FrameReader::default();
        r.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            r.next_frame::<Msg>(),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_length_inside_the_body_cannot_force_a_huge_allocation() {
        // A Data frame whose inner Vec claims 2^40 bytes.
        let mut body = vec![1u8]; // variant 1
        body.push(1);
        body.push(b'x');
        body.push(253); // varint u64 marker
        body.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Msg>(&body).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        // A small xorshift generator: deterministic, no dependency.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut r = FrameReader::default();
            r.push(&bytes);
            for _ in 0..4 {
                match r.next_frame::<Msg>() {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = decode::<Msg>(&bytes);
            let _ = decode::<Hello>(&bytes);
        }
    }

    #[test]
    fn blobs_round_trip_in_frames_and_json() {
        let blob = Blob((0..=255u8).cycle().take(10_000).collect());
        let frame = encode(&blob).unwrap();
        assert_eq!(decode::<Blob>(&frame[HEADER_LEN..]).unwrap(), blob);
        let json = serde_json::to_string(&Blob(vec![1, 2])).unwrap();
        assert_eq!(
            serde_json::from_str::<Blob>(&json).unwrap(),
            Blob(vec![1, 2])
        );
    }

    #[test]
    fn another_protocol_version_is_refused() {
        assert!(Hello::current().check().is_ok());
        let err = Hello {
            version: 99,
            minor: 0,
        }
        .check()
        .unwrap_err();
        assert!(err.to_string().contains("version 99"));
        // Another minor of the same major is served either way.
        for minor in [0, 1, PROTOCOL_MINOR + 7] {
            let newer = Hello {
                version: PROTOCOL_VERSION,
                minor,
            };
            assert!(newer.check().is_ok(), "minor {minor}");
        }
    }
}
