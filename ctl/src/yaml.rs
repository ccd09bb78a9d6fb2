//! YAML text the way kubectl prints it (Go's yaml.v2 encoder, which
//! kubectl's `-o yaml` goes through): sequences not indented under their
//! key, strings plain when they read back as strings, double-quoted when
//! they would read back as something else (`"14"`, `"true"`, `""`,
//! timestamps), single-quoted when YAML syntax forbids them plain (`'*'`,
//! `': x'`), literal blocks for multi-line text, and plain or single-quoted
//! text folded at the first space past column 80 (yaml.v2's best width).

use serde_json::Value;

/// The YAML document for `v` (keys in the map's order).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a map inside a sequence item follows the dash.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&string(k, indent));
        out.push(':');
        value_after_key(out, v, indent);
    }
}

fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent);
        }
        other => {
            out.push(' ');
            push_scalar(out, other, indent + 2);
        }
    }
}

/// yaml.v2's best width: plain and single-quoted text breaks at a space
/// once past it.
const BEST_WIDTH: usize = 80;

/// Appends a scalar value and its newline, folding long text like yaml.v2.
fn push_scalar(out: &mut String, v: &Value, indent: usize) {
    let text = scalar(v, indent);
    let foldable = matches!(v, Value::String(_)) && !text.starts_with(['"', '|']);
    if !foldable {
        out.push_str(&text);
        out.push('\n');
        return;
    }
    let mut column = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let after_space = i > 0 && chars[i - 1] == ' ';
        let next_is_text = chars.get(i + 1).is_some_and(|n| *n != ' ');
        if c == ' ' && !after_space && column > BEST_WIDTH && next_is_text {
            out.push('\n');
            pad(out, indent);
            column = indent;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out.push('\n');
}

fn seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        if !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => map(out, m, indent + 2),
            Value::Array(a) if !a.is_empty() => seq(out, a, indent + 2),
            other => push_scalar(out, other, indent + 2),
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
    }
}

/// A string scalar in yaml.v2's style.
fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && printable(s) {
        return literal(s, indent);
    }
    if !printable(s) || s.contains('\t') || resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if !plain_allowed(s) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    s.to_string()
}

fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| c == '\n' || c == '\t' || !(c.is_control() || c == '\u{feff}'))
}

/// Would the plain text read back as null, bool, number or timestamp?
fn resolves_to_non_string(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    is_number(s) || is_timestamp(s)
}

fn is_number(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    let t = t.replace('_', "");
    if let Some(hex) = t.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = t.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    // Floats: digits with at most one dot and an optional exponent.
    let (mantissa, exponent) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (t.as_str(), None),
    };
    let digits = mantissa.chars().filter(char::is_ascii_digit).count();
    let dots = mantissa.chars().filter(|c| *c == '.').count();
    let mantissa_ok =
        digits > 0 && dots <= 1 && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.');
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// `2006-1-2` optionally followed by `T`/`t`/space and a time.
fn is_timestamp(s: &str) -> bool {
    let date = s.split(['T', 't', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
        && (s.len() == date.len()
            || s[date.len()..]
                .chars()
                .nth(1)
                .is_some_and(|c| c.is_ascii_digit()))
}

/// Whether YAML syntax lets the text stand plain in block context.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let second = s.chars().nth(1);
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with('\t') || s.ends_with('\t') {
        return false;
    }
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && second.is_none_or(|c| c == ' ' || c == '\t') {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    !(s.contains(": ")
        || s.contains(":\t")
        || s.ends_with(':')
        || s.contains(" #")
        || s.contains("\t#"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else {
                    out.push_str(&format!("\\u{n:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block (`|`, `|-` or `|+`) indented under its key.
fn literal(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let lead = if s.starts_with(' ') { "2" } else { "" };
    let mut out = format!("|{lead}{chomp}");
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_and_sequences_nest_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "metadata": {"labels": {"run": "web"}, "resourceVersion": "14", "creationTimestamp": "2026-11-24T23:44:34Z"},
            "spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}], "args": ["a", "b"]}], "empty": {}, "none": []},
        });
        let want = "apiVersion: v1\nmetadata:\n  creationTimestamp: \"2026-11-24T23:44:34Z\"\n  labels:\n    run: web\n  resourceVersion: \"14\"\nspec:\n  containers:\n  - args:\n    - a\n    - b\n    name: web\n    ports:\n    - containerPort: 80\n  empty: {}\n  none: []\n";
        assert_eq!(to_string(&crate::printer::sorted(&v)), want);
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        for (s, want) in [
            ("web", "web"),
            ("", "\"\""),
            ("true", "\"true\""),
            ("1", "\"1\""),
            ("1.5", "\"1.5\""),
            ("0x1F", "\"0x1F\""),
            ("*", "'*'"),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            ("nginx:1.25", "nginx:1.25"),
            ("10.96.0.1", "10.96.0.1"),
            ("25%", "25%"),
            ("/dev/termination-log", "/dev/termination-log"),
            ("-x", "-x"),
            ("- x", "'- x'"),
        ] {
            assert_eq!(string(s, 0), want, "{s:?}");
        }
    }

    #[test]
    fn long_text_folds_past_column_eighty() {
        let v = json!({"data": {"long": "this is a very long string with many spaces in it that goes well beyond eighty columns of width for sure yes"}});
        assert_eq!(
            to_string(&v),
            "data:\n  long: this is a very long string with many spaces in it that goes well beyond eighty\n    columns of width for sure yes\n"
        );
    }

    #[test]
    fn multi_line_text_is_a_literal_block() {
        let v = json!({"data": {"script": "echo a\necho b\n", "x": "one\ntwo"}});
        assert_eq!(
            to_string(&v),
            "data:\n  script: |\n    echo a\n    echo b\n  x: |-\n    one\n    two\n"
        );
    }
}
