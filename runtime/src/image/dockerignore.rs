//! `.dockerignore`: which build-context paths COPY/ADD never see. Pure.
//!
//! Docker's rules: one Go `filepath.Match` pattern per line (plus `**` for
//! any number of directories), `#` comments, a leading `!` re-includes, the
//! last matching line wins, and a pattern matching a directory excludes
//! everything under it.

use globset::{GlobBuilder, GlobMatcher};

use super::error::{ImageError, Result};

#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<DockerIgnore> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| {
                    ImageError::invalid(format!(
                        ".dockerignore line {}: bad pattern {line:?}: {e}",
                        i + 1
                    ))
                })?;
            rules.push((glob.compile_matcher(), negate));
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `rel` (a `/`-separated path relative to the context root)
    /// is excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let mut excluded = false;
        for (glob, negate) in &self.rules {
            let hit = glob.is_match(&rel) || ancestors(&rel).any(|a| glob.is_match(a));
            if hit {
                excluded = !negate;
            }
        }
        excluded
    }
}

/// Strips a leading `/` or `./`, and `.` / empty components.
fn clean(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `a/b/c` -> `a`, `a/b`.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_dockers_rules() {
        let ig =
            DockerIgnore::parse("# comment\n*.log\n/build\n**/tmp\n!keep.log\nsecret?\n").unwrap();
        assert!(ig.is_excluded("debug.log"));
        assert!(!ig.is_excluded("dir/debug.log"), "* does not cross /");
        assert!(!ig.is_excluded("keep.log"), "! re-includes");
        assert!(
            ig.is_excluded("build/out/a.o"),
            "a dir pattern excludes its contents"
        );
        assert!(ig.is_excluded("a/b/tmp/x"));
        assert!(ig.is_excluded("tmp"));
        assert!(ig.is_excluded("secret1"));
        assert!(!ig.is_excluded("secret12"));
        assert!(!ig.is_excluded("src/main.rs"));
    }

    #[test]
    fn exception_inside_excluded_dir() {
        let ig = DockerIgnore::parse("docs\n!docs/README.md\n").unwrap();
        assert!(ig.is_excluded("docs/a.md"));
        assert!(!ig.is_excluded("docs/README.md"));
    }
}
