//! `kcctl describe`: a human report of one object, laid out like kubectl's
//! (a tabwriter with padding 2, nested sections, `<none>` for empty), for
//! pods, nodes, deployments and services, a generic field dump for other
//! kinds, and the object's Events at the end.

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use kc_protocol::duration::human_duration;
use serde_json::Value;

use crate::ctx::{Ctx, encode, parse_args, selector_query, with_query};
use crate::discovery::ApiResource;
use crate::printer::tabwriter;

/// Show details of a resource or group of resources.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// TYPE [NAME...] or TYPE/NAME...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Select by label.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show events.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub show_events: bool,
}

/// Rows for the tabwriter: each row's cells are tab-separated.
#[derive(Default)]
pub struct Report {
    rows: Vec<Vec<String>>,
}

impl Report {
    /// `Key:\tvalue` at `level` (2 spaces per level).
    pub fn kv(&mut self, level: usize, key: &str, value: impl Into<String>) {
        let mut cells = vec![format!("{}{key}:", indent(level))];
        cells.extend(value.into().split('\t').map(str::to_string));
        self.rows.push(cells);
    }

    /// A section heading `Key:` with nothing after it.
    pub fn heading(&mut self, level: usize, key: &str) {
        self.rows.push(vec![format!("{}{key}:", indent(level))]);
    }

    /// A raw row of cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// `Key:\tk=v` lines (`<none>` when empty), one pair per line.
    pub fn map(&mut self, level: usize, key: &str, m: &Value, sep: &str) {
        let pairs = pairs(m, sep);
        if pairs.is_empty() {
            self.kv(level, key, "<none>");
            return;
        }
        for (i, p) in pairs.into_iter().enumerate() {
            if i == 0 {
                self.kv(level, key, p);
            } else {
                self.rows.push(vec![String::new(), p]);
            }
        }
    }

