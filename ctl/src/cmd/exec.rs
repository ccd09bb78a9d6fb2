//! `kcctl exec POD [-c C] [-i] [-t] -- COMMAND...`: runs a command in a
//! container over the Kubernetes WebSocket channel protocol
//! (`v5.channel.k8s.io`, else v4): channel bytes 0 stdin, 1 stdout,
//! 2 stderr, 3 the final status (exit code), 255 (v5) closes a channel.
//! Exits with the command's exit code, as kubectl does. One thread sleeps
//! in poll(2) on the socket and stdin: input goes out as soon as it is
//! typed, and an idle session costs nothing.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::Value;
use tungstenite::Message;

use crate::ctx::{Ctx, encode, with_query};
use crate::terminal;
use crate::websocket::would_block;

const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// Execute a command in a container.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// POD or pod/POD.
    pub pod: String,
    /// Container (default: the pod's first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Ask for a terminal (TTY).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The exec path with kubectl's query parameters.
pub fn exec_path(namespace: &str, a: &ExecArgs) -> Result<String> {
    let name = match a.pod.split_once('/') {
        Some(("pod" | "pods" | "po", n)) => n,
        Some((ty, _)) => bail!("kcctl exec supports pods only, not {ty:?}"),
        None => a.pod.as_str(),
    };
    let mut q: Vec<String> = a
        .command
        .iter()
        .map(|c| format!("command={}", encode(c)))
        .collect();
    if let Some(c) = &a.container {
        q.push(format!("container={}", encode(c)));
    }
    if a.stdin {
        q.push("stdin=true".into());
    }
    q.push("stdout=true".into());
    if a.tty {
        q.push("tty=true".into());
    } else {
        q.push("stderr=true".into());
    }
    let parts: Vec<&str> = q.iter().map(String::as_str).collect();
    Ok(with_query(
        &format!("/api/v1/namespaces/{namespace}/pods/{name}/exec"),
        &parts,
    ))
}

/// The exit code a channel-3 status carries (`None` = success).
pub fn exit_code(status: &Value) -> Result<i32> {
    if status["status"] == "Success" {
        return Ok(0);
    }
    if status["reason"] == "NonZeroExitCode"
        && let Some(code) = status["details"]["causes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["reason"] == "ExitCode"))
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse().ok())
    {
        return Ok(code);
    }
    bail!("{}", status["message"].as_str().unwrap_or("exec failed"))
}

pub fn run(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let tty = a.tty && a.stdin && terminal::stdin_is_terminal();
    if a.tty && !tty {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let args = ExecArgs {
        pod: a.pod.clone(),
        container: a.container.clone(),
        stdin: a.stdin,
        tty,
        command: a.command.clone(),
    };
    let path = exec_path(&ctx.namespace, &args)?;
    let mut socket = crate::websocket::connect(&ctx.target, &path, &PROTOCOLS)?;
    let raw = if tty {
        if let Some((w, h)) = terminal::size() {
            let mut msg = vec![4u8];
            msg.extend(format!("{{\"Width\":{w},\"Height\":{h}}}").into_bytes());
            socket.send(Message::binary(msg))?;
        }
        terminal::RawMode::enter()
    } else {
        None
    };
    socket.get_ref().sock.set_nonblocking(true)?;
    let socket_fd = socket.get_ref().sock.as_raw_fd();
    // stdin read straight from fd 0 (std's Stdin buffers, which poll(2)
    // cannot see); not closed on drop.
    // SAFETY: fd 0 stays open for the life of the process.
    let mut input = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    let mut stdin_open = a.stdin;
    let mut pending_write = false;
    let mut code = None;
    let mut buf = vec![0u8; 32 * 1024];
    'session: loop {
        // Everything the socket (and TLS) holds, until it would block.
        loop {
            match socket.read() {
                Ok(Message::Binary(data)) => match data.split_first() {
                    Some((1, out)) => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(out)?;
                        o.flush()?;
                    }
                    Some((2, err)) => {
                        let mut e = std::io::stderr().lock();
                        e.write_all(err)?;
                        e.flush()?;
                    }
                    Some((3, status)) if !status.is_empty() => {
                        let v: Value = serde_json::from_slice(status).unwrap_or(Value::Null);
                        code = Some(exit_code(&v)?);
                    }
                    _ => {}
                },
                Ok(Message::Close(_)) => break 'session,
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break 'session;
                }
                Err(e) => bail!("exec stream broke: {e}"),
            }
        }
        if pending_write {
            pending_write = match socket.flush() {
                Ok(()) => false,
                Err(e) if would_block(&e) => true,
                Err(e) => bail!("exec stream broke: {e}"),
            };
        }
        // Sleep until the server sends, the socket drains, or stdin has
        // data (stdin waits while a message is still queued).
        let read_stdin = stdin_open && !pending_write;
        let mut fds = [
            libc::pollfd {
                fd: socket_fd,
                events: libc::POLLIN | if pending_write { libc::POLLOUT } else { 0 },
                revents: 0,
            },
            libc::pollfd {
                fd: if read_stdin { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        crate::websocket::poll(&mut fds)?;
        if read_stdin && fds[1].revents != 0 {
            let msg = match input.read(&mut buf) {
                Ok(0) | Err(_) => {
                    // v5: close stdin; v4 has no way but to keep going.
                    stdin_open = false;
                    vec![255u8, 0]
                }
                Ok(n) => [&[0u8][..], &buf[..n]].concat(),
            };
            match socket.send(Message::binary(msg)) {
                Ok(()) => {}
                Err(e) if would_block(&e) => pending_write = true,
                Err(e) => bail!("exec stream broke: {e}"),
            }
        }
    }
    drop(raw);
    let code = code.unwrap_or(0);
    if code != 0 {
        eprintln!("command terminated with exit code {code}");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        e: ExecArgs,
    }

    #[test]
    fn command_words_become_repeated_parameters() {
        let t = T::parse_from(["t", "web", "-i", "-c", "app", "--", "sh", "-c", "echo hi"]);
        assert_eq!(
            exec_path("default", &t.e).unwrap(),
            "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&stderr=true"
        );
    }

    #[test]
    fn status_carries_the_exit_code() {
        assert_eq!(exit_code(&json!({"status": "Success"})).unwrap(), 0);
        let failed = json!({"status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}});
        assert_eq!(exit_code(&failed).unwrap(), 3);
        let err =
            exit_code(&json!({"status": "Failure", "message": "container not found"})).unwrap_err();
        assert_eq!(err.to_string(), "container not found");
    }
}
