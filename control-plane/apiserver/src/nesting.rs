//! A cheap guard before YAML parsing: the YAML parser takes time quadratic
//! in the nesting of flow collections (`[[[[…]]]]`: a 66 KB body kept a
//! worker busy for 33 s), so bodies nesting deeper than `MAX_DEPTH` are
//! refused before they reach it. No Kubernetes object comes near the limit.
//! JSON needs no guard (serde_json stops at 128 levels at once).

/// The deepest flow nesting (`[` / `{`) accepted in a YAML body.
pub const MAX_DEPTH: usize = 100;

/// The deepest nesting of flow collections in `yaml`, not counting
/// brackets inside quoted scalars or comments. Stops counting past `limit`.
pub fn flow_depth(yaml: &[u8], limit: usize) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    let mut i = 0;
    while i < yaml.len() {
        let c = yaml[i];
        if comment {
            comment = c != b'\n';
        } else if let Some(q) = quote {
            if q == b'"' && c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'#' if prev.is_ascii_whitespace() => comment = true,
                b'"' | b'\'' => quote = Some(c),
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                    if max > limit {
                        return max;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
        i += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flow_nesting_outside_quotes_and_comments() {
        assert_eq!(flow_depth(b"a: [1, {b: [2]}]", 100), 3);
        assert_eq!(flow_depth(b"a: \"[[[[\"\nb: '{{{'\n# [[[[\nc: [x]", 100), 1);
        assert_eq!(flow_depth(b"a: \"\\\"[[\"", 100), 0);
        let deep = format!("a: {}{}", "[".repeat(50_000), "]".repeat(50_000));
        assert_eq!(flow_depth(deep.as_bytes(), MAX_DEPTH), MAX_DEPTH + 1);
    }
}