    pub fn render(&self) -> String {
        tabwriter(&self.rows, 2)
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

fn pairs(m: &Value, sep: &str) -> Vec<String> {
    let mut v: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            format!(
                "{k}{sep}{}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect();
    v.sort();
    v
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() {
        "<none>".to_string()
    } else {
        v
    }
}

/// kubectl's timestamp format (RFC 1123 with numeric zone).
pub fn timestamp(v: &Value) -> String {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S %z").to_string())
        .unwrap_or_default()
}

/// The age of a timestamp as kubectl prints it.
pub fn age(v: &Value) -> String {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration((Utc::now() - t.with_timezone(&Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".to_string())
}

pub fn run(ctx: &Ctx, a: &DescribeArgs) -> Result<i32> {
    let namespace = (!a.all_namespaces).then_some(ctx.namespace.as_str());
    let mut objects: Vec<(ApiResource, Value)> = Vec::new();
    for (r, name) in parse_args(ctx, &a.args)? {
        match name {
            Some(n) => objects.push((
                r.clone(),
                ctx.client.get(&r.object_path(&ctx.namespace, &n))?,
            )),
            None => {
                let q = selector_query(a.selector.as_deref(), None);
                let list = ctx
                    .client
                    .get(&with_query(&r.collection_path(namespace), &[&q]))?;
                for i in list["items"].as_array().into_iter().flatten() {
                    objects.push((r.clone(), i.clone()));
                }
            }
        }
    }
    if objects.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found"),
        }
        return Ok(0);
    }
    let mut first = true;
    for (r, o) in &objects {
        if !first {
            println!("\n");
        }
        first = false;
        let mut rep = Report::default();
        match r.kind.as_str() {
            "Pod" => pod(&mut rep, o),
            "Node" => node(ctx, &mut rep, o),
            "Deployment" => deployment(ctx, &mut rep, o),
            "Service" => service(ctx, &mut rep, o),
            _ => generic(&mut rep, o),
        }
        if a.show_events {
            events(ctx, &mut rep, o);
        }
        print!("{}", rep.render());
    }
    Ok(0)
}

fn header(rep: &mut Report, o: &Value, namespaced: bool) {
    let m = &o["metadata"];
    rep.kv(0, "Name", s(&m["name"]));
    if namespaced {
        rep.kv(0, "Namespace", s(&m["namespace"]));
    }
}

fn pod(rep: &mut Report, o: &Value) {
    let (m, spec, st) = (&o["metadata"], &o["spec"], &o["status"]);
    header(rep, o, true);
    rep.kv(
        0,
        "Priority",
        spec["priority"].as_i64().unwrap_or(0).to_string(),
    );
    rep.kv(0, "Service Account", {
        let sa = s(&spec["serviceAccountName"]);
        if sa.is_empty() { "default".into() } else { sa }
    });
    let node = s(&spec["nodeName"]);
    rep.kv(
        0,
        "Node",
        match (node.is_empty(), s(&st["hostIP"])) {
            (true, _) => "<none>".to_string(),
            (false, ip) if ip.is_empty() => node,
            (false, ip) => format!("{node}/{ip}"),
        },
    );
    if !st["startTime"].is_null() {
        rep.kv(0, "Start Time", timestamp(&st["startTime"]));
    }
    rep.map(0, "Labels", &m["labels"], "=");
    rep.map(0, "Annotations", &m["annotations"], ": ");
    let mut status = s(&st["phase"]);
    if !m["deletionTimestamp"].is_null() {
        status = format!("Terminating (lasts {})", age(&m["deletionTimestamp"]));
    }
    rep.kv(0, "Status", status);
    rep.kv(0, "IP", s(&st["podIP"]));
    let ips: Vec<String> = st["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| s(&i["ip"]))
        .collect();
    if ips.is_empty() {
        rep.kv(0, "IPs", "<none>");
    } else {
        rep.heading(0, "IPs");
        for ip in ips {
            rep.kv(1, "IP", ip);
        }
    }
    if let Some(owner) = m["ownerReferences"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["controller"] == true))
    {
        rep.kv(
            0,
            "Controlled By",
            format!("{}/{}", s(&owner["kind"]), s(&owner["name"])),
        );
    }
    let statuses = st["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rep.heading(0, "Containers");
    for c in spec["containers"].as_array().into_iter().flatten() {
        let cs = statuses
            .iter()
            .find(|x| x["name"] == c["name"])
            .cloned()
            .unwrap_or(Value::Null);
        container(rep, "  ", 2, c, &cs);
    }
    if let Some(conds) = st["conditions"].as_array().filter(|c| !c.is_empty()) {
        rep.heading(0, "Conditions");
        rep.row(vec!["  Type".into(), "Status".into()]);
        for c in conds {
            // kubectl writes "%v \t%v \n": the status keeps a trailing space.
            rep.row(vec![
                format!("  {}", s(&c["type"])),
                format!("{} ", s(&c["status"])),
            ]);
        }
    }
    let vols: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| s(&v["name"]))
        .collect();
    if vols.is_empty() {
        rep.kv(0, "Volumes", "<none>");
    } else {
        rep.heading(0, "Volumes");
        for v in vols {
            rep.heading(1, &v);
        }
    }
    rep.kv(0, "QoS Class", or_none(s(&st["qosClass"])));
    rep.map(0, "Node-Selectors", &spec["nodeSelector"], "=");
    tolerations(rep, 0, &spec["tolerations"]);
}

fn tolerations(rep: &mut Report, level: usize, t: &Value) {
    let list: Vec<String> = t
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let mut text = s(&t["key"]);
            if !t["value"].is_null() {
                text = format!("{text}={}", s(&t["value"]));
            }
            if !t["effect"].is_null() {
                text = format!("{text}:{}", s(&t["effect"]));
            }
            if let Some(secs) = t["tolerationSeconds"].as_i64() {
                text = format!("{text} for {secs}s");
            }
            text
        })
        .collect();
    if list.is_empty() {
        rep.kv(level, "Tolerations", "<none>");
    }
    for (i, t) in list.into_iter().enumerate() {
        if i == 0 {
            rep.kv(level, "Tolerations", t);
        } else {
            rep.row(vec![String::new(), t]);
        }
    }
}

fn ports(c: &Value) -> (String, String) {
    let ps: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
    if ps.is_empty() {
        return ("<none>".into(), "<none>".into());
    }
    let proto = |p: &Value| {
        let pr = s(&p["protocol"]);
        if pr.is_empty() { "TCP".to_string() } else { pr }
    };
    let port = ps
        .iter()
        .map(|p| format!("{}/{}", s(&p["containerPort"]), proto(p)))
        .collect::<Vec<_>>()
        .join(", ");
    let host = ps
        .iter()
        .map(|p| format!("{}/{}", p["hostPort"].as_i64().unwrap_or(0), proto(p)))
        .collect::<Vec<_>>()
        .join(", ");
    (port, host)
}

/// A container: its name at `name_indent`, its fields at level `l` (kubectl
/// indents pod containers by 2 and template containers by 3).
fn container(rep: &mut Report, name_indent: &str, l: usize, c: &Value, cs: &Value) {
    rep.row(vec![format!("{name_indent}{}:", s(&c["name"]))]);
    if !cs.is_null() {
        rep.kv(l, "Container ID", s(&cs["containerID"]));
    }
    rep.kv(l, "Image", s(&c["image"]));
    if !cs.is_null() {
        rep.kv(l, "Image ID", s(&cs["imageID"]));
    }
    let (port, host) = ports(c);
    rep.kv(l, "Port", port);
    rep.kv(l, "Host Port", host);
    for (key, field) in [("Command", "command"), ("Args", "args")] {
        if let Some(list) = c[field].as_array() {
            rep.heading(l, key);
            for a in list {
                rep.row(vec![format!("{}{}", indent(l + 1), s(a))]);
            }
        }
    }
    if !cs.is_null() {
        state(rep, l, "State", &cs["state"]);
        if cs["lastState"].as_object().is_some_and(|m| !m.is_empty()) {
            state(rep, l, "Last State", &cs["lastState"]);
        }
        rep.kv(
            l,
            "Ready",
            if cs["ready"] == true { "True" } else { "False" },
        );
        rep.kv(
            l,
            "Restart Count",
            cs["restartCount"].as_i64().unwrap_or(0).to_string(),
        );
    }
    let env: Vec<String> = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{}:\t{}", s(&e["name"]), s(&e["value"])))
        .collect();
    if env.is_empty() {
        rep.kv(l, "Environment", "<none>");
    } else {
        rep.heading(l, "Environment");
        for e in env {
            let (k, v) = e.split_once('\t').unwrap_or((&e, ""));
            rep.row(vec![format!("{}{k}", indent(l + 1)), v.to_string()]);
        }
    }
    let mounts: Vec<String> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{} from {} ({})",
                s(&m["mountPath"]),
                s(&m["name"]),
                if m["readOnly"] == true { "ro" } else { "rw" }
            )
        })
        .collect();
    if mounts.is_empty() {
        rep.kv(l, "Mounts", "<none>");
    } else {
        rep.heading(l, "Mounts");
        for m in mounts {
            rep.row(vec![format!("{}{m}", indent(l + 1))]);
        }
    }
}

