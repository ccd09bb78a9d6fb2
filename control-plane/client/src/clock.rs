//! The wall clock as Kubernetes timestamps (RFC 3339, whole seconds).

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Now.
pub fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_second(since.as_secs() as i64).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `now + seconds` as Kubernetes writes timestamps (`2026-11-24T22:50:01Z`).
pub fn rfc3339_in(seconds: i64) -> String {
    let t = now()
        .checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| now());
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_whole_seconds() {
        let s = super::rfc3339_in(0);
        assert!(s.ends_with('Z') && !s.contains('.'), "{s}");
    }
}
