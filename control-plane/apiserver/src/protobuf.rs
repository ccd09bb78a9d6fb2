//! Request bodies in Kubernetes' protobuf encoding, decoded to JSON.
//!
//! kubectl's typed clients (`kubectl create configmap|secret|service|
//! namespace|serviceaccount|deployment|job`) send `application/vnd.kubernetes.
//! protobuf`: the magic `k8s\0`, then a `runtime.Unknown` envelope holding
//! apiVersion/kind and the object's protobuf bytes. We decode the object
//! with a small hand-written schema (field numbers of the Kubernetes API
//! types kubectl sends; see k8s.io/api `generated.proto`) and hand the JSON
//! to the same create path as every other request. Fields not in the schema
//! are refused with a message saying to send JSON instead. Zero scalars are
//! dropped, as Go's `omitempty` would in JSON.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::status::ApiError;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// bytes, rendered base64 (Secret.data).
    Bytes,
    Int,
    /// An int whose zero means "unset" (non-pointer Go ints).
    IntOmitZero,
    Bool,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    /// map<string, Quantity>
    MapQuantity,
    Time,
    IntOrString,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn r(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::IntOmitZero),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    r(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    r(14, "finalizers", Ty::Str),
];

const REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    r(3, "values", Ty::Str),
];
const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::MapStr),
    r(2, "matchExpressions", Ty::Msg(REQUIREMENT)),
];
const EMPTY: &[Field] = &[];
const NAME_REF: &[Field] = &[f(1, "name", Ty::Str)];
const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[r(1, "finalizers", Ty::Str)])),
    f(3, "status", Ty::Msg(&[f(1, "phase", Ty::Str)])),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    r(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    r(3, "imagePullSecrets", Ty::Msg(NAME_REF)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::IntOmitZero),
    f(6, "appProtocol", Ty::Str),
];

const SERVICE_SPEC: &[Field] = &[
    r(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    r(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    r(9, "loadBalancerSourceRanges", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(12, "healthCheckNodePort", Ty::IntOmitZero),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    f(17, "ipFamilyPolicy", Ty::Str),
    r(18, "clusterIPs", Ty::Str),
    r(19, "ipFamilies", Ty::Str),
    f(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    f(21, "loadBalancerClass", Ty::Str),
    f(22, "internalTrafficPolicy", Ty::Str),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
    f(
        3,
        "status",
        Ty::Msg(&[f(1, "loadBalancer", Ty::Msg(EMPTY))]),
    ),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::IntOmitZero),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
    f(5, "hostIP", Ty::Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];

const RESOURCES: &[Field] = &[
    f(1, "limits", Ty::MapQuantity),
    f(2, "requests", Ty::MapQuantity),
];

const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    r(3, "command", Ty::Str),
    r(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    r(6, "ports", Ty::Msg(CONTAINER_PORT)),
    r(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCES)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];

const POD_SPEC: &[Field] = &[
    r(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    f(4, "terminationGracePeriodSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr),
    f(8, "serviceAccountName", Ty::Str),
    f(9, "serviceAccount", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(12, "hostPID", Ty::Bool),
    f(13, "hostIPC", Ty::Bool),
    f(21, "automountServiceAccountToken", Ty::Bool),
    f(27, "shareProcessNamespace", Ty::Bool),
    f(30, "enableServiceLinks", Ty::Bool),
    f(14, "securityContext", Ty::Msg(EMPTY)),
    r(15, "imagePullSecrets", Ty::Msg(NAME_REF)),
    f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str),
    f(19, "schedulerName", Ty::Str),
    r(20, "initContainers", Ty::Msg(CONTAINER)),
    f(24, "priorityClassName", Ty::Str),
];

const POD_TEMPLATE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];

const DEPLOYMENT_SPEC: &[Field] = &[
    f(1, "replicas", Ty::Int),
    f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE)),
    f(4, "strategy", Ty::Msg(&[f(1, "type", Ty::Str)])),
    f(5, "minReadySeconds", Ty::IntOmitZero),
    f(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    f(9, "progressDeadlineSeconds", Ty::Int),
];

const TIME: &[Field] = &[f(1, "s", Ty::Int), f(2, "n", Ty::Int)];
const INT_OR_STRING: &[Field] = &[
    f(1, "type", Ty::Int),
    f(2, "i", Ty::Int),
    f(3, "s", Ty::Str),
];
const QUANTITY: &[Field] = &[f(1, "string", Ty::Str)];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
    f(3, "status", Ty::Msg(EMPTY)),
];

/// batch/v1 JobSpec (`kubectl create job`); podFailurePolicy and
/// successPolicy are not in the schema (send JSON for those).
const JOB_SPEC: &[Field] = &[
    f(1, "parallelism", Ty::Int),
    f(2, "completions", Ty::Int),
    f(3, "activeDeadlineSeconds", Ty::Int),
    f(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE)),
    f(7, "backoffLimit", Ty::Int),
    f(8, "ttlSecondsAfterFinished", Ty::Int),
    f(9, "completionMode", Ty::Str),
    f(10, "suspend", Ty::Bool),
    f(12, "backoffLimitPerIndex", Ty::Int),
    f(13, "maxFailedIndexes", Ty::Int),
    f(14, "podReplacementPolicy", Ty::Str),
    f(15, "managedBy", Ty::Str),
];

const JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
    f(3, "status", Ty::Msg(EMPTY)),
];

/// The schema of a kind we accept in protobuf.
fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        _ => return None,
    })
}

