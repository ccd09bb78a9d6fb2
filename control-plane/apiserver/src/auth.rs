//! Who is asking, and may they: authentication (client certificate from the
//! TLS handshake, or a bearer token) and authorization.
//!
//! The certificate is verified by the TLS layer against the cluster CA, so
//! here we only read its subject (CN = user, O = groups; see `pki`).
//! Authorization is two rules, as in a fresh kubeadm cluster with the
//! NodeRestriction admission plugin: `system:masters` may do anything; a
//! node (`system:node:<name>` in `system:nodes`) may read everything but
//! write only its own Node, its own Lease and pods bound to it. Everyone
//! else is refused.

use std::collections::HashMap;

use kc_pki::Identity;

use super::status::ApiError;

/// Static bearer tokens, like kube-apiserver's `--token-auth-file`.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: HashMap<String, Identity>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_token(&mut self, token: impl Into<String>, identity: Identity) {
        self.tokens.insert(token.into(), identity);
    }

    /// The identity of a request: the connection's certificate first, then
    /// an `Authorization: Bearer` header. None means anonymous (401).
    pub fn authenticate(
        &self,
        cert: Option<&Identity>,
        authorization: Option<&str>,
    ) -> Option<Identity> {
        if let Some(id) = cert {
            return Some(id.clone());
        }
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).cloned()
    }

    /// Reads a token file: one `token,user,group1|group2` per line (`#` comments).
    pub fn load_tokens(&mut self, text: &str) {
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(3, ',');
            let (Some(token), Some(user)) = (fields.next(), fields.next()) else {
                continue;
            };
            let groups = fields
                .next()
                .map(|g| {
                    g.split('|')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            self.add_token(
                token.trim(),
                Identity {
                    user: user.trim().to_string(),
                    groups,
                },
            );
        }
    }
}

/// What a request wants to do, for authorization.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Attributes<'_> {
    fn is_read(&self) -> bool {
        matches!(self.verb, "get" | "list" | "watch")
    }
}

/// A node's write needs the object to decide (is the pod bound to it?).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed if the pod (old and new) has `spec.nodeName` == this node.
    AllowIfPodOnNode(String),
    Deny(String),
}

pub fn authorize(id: &Identity, attrs: &Attributes) -> Decision {
    if id.is_admin() {
        return Decision::Allow;
    }
    let Some(node) = id.node_name() else {
        return Decision::Deny("no RBAC policy matched".into());
    };
    if attrs.is_read() {
        return Decision::Allow;
    }
    match (attrs.group, attrs.resource) {
        ("", "nodes")
            if attrs.name == node || (attrs.verb == "create" && attrs.name.is_empty()) =>
        {
            Decision::Allow
        }
        ("coordination.k8s.io", "leases")
            if attrs.namespace == "kube-node-lease" && attrs.name == node =>
        {
            Decision::Allow
        }
        ("", "events") if attrs.verb == "create" || attrs.verb == "patch" => Decision::Allow,
        ("", "pods") if attrs.verb != "deletecollection" => {
            Decision::AllowIfPodOnNode(node.to_string())
        }
        _ => Decision::Deny(format!(
            "node \"{node}\" may only write its own Node, its Lease and pods bound to it"
        )),
    }
}

/// The 403 for a denied request.
pub fn forbidden(id: &Identity, attrs: &Attributes, why: &str) -> ApiError {
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    ApiError::forbidden(
        &id.user,
        attrs.verb,
        attrs.group,
        &resource,
        attrs.name,
        attrs.namespace,
        why,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kc_pki::{ADMIN_GROUP, NODES_GROUP};

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource,
            subresource: "",
            namespace: ns,
            name,
        }
    }

    fn node(name: &str) -> Identity {
        Identity {
            user: format!("system:node:{name}"),
            groups: vec![NODES_GROUP.into()],
        }
    }

    #[test]
    fn anonymous_without_token_is_nobody_and_tokens_map_to_users() {
        let mut auth = Authenticator::new();
        auth.load_tokens("# comment\nsecret,alice,system:masters|devs\nbad-line\n");
        assert!(auth.authenticate(None, None).is_none());
        assert!(auth.authenticate(None, Some("Bearer wrong")).is_none());
        let alice = auth.authenticate(None, Some("Bearer secret")).unwrap();
        assert_eq!(alice.user, "alice");
        assert!(alice.is_admin());
    }

    #[test]
    fn admin_may_do_anything_and_others_nothing() {
        let admin = Identity {
            user: "a".into(),
            groups: vec![ADMIN_GROUP.into()],
        };
        assert_eq!(
            authorize(&admin, &attrs("delete", "", "nodes", "", "x")),
            Decision::Allow
        );
        let bob = Identity {
            user: "bob".into(),
            groups: vec![],
        };
        assert!(matches!(
            authorize(&bob, &attrs("get", "", "pods", "default", "x")),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn a_node_writes_only_its_own_objects() {
        let n = node("w1");
        assert_eq!(
            authorize(&n, &attrs("list", "", "pods", "", "")),
            Decision::Allow
        );
        assert_eq!(
            authorize(&n, &attrs("update", "", "nodes", "", "w1")),
            Decision::Allow
        );
        assert!(matches!(
            authorize(&n, &attrs("update", "", "nodes", "", "w2")),
            Decision::Deny(_)
        ));
        assert_eq!(
            authorize(
                &n,
                &attrs(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "kube-node-lease",
                    "w1"
                )
            ),
            Decision::Allow
        );
        assert!(matches!(
            authorize(
                &n,
                &attrs(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "kube-node-lease",
                    "w2"
                )
            ),
            Decision::Deny(_)
        ));
        assert_eq!(
            authorize(&n, &attrs("update", "", "pods", "default", "p")),
            Decision::AllowIfPodOnNode("w1".into())
        );
        assert!(matches!(
            authorize(&n, &attrs("create", "", "secrets", "default", "s")),
            Decision::Deny(_)
        ));
    }
}
