//! The Kubernetes WebSocket channel protocol (`v4.channel.k8s.io`,
//! `v5.channel.k8s.io`) as pure encode/decode: every binary message starts
//! with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error/status JSON,
//! 4 terminal resize JSON; v5 adds 255 = "close this channel", payload the
//! channel number). Kept apart from the socket so it is tested with bytes.

use serde_json::{Value, json};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Subprotocols we speak, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// One message as `[channel][data]`.
pub fn encode(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// What a client message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Stdin(Vec<u8>),
    /// The client closed stdin (v5 close of channel 0).
    StdinClosed,
    Resize {
        width: u16,
        height: u16,
    },
    /// Empty messages, closes of other channels, unknown channels.
    Ignored,
    /// A resize that is not the expected JSON.
    Invalid(String),
}

pub fn decode(msg: &[u8]) -> Incoming {
    let Some((&channel, data)) = msg.split_first() else {
        return Incoming::Ignored;
    };
    match channel {
        STDIN if data.is_empty() => Incoming::Ignored,
        STDIN => Incoming::Stdin(data.to_vec()),
        RESIZE => match serde_json::from_slice::<Value>(data) {
            Ok(v) => match (v["Width"].as_u64(), v["Height"].as_u64()) {
                (Some(w), Some(h)) => Incoming::Resize {
                    width: w.min(u16::MAX as u64) as u16,
                    height: h.min(u16::MAX as u64) as u16,
                },
                _ => Incoming::Invalid(format!("resize message without Width/Height: {v}")),
            },
            Err(e) => Incoming::Invalid(format!("resize message is not JSON: {e}")),
        },
        CLOSE if data.first() == Some(&STDIN) => Incoming::StdinClosed,
        _ => Incoming::Ignored,
    }
}

/// The status message (channel 3) for a process that exited with `code`.
pub fn exit_status(code: i32, command: &[String]) -> Vec<u8> {
    let v = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    };
    encode(ERROR, v.to_string().as_bytes())
}

/// The status message (channel 3) for an exec that could not run.
pub fn error_status(message: &str) -> Vec<u8> {
    let v =
        json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"});
    encode(ERROR, v.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_decode_by_channel() {
        assert_eq!(decode(&[0, b'h', b'i']), Incoming::Stdin(b"hi".to_vec()));
        assert_eq!(decode(&[255, 0]), Incoming::StdinClosed);
        assert_eq!(decode(&[255, 1]), Incoming::Ignored);
        assert_eq!(decode(&[]), Incoming::Ignored);
        assert_eq!(
            decode(b"\x04{\"Width\":120,\"Height\":40}"),
            Incoming::Resize {
                width: 120,
                height: 40
            }
        );
        assert!(matches!(decode(b"\x04nope"), Incoming::Invalid(_)));
        assert_eq!(encode(STDOUT, b"x"), vec![1, b'x']);
    }

    #[test]
    fn exit_codes_become_status_json() {
        let ok = exit_status(0, &[]);
        assert_eq!(ok[0], ERROR);
        let v: Value = serde_json::from_slice(&ok[1..]).unwrap();
        assert_eq!(v["status"], "Success");
        let failed = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        let v: Value = serde_json::from_slice(&failed[1..]).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
    }
}
