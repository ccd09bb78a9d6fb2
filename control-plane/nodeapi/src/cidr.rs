//! Pod CIDR allocation: each Node gets one /24 of 10.244.0.0/16, never
//! handed out twice. Each allocation is a store key
//! `/kc/podcidr/<index>` created only if absent (a Raft transaction), so two
//! members allocating at once cannot both win the same block.

use serde_json::json;

use kc_apiserver::Storage;
use kc_apiserver::status::ApiError;

/// How many /24 blocks 10.244.0.0/16 holds.
pub const BLOCKS: u16 = 256;
const PREFIX: &str = "/kc/podcidr/";

/// The CIDR of block `index`.
pub fn cidr_of(index: u16) -> String {
    format!("10.244.{index}.0/24")
}

fn key(index: u16) -> Vec<u8> {
    format!("{PREFIX}{index:03}").into_bytes()
}

/// The block held by `node`, or a newly claimed free one. Its own block
/// is looked for first: a lower block freed by a node that left must not
/// replace the one its pods already use when it registers again.
pub async fn allocate(storage: &Storage, node: &str) -> Result<String, ApiError> {
    let record = json!({ "node": node });
    let mut free = Vec::new();
    for index in 0..BLOCKS {
        match storage.get(&key(index)).await? {
            Some(s) if s.object["node"].as_str() == Some(node) => return Ok(cidr_of(index)),
            Some(_) => {}
            None => free.push(index),
        }
    }
    for index in free {
        if storage.create(&key(index), &record, None).await?.is_some() {
            return Ok(cidr_of(index));
        }
    }
    Err(ApiError::bad_request(format!(
        "no pod CIDR left for node {node}: all {BLOCKS} blocks of 10.244.0.0/16 are taken"
    )))
}

/// Gives back the block of `node` (when it leaves the cluster).
pub async fn release(storage: &Storage, node: &str) -> Result<(), ApiError> {
    for index in 0..BLOCKS {
        let k = key(index);
        if let Some(s) = storage.get(&k).await?
            && s.object["node"].as_str() == Some(node)
        {
            storage.delete(&k, s.mod_revision).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_distinct_slash_24s() {
        assert_eq!(cidr_of(0), "10.244.0.0/24");
        assert_eq!(cidr_of(255), "10.244.255.0/24");
        assert_ne!(key(1), key(10));
    }
}