fn state(rep: &mut Report, level: usize, key: &str, st: &Value) {
    if let Some(r) = st.get("running") {
        rep.kv(level, key, "Running");
        rep.kv(level + 1, "Started", timestamp(&r["startedAt"]));
    } else if let Some(t) = st.get("terminated") {
        rep.kv(level, key, "Terminated");
        rep.kv(level + 1, "Reason", s(&t["reason"]));
        rep.kv(level + 1, "Exit Code", s(&t["exitCode"]));
        rep.kv(level + 1, "Started", timestamp(&t["startedAt"]));
        rep.kv(level + 1, "Finished", timestamp(&t["finishedAt"]));
    } else if let Some(w) = st.get("waiting") {
        rep.kv(level, key, "Waiting");
        rep.kv(level + 1, "Reason", s(&w["reason"]));
    } else {
        rep.kv(level, key, "<unknown>");
    }
}

fn node(ctx: &Ctx, rep: &mut Report, o: &Value) {
    let (m, spec, st) = (&o["metadata"], &o["spec"], &o["status"]);
    header(rep, o, false);
    let roles: Vec<String> = m["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    rep.kv(0, "Roles", or_none(roles.join(",")));
    rep.map(0, "Labels", &m["labels"], "=");
    rep.map(0, "Annotations", &m["annotations"], ": ");
    rep.kv(0, "CreationTimestamp", timestamp(&m["creationTimestamp"]));
    let taints: Vec<String> = spec["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}{}:{}",
                s(&t["key"]),
                if t["value"].is_null() {
                    String::new()
                } else {
                    format!("={}", s(&t["value"]))
                },
                s(&t["effect"])
            )
        })
        .collect();
    rep.kv(0, "Taints", or_none(taints.join("\n")));
    rep.kv(
        0,
        "Unschedulable",
        if spec["unschedulable"] == true {
            "true"
        } else {
            "false"
        },
    );
    if let Some(conds) = st["conditions"].as_array().filter(|c| !c.is_empty()) {
        rep.heading(0, "Conditions");
        rep.row(vec![
            "  Type".into(),
            "Status".into(),
            "LastHeartbeatTime".into(),
            "Reason".into(),
            "Message".into(),
        ]);
        rep.row(vec![
            "  ----".into(),
            "------".into(),
            "-----------------".into(),
            "------".into(),
            "-------".into(),
        ]);
        for c in conds {
            rep.row(vec![
                format!("  {}", s(&c["type"])),
                s(&c["status"]),
                timestamp(&c["lastHeartbeatTime"]),
                s(&c["reason"]),
                s(&c["message"]),
            ]);
        }
    }
    rep.heading(0, "Addresses");
    for a in st["addresses"].as_array().into_iter().flatten() {
        rep.kv(1, &s(&a["type"]), s(&a["address"]));
    }
    for (key, field) in [("Capacity", "capacity"), ("Allocatable", "allocatable")] {
        rep.heading(0, key);
        for p in pairs(&st[field], ":") {
            let (k, v) = p.split_once(':').unwrap_or((&p, ""));
            rep.kv(1, k, v.to_string());
        }
    }
    let info = &st["nodeInfo"];
    rep.heading(0, "System Info");
    for (k, f) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
    ] {
        rep.kv(1, k, s(&info[f]));
    }
    if !spec["podCIDR"].is_null() {
        rep.kv(0, "PodCIDR", s(&spec["podCIDR"]));
    }
    let name = s(&m["name"]);
    let path = with_query(
        "/api/v1/pods",
        &[&format!(
            "fieldSelector={}",
            encode(&format!("spec.nodeName={name}"))
        )],
    );
    let pods: Vec<Value> = ctx
        .client
        .get(&path)
        .map(|l| l["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    rep.row(vec![
        "Non-terminated Pods:".into(),
        format!("({} in total)", pods.len()),
    ]);
    if !pods.is_empty() {
        rep.row(vec!["  Namespace".into(), "Name".into(), "Age".into()]);
        rep.row(vec!["  ---------".into(), "----".into(), "---".into()]);
        for p in &pods {
            rep.row(vec![
                format!("  {}", s(&p["metadata"]["namespace"])),
                s(&p["metadata"]["name"]),
                age(&p["metadata"]["creationTimestamp"]),
            ]);
        }
    }
}

