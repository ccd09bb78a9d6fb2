//! The `/v2/` URL grammar: what a path asks for. Repository names contain
//! slashes (`library/busybox`), so a path is read from its end, where the
//! fixed words (`manifests`, `blobs`, `uploads`, `tags/list`) are. Pure.

use super::error::RegistryError;

/// What a `/v2/...` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>` (a tag or a digest).
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/uploads/`: start an upload.
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`: an upload session.
    Upload { name: String, id: String },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: String, digest: String },
}

/// Parses the part of the path after `/v2`; None when it names nothing.
pub fn parse(rest: &str) -> Result<Option<Route>, RegistryError> {
    let rest = rest.trim_start_matches('/');
    let trailing_slash = rest.ends_with('/');
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Ok(Some(Route::Base));
    }
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_of = |end: usize| -> Result<String, RegistryError> {
        let name = segs[..end].join("/");
        if valid_name(&name) {
            Ok(name)
        } else {
            Err(RegistryError::name_invalid(&name))
        }
    };
    let route = if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        Route::Tags {
            name: name_of(n - 2)?,
        }
    } else if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        Route::UploadStart {
            name: name_of(n - 2)?,
        }
    } else if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" && !trailing_slash {
        Route::Upload {
            name: name_of(n - 3)?,
            id: segs[n - 1].to_string(),
        }
    } else if n >= 3 && segs[n - 2] == "manifests" {
        Route::Manifest {
            name: name_of(n - 2)?,
            reference: segs[n - 1].to_string(),
        }
    } else if n >= 3 && segs[n - 2] == "blobs" {
        Route::Blob {
            name: name_of(n - 2)?,
            digest: segs[n - 1].to_string(),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(route))
}

/// The spec's repository name rule: components of `[a-z0-9]+` joined by
/// `.`, `_`, `__` or `-`s, separated by `/`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| {
                    x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
                })
        })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str) -> Option<Route> {
        parse(p).unwrap()
    }

    #[test]
    fn names_with_slashes_route_by_their_tail() {
        assert_eq!(route("/"), Some(Route::Base));
        assert_eq!(route(""), Some(Route::Base));
        assert_eq!(route("/_catalog"), Some(Route::Catalog));
        assert_eq!(
            route("/library/busybox/tags/list"),
            Some(Route::Tags {
                name: "library/busybox".into()
            })
        );
        assert_eq!(
            route("/a/b/c/manifests/1.0"),
            Some(Route::Manifest {
                name: "a/b/c".into(),
                reference: "1.0".into()
            })
        );
        assert_eq!(
            route("/test/img/blobs/uploads/"),
            Some(Route::UploadStart {
                name: "test/img".into()
            })
        );
        assert_eq!(
            route("/test/img/blobs/uploads/abc"),
            Some(Route::Upload {
                name: "test/img".into(),
                id: "abc".into()
            })
        );
        assert_eq!(
            route("/img/blobs/sha256:00"),
            Some(Route::Blob {
                name: "img".into(),
                digest: "sha256:00".into()
            })
        );
        // A repository may itself be called "blobs" or "manifests".
        assert_eq!(
            route("/blobs/manifests/latest"),
            Some(Route::Manifest {
                name: "blobs".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(route("/justaname"), None);
    }

    #[test]
    fn bad_names_and_tags_are_refused() {
        assert!(parse("/UPPER/manifests/x").is_err());
        assert!(parse("/a//b/manifests/x").is_err());
        assert!(parse("/-a/manifests/x").is_err());
        assert!(valid_name("a.b_c-d/e"));
        assert!(valid_tag("v1.0_rc-2"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(&"x".repeat(129)));
    }
}
