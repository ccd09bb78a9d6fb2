//! The HTTP front: turns a request into (who, verb, target), authorizes it,
//! calls the REST verb, and renders the answer (JSON, Table, watch stream or
//! Status error).
//!
//! Paths are parsed here rather than with one route per resource, because
//! every resource shares the same URL grammar:
//! `/api/v1[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]` and the same
//! under `/apis/<group>/<version>`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use serde_json::{Value, json};

use kc_pki::Identity;

use super::aggregator;
use super::auth::{self, Attributes, Authenticator, Decision};
use super::body::{delete_options, parse_write_body};
use super::component_status;
use super::conversion;
use super::discovery;
use super::inflight::{self, InFlight};
use super::kinds;
use super::metrics::Metrics;
use super::negotiate::{self, Rendering};
use super::openapi;
use super::partial;
use super::patch::PatchType;
use super::registry::{self, Resource};
use super::reply::{
    error_response, json_response, json_with_type, outcome_response, text_response,
};
use super::resource_metrics;
use super::rest::{self, Query, Rest, Target};
use super::status::{ApiError, Cause};
use super::streams;
use super::table;
use super::view;
use super::watch;
use super::webhook;

/// Shared state of every request.
pub struct ApiState {
    pub rest: Rest,
    pub auth: Authenticator,
    pub metrics: Metrics,
    /// The max-in-flight limits (429 beyond them).
    pub inflight: InFlight,
    /// `host:port` clients reach us at (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// The image registry served under `/v2/`, if this server has one.
    pub registry: Option<Arc<kc_registry::Registry>>,
    /// Streams to node agents (logs, exec, port-forward); set once by
    /// whoever holds the nodes' connections. Unset: those answer 503.
    pub tunnel: std::sync::OnceLock<Arc<dyn streams::NodeTunnel>>,
}

