//! The admin kubeconfig: what `kcnode init` (and the dev command
//! `kcnode serve-api`) hand to kubectl — the cluster CA, the server URL and
//! a client certificate (or token) naming the user.

use base64::Engine;
use serde_json::{Value, json};

/// Credentials a kubeconfig user presents.
pub enum Credentials<'a> {
    ClientCert { cert_pem: &'a str, key_pem: &'a str },
    Token(&'a str),
}

/// A kubeconfig (YAML) for `user` reaching `server` (an `https://` URL).
pub fn render(
    cluster: &str,
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: Credentials,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user_entry: Value = match credentials {
        Credentials::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
        Credentials::Token(token) => json!({ "token": token }),
    };
    let context = format!("{user}@{cluster}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": cluster, "cluster": { "server": server, "certificate-authority-data": b64(ca_pem) } }],
        "users": [{ "name": user, "user": user_entry }],
        "contexts": [{ "name": context, "context": { "cluster": cluster, "user": user } }],
        "current-context": context,
        "preferences": {},
    });
    serde_norway::to_string(&config).unwrap_or_else(|_| config.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_and_embeds_credentials() {
        let text = render(
            "kc",
            "https://127.0.0.1:6443",
            "CA",
            "admin",
            Credentials::Token("t0k"),
        );
        let v: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(v["users"][0]["user"]["token"], "t0k");
        assert_eq!(v["current-context"], "admin@kc");
    }
}
