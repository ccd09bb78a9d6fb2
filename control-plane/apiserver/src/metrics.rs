//! Request metrics in the Prometheus text format (`GET /metrics`), named
//! like kube-apiserver's: `apiserver_request_total{verb,resource,code}` and
//! `apiserver_request_duration_seconds` (sum and count per verb and resource).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    /// (verb, resource, code) -> count
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (verb, resource) -> (seconds sum, count)
    durations: Mutex<BTreeMap<(String, String), (f64, u64)>>,
    watches: std::sync::atomic::AtomicI64,
}

impl Metrics {
    pub fn record(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((verb.to_string(), resource.to_string(), code))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.durations.lock() {
            let e = m
                .entry((verb.to_string(), resource.to_string()))
                .or_default();
            e.0 += took.as_secs_f64();
            e.1 += 1;
        }
    }

    pub fn watch_started(&self) {
        self.watches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn watch_ended(&self) {
        self.watches
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((verb, resource, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds summary\n");
        if let Ok(m) = self.durations.lock() {
            for ((verb, resource), (sum, count)) in m.iter() {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{resource=\"{resource}\",verb=\"{verb}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_count{{resource=\"{resource}\",verb=\"{verb}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP apiserver_registered_watchers Number of currently open watches.\n# TYPE apiserver_registered_watchers gauge\n");
        let _ = writeln!(
            out,
            "apiserver_registered_watchers {}",
            self.watches.load(std::sync::atomic::Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label() {
        let m = Metrics::default();
        m.record("list", "pods", 200, Duration::from_millis(5));
        m.record("list", "pods", 200, Duration::from_millis(5));
        let text = m.render();
        assert!(
            text.contains(
                "apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"list\"} 2"
            )
        );
        assert!(text.contains(
            "apiserver_request_duration_seconds_count{resource=\"pods\",verb=\"list\"} 2"
        ));
    }
}
