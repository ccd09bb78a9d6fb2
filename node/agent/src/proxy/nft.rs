//! Applies the rendered table with the `nft` binary, atomically: one
//! `nft -f -` transaction that ensures the table exists, deletes it and
//! adds the new one, so packets see either the old rules or the new ones.

use std::io::Write;
use std::process::{Command, Stdio};

use super::rules::TABLE;

/// `nft` could not be run or refused the rules.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("could not run `nft` (install the nftables package): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the kc rules: {stderr}")]
    Refused { stderr: String },
}

fn run_nft(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Refused {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The one transaction that swaps in `table` (the output of `rules::render`).
pub fn replace_script(table: &str) -> String {
    format!("add table ip {TABLE}\ndelete table ip {TABLE}\n{table}")
}

/// Replaces the kc table in the current network namespace.
pub fn replace_table(table: &str) -> Result<(), NftError> {
    run_nft(&replace_script(table))
}

/// Removes the kc table (no error if it is absent).
pub fn delete_table() -> Result<(), NftError> {
    run_nft(&format!("add table ip {TABLE}\ndelete table ip {TABLE}\n"))
}
