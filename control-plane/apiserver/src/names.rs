//! Name rules: DNS-1123 subdomains and labels, with Kubernetes' wording for
//! the messages kubectl shows, and `generateName` suffixes.

use rand::Rng;

pub const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label_body(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 label: at most 63 characters of `[a-z0-9-]`, alphanumeric ends.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label_body(s)
}

/// A DNS-1035 label: a DNS-1123 label starting with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated labels.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_body)
}

/// Which rule a resource's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// A URL path segment (APIServices, `v1.` for the core group): not
    /// `.` or `..`, no `/` or `%`.
    PathSegment,
}

impl NameRule {
    /// None if `name` is valid, else the message for the cause.
    pub fn check(self, name: &str) -> Option<&'static str> {
        let (ok, msg) = match self {
            NameRule::Subdomain => (is_dns1123_subdomain(name), SUBDOMAIN_MSG),
            NameRule::Label => (is_dns1123_label(name), LABEL_MSG),
            NameRule::Dns1035 => (is_dns1035_label(name), DNS1035_MSG),
            NameRule::PathSegment => (
                !matches!(name, "." | "..") && !name.contains(['/', '%']),
                "may not be '.' or '..' and may not contain '/' or '%'",
            ),
        };
        (!ok).then_some(msg)
    }
}

/// `generateName` + five random characters from Kubernetes' alphabet.
pub fn generate(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let prefix: String = prefix.chars().take(58).collect();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(is_dns1123_subdomain("web.example-1"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain(""));
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(!is_dns1035_label("1abc"));
        assert!(NameRule::Subdomain.check("ok").is_none());
        assert!(NameRule::Label.check("not.ok").is_some());
    }

    #[test]
    fn generated_names_keep_the_prefix_and_are_valid() {
        let name = generate("web-");
        assert!(name.starts_with("web-") && name.len() == 9);
        assert!(is_dns1123_subdomain(&name));
    }
}
