//! The `/v2/` HTTP handlers: authorization (admins push and pull, nodes
//! only pull), then one function per operation of the OCI Distribution
//! spec. The API server mounts them and authenticates the caller first
//! (its own authenticator; `bearer_of` lets registry clients send a token
//! as an HTTP Basic password), so nothing here knows the API server.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use kc_pki::Identity;

use super::Registry;
use super::blobs::{digest_of, parse_digest};
use super::error::RegistryError;
use super::meta::ManifestRef;
use super::route::{self, Route};

/// The largest manifest accepted (the spec suggests at least 4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;

/// Manifest media types served when a client sends no Accept we know.
const DEFAULT_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Every `/v2` request comes through here, with the caller the API server
/// authenticated (`None`: nobody it knows).
pub async fn handle(
    registry: Option<Arc<Registry>>,
    who: Option<Identity>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = match registry {
        Some(registry) => serve(who, &registry, req).await,
        None => Err(RegistryError::unsupported(
            "this API server has no image registry (it was started without a data directory for it)",
        )),
    };
    let mut resp = result.unwrap_or_else(|e| {
        tracing::debug!(%method, %path, "registry: {e}");
        e.into_response()
    });
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    tracing::debug!(%method, %path, code = resp.status().as_u16(), "registry request");
    resp
}

/// The `Authorization` header to authenticate with: as sent, or for Basic
/// auth the password as a bearer token (`skopeo --creds kc:<token>`).
pub fn bearer_of(authorization: Option<&str>) -> Option<String> {
    match authorization {
        Some(a) if a.starts_with("Basic ") => {
            basic_password(&a[6..]).map(|p| format!("Bearer {p}"))
        }
        other => other.map(str::to_string),
    }
}

/// The password of a Basic credential (`base64(user:password)`).
fn basic_password(encoded: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

fn authorize(id: &Identity, method: &Method) -> Result<(), RegistryError> {
    if id.is_admin() {
        return Ok(());
    }
    let read = matches!(*method, Method::GET | Method::HEAD);
    match id.node_name() {
        Some(_) if read => Ok(()),
        Some(node) => Err(RegistryError::denied(
            &id.user,
            &format!("node {node:?} may pull images but not push or delete them"),
        )),
        None => Err(RegistryError::denied(
            &id.user,
            "only cluster admins and nodes use the registry",
        )),
    }
}

async fn serve(
    who: Option<Identity>,
    reg: &Registry,
    req: Request,
) -> Result<Response, RegistryError> {
    let id = who.ok_or_else(RegistryError::unauthorized)?;
    authorize(&id, req.method())?;
    let rest = req
        .uri()
        .path()
        .strip_prefix("/v2")
        .unwrap_or_default()
        .to_string();
    let route = route::parse(&rest)?.ok_or_else(|| {
        RegistryError::new(
            404,
            "NOT_FOUND",
            format!("no registry endpoint at /v2{rest}"),
        )
    })?;
    let query: HashMap<String, String> = axum::extract::Query::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let method = req.method().clone();
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(json_response(200, &json!({}))),
        (Route::Catalog, Method::GET) => {
            let repos = paginate(reg.meta.catalog().await?, &query);
            Ok(json_response(200, &json!({ "repositories": repos })))
        }
        (Route::Tags { name }, Method::GET) => {
            if !reg.meta.repo_exists(&name).await? {
                return Err(RegistryError::name_unknown(&name));
            }
            let tags = paginate(reg.meta.tags(&name).await?, &query);
            Ok(json_response(200, &json!({ "name": name, "tags": tags })))
        }
        (Route::Blob { digest, .. }, m @ (Method::GET | Method::HEAD)) => {
            let from_peers = !req.headers().contains_key(super::peers::NO_PULL_THROUGH);
            reg.fetch_blob(&digest, from_peers).await?;
            get_blob(reg, &digest, m == Method::HEAD, req.headers()).await
        }
        (Route::Blob { .. }, Method::DELETE) => Err(RegistryError::unsupported(
            "blobs are deleted by garbage collection, not one by one",
        )),
        (Route::UploadStart { name }, Method::POST) => start_upload(reg, &name, &query, req).await,
        (Route::Upload { name, id }, Method::PATCH) => {
            let start = content_range_start(req.headers())?;
            let size = reg.blobs.append(&id, start, body_stream(req)).await?;
            Ok(upload_accepted(&name, &id, size))
        }
        (Route::Upload { name, id }, Method::PUT) => {
            let digest = query.get("digest").cloned().ok_or_else(|| {
                RegistryError::digest_invalid("completing an upload needs ?digest=sha256:<hex>")
            })?;
            reg.blobs.append(&id, None, body_stream(req)).await?;
            reg.blobs.finish(&id, &digest).await?;
            Ok(blob_created(&name, &digest))
        }
        (Route::Upload { name, id }, Method::GET) => {
            let size = reg.blobs.upload_size(&id).await?;
            let mut resp = upload_accepted(&name, &id, size);
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(resp)
        }
        (Route::Upload { id, .. }, Method::DELETE) => {
            reg.blobs.cancel(&id).await?;
            Ok(empty(204))
        }
        (Route::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            get_manifest(reg, &name, &reference, m == Method::HEAD).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(reg, &name, &reference, req).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            if parse_digest(&reference).is_ok() {
                if reg.meta.manifest(&name, &reference).await?.is_none() {
                    return Err(RegistryError::manifest_unknown(&name, &reference));
                }
                reg.meta.delete_manifest(&name, &reference).await?;
            } else {
                if reg.meta.tag(&name, &reference).await?.is_none() {
                    return Err(RegistryError::manifest_unknown(&name, &reference));
                }
                reg.meta.delete_tag(&name, &reference).await?;
            }
            Ok(empty(202))
        }
        (_, m) => Err(RegistryError::unsupported(format!(
            "method {m} is not allowed on /v2{rest}"
        ))),
    }
}