fn deployment(ctx: &Ctx, rep: &mut Report, o: &Value) {
    let (m, spec, st) = (&o["metadata"], &o["spec"], &o["status"]);
    header(rep, o, true);
    rep.kv(0, "CreationTimestamp", timestamp(&m["creationTimestamp"]));
    rep.map(0, "Labels", &m["labels"], "=");
    rep.map(0, "Annotations", &m["annotations"], ": ");
    rep.kv(
        0,
        "Selector",
        or_none(pairs(&spec["selector"]["matchLabels"], "=").join(",")),
    );
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    rep.kv(
        0,
        "Replicas",
        format!(
            "{replicas} desired | {} updated | {} total | {} available | {} unavailable",
            n(&st["updatedReplicas"]),
            n(&st["replicas"]),
            n(&st["availableReplicas"]),
            n(&st["unavailableReplicas"])
        ),
    );
    let strategy = spec["strategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate")
        .to_string();
    rep.kv(0, "StrategyType", strategy.clone());
    rep.kv(
        0,
        "MinReadySeconds",
        n(&spec["minReadySeconds"]).to_string(),
    );
    if strategy == "RollingUpdate" {
        let ru = &spec["strategy"]["rollingUpdate"];
        let or25 = |v: &Value| if v.is_null() { "25%".to_string() } else { s(v) };
        rep.kv(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                or25(&ru["maxUnavailable"]),
                or25(&ru["maxSurge"])
            ),
        );
    }
    let tpl = &spec["template"];
    rep.heading(0, "Pod Template");
    rep.map(1, "Labels", &tpl["metadata"]["labels"], "=");
    if let Some(sa) = tpl["spec"]["serviceAccountName"].as_str() {
        rep.kv(1, "Service Account", sa);
    }
    rep.heading(1, "Containers");
    for c in tpl["spec"]["containers"].as_array().into_iter().flatten() {
        container(rep, "   ", 2, c, &Value::Null);
    }
    rep.kv(1, "Volumes", "<none>");
    rep.map(1, "Node-Selectors", &tpl["spec"]["nodeSelector"], "=");
    tolerations(rep, 1, &tpl["spec"]["tolerations"]);
    if let Some(conds) = st["conditions"].as_array().filter(|c| !c.is_empty()) {
        rep.heading(0, "Conditions");
        rep.row(vec!["  Type".into(), "Status".into(), "Reason".into()]);
        rep.row(vec!["  ----".into(), "------".into(), "------".into()]);
        for c in conds {
            rep.row(vec![
                format!("  {}", s(&c["type"])),
                s(&c["status"]),
                s(&c["reason"]),
            ]);
        }
    }
    replica_sets(ctx, rep, o);
}

