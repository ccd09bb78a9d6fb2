//! Admission webhooks: every write (create, update, patch, delete, and
//! their subresources) is offered to the MutatingWebhookConfigurations'
//! webhooks that match it, one after another in configuration-name order,
//! after kc's own defaulting and admission and before validation; then,
//! once validated, to the matching ValidatingWebhookConfigurations'
//! webhooks, all at once. A webhook refuses (its status and message reach
//! the client), allows, or (mutating) answers a JSONPatch that is applied.
//! A webhook that cannot be called or answers garbage fails the request
//! (`failurePolicy: Fail`, 500) or is skipped (`Ignore`). `reinvocationPolicy:
//! IfNeeded` webhooks run again once when a later one changed the object.
//!
//! The configurations come from a cache this process keeps with a watch
//! (`start`), as kube-apiserver's plugin reads its informer; with none,
//! a write costs one lock read. The caller's identity (the review's
//! `userInfo`) travels in a task-local set by `handler` (`as_caller`).
//! The webhook configuration kinds themselves are never sent to webhooks.

pub mod client;
pub mod review;
pub mod rules;

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use kc_client::labels::{Labels, labels_of};
use kc_client::{Client, Event};
use serde_json::Value;

use crate::registry::{self, Resource};
use crate::status::ApiError;
use crate::storage::Storage;
pub use review::UserInfo;
use review::Verdict;
use rules::Attributes;

/// The configurations this process has seen, by name (the order webhooks
/// are called in).
#[derive(Default)]
struct Configs {
    mutating: BTreeMap<String, Value>,
    validating: BTreeMap<String, Value>,
}

static CONFIGS: RwLock<Option<Configs>> = RwLock::new(None);

const GROUP: &str = "admissionregistration.k8s.io";

/// Starts keeping the configuration cache, watching through `client`.
pub fn start(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(follow(client))
}

async fn follow(client: Client) {
    let resource = |plural| registry::lookup(GROUP, "v1", plural).expect("a built-in resource");
    let mut mutating = client.informer(resource("mutatingwebhookconfigurations"));
    let mut validating = client.informer(resource("validatingwebhookconfigurations"));
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("").to_string();
    loop {
        let (ev, is_mutating) = tokio::select! {
            Some(ev) = mutating.recv() => (ev, true),
            Some(ev) = validating.recv() => (ev, false),
            else => return,
        };
        let mut guard = CONFIGS.write().unwrap_or_else(|p| p.into_inner());
        let configs = guard.get_or_insert_with(Configs::default);
        let map = if is_mutating {
            &mut configs.mutating
        } else {
            &mut configs.validating
        };
        match ev {
            Event::Applied(o) => {
                map.insert(name(&o), o);
            }
            Event::Deleted(o) => {
                map.remove(&name(&o));
            }
            Event::Synced => {}
        }
    }
}

tokio::task_local! {
    static CALLER: UserInfo;
}

/// Runs `f` as `user`: the writes it makes send `user` to webhooks.
pub async fn as_caller<F: std::future::Future>(user: UserInfo, f: F) -> F::Output {
    CALLER.scope(user, f).await
}

fn caller() -> UserInfo {
    CALLER.try_with(Clone::clone).unwrap_or_default()
}

/// A write, as admission sees it.
pub struct Request<'a> {
    pub resource: &'static Resource,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// CREATE, UPDATE or DELETE.
    pub operation: &'static str,
    pub dry_run: bool,
}

impl Request<'_> {
    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            operation: self.operation,
            group: self.resource.group,
            version: self.resource.version,
            resource: self.resource.plural,
            subresource: self.subresource,
            namespaced: self.resource.namespaced,
            namespace: self.namespace,
        }
    }
}

/// The webhooks of `pick`'s configurations, in order, with their
/// configuration's name (None: nothing to call, the common case).
fn hooks(pick: fn(&Configs) -> &BTreeMap<String, Value>, r: &Resource) -> Option<Vec<Value>> {
    if r.group == GROUP && r.plural.ends_with("webhookconfigurations") {
        return None;
    }
    let guard = CONFIGS.read().unwrap_or_else(|p| p.into_inner());
    let configs = pick(guard.as_ref()?);
    let all: Vec<Value> = configs
        .values()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .collect();
    (!all.is_empty()).then_some(all)
}

/// The labels `namespaceSelector` is matched against: the request's
/// namespace's (a Namespace's own, for Namespaces); None for other
/// cluster-scoped resources.
async fn namespace_labels(
    storage: &Storage,
    req: &Request<'_>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<Option<Labels>, ApiError> {
    if (req.resource.group, req.resource.plural) == ("", "namespaces") {
        return Ok(Some(object.or(old).map(labels_of).unwrap_or_default()));
    }
    if !req.resource.namespaced {
        return Ok(None);
    }
    let namespaces = registry::lookup("", "v1", "namespaces").expect("a built-in resource");
    let stored = storage
        .get_local(&Storage::key(namespaces, "", req.namespace))
        .await?;
    Ok(Some(
        stored.map(|s| labels_of(&s.object)).unwrap_or_default(),
    ))
}

async fn matching(
    storage: &Storage,
    hooks: Vec<Value>,
    req: &Request<'_>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<Vec<Value>, ApiError> {
    let a = req.attributes();
    let quick: Vec<Value> = hooks
        .into_iter()
        .filter(|h| rules::webhook_matches(h, "rules", &a, None, object, old))
        .collect();
    if quick.is_empty() {
        return Ok(quick);
    }
    let labels = namespace_labels(storage, req, object, old).await?;
    Ok(quick
        .into_iter()
        .filter(|h| rules::webhook_matches(h, "rules", &a, labels.as_ref(), object, old))
        .collect())
}