fn body_stream(req: Request) -> impl futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin {
    req.into_body().into_data_stream()
}

fn empty(status: u16) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp
}

fn json_response(status: u16, value: &Value) -> Response {
    let mut resp = empty(status);
    *resp.body_mut() = Body::from(value.to_string());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// `?n=<count>&last=<after>` over a sorted list.
fn paginate(items: Vec<String>, query: &HashMap<String, String>) -> Vec<String> {
    let after = query.get("last");
    let n = query
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    items
        .into_iter()
        .filter(|i| after.is_none_or(|a| i > a))
        .take(n)
        .collect()
}

/// The first byte of a PATCH's `Content-Range: <start>-<end>`, if given.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, RegistryError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default();
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    text.split(['-', '/'])
        .next()
        .and_then(|s| s.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            RegistryError::new(
                416,
                "BLOB_UPLOAD_INVALID",
                format!("bad Content-Range {text:?}"),
            )
        })
}

fn upload_accepted(name: &str, id: &str, size: u64) -> Response {
    let mut resp = empty(202);
    set(
        &mut resp,
        "Location",
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set(&mut resp, "Docker-Upload-UUID", id);
    set(&mut resp, "Range", &format!("0-{}", size.saturating_sub(1)));
    set(&mut resp, "Content-Length", "0");
    resp
}

fn blob_created(name: &str, digest: &str) -> Response {
    let mut resp = empty(201);
    set(&mut resp, "Location", &format!("/v2/{name}/blobs/{digest}"));
    set(&mut resp, "Docker-Content-Digest", digest);
    set(&mut resp, "Content-Length", "0");
    resp
}

async fn start_upload(
    reg: &Registry,
    name: &str,
    query: &HashMap<String, String>,
    req: Request,
) -> Result<Response, RegistryError> {
    // Cross-repository mount: blobs are shared by all repositories here,
    // so a blob the registry has is mounted by saying so.
    if let Some(digest) = query.get("mount")
        && reg.blobs.size(digest).await?.is_some()
    {
        return Ok(blob_created(name, digest));
    }
    let id = reg.blobs.start_upload().await?;
    if let Some(digest) = query.get("digest") {
        reg.blobs.append(&id, None, body_stream(req)).await?;
        reg.blobs.finish(&id, digest).await?;
        return Ok(blob_created(name, digest));
    }
    Ok(upload_accepted(name, &id, 0))
}

/// `bytes=<start>-[<end>]` of a GET, within `size`.
fn parse_range(headers: &HeaderMap, size: u64) -> Option<(u64, u64)> {
    let spec = headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = match end.trim() {
        "" => size.checked_sub(1)?,
        e => e.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

async fn get_blob(
    reg: &Registry,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let size = reg.fetch_blob(digest, false).await?;
    let range = parse_range(headers, size);
    let (start, len) = range.map_or((0, size), |(s, e)| (s, e - s + 1));
    let mut resp = empty(if range.is_some() { 206 } else { 200 });
    set(&mut resp, "Docker-Content-Digest", digest);
    set(&mut resp, "Content-Type", "application/octet-stream");
    set(&mut resp, "Content-Length", &len.to_string());
    set(&mut resp, "Accept-Ranges", "bytes");
    if let Some((s, e)) = range {
        set(&mut resp, "Content-Range", &format!("bytes {s}-{e}/{size}"));
    }
    if !head {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = reg.blobs.path(digest)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| RegistryError::blob_unknown(digest))?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| super::error::io_error("cannot read blob", e))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10);
        *resp.body_mut() = Body::from_stream(stream);
    }
    Ok(resp)
}

async fn get_manifest(
    reg: &Registry,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let found = if parse_digest(reference).is_ok() {
        reg.meta.manifest(name, reference).await?
    } else {
        reg.meta.tag(name, reference).await?
    };
    let m = found.ok_or_else(|| RegistryError::manifest_unknown(name, reference))?;
    reg.fetch_blob(&m.digest, true).await?;
    let data = tokio::fs::read(reg.blobs.path(&m.digest)?)
        .await
        .map_err(|_| RegistryError::blob_unknown(&m.digest))?;
    let mut resp = empty(200);
    set(&mut resp, "Content-Type", &m.media_type);
    set(&mut resp, "Docker-Content-Digest", &m.digest);
    set(&mut resp, "Content-Length", &data.len().to_string());
    if !head {
        *resp.body_mut() = Body::from(data);
    }
    Ok(resp)
}