/// kubectl's `OldReplicaSets:` / `NewReplicaSet:` lines: the Deployment's
/// ReplicaSets, the new one being the one of the Deployment's revision, the
/// old ones those that still want pods.
fn replica_sets(ctx: &Ctx, rep: &mut Report, o: &Value) {
    let (ns, uid) = (s(&o["metadata"]["namespace"]), &o["metadata"]["uid"]);
    let revision = &o["metadata"]["annotations"]["deployment.kubernetes.io/revision"];
    let Ok(list) = ctx
        .client
        .get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
    else {
        return;
    };
    let owned: Vec<&Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| &r["uid"] == uid && r["controller"] == true)
        })
        .collect();
    let describe = |rs: &Value| {
        format!(
            "{} ({}/{} replicas created)",
            s(&rs["metadata"]["name"]),
            rs["status"]["replicas"].as_i64().unwrap_or(0),
            rs["spec"]["replicas"].as_i64().unwrap_or(0)
        )
    };
    let is_new = |rs: &Value| {
        !revision.is_null()
            && &rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision
    };
    let old: Vec<String> = owned
        .iter()
        .filter(|rs| !is_new(rs) && rs["spec"]["replicas"].as_i64().unwrap_or(0) != 0)
        .map(|rs| describe(rs))
        .collect();
    let new = owned
        .iter()
        .find(|rs| is_new(rs))
        .map(|rs| describe(rs))
        .unwrap_or_else(|| "<none>".into());
    rep.kv(0, "OldReplicaSets", or_none(old.join(", ")));
    rep.kv(0, "NewReplicaSet", new);
}

