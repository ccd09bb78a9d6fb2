//! Image references: `name[:tag]` normalised like Docker's (`busybox` is
//! `busybox:latest`, `docker.io/library/busybox` is `busybox`), and image ids
//! (`sha256:<hex>` or a hex prefix of at least 4 digits).
//!
//! Short local names are the primary form; the `docker.io/library/` prefix
//! is only stripped so references written for Docker Hub keep working.

use super::error::{ImageError, Result};

/// A reference as the user wrote it, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `name:tag` (normalised, tag defaulted to `latest`).
    Tag(TaggedName),
    /// An image id or a prefix of one (hex digits only, no `sha256:`).
    Id(String),
}

/// A normalised `name:tag`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaggedName {
    pub name: String,
    pub tag: String,
}

impl std::fmt::Display for TaggedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

impl Reference {
    /// Parses a reference; hex strings of 12 or 64 digits and `sha256:`
    /// forms are ids, everything else a name.
    pub fn parse(s: &str) -> Result<Reference> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            if is_hex(hex) && hex.len() >= 4 {
                return Ok(Reference::Id(hex.to_string()));
            }
            return Err(bad(s, "an id is sha256: followed by hex digits"));
        }
        if is_hex(s) && (s.len() == 12 || s.len() == 64) {
            return Ok(Reference::Id(s.to_string()));
        }
        TaggedName::parse(s).map(Reference::Tag)
    }
}

impl TaggedName {
    /// Parses `name[:tag]` (a `@digest` suffix is refused: not supported yet).
    pub fn parse(s: &str) -> Result<TaggedName> {
        if s.is_empty() {
            return Err(bad(s, "it is empty"));
        }
        if s.contains('@') {
            return Err(bad(
                s,
                "references by digest (name@sha256:...) are not supported; use name:tag or the image id",
            ));
        }
        let (name, tag) = match s.rfind(':') {
            Some(i) if !s[i + 1..].contains('/') => (&s[..i], &s[i + 1..]),
            _ => (s, "latest"),
        };
        let name = name
            .strip_prefix("docker.io/library/")
            .or_else(|| name.strip_prefix("docker.io/"))
            .or_else(|| name.strip_prefix("index.docker.io/library/"))
            .unwrap_or(name);
        if name.is_empty() {
            return Err(bad(s, "the name is empty"));
        }
        let parts: Vec<&str> = name.split('/').collect();
        let name_ok = parts.iter().enumerate().all(|(i, part)| {
            // A registry host:port may lead a multi-part name.
            let host = i == 0 && parts.len() > 1;
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'.' | b'_' | b'-')
                        || (host && b == b':')
                })
        });
        if !name_ok {
            return Err(bad(
                s,
                "a name is lowercase letters, digits, '.', '_', '-', in '/'-separated parts",
            ));
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            return Err(bad(s, "a tag is up to 128 letters, digits, '.', '_', '-'"));
        }
        Ok(TaggedName {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn bad(reference: &str, reason: &str) -> ImageError {
    ImageError::BadReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(s: &str) -> String {
        match Reference::parse(s).unwrap() {
            Reference::Tag(t) => t.to_string(),
            Reference::Id(id) => format!("id {id}"),
        }
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(tagged("busybox"), "busybox:latest");
        assert_eq!(tagged("busybox:1.36"), "busybox:1.36");
        assert_eq!(tagged("docker.io/library/python:3"), "python:3");
        assert_eq!(tagged("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(tagged("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(tagged("basicserver:0.42"), "basicserver:0.42");
    }

    #[test]
    fn ids_are_hex() {
        assert_eq!(tagged("0123456789ab"), "id 0123456789ab");
        assert_eq!(tagged("sha256:abcd"), "id abcd");
    }

    #[test]
    fn refuses_bad_references() {
        for s in ["", "Busybox", "a:", "a::b", "a@sha256:00", "x:-tag", "a//b"] {
            assert!(Reference::parse(s).is_err(), "{s:?} should be refused");
        }
    }
}
