//! Seeded bad input for the "doors" tests: malformed bodies, documents and
//! byte strings made from a valid sample (mutated leaves, wrong types, huge
//! numbers, deep nesting, truncation, flipped bytes, garbage). Pure: the
//! tests feed the results to real binaries and sockets. The seed comes from
//! `KC_FUZZ_SEED` (printed, so a failure can be replayed), else a fixed one.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The RNG of one test: seeded from `KC_FUZZ_SEED` or `default`.
pub fn rng(default: u64) -> StdRng {
    let seed = std::env::var("KC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("fuzz seed {seed} (replay with KC_FUZZ_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

/// A value of a random wrong shape.
pub fn odd_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(1e300),
        5 => json!(""),
        6 => json!("x".repeat(rng.random_range(1..70_000))),
        7 => json!([]),
        8 => json!({}),
        9 => json!([1, "two", null, {"three": [3]}]),
        10 => json!("\u{0}\u{fffd}../../etc/passwd"),
        _ => nested(rng.random_range(1..300)),
    }
}

/// `[[[…]]]` nested `depth` deep.
pub fn nested(depth: usize) -> Value {
    let mut v = json!(0);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

/// `sample` with one random leaf or field replaced by an odd value, or a
/// random field added.
pub fn mutate(rng: &mut StdRng, sample: &Value) -> Value {
    let mut v = sample.clone();
    let mut paths = Vec::new();
    collect_paths(&v, &mut Vec::new(), &mut paths);
    if paths.is_empty() || rng.random_range(0..5) == 0 {
        if let Some(obj) = v.as_object_mut() {
            obj.insert(format!("f{}", rng.random::<u16>()), odd_value(rng));
        }
        return v;
    }
    let path = &paths[rng.random_range(0..paths.len())];
    let mut cursor = &mut v;
    for key in path {
        cursor = match key {
            Key::Field(k) => &mut cursor[k.as_str()],
            Key::Index(i) => &mut cursor[*i],
        };
    }
    *cursor = odd_value(rng);
    v
}

#[derive(Clone)]
enum Key {
    Field(String),
    Index(usize),
}

fn collect_paths(v: &Value, prefix: &mut Vec<Key>, out: &mut Vec<Vec<Key>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Key::Field(k.clone()));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Key::Index(i));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// Random bytes, `0..max` long.
pub fn garbage(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..max);
    (0..n).map(|_| rng.random()).collect()
}

/// `data` with a few bytes flipped, or cut short, or both.
pub fn damage(rng: &mut StdRng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if out.is_empty() {
        return out;
    }
    if rng.random_range(0..2) == 0 {
        for _ in 0..rng.random_range(1..8) {
            let i = rng.random_range(0..out.len());
            out[i] ^= rng.random_range(1..=255u8);
        }
    }
    if rng.random_range(0..2) == 0 {
        out.truncate(rng.random_range(0..out.len()));
    }
    out
}

/// A malformed body for a JSON/YAML endpoint made from `sample`, with the
/// content type to send it as.
pub fn bad_body(rng: &mut StdRng, sample: &Value) -> (Vec<u8>, &'static str) {
    const JSON: &str = "application/json";
    const YAML: &str = "application/yaml";
    match rng.random_range(0..9) {
        0..=2 => (mutate(rng, sample).to_string().into_bytes(), JSON),
        3 => (damage(rng, sample.to_string().as_bytes()), JSON),
        4 => (garbage(rng, 4000), JSON),
        5 => {
            let depth = rng.random_range(100..50_000);
            (
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
                JSON,
            )
        }
        6 => {
            let depth = rng.random_range(100..50_000);
            (
                format!("a: {}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
                YAML,
            )
        }
        7 => {
            let docs = [
                "kind: [\n",
                "metadata: {name: &a [*a]}\n",
                "a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 12\n",
                "---\n---\n",
                "\t\tbad: indent\n  - x",
                "? [complex, key]\n: value\n",
                "!!binary AAAA",
            ];
            (
                docs[rng.random_range(0..docs.len())].as_bytes().to_vec(),
                YAML,
            )
        }
        _ => (
            serde_json::to_string(&mutate(rng, sample))
                .unwrap_or_default()
                .replace('{', "{\n")
                .into_bytes(),
            YAML,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_input() {
        let sample = json!({"a": {"b": [1, 2]}, "c": "d"});
        let one: Vec<_> = {
            let mut r = StdRng::seed_from_u64(3);
            (0..20).map(|_| bad_body(&mut r, &sample)).collect()
        };
        let two: Vec<_> = {
            let mut r = StdRng::seed_from_u64(3);
            (0..20).map(|_| bad_body(&mut r, &sample)).collect()
        };
        assert_eq!(one, two);
        assert!(one.iter().any(|(b, _)| b != sample.to_string().as_bytes()));
    }
}