/// The ready endpoints of `slices` for the port named `port_name`, as
/// kubectl prints them (`ip:port,ip:port`).
fn slice_endpoints(slices: &[Value], port_name: &str) -> String {
    let mut out = Vec::new();
    for slice in slices {
        let port = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| s(&p["name"]) == port_name)
            .map(|p| s(&p["port"]))
            .unwrap_or_default();
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if ep["conditions"]["ready"] == false {
                continue;
            }
            for addr in ep["addresses"].as_array().into_iter().flatten() {
                out.push(format!("{}:{port}", s(addr)));
            }
        }
    }
    out.join(",")
}

fn service(ctx: &Ctx, rep: &mut Report, o: &Value) {
    let (m, spec) = (&o["metadata"], &o["spec"]);
    header(rep, o, true);
    rep.map(0, "Labels", &m["labels"], "=");
    rep.map(0, "Annotations", &m["annotations"], ": ");
    rep.kv(
        0,
        "Selector",
        or_none(pairs(&spec["selector"], "=").join(",")),
    );
    rep.kv(0, "Type", s(&spec["type"]));
    rep.kv(0, "IP Family Policy", or_none(s(&spec["ipFamilyPolicy"])));
    let fams: Vec<String> = spec["ipFamilies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    rep.kv(0, "IP Families", or_none(fams.join(",")));
    rep.kv(0, "IP", s(&spec["clusterIP"]));
    let ips: Vec<String> = spec["clusterIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    rep.kv(0, "IPs", or_none(ips.join(",")));
    // Like kubectl 1.32: the Service's EndpointSlices.
    let slices: Vec<Value> = ctx
        .client
        .get(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{}",
            s(&m["namespace"]),
            s(&m["name"])
        ))
        .ok()
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default();
    for p in spec["ports"].as_array().into_iter().flatten() {
        let name = s(&p["name"]);
        let proto = {
            let x = s(&p["protocol"]);
            if x.is_empty() { "TCP".to_string() } else { x }
        };
        rep.kv(
            0,
            "Port",
            format!("{}\t{}/{proto}", or_none(name.clone()), s(&p["port"])),
        );
        let target = if p["targetPort"].is_null() {
            s(&p["port"])
        } else {
            s(&p["targetPort"])
        };
        rep.kv(0, "TargetPort", format!("{target}/{proto}"));
        if !p["nodePort"].is_null() {
            rep.kv(
                0,
                "NodePort",
                format!("{}\t{}/{proto}", or_none(name.clone()), s(&p["nodePort"])),
            );
        }
        // `<none>` without slices, empty when they hold no ready endpoint.
        let endpoints = if slices.is_empty() {
            "<none>".to_string()
        } else {
            slice_endpoints(&slices, &name)
        };
        rep.kv(0, "Endpoints", endpoints);
    }
    rep.kv(0, "Session Affinity", or_none(s(&spec["sessionAffinity"])));
    if !spec["externalTrafficPolicy"].is_null() {
        rep.kv(
            0,
            "External Traffic Policy",
            s(&spec["externalTrafficPolicy"]),
        );
    }
    if !spec["internalTrafficPolicy"].is_null() {
        rep.kv(
            0,
            "Internal Traffic Policy",
            s(&spec["internalTrafficPolicy"]),
        );
    }
}

/// Other kinds: metadata, then the fields as an indented tree.
fn generic(rep: &mut Report, o: &Value) {
    let m = &o["metadata"];
    rep.kv(0, "Name", s(&m["name"]));
    if !m["namespace"].is_null() {
        rep.kv(0, "Namespace", s(&m["namespace"]));
    }
    rep.map(0, "Labels", &m["labels"], "=");
    rep.map(0, "Annotations", &m["annotations"], ": ");
    rep.kv(0, "API Version", s(&o["apiVersion"]));
    rep.kv(0, "Kind", s(&o["kind"]));
    if let Some(map) = o.as_object() {
        for (k, v) in map {
            if matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                continue;
            }
            tree(rep, 0, &title(k), v);
        }
    }
}

