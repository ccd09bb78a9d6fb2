//! Kubernetes resource quantities ("100m", "1.5", "128Mi", "1G", "2e3") as
//! the integers the scheduler adds up: milli-CPU and bytes.

/// A quantity as a number of base units, or None when it does not parse.
pub fn parse(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(num) = t.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// CPU in millicores (rounded up, as Kubernetes does).
pub fn milli_cpu(text: &str) -> i64 {
    parse(text).map(|v| (v * 1000.0).ceil() as i64).unwrap_or(0)
}

/// Memory (or any byte quantity) in bytes.
pub fn bytes(text: &str) -> i64 {
    parse(text).map(|v| v.ceil() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_quantities() {
        assert_eq!(milli_cpu("100m"), 100);
        assert_eq!(milli_cpu("1.5"), 1500);
        assert_eq!(milli_cpu("2"), 2000);
        assert_eq!(bytes("128Mi"), 128 * 1024 * 1024);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(bytes("2e3"), 2000);
        assert_eq!(bytes("nonsense"), 0);
        assert_eq!(milli_cpu(""), 0);
    }
}
