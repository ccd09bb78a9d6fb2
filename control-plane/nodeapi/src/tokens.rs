//! Bootstrap tokens, stored as Kubernetes stores them: a Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`
//! with `token-id`, `token-secret` and `expiration` (RFC 3339). Creating
//! one and checking one presented by a joining host; the check is pure
//! (`check_secret`) so its rules are unit-tested.

use base64::Engine as _;
use k8s_openapi::jiff::Timestamp;
use kc_protocol::node_api::BootstrapToken;
use rand::Rng as _;
use serde_json::{Value, json};

use kc_apiserver::clock;
use kc_apiserver::registry;
use kc_apiserver::rest::{Query, Rest, Target};
use kc_apiserver::status::ApiError;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// The refusal a joining host sees for any bad token (deliberately the same
/// for unknown, wrong and expired tokens).
pub const REFUSAL: &str =
    "token is invalid or expired: create one with `kcnode token create` on a control-plane host";

fn secrets() -> &'static registry::Resource {
    registry::lookup("", "v1", "secrets").expect("secrets are registered")
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The data field marking a token that may join control-plane members.
pub const CONTROL_PLANE_USAGE: &str = "usage-kc-control-plane-join";

/// The refusal for a worker token presented by a host joining the control plane.
pub const NOT_CONTROL_PLANE: &str = "this token may join workers only: a control-plane member needs a control-plane token (`kcnode token create --control-plane` on a member, or the control-plane join command `kcnode init` printed)";

/// The Secret holding `token`, expiring `ttl_seconds` from now.
pub fn secret_for(token: &BootstrapToken, ttl_seconds: u64) -> Value {
    let ttl = i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": token.secret_name(), "namespace": "kube-system" },
        "type": SECRET_TYPE,
        "data": {
            "token-id": b64(&token.id),
            "token-secret": b64(&token.secret),
            "expiration": b64(&clock::rfc3339_in(ttl)),
            "usage-bootstrap-authentication": b64("true"),
            "description": b64("created by kcnode for kcnode join"),
        }
    })
}

fn data_field(secret: &Value, field: &str) -> Option<String> {
    let raw = secret["data"][field].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `secret` holds `token` and has not expired at `now`.
pub fn check_secret(secret: &Value, token: &BootstrapToken, now: Timestamp) -> bool {
    if secret["type"].as_str() != Some(SECRET_TYPE) {
        return false;
    }
    let matches = data_field(secret, "token-id").as_deref() == Some(token.id.as_str())
        && data_field(secret, "token-secret").as_deref() == Some(token.secret.as_str());
    let live = match data_field(secret, "expiration") {
        Some(exp) => exp.parse::<Timestamp>().is_ok_and(|exp| exp > now),
        None => true, // Kubernetes: no expiration means it never expires
    };
    matches && live
}

/// Whether the token Secret may join control-plane members.
pub fn allows_control_plane(secret: &Value) -> bool {
    data_field(secret, CONTROL_PLANE_USAGE).as_deref() == Some("true")
}

/// Creates a new random token valid for `ttl_seconds`.
pub async fn create(rest: &Rest, ttl_seconds: u64) -> Result<BootstrapToken, ApiError> {
    create_with(rest, ttl_seconds, false).await
}

/// Creates a new random token valid for `ttl_seconds`; with
/// `control_plane`, it may also join control-plane members.
pub async fn create_with(
    rest: &Rest,
    ttl_seconds: u64,
    control_plane: bool,
) -> Result<BootstrapToken, ApiError> {
    let mut bytes = [0u8; 22];
    rand::rng().fill(&mut bytes);
    let token = BootstrapToken::from_random(&bytes);
    let mut secret = secret_for(&token, ttl_seconds);
    if control_plane {
        secret["data"][CONTROL_PLANE_USAGE] = json!(b64("true"));
    }
    rest.create(secrets(), "kube-system", secret, &Query::new())
        .await?;
    Ok(token)
}

/// Checks a token a joining host presented; `Err(REFUSAL)` if bad.
pub async fn verify(rest: &Rest, presented: &str) -> Result<(), String> {
    verify_secret(rest, presented).await.map(|_| ())
}

/// Checks a token presented by a host joining the control plane: valid,
/// and made for control-plane joins.
pub async fn verify_control_plane(rest: &Rest, presented: &str) -> Result<(), String> {
    let secret = verify_secret(rest, presented).await?;
    if allows_control_plane(&secret) {
        Ok(())
    } else {
        Err(NOT_CONTROL_PLANE.into())
    }
}

async fn verify_secret(rest: &Rest, presented: &str) -> Result<Value, String> {
    let token = BootstrapToken::parse(presented).map_err(|e| format!("{e}; {REFUSAL}"))?;
    let target = Target {
        resource: secrets(),
        namespace: "kube-system".into(),
        name: token.secret_name(),
        subresource: String::new(),
    };
    match rest.get(&target).await {
        Ok(secret) if check_secret(&secret, &token, clock::now()) => Ok(secret),
        Ok(_) => Err(REFUSAL.into()),
        Err(e) if e.code == 404 => Err(REFUSAL.into()),
        Err(e) => Err(format!("cannot check the token: {}", e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn token() -> BootstrapToken {
        BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
    }

    #[test]
    fn a_fresh_secret_accepts_its_token() {
        let s = secret_for(&token(), 60);
        assert!(check_secret(&s, &token(), clock::now()));
    }

    #[test]
    fn a_wrong_secret_part_is_refused() {
        let s = secret_for(&token(), 60);
        let wrong = BootstrapToken::parse("abcdef.0123456789abcdee").unwrap();
        assert!(!check_secret(&s, &wrong, clock::now()));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = secret_for(&token(), 60);
        let later = clock::now()
            .checked_add(SignedDuration::from_secs(120))
            .unwrap();
        assert!(!check_secret(&s, &token(), later));
    }

    #[test]
    fn only_marked_tokens_join_the_control_plane() {
        let mut s = secret_for(&token(), 60);
        assert!(!allows_control_plane(&s));
        s["data"][CONTROL_PLANE_USAGE] = json!(b64("true"));
        assert!(allows_control_plane(&s));
        assert!(check_secret(&s, &token(), clock::now()));
    }

    #[test]
    fn a_secret_of_another_type_is_no_token() {
        let mut s = secret_for(&token(), 60);
        s["type"] = json!("Opaque");
        assert!(!check_secret(&s, &token(), clock::now()));
    }
}