fn title(k: &str) -> String {
    let mut c = k.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn tree(rep: &mut Report, level: usize, key: &str, v: &Value) {
    match v {
        Value::Object(m) => {
            rep.heading(level, key);
            for (k, x) in m {
                tree(rep, level + 1, &title(k), x);
            }
        }
        Value::Array(a) => {
            rep.heading(level, key);
            for x in a {
                match x {
                    Value::Object(_) | Value::Array(_) => tree(rep, level + 1, "", x),
                    other => rep.row(vec![format!("{}{}", indent(level + 1), s(other))]),
                }
            }
        }
        other => rep.kv(level, key, s(other)),
    }
}

/// The `Events:` section: events whose involvedObject is `o`.
fn events(ctx: &Ctx, rep: &mut Report, o: &Value) {
    let m = &o["metadata"];
    let mut sel = format!("involvedObject.name={}", s(&m["name"]));
    if !m["namespace"].is_null() {
        sel.push_str(&format!(",involvedObject.namespace={}", s(&m["namespace"])));
    }
    if !m["uid"].is_null() {
        sel.push_str(&format!(",involvedObject.uid={}", s(&m["uid"])));
    }
    let ns = m["namespace"].as_str();
    let path = match ns {
        Some(ns) => format!("/api/v1/namespaces/{ns}/events"),
        None => "/api/v1/events".to_string(),
    };
    let list = ctx
        .client
        .get(&with_query(
            &path,
            &[&format!("fieldSelector={}", encode(&sel))],
        ))
        .map(|l| l["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    if list.is_empty() {
        rep.kv(0, "Events", "<none>");
        return;
    }
    rep.heading(0, "Events");
    rep.row(
        ["  Type", "Reason", "Age", "From", "Message"]
            .map(String::from)
            .to_vec(),
    );
    rep.row(
        ["  ----", "------", "----", "----", "-------"]
            .map(String::from)
            .to_vec(),
    );
    for e in list {
        let last = ["lastTimestamp", "eventTime"]
            .iter()
            .map(|f| &e[*f])
            .find(|v| !v.is_null())
            .unwrap_or(&e["metadata"]["creationTimestamp"]);
        let count = e["count"].as_i64().unwrap_or(1);
        let mut when = age(last);
        if count > 1 && !e["firstTimestamp"].is_null() {
            when = format!("{when} (x{count} over {})", age(&e["firstTimestamp"]));
        }
        let from = {
            let c = s(&e["source"]["component"]);
            if c.is_empty() {
                s(&e["reportingComponent"])
            } else {
                c
            }
        };
        rep.row(vec![
            format!("  {}", s(&e["type"])),
            s(&e["reason"]),
            when,
            from,
            s(&e["message"]).trim().to_string(),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_report_reads_like_kubectl() {
        let mut rep = Report::default();
        pod(
            &mut rep,
            &json!({
                "metadata": {"name": "web", "namespace": "default", "labels": {"run": "web", "a": "b"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]},
                "status": {"phase": "Pending", "qosClass": "BestEffort"},
            }),
        );
        let text = rep.render();
        assert!(
            text.starts_with("Name:             web\nNamespace:        default\n"),
            "{text}"
        );
        assert!(
            text.contains("Labels:           a=b\n                  run=web\n"),
            "{text}"
        );
        assert!(text.contains("Containers:\n  web:\n    Image:        nginx\n    Port:         80/TCP\n    Host Port:    0/TCP\n    Environment:  <none>\n"), "{text}");
        assert!(text.contains("QoS Class:        BestEffort\n"), "{text}");
    }
}
