//! Property tests of the QUIC frame decoder on kc's real wire messages:
//! valid frames mutated (bytes flipped, inserted, removed, length prefixes
//! rewritten) and fed in random pieces never panic the decoder; whatever
//! decodes re-encodes to the same message; a lying length is refused before
//! any allocation. A fixed seed and a fixed number of cases: runs in CI in
//! well under a second, the same way every time.

use kc_protocol::frame::{self, FrameError, FrameReader, HEADER_LEN, MAX_FRAME};
use kc_protocol::node_api::{JoinMessage, JoinRequest, JoinResponse, NodeRequest, NodeResponse};
use kc_protocol::streams::{ExecFrame, StreamRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation of a frame (header included).
fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    match rng.below(6) {
        0 if !frame.is_empty() => {
            let at = rng.below(frame.len());
            frame[at] ^= 1 << rng.below(8);
        }
        1 if !frame.is_empty() => {
            let at = rng.below(frame.len());
            frame[at] = rng.next() as u8;
        }
        2 => {
            let at = rng.below(frame.len() + 1);
            frame.insert(at, rng.next() as u8);
        }
        3 if !frame.is_empty() => {
            let at = rng.below(frame.len());
            frame.remove(at);
        }
        4 if frame.len() >= HEADER_LEN => {
            // A length prefix that lies (bigger, smaller, huge).
            let len = match rng.below(3) {
                0 => rng.below(64) as u32,
                1 => (MAX_FRAME as u32).saturating_add(rng.below(1000) as u32),
                _ => rng.next() as u32,
            };
            frame[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        }
        _ => {
            // A varint length inside the body claiming a lot.
            let at = rng.below(frame.len() + 1);
            for b in [253u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0] {
                frame.insert(at.min(frame.len()), b);
            }
        }
    }
}

/// Feeds `bytes` in random pieces; checks every decoded message round-trips.
fn feed<T>(rng: &mut Rng, bytes: &[u8]) -> usize
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut reader = FrameReader::default();
    let mut decoded = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = 1 + rng.below(rest.len().min(32));
        reader.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match reader.next_frame::<T>() {
                Ok(Some(msg)) => {
                    let again = frame::encode(&msg).expect("a decoded message re-encodes");
                    let back: T = frame::decode(&again[HEADER_LEN..]).expect("and decodes");
                    assert_eq!(back, msg);
                    decoded += 1;
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { size, limit }) => {
                    assert!(size > limit);
                    return decoded;
                }
                Err(_) => return decoded,
            }
        }
    }
    decoded
}

fn fuzz<T>(seed: u64, samples: &[T], cases: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut rng = Rng(seed);
    let frames: Vec<Vec<u8>> = samples
        .iter()
        .map(|m| frame::encode(m).expect("encode"))
        .collect();
    // Unmutated, the samples all come back, whatever the pieces.
    let wire: Vec<u8> = frames.concat();
    assert_eq!(feed::<T>(&mut rng, &wire), samples.len());
    for _ in 0..cases {
        let mut wire: Vec<u8> = (0..1 + rng.below(3))
            .flat_map(|_| frames[rng.below(frames.len())].clone())
            .collect();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut wire);
        }
        feed::<T>(&mut rng, &wire);
        if wire.len() > HEADER_LEN {
            let _ = frame::decode::<T>(&wire[HEADER_LEN..]);
        }
    }
}

#[test]
fn mutated_node_session_frames_never_panic_the_decoder() {
    let requests = vec![
        NodeRequest::Register {
            node: br#"{"metadata":{"name":"n1"}}"#.to_vec(),
        },
        NodeRequest::Heartbeat {
            lease_duration_seconds: 40,
        },
        NodeRequest::WatchPods,
        NodeRequest::PodStatus {
            namespace: "default".into(),
            name: "web".into(),
            status: br#"{"phase":"Running"}"#.to_vec(),
        },
        NodeRequest::Get {
            resource: "configmaps".into(),
            namespace: "default".into(),
            name: "cm".into(),
        },
        NodeRequest::CreateToken { ttl_seconds: 3600 },
    ];
    fuzz(1, &requests, 4000);
    let responses = vec![
        NodeResponse::Done,
        NodeResponse::Object(Some(b"{}".to_vec())),
        NodeResponse::Members(vec!["10.0.0.1:7000".into(), "10.0.0.2:7000".into()]),
        NodeResponse::Count(3),
        NodeResponse::Error("no".into()),
    ];
    fuzz(2, &responses, 4000);
}

#[test]
fn mutated_join_and_stream_frames_never_panic_the_decoder() {
    let joins = vec![
        JoinMessage::GetCa,
        JoinMessage::Join(JoinRequest {
            token: "abcdef.0123456789abcdef".into(),
            node_name: "w1".into(),
            addresses: vec!["10.0.0.2".into()],
            control_plane: false,
        }),
    ];
    fuzz(3, &joins, 3000);
    fuzz(
        4,
        &[
            JoinResponse::Ca {
                ca_pem: "-----BEGIN CERTIFICATE-----".into(),
            },
            JoinResponse::Refused("expired".into()),
        ],
        2000,
    );
    let streams = vec![
        StreamRequest::Logs {
            namespace: "d".into(),
            pod: "p".into(),
            container: "c".into(),
            follow: true,
            previous: false,
            tail_lines: Some(10),
            timestamps: false,
            since_seconds: None,
            limit_bytes: Some(1 << 20),
        },
        StreamRequest::Exec {
            namespace: "d".into(),
            pod: "p".into(),
            container: "c".into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            stdin: true,
            tty: true,
        },
        StreamRequest::PortForward {
            namespace: "d".into(),
            pod: "p".into(),
            port: 8080,
        },
    ];
    fuzz(5, &streams, 3000);
    let exec = vec![
        ExecFrame::Stdin(b"ls\n".to_vec()),
        ExecFrame::Resize {
            width: 80,
            height: 24,
        },
        ExecFrame::Exit { code: 1 },
        ExecFrame::Error("gone".into()),
    ];
    fuzz(6, &exec, 3000);
}