/// What one call came to.
enum Called {
    Verdict(Verdict),
    /// Failed, and `failurePolicy: Ignore` says to go on.
    Ignored,
}

async fn call(
    storage: &Storage,
    hook: &Value,
    req: &Request<'_>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<Called, ApiError> {
    let name = hook["name"].as_str().unwrap_or("");
    if req.dry_run && !matches!(hook["sideEffects"].as_str(), Some("None" | "NoneOnDryRun")) {
        return Err(ApiError::bad_request(format!(
            "admission webhook \"{name}\" does not support dry run"
        )));
    }
    let timeout = Duration::from_secs(hook["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30));
    let uid = uuid::Uuid::new_v4().to_string();
    let a = req.attributes();
    let body = review::request(
        &uid,
        &a,
        (req.resource.group, req.resource.version, req.resource.kind),
        req.name,
        object,
        old,
        req.dry_run,
        &caller(),
    );
    let config = &hook["clientConfig"];
    let attempt = async {
        let endpoint = client::resolve(config, storage, timeout).await?;
        let url = endpoint.url.clone();
        let answer = tokio::time::timeout(
            timeout,
            client::post(
                &endpoint,
                &config["caBundle"],
                body.to_string().into_bytes(),
            ),
        )
        .await
        .map_err(|_| format!("Post \"{url}\": context deadline exceeded"))?
        .map_err(|e| format!("Post \"{url}\": {e}"))?;
        review::verdict(&answer, &uid)
            .map_err(|e| format!("received invalid webhook response: {e}"))
    };
    match attempt.await {
        Ok(v) => Ok(Called::Verdict(v)),
        Err(why) if hook["failurePolicy"] == "Ignore" => {
            tracing::warn!(
                webhook = name,
                "failed calling webhook, ignored by its failurePolicy: {why}"
            );
            Ok(Called::Ignored)
        }
        Err(why) => Err(ApiError::internal(format!(
            "Internal error occurred: failed calling webhook \"{name}\": failed to call webhook: {why}"
        ))),
    }
}

fn denied(hook: &Value, code: u16, message: &str) -> ApiError {
    let name = hook["name"].as_str().unwrap_or("");
    let text = if message.is_empty() {
        format!("admission webhook \"{name}\" denied the request without explanation")
    } else {
        format!("admission webhook \"{name}\" denied the request: {message}")
    };
    ApiError::from_code(code, text)
}

/// What the mutating webhooks did to a write.
#[derive(Debug, Default)]
pub struct Mutated {
    pub warnings: Vec<String>,
    /// Whether some webhook changed the object (it needs defaulting again).
    pub changed: bool,
}

/// Offers the write to the mutating webhooks; `object` ends up as they
/// patched it.
pub async fn mutate(
    storage: &Storage,
    req: &Request<'_>,
    object: &mut Value,
    old: Option<&Value>,
) -> Result<Mutated, ApiError> {
    let Some(all) = hooks(|c| &c.mutating, req.resource) else {
        return Ok(Mutated::default());
    };
    let hooks = matching(storage, all, req, Some(object), old).await?;
    let mut warnings = Vec::new();
    // Index of webhooks that asked to be called again, and whether a
    // later webhook changed the object after they ran.
    let mut again: Vec<usize> = Vec::new();
    let mut changed_after = false;
    let mut changed = false;
    for (i, hook) in hooks.iter().enumerate() {
        if mutate_once(storage, hook, req, object, old, &mut warnings).await? {
            changed = true;
            changed_after |= !again.is_empty();
        }
        if hook["reinvocationPolicy"] == "IfNeeded" {
            again.push(i);
        }
    }
    if changed_after {
        for i in again {
            mutate_once(storage, &hooks[i], req, object, old, &mut warnings).await?;
        }
    }
    Ok(Mutated { warnings, changed })
}

/// Calls one mutating webhook; whether it changed the object.
async fn mutate_once(
    storage: &Storage,
    hook: &Value,
    req: &Request<'_>,
    object: &mut Value,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<bool, ApiError> {
    match call(storage, hook, req, Some(object), old).await? {
        Called::Ignored => Ok(false),
        Called::Verdict(Verdict::Denied {
            code,
            message,
            warnings: w,
            ..
        }) => {
            warnings.extend(w);
            Err(denied(hook, code, &message))
        }
        Called::Verdict(Verdict::Allowed { patch, warnings: w }) => {
            warnings.extend(w);
            let Some(ops) = patch else {
                return Ok(false);
            };
            let patched = crate::patch::json_patch(object, &ops).map_err(|e| {
                ApiError::internal(format!(
                    "Internal error occurred: admission webhook \"{}\" sent a patch that does not apply: {e}",
                    hook["name"].as_str().unwrap_or("")
                ))
            })?;
            let changed = patched != *object;
            *object = patched;
            Ok(changed)
        }
    }
}

/// Offers the (validated) write to the validating webhooks, all at once;
/// the first refusal, in configuration order, refuses it. Their warnings.
pub async fn validate(
    storage: &Storage,
    req: &Request<'_>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    let Some(all) = hooks(|c| &c.validating, req.resource) else {
        return Ok(Vec::new());
    };
    let hooks = matching(storage, all, req, object, old).await?;
    let calls = hooks.iter().map(|h| call(storage, h, req, object, old));
    let results = futures::future::join_all(calls).await;
    let mut warnings = Vec::new();
    for (hook, result) in hooks.iter().zip(results) {
        match result? {
            Called::Ignored => {}
            Called::Verdict(Verdict::Allowed { warnings: w, .. }) => warnings.extend(w),
            Called::Verdict(Verdict::Denied { code, message, .. }) => {
                return Err(denied(hook, code, &message));
            }
        }
    }
    Ok(warnings)
}
