//! Serving a kind that is a view of another kind's storage
//! (`conversion`: events.k8s.io/v1 Events over core/v1 Events): each verb
//! runs on the stored kind, bodies converted on the way in and answers on
//! the way out. Patches are applied to the view and written back as an
//! update guarded by the resourceVersion read, retried on conflict;
//! server-side apply is refused (it would need field ownership in the
//! view's terms).

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::body::{delete_options, parse_write_body};
use super::conversion;
use super::negotiate::Rendering;
use super::partial;
use super::patch::{self, PatchType};
use super::registry::Resource;
use super::reply::{json_response, outcome_response};
use super::rest::{self, Query, Rest, Target};
use super::status::{ApiError, Cause};
use super::table;
use super::watch;

/// One request on `view`, stored as `stored`.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    rest_api: &Rest,
    view: &'static Resource,
    stored: &'static Resource,
    verb: &str,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let on_stored = Target {
        resource: stored,
        ..target.clone()
    };
    let mut query = query.clone();
    if let Some(sel) = query.get("fieldSelector").cloned() {
        query.insert(
            "fieldSelector".into(),
            conversion::selector_to_stored(view, &sel),
        );
    }
    let ns = (!target.namespace.is_empty()).then_some(target.namespace.as_str());
    let out = |o: &Value| conversion::to_view(view, o);
    let one = |o: &Value| match rendering {
        Rendering::Table(v) => json_response(
            200,
            &table::table(stored, v, std::slice::from_ref(o), json!({})),
        ),
        Rendering::Metadata(v) => json_response(200, &partial::object(o, v)),
        _ => json_response(200, &out(o)),
    };
    match verb {
        "get" => Ok(one(&rest_api.get(&on_stored).await?)),
        "list" => {
            let (page, token) = rest_api.list_page(stored, ns, &query).await?;
            let mut meta = json!({ "resourceVersion": page.revision.to_string() });
            if let Some(t) = &token {
                meta["continue"] = json!(t);
            }
            Ok(match rendering {
                Rendering::Table(v) => {
                    json_response(200, &table::table(stored, v, &page.items, meta))
                }
                Rendering::Metadata(v) => json_response(200, &partial::list(&page.items, meta, v)),
                _ => {
                    let items = page.items.iter().map(out).collect();
                    json_response(200, &rest::list_object(view, items, page.revision, token))
                }
            })
        }
        "watch" => {
            let convert = move |o: &Value| conversion::to_view(view, o);
            let rx = watch::start_converted(
                rest_api,
                stored,
                ns,
                &query,
                rendering,
                Some(Box::new(convert)),
            )
            .await?;
            Ok(watch::response(rx))
        }
        "create" => {
            let obj = conversion::to_stored(view, &parse_write_body(headers, body)?);
            let mut o = rest_api
                .create(stored, &target.namespace, obj, &query)
                .await?;
            o.object = out(&o.object);
            Ok(outcome_response(o))
        }
        "update" => {
            let obj = conversion::to_stored(view, &parse_write_body(headers, body)?);
            let mut o = rest_api.update(&on_stored, obj, &query).await?;
            o.object = out(&o.object);
            Ok(outcome_response(o))
        }
        "patch" => {
            let ct = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            if kind == PatchType::Apply {
                return Err(ApiError::unsupported_media_type(&format!(
                    "{ct} (server-side apply is not served for {}/{}; use a merge or JSON patch, or core/v1 events)",
                    view.group, view.plural
                )));
            }
            let doc = rest::parse_body(body, false)?;
            for _ in 0..8 {
                let current = out(&rest_api.get(&on_stored).await?);
                let patched = match kind {
                    PatchType::Json => patch::json_patch(&current, &doc).map_err(|e| {
                        ApiError::invalid(
                            view.group,
                            view.kind,
                            &target.name,
                            vec![Cause::invalid("", "", &e)],
                        )
                    })?,
                    PatchType::StrategicMerge => {
                        patch::strategic_merge(&current, &doc).map_err(ApiError::bad_request)?
                    }
                    _ => patch::merge_patch(&current, &doc),
                };
                let mut obj = conversion::to_stored(view, &patched);
                obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
                match rest_api.update(&on_stored, obj, &query).await {
                    Ok(mut o) => {
                        o.object = out(&o.object);
                        return Ok(outcome_response(o));
                    }
                    Err(e) if e.code == 409 && !e.is_field_conflict() => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(ApiError::stale(view.group, view.plural, &target.name))
        }
        "delete" => {
            let options = delete_options(headers, body)?;
            let mut o = rest_api.delete(&on_stored, &options, &query).await?;
            o.object = match o.removed {
                true => rest::deleted_status(view, &o.object).unwrap_or_else(|| out(&o.object)),
                false => out(&o.object),
            };
            Ok(outcome_response(o))
        }
        "deletecollection" => {
            let options = delete_options(headers, body)?;
            let list = rest_api
                .delete_collection(stored, ns, &options, &query)
                .await?;
            let items: Vec<Value> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(out)
                .collect();
            let revision = list["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            Ok(json_response(
                200,
                &rest::list_object(view, items, revision, None),
            ))
        }
        other => Err(ApiError::method_not_supported(view.plural, other)),
    }
}
