//! The stream tunnel between the API server and a node agent.
//!
//! For `kubectl logs`, `exec` and `port-forward` the API server opens a new
//! bidirectional QUIC stream on the node's connection and writes, in
//! [`crate::frame`] framing, a [`Hello`](crate::frame::Hello) then one
//! [`StreamRequest`]. The node answers one [`StreamAccept`] frame: `Ok` or
//! a failure with an HTTP status code and a message the API server passes
//! to the user as a Status. After an `Ok` the stream carries:
//! - `Logs`: raw log bytes, node -> server, until EOF (the node finishes
//!   its side when the log ends, or when following, when the container
//!   exits; the server stops following by resetting the stream);
//! - `PortForward`: raw TCP bytes both ways, one QUIC stream per TCP
//!   connection, each direction finished when its TCP half closes;
//! - `Exec`: [`ExecFrame`]s both ways; the node ends with `Exit` (or
//!   `Error`) then finishes the stream.
//!
//! Shaped as plain serde enums so both ends share one definition; pure, the
//! I/O lives in `control-plane/apiserver/src/streams/` and `node/agent/src/streams.rs`.

use serde::{Deserialize, Serialize};

/// What the API server asks the node to stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRequest {
    Logs {
        namespace: String,
        pod: String,
        container: String,
        follow: bool,
        previous: bool,
        tail_lines: Option<i64>,
        timestamps: bool,
        since_seconds: Option<i64>,
        limit_bytes: Option<i64>,
    },
    Exec {
        namespace: String,
        pod: String,
        container: String,
        command: Vec<String>,
        stdin: bool,
        tty: bool,
    },
    PortForward {
        namespace: String,
        pod: String,
        port: u16,
    },
}

impl StreamRequest {
    /// `namespace/pod` for messages.
    pub fn pod(&self) -> String {
        let (ns, pod) = match self {
            StreamRequest::Logs { namespace, pod, .. }
            | StreamRequest::Exec { namespace, pod, .. }
            | StreamRequest::PortForward { namespace, pod, .. } => (namespace, pod),
        };
        format!("{ns}/{pod}")
    }
}

/// The node's answer to a [`StreamRequest`], before any stream data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamAccept {
    Ok,
    /// `code` is the HTTP status the API server answers (404 no such
    /// container, 400 bad request, 500 runtime failure...).
    Failed {
        code: u16,
        message: String,
    },
}

/// One message of an exec session, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecFrame {
    /// Server -> node: bytes for the process's stdin.
    Stdin(Vec<u8>),
    /// Server -> node: the client closed stdin.
    StdinClosed,
    /// Node -> server: output.
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// Server -> node: the terminal's new size.
    Resize {
        width: u16,
        height: u16,
    },
    /// Node -> server: the process ended with this exit code.
    Exit {
        code: i32,
    },
    /// Node -> server: the exec could not run (the message says why).
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameReader, encode};

    #[test]
    fn requests_and_exec_frames_round_trip_through_framing() {
        let req = StreamRequest::Exec {
            namespace: "default".into(),
            pod: "web".into(),
            container: "app".into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            stdin: true,
            tty: false,
        };
        let frames = [
            ExecFrame::Stdin(b"abc".to_vec()),
            ExecFrame::Resize {
                width: 80,
                height: 24,
            },
            ExecFrame::Exit { code: 3 },
        ];
        let mut bytes = encode(&req).unwrap();
        for f in &frames {
            bytes.extend(encode(f).unwrap());
        }
        let mut r = FrameReader::default();
        // Byte by byte: a frame is only yielded once whole.
        let mut got_req = None;
        let mut got = Vec::new();
        for b in bytes {
            r.push(&[b]);
            if got_req.is_none() {
                got_req = r.next_frame::<StreamRequest>().unwrap();
            } else if let Some(f) = r.next_frame::<ExecFrame>().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got_req, Some(req.clone()));
        assert_eq!(got, frames);
        assert_eq!(req.pod(), "default/web");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = FrameReader::default();
        r.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(r.next_frame::<StreamRequest>().is_err());
    }
}
