//! Kubernetes resource quantities (`64Mi`, `1G`, `500m`, `0.5`, `1e3`) as
//! numbers: memory in bytes, CPU in millicpus. Pure, unit-tested.

/// A quantity that is not one.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid quantity {0:?}: expected a number with an optional suffix (Ki Mi Gi Ti, k M G T, m), e.g. 64Mi or 500m"
)]
pub struct QuantityError(pub String);

/// The value of `s` multiplied by `scale` (1 for bytes, 1000 for millis),
/// rounded up.
fn parse_scaled(s: &str, scale: f64) -> Result<u64, QuantityError> {
    let err = || QuantityError(s.to_string());
    let t = s.trim();
    let suffixes: [(&str, f64); 11] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
        ("u", 1e-6),
        ("n", 1e-9),
    ];
    let (num, mult) = suffixes
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((t, 1.0));
    if num.is_empty() || num.starts_with('+') {
        return Err(err());
    }
    let v: f64 = num.parse().map_err(|_| err())?;
    let total = v * mult * scale;
    if !total.is_finite() || total < 0.0 || total > u64::MAX as f64 {
        return Err(err());
    }
    Ok(total.ceil() as u64)
}

/// Memory in bytes.
pub fn bytes(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1.0)
}

/// CPU in millicpus.
pub fn millicpus(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities() {
        assert_eq!(bytes("64Mi").unwrap(), 64 << 20);
        assert_eq!(bytes("1Gi").unwrap(), 1 << 30);
        assert_eq!(bytes("100M").unwrap(), 100_000_000);
        assert_eq!(bytes("1e3").unwrap(), 1000);
        assert_eq!(bytes("123").unwrap(), 123);
        for bad in ["", "Mi", "x", "-1", "1Zi", "+1"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(millicpus("500m").unwrap(), 500);
        assert_eq!(millicpus("0.5").unwrap(), 500);
        assert_eq!(millicpus("2").unwrap(), 2000);
        assert_eq!(millicpus("1.5").unwrap(), 1500);
    }
}