async fn put_manifest(
    reg: &Registry,
    name: &str,
    reference: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let by_digest = parse_digest(reference).is_ok();
    if !by_digest && !route::valid_tag(reference) {
        return Err(RegistryError::new(
            400,
            "TAG_INVALID",
            format!("invalid tag {reference:?}: use letters, digits, . _ - (up to 128)"),
        ));
    }
    let header_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    let data = http_body_util::Limited::new(req.into_body(), MANIFEST_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            RegistryError::new(
                413,
                "SIZE_INVALID",
                format!("cannot read the manifest: {e}"),
            )
        })?
        .to_bytes();
    let digest = digest_of(&data);
    if by_digest && digest != reference {
        return Err(RegistryError::digest_invalid(format!(
            "the manifest's digest is {digest}, not {reference}"
        )));
    }
    let doc: Value = serde_json::from_slice(&data)
        .map_err(|e| RegistryError::manifest_invalid(format!("the manifest is not JSON: {e}")))?;
    let media_type = header_type
        .filter(|t| !t.is_empty() && t != "application/octet-stream")
        .or_else(|| {
            doc.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| DEFAULT_MANIFEST_TYPE.to_string());
    // A blob may have been uploaded through another member (behind a load
    // balancer): it counts if a peer has it; replication copies it here.
    for referenced in referenced_digests(&doc)? {
        if !reg.blob_in_cluster(&referenced).await? {
            return Err(RegistryError::new(
                400,
                "MANIFEST_BLOB_UNKNOWN",
                format!("the manifest references blob {referenced}, which was not pushed first"),
            ));
        }
    }
    let size = data.len() as u64;
    reg.blobs.put_bytes(data).await?;
    let m = ManifestRef {
        digest: digest.clone(),
        media_type,
        size,
    };
    reg.meta
        .put_manifest(name, (!by_digest).then_some(reference), &m)
        .await?;
    let mut resp = empty(201);
    set(
        &mut resp,
        "Location",
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(&mut resp, "Docker-Content-Digest", &digest);
    set(&mut resp, "Content-Length", "0");
    Ok(resp)
}

/// The digests of the child manifests of an index (empty for a manifest).
pub(super) fn child_manifests(doc: &Value) -> Vec<String> {
    doc.get("manifests")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.get("digest").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The digests a manifest (config + layers) or index (manifests) needs.
pub(super) fn referenced_digests(doc: &Value) -> Result<Vec<String>, RegistryError> {
    let mut out = Vec::new();
    let descriptors = doc.get("config").into_iter().chain(
        ["layers", "manifests"]
            .iter()
            .filter_map(|k| doc.get(*k))
            .flat_map(|v| {
                v.as_array()
                    .map(|a| a.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            }),
    );
    for d in descriptors {
        let digest = d.get("digest").and_then(Value::as_str).ok_or_else(|| {
            RegistryError::manifest_invalid("a descriptor of the manifest has no digest")
        })?;
        parse_digest(digest)?;
        out.push(digest.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_password_is_the_token() {
        let enc = base64::engine::general_purpose::STANDARD.encode("kc:secret:with:colons");
        assert_eq!(basic_password(&enc).as_deref(), Some("secret:with:colons"));
        assert_eq!(basic_password("!!!"), None);
    }

    #[test]
    fn admins_push_nodes_only_pull_others_nothing() {
        let admin = Identity {
            user: "admin".into(),
            groups: vec![kc_pki::ADMIN_GROUP.into()],
        };
        let node = Identity {
            user: "system:node:w1".into(),
            groups: vec![kc_pki::NODES_GROUP.into()],
        };
        let bob = Identity {
            user: "bob".into(),
            groups: vec![],
        };
        assert!(authorize(&admin, &Method::PUT).is_ok());
        assert!(authorize(&node, &Method::GET).is_ok());
        assert!(authorize(&node, &Method::HEAD).is_ok());
        assert_eq!(authorize(&node, &Method::PUT).unwrap_err().code, "DENIED");
        assert_eq!(authorize(&bob, &Method::GET).unwrap_err().status, 403);
    }

    #[test]
    fn ranges_are_clamped_to_the_blob() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-"));
        assert_eq!(parse_range(&h, 100), Some((10, 99)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-500"));
        assert_eq!(parse_range(&h, 100), Some((10, 99)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=200-"));
        assert_eq!(parse_range(&h, 100), None);
    }

    #[test]
    fn a_manifest_references_its_config_and_layers() {
        let d = digest_of(b"x");
        let doc = json!({"config": {"digest": d}, "layers": [{"digest": d}, {"digest": d}]});
        assert_eq!(referenced_digests(&doc).unwrap().len(), 3);
        let bad = json!({"layers": [{"size": 1}]});
        assert!(referenced_digests(&bad).is_err());
    }
}
