//! What every verb needs: the resolved kubeconfig target, the client, the
//! namespace in effect (`-n`, else the context's, else `default`) and the
//! server's resources (discovered once, on first use). Also the parsing of
//! resource arguments (`TYPE NAME...`, `TYPE/NAME...`) shared by the verbs.

use std::cell::OnceCell;

use anyhow::{Result, bail};

use crate::GlobalArgs;
use crate::client::Client;
use crate::discovery::{ApiResource, Discovery};
use crate::kubeconfig::{self, Kubeconfig};

/// The per-invocation context of a verb.
pub struct Ctx {
    pub client: Client,
    /// The resolved kubeconfig target (for connections other than `client`).
    pub target: kubeconfig::Target,
    pub namespace: String,
    discovery: OnceCell<Discovery>,
}

impl Ctx {
    /// Loads the kubeconfig and connects (lazily: no request yet).
    pub fn new(g: &GlobalArgs) -> Result<Self> {
        let path = kubeconfig::locate(g.kubeconfig.as_deref());
        let config = Kubeconfig::load(&path)?;
        let mut target = config.resolve(g.context.as_deref())?;
        if let Some(server) = &g.server {
            target.server = server.trim_end_matches('/').to_string();
        }
        if g.insecure_skip_tls_verify {
            target.insecure = true;
        }
        if let Some(token) = &g.token {
            target.token = Some(token.clone());
        }
        let client = Client::new(&target)?;
        Ok(Self {
            client,
            target: target.clone(),
            namespace: g
                .namespace
                .clone()
                .unwrap_or_else(|| target.namespace.clone()),
            discovery: OnceCell::new(),
        })
    }

    pub fn discovery(&self) -> Result<&Discovery> {
        if let Some(d) = self.discovery.get() {
            return Ok(d);
        }
        let d = Discovery::fetch(&self.client)?;
        Ok(self.discovery.get_or_init(|| d))
    }

    pub fn resource(&self, word: &str) -> Result<ApiResource> {
        Ok(self.discovery()?.resolve(word)?.clone())
    }
}

/// Objects named on the command line: for each, its resource and name
/// (`None` = every object of that type).
pub type Named = Vec<(ApiResource, Option<String>)>;

/// Parses `TYPE[,TYPE] [NAME...]` or `TYPE/NAME...` into named objects.
pub fn parse_args(ctx: &Ctx, args: &[String]) -> Result<Named> {
    let Some(first) = args.first() else {
        bail!(
            "You must specify the type of resource to get. Use \"kcctl api-resources\" for a complete list of supported resources."
        );
    };
    let mut out = Vec::new();
    if first.contains('/') {
        for a in args {
            let Some((ty, name)) = a.split_once('/') else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kcctl get resource/<resource_name>' instead of 'kcctl get resource resource/<resource_name>'"
                );
            };
            if name.is_empty() {
                bail!("arguments in resource/name form must have a single resource and name");
            }
            out.push((ctx.resource(ty)?, Some(name.to_string())));
        }
        return Ok(out);
    }
    let mut types: Vec<ApiResource> = Vec::new();
    for t in first.split(',').filter(|t| !t.is_empty()) {
        for r in ctx.discovery()?.expand(t)? {
            if !types.contains(r) {
                types.push(r.clone());
            }
        }
    }
    let names = &args[1..];
    if let Some(bad) = names.iter().find(|n| n.contains('/')) {
        bail!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kcctl get resource/<resource_name>' instead of 'kcctl get resource {bad}')"
        );
    }
    for ty in types {
        if names.is_empty() {
            out.push((ty, None));
        } else {
            for n in names {
                out.push((ty.clone(), Some(n.clone())));
            }
        }
    }
    Ok(out)
}

/// `?labelSelector=...&fieldSelector=...` (URL-encoded), or "".
pub fn selector_query(label: Option<&str>, field: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(l) = label.filter(|s| !s.is_empty()) {
        parts.push(format!("labelSelector={}", encode(l)));
    }
    if let Some(f) = field.filter(|s| !s.is_empty()) {
        parts.push(format!("fieldSelector={}", encode(f)));
    }
    parts.join("&")
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Joins a path and query parts.
pub fn with_query(path: &str, parts: &[&str]) -> String {
    let q: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_encoded() {
        assert_eq!(
            selector_query(Some("app in (a,b)"), Some("spec.nodeName=n1")),
            "labelSelector=app%20in%20%28a%2Cb%29&fieldSelector=spec.nodeName%3Dn1"
        );
        assert_eq!(with_query("/p", &["", "a=1"]), "/p?a=1");
    }
}
