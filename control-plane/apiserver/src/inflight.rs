//! The max-in-flight limit, like kube-apiserver's `--max-requests-inflight`
//! and `--max-mutating-requests-inflight`: at most so many read-only and so
//! many mutating requests are served at once; beyond that a request gets
//! 429 TooManyRequests with `Retry-After: 1` (clients such as client-go and
//! kubectl wait and retry). Long-running requests (watches, exec, attach,
//! port-forward, followed logs) are not counted, as in Kubernetes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// kube-apiserver's defaults.
pub const DEFAULT_READONLY: usize = 400;
pub const DEFAULT_MUTATING: usize = 200;

/// One counted class of requests. `max` 0 means no limit.
#[derive(Debug)]
pub struct Limit {
    max: AtomicUsize,
    current: AtomicUsize,
}

impl Limit {
    fn new(max: usize) -> Self {
        Self {
            max: AtomicUsize::new(max),
            current: AtomicUsize::new(0),
        }
    }

    /// Takes a slot, or None when all are taken.
    fn try_acquire(&self) -> Option<Permit<'_>> {
        let max = self.max.load(Ordering::Relaxed);
        let mut cur = self.current.load(Ordering::Relaxed);
        loop {
            if max != 0 && cur >= max {
                return None;
            }
            match self.current.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Permit(self)),
                Err(now) => cur = now,
            }
        }
    }

    /// Requests of this class being served now.
    pub fn in_use(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }
}

/// A taken slot, given back when dropped (also if the request is cancelled).
#[derive(Debug)]
pub struct Permit<'a>(&'a Limit);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The two limits of an API server.
#[derive(Debug)]
pub struct InFlight {
    pub readonly: Limit,
    pub mutating: Limit,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            readonly: Limit::new(DEFAULT_READONLY),
            mutating: Limit::new(DEFAULT_MUTATING),
        }
    }
}

impl InFlight {
    /// Changes the limits (0: unlimited).
    pub fn set_limits(&self, readonly: usize, mutating: usize) {
        self.readonly.max.store(readonly, Ordering::Relaxed);
        self.mutating.max.store(mutating, Ordering::Relaxed);
    }

    /// A slot for a request of this method, or None: answer 429.
    pub fn try_acquire(&self, method: &str) -> Option<Permit<'_>> {
        if is_mutating(method) {
            self.mutating.try_acquire()
        } else {
            self.readonly.try_acquire()
        }
    }
}

fn is_mutating(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Whether a request may last as long as the client wants (not counted).
pub fn is_long_running(path: &str, query: &str) -> bool {
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == format!("{k}=true") || p == format!("{k}=1"))
    };
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    has("watch")
        || matches!(last, "exec" | "attach" | "portforward" | "proxy")
        || (last == "log" && has("follow"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_and_given_back() {
        let f = InFlight::default();
        f.set_limits(1, 2);
        let a = f.try_acquire("GET").expect("first read");
        assert!(f.try_acquire("GET").is_none());
        let b = f.try_acquire("POST").expect("writes are counted apart");
        let _c = f.try_acquire("DELETE").expect("second write");
        assert!(f.try_acquire("PATCH").is_none());
        drop(a);
        drop(b);
        assert!(f.try_acquire("GET").is_some());
        assert!(f.try_acquire("PUT").is_some());
        f.set_limits(0, 0);
        let many: Vec<_> = (0..1000).filter_map(|_| f.try_acquire("GET")).collect();
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn long_running_requests_are_recognised() {
        assert!(is_long_running("/api/v1/pods", "watch=true"));
        assert!(is_long_running(
            "/api/v1/namespaces/d/pods/p/exec",
            "command=sh"
        ));
        assert!(is_long_running(
            "/api/v1/namespaces/d/pods/p/log",
            "follow=true&container=c"
        ));
        assert!(!is_long_running(
            "/api/v1/namespaces/d/pods/p/log",
            "container=c"
        ));
        assert!(!is_long_running("/api/v1/pods", "watchy=true"));
    }
}