/// A protobuf wire reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next (field number, wire type), or None at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// Decodes a map entry (key = 1, value = 2) with `value` decoding the value bytes.
fn map_entry(
    bytes: &[u8],
    value: impl Fn(&[u8]) -> Result<Value, String>,
) -> Result<(String, Value), String> {
    let mut rd = Reader { buf: bytes, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((num, wire)) = rd.key()? {
        if wire != 2 {
            return Err("map entries must be length-delimited".into());
        }
        let b = rd.bytes()?;
        match num {
            1 => k = utf8(b)?,
            2 => v = value(b)?,
            _ => return Err("bad map entry".into()),
        }
    }
    Ok((k, v))
}

fn decode_message(
    buf: &[u8],
    fields: &'static [Field],
    path: &str,
    depth: usize,
) -> Result<Value, String> {
    if depth > 32 {
        return Err("message nested too deeply".into());
    }
    let mut out = Map::new();
    let mut rd = Reader { buf, pos: 0 };
    while let Some((num, wire)) = rd.key()? {
        let Some(field) = fields.iter().find(|fl| fl.num == num) else {
            // Go's protobuf writes unset non-pointer fields as zeros: skip
            // those; refuse anything that carries a value we cannot place.
            let zero = match wire {
                0 => rd.varint()? == 0,
                2 => rd.bytes()?.is_empty(),
                _ => false,
            };
            if zero {
                continue;
            }
            return Err(format!(
                "field {num} of {} is not supported",
                if path.is_empty() { "the object" } else { path }
            ));
        };
        let fpath = if path.is_empty() {
            field.name.to_string()
        } else {
            format!("{path}.{}", field.name)
        };
        let value = match (field.ty, wire) {
            (Ty::Int | Ty::IntOmitZero, 0) => {
                let v = rd.varint()? as i64;
                if matches!(field.ty, Ty::IntOmitZero) && v == 0 {
                    continue;
                }
                json!(v)
            }
            (Ty::Bool, 0) => {
                if rd.varint()? == 0 {
                    continue;
                }
                json!(true)
            }
            (Ty::Str, 2) => {
                let s = utf8(rd.bytes()?)?;
                if s.is_empty() && !field.repeated {
                    continue;
                }
                json!(s)
            }
            (Ty::Bytes, 2) => json!(base64::engine::general_purpose::STANDARD.encode(rd.bytes()?)),
            (Ty::Msg(sub), 2) => decode_message(rd.bytes()?, sub, &fpath, depth + 1)?,
            (Ty::Time, 2) => {
                let m = decode_message(rd.bytes()?, TIME, &fpath, depth + 1)?;
                let secs = m["s"].as_i64().unwrap_or(0);
                if secs == 0 {
                    continue;
                }
                match k8s_openapi::jiff::Timestamp::from_second(secs) {
                    Ok(t) => json!(t.to_string()),
                    Err(_) => return Err(format!("{fpath}: timestamp out of range")),
                }
            }
            (Ty::IntOrString, 2) => {
                let m = decode_message(rd.bytes()?, INT_OR_STRING, &fpath, depth + 1)?;
                if m["type"].as_i64() == Some(1) {
                    m["s"].clone()
                } else {
                    json!(m["i"].as_i64().unwrap_or(0))
                }
            }
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, 2) => {
                let (k, v) = map_entry(rd.bytes()?, |b| match field.ty {
                    Ty::MapBytes => Ok(json!(base64::engine::general_purpose::STANDARD.encode(b))),
                    Ty::MapQuantity => {
                        let q = decode_message(b, QUANTITY, "quantity", depth + 1)?;
                        Ok(q["string"].clone())
                    }
                    _ => Ok(json!(utf8(b)?)),
                })?;
                let map = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            _ => return Err(format!("{fpath}: unexpected wire type {wire}")),
        };
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(l) = list.as_array_mut() {
                l.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-framed protobuf body into the object's JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unsupported = |why: String| {
        ApiError::unsupported_media_type(&format!(
            "{CONTENT_TYPE} ({why}); kc accepts protobuf only for the objects kubectl's create subcommands send: send JSON instead (e.g. kubectl create -f)"
        ))
    };
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("protobuf body without the k8s\\0 magic prefix"))?;
    const TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];
    const UNKNOWN: &[Field] = &[
        f(1, "typeMeta", Ty::Msg(TYPE_META)),
        f(2, "raw", Ty::Bytes),
        f(3, "contentEncoding", Ty::Str),
        f(4, "contentType", Ty::Str),
    ];
    let unknown = decode_message(envelope, UNKNOWN, "envelope", 0)
        .map_err(|e| ApiError::bad_request(format!("malformed protobuf envelope: {e}")))?;
    let api_version = unknown["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let kind = unknown["typeMeta"]["kind"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let fields = schema(&api_version, &kind)
        .ok_or_else(|| unsupported(format!("{api_version} {kind} is not decoded")))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(unknown["raw"].as_str().unwrap_or(""))
        .map_err(|_| ApiError::bad_request("malformed protobuf envelope"))?;
    let mut object = decode_message(&raw, fields, "", 0).map_err(unsupported)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field_bytes(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn configmap_body() -> Vec<u8> {
        let mut meta = Vec::new();
        field_bytes(1, b"cm1", &mut meta);
        field_bytes(3, b"", &mut meta);
        field_bytes(8, b"", &mut meta);
        let mut entry = Vec::new();
        field_bytes(1, b"a", &mut entry);
        field_bytes(2, b"b", &mut entry);
        let mut cm = Vec::new();
        field_bytes(1, &meta, &mut cm);
        field_bytes(2, &entry, &mut cm);
        let mut tm = Vec::new();
        field_bytes(1, b"v1", &mut tm);
        field_bytes(2, b"ConfigMap", &mut tm);
        let mut env = Vec::new();
        field_bytes(1, &tm, &mut env);
        field_bytes(2, &cm, &mut env);
        [MAGIC, &env].concat()
    }

    #[test]
    fn decodes_a_configmap_like_kubectl_sends_it() {
        let v = decode(&configmap_body()).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn truncated_and_unknown_input_is_an_error_not_a_panic() {
        let body = configmap_body();
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
        let mut odd = body.clone();
        let last = odd.len() - 1;
        odd[last] ^= 0xff;
        let _ = decode(&odd);
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
    }
}
