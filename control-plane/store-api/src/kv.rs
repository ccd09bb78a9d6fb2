//! `Kv`: what the store's users need of it (etcd v3's KV and Watch), the
//! one interface the API server and the registry reach the store through.
//! Implemented by kc-store's in-process `StoreHandle`; a test may
//! implement it over anything.

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::api::{
    RangeRequest, RangeResponse, StoreError, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
};

/// Reads, transactions and watches.
pub trait Kv: Send + Sync + 'static {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StoreError>>;
    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StoreError>>;
    fn watch(
        &self,
        req: WatchRequest,
    ) -> BoxFuture<'_, Result<mpsc::Receiver<WatchResponse>, StoreError>>;
}

/// The end of the range of every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(&[0x61, 0xff]), [0x62]);
        assert_eq!(prefix_end(&[0xff]), [0]);
    }
}
