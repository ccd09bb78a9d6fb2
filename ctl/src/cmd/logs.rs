//! `kcctl logs POD [-c C] [-f] [--previous] [--tail N] [--timestamps]`:
//! streams `GET .../pods/NAME/log` to stdout as it arrives.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Args;

use crate::ctx::{Ctx, encode, with_query};

/// Print the logs of a container in a pod.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// POD or pod/POD.
    pub pod: String,
    /// Container (default: the pod's only or first container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous (terminated) instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Prefix each line with its timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// Only lines newer than this many seconds.
    #[arg(long)]
    pub since_seconds: Option<u64>,
}

/// The log path with kubectl's query parameters.
pub fn log_path(namespace: &str, a: &LogsArgs) -> Result<String> {
    let name = match a.pod.split_once('/') {
        Some(("pod" | "pods" | "po", n)) => n,
        Some((ty, _)) => bail!("kcctl logs supports pods only, not {ty:?}: name a pod"),
        None => a.pod.as_str(),
    };
    let container = a
        .container
        .as_ref()
        .map(|c| format!("container={}", encode(c)));
    let tail = a.tail.filter(|t| *t >= 0).map(|t| format!("tailLines={t}"));
    let since = a.since_seconds.map(|s| format!("sinceSeconds={s}"));
    Ok(with_query(
        &format!("/api/v1/namespaces/{namespace}/pods/{name}/log"),
        &[
            container.as_deref().unwrap_or(""),
            if a.follow { "follow=true" } else { "" },
            if a.previous { "previous=true" } else { "" },
            if a.timestamps { "timestamps=true" } else { "" },
            tail.as_deref().unwrap_or(""),
            since.as_deref().unwrap_or(""),
        ],
    ))
}

pub fn run(ctx: &Ctx, a: &LogsArgs) -> Result<i32> {
    let path = log_path(&ctx.namespace, a)?;
    // Like kubectl, look the pod up first for a clear "not found".
    let pod_path = path.split("/log").next().unwrap_or(&path);
    if let Err(e) = ctx.client.get(pod_path) {
        if e.is_not_found() {
            let name = pod_path.rsplit('/').next().unwrap_or("");
            bail!(
                "error from server (NotFound): pods \"{name}\" not found in namespace \"{}\"",
                ctx.namespace
            );
        }
        return Err(e.into());
    }
    let mut body = ctx.client.stream("GET", &path, "*/*", None)?;
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = std::io::Read::read(&mut body, &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        l: LogsArgs,
    }

    #[test]
    fn flags_become_query_parameters() {
        let t = T::parse_from(["t", "pod/web", "-c", "app", "-f", "--tail", "10", "-p"]);
        assert_eq!(
            log_path("default", &t.l).unwrap(),
            "/api/v1/namespaces/default/pods/web/log?container=app&follow=true&previous=true&tailLines=10"
        );
        let t = T::parse_from(["t", "deploy/web"]);
        assert!(log_path("default", &t.l).is_err());
    }
}