/// The verified client certificate of a connection, if any.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity(pub Option<Identity>);

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A resource request, parsed from the path.
struct ResourcePath {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// Parses the segments after `/api/v1` or `/apis/<g>/<v>`.
fn parse_resource_path(group: &str, version: &str, segs: &[&str]) -> Option<ResourcePath> {
    let namespaced_form = segs.len() >= 3
        && segs[0] == "namespaces"
        && registry::lookup(group, version, segs[2]).is_some_and(|r| r.namespaced);
    let (namespace, rest) = if namespaced_form {
        (Some(segs[1].to_string()), &segs[2..])
    } else {
        (None, segs)
    };
    let resource = registry::lookup(group, version, rest.first()?)?;
    if resource.namespaced != namespace.is_some() && rest.len() > 1 {
        // A namespaced object must be addressed within its namespace.
        return None;
    }
    if rest.len() > 3 || rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(ResourcePath {
        resource,
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

fn query_of(uri: &axum::http::Uri) -> Query {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Every request but the health checks comes through here.
pub async fn handle(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let _permit = if inflight::is_long_running(&path, req.uri().query().unwrap_or("")) {
        None
    } else {
        match state.inflight.try_acquire(req.method().as_str()) {
            Some(p) => Some(p),
            None => {
                state.metrics.record("", "", 429, started.elapsed());
                return too_many_requests();
            }
        }
    };
    let Routed {
        verb,
        resource: resource_name,
        response: resp,
    } = route(&state, req).await;
    if !matches!(verb.as_str(), "watch") {
        state.metrics.record(
            &verb,
            &resource_name,
            resp.status().as_u16(),
            started.elapsed(),
        );
    }
    tracing::debug!(%path, %verb, code = resp.status().as_u16(), "request");
    resp
}

/// 429 with `Retry-After`, as kube-apiserver answers beyond its limits.
fn too_many_requests() -> Response {
    let mut err = ApiError::too_many_requests("Too many requests, please try again later.");
    err.details = Some(json!({ "retryAfterSeconds": 1 }));
    let mut resp = error_response(err);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// What a request turned out to be (for metrics) and its answer.
struct Routed {
    verb: String,
    resource: String,
    response: Response,
}

impl Routed {
    fn new(verb: &str, resource: &str, result: Result<Response, ApiError>) -> Self {
        Self {
            verb: verb.to_string(),
            resource: resource.to_string(),
            response: result.unwrap_or_else(error_response),
        }
    }
}

async fn route(state: &Arc<ApiState>, req: Request) -> Routed {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let query = query_of(&parts.uri);
    // Streams (exec, port-forward) need the connection upgrade and the
    // query's repeated parameters (`command=`).
    let stream = StreamParts {
        ws: WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .ok(),
        pairs: axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default(),
    };
    let peer = parts
        .extensions
        .get::<PeerIdentity>()
        .cloned()
        .unwrap_or_default();
    let authz = header_str(&parts.headers, header::AUTHORIZATION);
    let fail = |verb: &str, e: ApiError| Routed::new(verb, "", Err(e));
    let Some(identity) = state.auth.authenticate(peer.0.as_ref(), authz) else {
        return fail("", ApiError::unauthorized());
    };
    let accept = header_str(&parts.headers, header::ACCEPT).map(str::to_string);
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let is_get = parts.method == Method::GET;
    let ok = |v: &str, r: Response| Routed::new(v, "", Ok(r));
    if let ["apis", g, v, ..] = segs.as_slice()
        && let Some(remote) = aggregator::remote(g, v)
    {
        return proxied(state, &identity, &remote, parts, body, &segs).await;
    }
    match segs.as_slice() {
        ["api"] if is_get => match negotiate::choose(accept.as_deref()) {
            Rendering::Discovery(v) => ok(
                "get",
                json_with_type(
                    200,
                    &discovery::aggregated(true, v),
                    &discovery::aggregated_content_type(v),
                ),
            ),
            _ => ok(
                "get",
                json_response(200, &discovery::api_versions(&state.server_address)),
            ),
        },
        ["apis"] if is_get => match negotiate::choose(accept.as_deref()) {
            Rendering::Discovery(v) => ok(
                "get",
                json_with_type(
                    200,
                    &discovery::aggregated(false, v),
                    &discovery::aggregated_content_type(v),
                ),
            ),
            _ => ok("get", json_response(200, &discovery::api_group_list())),
        },
        ["api", v] if is_get => match discovery::api_resource_list("", v) {
            Some(doc) => ok("get", json_response(200, &doc)),
            None => fail("get", ApiError::no_such_path(&path)),
        },
        ["apis", resource_metrics::GROUP] if is_get => ok(
            "get",
            json_response(200, &resource_metrics::api_group_doc()),
        ),
        ["apis", resource_metrics::GROUP, resource_metrics::VERSION] if is_get => ok(
            "get",
            json_response(200, &resource_metrics::api_resource_list()),
        ),
        [
            "apis",
            resource_metrics::GROUP,
            resource_metrics::VERSION,
            rest @ ..,
        ] if is_get => {
            let answer = resource_metrics::serve(&state.rest, &identity, rest, &query).await;
            let verb = if rest.len() % 2 == 0 { "get" } else { "list" };
            Routed::new(
                verb,
                "metrics.k8s.io",
                answer.map(|v| json_response(200, &v)),
            )
        }
        ["apis", g] if is_get => {
            match discovery::api_group_doc(g).or_else(|| aggregator::api_group_doc(g)) {
                Some(doc) => ok("get", json_response(200, &doc)),
                None => fail("get", ApiError::no_such_path(&path)),
            }
        }
        ["apis", g, v] if is_get => match discovery::api_resource_list(g, v) {
            Some(doc) => ok("get", json_response(200, &doc)),
            None => fail("get", ApiError::no_such_path(&path)),
        },
        ["openapi", "v2"] if is_get => ok("get", json_response(200, openapi::v2())),
        ["openapi", "v3"] if is_get => ok("get", json_response(200, &openapi::v3_index())),
        ["openapi", "v3", rest @ ..] if is_get => {
            match openapi::v3_group_version(&rest.join("/")) {
                Some(doc) => ok("get", json_response(200, &doc)),
                None => fail("get", ApiError::no_such_path(&path)),
            }
        }
        ["metrics"] if is_get => {
            if !identity.is_admin() {
                return fail(
                    "get",
                    ApiError::forbidden(
                        &identity.user,
                        "get",
                        "",
                        "",
                        "",
                        "",
                        "only administrators may read /metrics",
                    ),
                );
            }
            ok(
                "get",
                text_response(state.metrics.render(), "text/plain; version=0.0.4"),
            )
        }
        ["api", v, rest @ ..] => {
            resource_request(
                state,
                &identity,
                "",
                v,
                rest,
                parts.method,
                &parts.headers,
                query,
                accept,
                body,
                stream,
            )
            .await
        }
        ["apis", g, v, rest @ ..] => {
            resource_request(
                state,
                &identity,
                g,
                v,
                rest,
                parts.method,
                &parts.headers,
                query,
                accept,
                body,
                stream,
            )
            .await
        }
        _ => fail("", ApiError::no_such_path(&path)),
    }
}

/// A request for an aggregated API: authorized like any, then forwarded.
async fn proxied(
    state: &Arc<ApiState>,
    identity: &Identity,
    remote: &aggregator::Remote,
    parts: axum::http::request::Parts,
    body: Body,
    segs: &[&str],
) -> Routed {
    // `/apis/<g>/<v>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`
    let rest = &segs[3..];
    let (namespace, rest) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() => (*ns, more),
        _ => ("", rest),
    };
    let resource = rest.first().copied().unwrap_or("");
    let name = rest.get(1).copied().unwrap_or("");
    let subresource = rest.get(2).copied().unwrap_or("");
    let watching = parts
        .uri
        .query()
        .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    let verb = match (&parts.method, name.is_empty()) {
        (&Method::GET, true) if watching => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "deletecollection",
        _ => "delete",
    };
    let attrs = Attributes {
        verb,
        group: segs[1],
        resource,
        subresource,
        namespace,
        name,
    };
    if let Decision::Deny(why) = auth::authorize(identity, &attrs) {
        return Routed::new(verb, resource, Err(auth::forbidden(identity, &attrs, &why)));
    }
    let bytes = match read_body(body, state.body_limit).await {
        Ok(b) => b,
        Err(e) => return Routed::new(verb, resource, Err(e)),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let answer = aggregator::proxy::forward(
        &state.rest.storage,
        remote,
        parts.method.clone(),
        &path_and_query,
        &parts.headers,
        bytes,
        &identity.user,
        &identity.groups,
    )
    .await;
    Routed::new(verb, resource, Ok(answer))
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit")
        {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })
}

/// Writes without `?fieldManager=` are recorded under the client's name,
/// the User-Agent up to its first `/` (`kubectl`), like Kubernetes; applies
/// must name their manager.
fn with_default_field_manager(mut query: Query, verb: &str, headers: &HeaderMap) -> Query {
    let is_apply = header_str(headers, header::CONTENT_TYPE).and_then(PatchType::from_content_type)
        == Some(PatchType::Apply);
    if matches!(verb, "create" | "update" | "patch")
        && !is_apply
        && query.get("fieldManager").is_none_or(String::is_empty)
        && let Some(agent) = header_str(headers, header::USER_AGENT)
    {
        let name: String = agent
            .split('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect();
        if !name.is_empty() {
            query.insert("fieldManager".into(), name);
        }
    }
    query
}

/// What a streaming subresource needs beyond an ordinary request.
struct StreamParts {
    ws: Option<WebSocketUpgrade>,
    pairs: Vec<(String, String)>,
}

#[allow(clippy::too_many_arguments)]
async fn resource_request(
    state: &Arc<ApiState>,
    identity: &Identity,
    group: &str,
    version: &str,
    segs: &[&str],
    method: Method,
    headers: &HeaderMap,
    query: Query,
    accept: Option<String>,
    body: Body,
    stream: StreamParts,
) -> Routed {
    let path = format!("/{}", segs.join("/"));
    let Some(rp) = parse_resource_path(group, version, segs) else {
        return Routed::new("", "", Err(ApiError::no_such_path(&path)));
    };
    let r = rp.resource;
    let is_watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (&method, rp.name.is_some()) {
        (&Method::GET, false) if is_watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => {
            return Routed::new(
                "",
                r.plural,
                Err(ApiError::method_not_supported(r.plural, method.as_str())),
            );
        }
    };
    // Exec and port-forward run things on the node: they need create
    // rights whichever method (GET for WebSocket, POST for SPDY) carries them.
    let verb = match rp.subresource.as_deref() {
        Some("exec" | "portforward" | "attach") if rp.name.is_some() => "create",
        _ => verb,
    };
    let fail = |e: ApiError| Routed::new(verb, r.plural, Err(e));
    if rp.subresource.is_none() && !r.allows(verb) {
        return fail(ApiError::method_not_supported(r.plural, verb));
    }
    let query = with_default_field_manager(query, verb, headers);
    let namespace = rp.namespace.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let subresource = rp.subresource.clone().unwrap_or_default();
    if !subresource.is_empty() && r.subresource(&subresource).is_none() {
        return fail(ApiError::no_such_path(&path));
    }
    // POST to a named object is only for subresources (binding, eviction, exec...).
    if verb == "create" && !name.is_empty() && subresource.is_empty() {
        return fail(ApiError::method_not_supported(r.plural, "POST"));
    }
    let body_bytes = if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        match read_body(body, state.body_limit).await {
            Ok(b) => b,
            Err(e) => return fail(e),
        }
    } else {
        bytes::Bytes::new()
    };
    // A create names its object in the body: authorize that name.
    let created_name = if verb == "create" && name.is_empty() {
        parse_write_body(headers, &body_bytes)
            .ok()
            .and_then(|b| b["metadata"]["name"].as_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let attrs = Attributes {
        verb,
        group,
        resource: r.plural,
        subresource: &subresource,
        namespace: &namespace,
        name: if name.is_empty() {
            &created_name
        } else {
            &name
        },
    };
    let decision = auth::authorize(identity, &attrs);
    if let Decision::Deny(why) = &decision {
        return fail(auth::forbidden(identity, &attrs, why));
    }
    let target = Target {
        resource: r,
        namespace: namespace.clone(),
        name: name.clone(),
        subresource: subresource.clone(),
    };
    let rendering = negotiate::choose(accept.as_deref());
    let rest_api = &state.rest;
    if let Decision::AllowIfPodOnNode(node) = &decision {
        let on_node = if verb == "create" && subresource.is_empty() {
            parse_write_body(headers, &body_bytes)
                .map(|b| rest::pod_on_node(&b, node))
                .unwrap_or(false)
        } else {
            match rest_api
                .get(&Target {
                    subresource: String::new(),
                    ..target.clone()
                })
                .await
            {
                Ok(pod) => rest::pod_on_node(&pod, node),
                Err(e) => return fail(e),
            }
        };
        if !on_node {
            return fail(auth::forbidden(
                identity,
                &attrs,
                &format!("node \"{node}\" may only modify pods bound to it"),
            ));
        }
    }
    let ns_opt = rp.namespace.as_deref();
    if (r.group, r.plural) == ("", "componentstatuses") {
        let result = match verb {
            "get" => component_status::get(rest_api, &name)
                .await
                .map(|o| render_objects(r, rendering, std::slice::from_ref(&o), None, Some(&o))),
            _ => {
                let items = component_status::list(rest_api).await;
                Ok(match rendering {
                    Rendering::Json => json_response(200, &rest::list_object(r, items, 0, None)),
                    _ => render_objects(r, rendering, &items, None, None),
                })
            }
        };
        return Routed::new(verb, r.plural, result);
    }
    if let Some(stored) = conversion::stored_as(r)
        && subresource.is_empty()
    {
        let result = view::serve(
            rest_api,
            r,
            stored,
            verb,
            &target,
            &query,
            headers,
            &body_bytes,
            rendering,
        )
        .await;
        return Routed::new(verb, r.plural, result);
    }
    let mut groups = identity.groups.clone();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    let caller = webhook::UserInfo {
        username: identity.user.clone(),
        groups,
    };
    let result: Result<Response, ApiError> = webhook::as_caller(caller, async {
        match verb {
            "get" => match subresource.as_str() {
                "log" => {
                    let pod = rest_api
                        .get(&Target {
                            subresource: String::new(),
                            ..target.clone()
                        })
                        .await?;
                    let place = streams::place(&pod, query.get("container").map(String::as_str))?;
                    streams::logs::serve(state.tunnel.get(), &namespace, &name, &place, &query)
                        .await
                }
                _ => {
                    let obj = rest_api.get(&target).await?;
                    Ok(render_objects(
                        r,
                        rendering,
                        std::slice::from_ref(&obj),
                        None,
                        Some(&obj),
                    ))
                }
            },
            "list" => {
                let fast = match rendering {
                    Rendering::Json => rest_api.list_json_fast(r, ns_opt, &query).await?,
                    Rendering::Table(v) => rest_api.list_table_fast(r, ns_opt, &query, v).await?,
                    Rendering::Discovery(_) | Rendering::Metadata(_) => None,
                };
                if let Some(bytes) = fast {
                    let mut resp = Response::new(Body::from(bytes));
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    return Ok(resp);
                }
                let (page, token) = rest_api.list_page(r, ns_opt, &query).await?;
                let mut meta = json!({ "resourceVersion": page.revision.to_string() });
                if let Some(t) = &token {
                    meta["continue"] = json!(t);
                }
                if let Rendering::Table(v) = rendering {
                    Ok(json_response(200, &table::table(r, v, &page.items, meta)))
                } else if let Rendering::Metadata(v) = rendering {
                    Ok(json_response(200, &partial::list(&page.items, meta, v)))
                } else {
                    Ok(json_response(
                        200,
                        &rest::list_object(r, page.items, page.revision, token),
                    ))
                }
            }
            "watch" => {
                let rx = watch::start(rest_api, r, ns_opt, &query, rendering).await?;
                state.metrics.watch_started();
                let metrics_state = state.clone();
                let stream = futures::stream::unfold(
                    (rx, WatchGuard(metrics_state)),
                    |(mut rx, g)| async move {
                        rx.recv()
                            .await
                            .map(|b| (Ok::<_, std::convert::Infallible>(b), (rx, g)))
                    },
                );
                let mut resp = Response::new(Body::from_stream(stream));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok(resp)
            }
            "create" => match subresource.as_str() {
                // `POST bindings`: the Binding names its pod.
                "" if (r.group, r.plural) == ("", "bindings") => {
                    let binding = parse_write_body(headers, &body_bytes)?;
                    let pod = binding["metadata"]["name"].as_str().unwrap_or("");
                    if pod.is_empty() {
                        return Err(ApiError::invalid(
                            "",
                            "Binding",
                            "",
                            vec![Cause::required("metadata.name")],
                        ));
                    }
                    let pods = registry::lookup("", "v1", "pods")
                        .expect("pods are a registered resource");
                    let t = Target {
                        resource: pods,
                        namespace: namespace.clone(),
                        name: pod.to_string(),
                        subresource: "binding".into(),
                    };
                    Ok(outcome_response(rest_api.bind(&t, &binding).await?))
                }
                "" => {
                    let mut obj = parse_write_body(headers, &body_bytes)?;
                    kinds::record_requester(r, &mut obj, &identity.user, &identity.groups);
                    let out = rest_api.create(r, &namespace, obj, &query).await?;
                    Ok(outcome_response(out))
                }
                "binding" => {
                    let binding = parse_write_body(headers, &body_bytes)?;
                    Ok(outcome_response(rest_api.bind(&target, &binding).await?))
                }
                "eviction" => {
                    let eviction = parse_write_body(headers, &body_bytes)?;
                    let t = Target {
                        subresource: String::new(),
                        ..target.clone()
                    };
                    rest_api
                        .delete(&t, &eviction["deleteOptions"], &query)
                        .await?;
                    Ok(json_response(201, &rest::success_status()))
                }
                "exec" | "portforward" | "attach" => {
                    let pod = rest_api
                        .get(&Target {
                            subresource: String::new(),
                            ..target.clone()
                        })
                        .await?;
                    // Where the pod runs is checked first, so a pod that
                    // cannot be reached gets that error whatever protocol
                    // the client tried.
                    let place = match subresource.as_str() {
                        "exec" => {
                            let container = stream
                                .pairs
                                .iter()
                                .find(|(k, _)| k == "container")
                                .map(|(_, v)| v.as_str());
                            streams::place(&pod, container)?
                        }
                        "portforward" => streams::place(&pod, None).or_else(|_| {
                            // Port-forward needs only the node.
                            streams::place(&pod, pod["spec"]["containers"][0]["name"].as_str())
                        })?,
                        _ => {
                            return Err(ApiError::bad_request(
                                "attach is not supported by kc: use kubectl exec or kubectl logs -f",
                            ));
                        }
                    };
                    let ws = stream.ws.ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "pods/{subresource} is served over WebSocket only (upgrade with subprotocol {}); SPDY is not supported",
                            if subresource == "portforward" { streams::spdy::WEBSOCKET_PROTOCOL } else { "v5.channel.k8s.io" }
                        ))
                    })?;
                    if subresource == "exec" {
                        let req = streams::exec::request(&namespace, &name, &place, &stream.pairs)?;
                        streams::exec::serve(state.tunnel.get(), ws, req, &place.node).await
                    } else {
                        streams::portforward::serve(
                            state.tunnel.get().cloned(),
                            ws,
                            &namespace,
                            &name,
                            &place.node,
                            &stream.pairs,
                        )
                    }
                }
                other => Err(ApiError::method_not_supported(
                    &format!("{}/{other}", r.plural),
                    "create",
                )),
            },
            "update" => {
                let obj = parse_write_body(headers, &body_bytes)?;
                Ok(outcome_response(
                    rest_api.update(&target, obj, &query).await?,
                ))
            }
            "patch" => {
                let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
                let kind = PatchType::from_content_type(ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
                Ok(outcome_response(
                    rest_api.patch(&target, kind, &body_bytes, &query).await?,
                ))
            }
            "delete" => {
                let options = delete_options(headers, &body_bytes)?;
                let mut out = rest_api.delete(&target, &options, &query).await?;
                if out.removed
                    && let Some(status) = rest::deleted_status(r, &out.object)
                {
                    out.object = status;
                }
                Ok(outcome_response(out))
            }
            "deletecollection" => {
                let options = delete_options(headers, &body_bytes)?;
                Ok(json_response(
                    200,
                    &rest_api
                        .delete_collection(r, ns_opt, &options, &query)
                        .await?,
                ))
            }
            _ => Err(ApiError::method_not_supported(r.plural, verb)),
        }
    })
    .await;
    Routed::new(verb, r.plural, result)
}

/// Decrements the open-watch gauge when a watch stream is dropped.
struct WatchGuard(Arc<ApiState>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.metrics.watch_ended();
    }
}

/// An object or objects as JSON or as a Table.
fn render_objects(
    r: &Resource,
    rendering: Rendering,
    objects: &[Value],
    meta: Option<Value>,
    single: Option<&Value>,
) -> Response {
    match (rendering, single) {
        (Rendering::Table(v), _) => {
            json_response(200, &table::table(r, v, objects, meta.unwrap_or(json!({}))))
        }
        (Rendering::Metadata(v), Some(obj)) => json_response(200, &partial::object(obj, v)),
        (Rendering::Metadata(v), None) => {
            json_response(200, &partial::list(objects, meta.unwrap_or(json!({})), v))
        }
        (_, Some(obj)) => json_response(200, obj),
        _ => json_response(200, &json!(objects)),
    }
}

/// `/version`, `/healthz`, `/livez`, `/readyz` (no authentication, like
/// Kubernetes' `system:public-info-viewer`).
pub async fn version() -> Response {
    json_response(200, &discovery::version())
}

/// `/v2/`: the image registry, for the caller this server authenticates
/// (a registry client may send its token as a Basic password).
pub async fn registry(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<PeerIdentity>()
        .cloned()
        .unwrap_or_default();
    let bearer = kc_registry::http::bearer_of(header_str(req.headers(), header::AUTHORIZATION));
    let who = state.auth.authenticate(peer.0.as_ref(), bearer.as_deref());
    kc_registry::http::handle(state.registry.clone(), who, req).await
}

/// Another method on `/version` or a health check: a 405 Status.
pub async fn method_not_allowed(req: Request) -> Response {
    error_response(ApiError::method_not_supported(
        req.uri().path(),
        req.method().as_str(),
    ))
}

pub async fn health() -> Response {
    text_response("ok".into(), "text/plain; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_parse_by_scope() {
        let p = parse_resource_path(
            "",
            "v1",
            &["namespaces", "default", "pods", "web", "status"],
        )
        .unwrap();
        assert_eq!(p.resource.plural, "pods");
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let ns = parse_resource_path("", "v1", &["namespaces", "default"]).unwrap();
        assert_eq!(ns.resource.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("default"));
        let all = parse_resource_path("", "v1", &["pods"]).unwrap();
        assert!(all.namespace.is_none() && all.name.is_none());
        assert!(parse_resource_path("", "v1", &["pods", "x"]).is_none());
        assert!(parse_resource_path("", "v1", &["nope"]).is_none());
        assert!(
            parse_resource_path(
                "apps",
                "v1",
                &["namespaces", "d", "deployments", "a", "scale", "x"]
            )
            .is_none()
        );
        let nodes = parse_resource_path("", "v1", &["nodes", "n1", "status"]).unwrap();
        assert_eq!(nodes.subresource.as_deref(), Some("status"));
    }
}
