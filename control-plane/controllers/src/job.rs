//! Job (batch/v1): runs pods to completion.
//!
//! reconcile(job) lists the Job's pods live (controller ownerReference with
//! the Job's uid), counts succeeded, failed (for `restartPolicy:
//! OnFailure`, container restarts count as failures, as in Kubernetes) and
//! active ones, and makes one step: finish the Job (Complete once
//! `completions` pods succeeded, or with a work queue — completions unset —
//! once one succeeded and none is active; Failed with BackoffLimitExceeded
//! once failures exceed `backoffLimit`, DeadlineExceeded after
//! `activeDeadlineSeconds`), else keep `min(parallelism, remaining)` pods
//! active. `plan` is the pure decision; `reconcile` reads and writes.
//! Finished pods are kept (the counts come from them); a finished Job's
//! active pods are deleted, and with `ttlSecondsAfterFinished` the Job
//! itself is deleted (background propagation) that long after it finished.
//! `completionMode: Indexed` (see `job_index`): one pod per missing index,
//! lowest first; the Job completes when every index succeeded and reports
//! them in `status.completedIndexes`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::job_index::{self, index_of};
use super::replicaset::{controller_of, is_ready, pod_from_template};
use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::clock;
use kc_client::status::ApiError;

/// How a finished Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Complete,
    BackoffLimitExceeded,
    DeadlineExceeded,
}

/// What the Job's pods look like now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub active: usize,
    pub ready: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub terminating: usize,
}

/// One step for a Job.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Pods to create.
    pub create: usize,
    /// Indexed mode: the completion indexes of the pods to create.
    pub indexes: Vec<usize>,
    /// Active pods to delete, by name.
    pub delete: Vec<String>,
    /// The Job finishes (or has finished) this way.
    pub finish: Option<Finish>,
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

fn deleting(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
}

fn is_active(pod: &Value) -> bool {
    !deleting(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

fn restarts(pod: &Value) -> usize {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["restartCount"].as_u64().unwrap_or(0) as usize)
        .sum()
}

/// Indexed mode: the number of completions, each an index.
fn indexed_completions(job: &Value) -> Option<usize> {
    job_index::is_indexed(job)
        .then(|| job["spec"]["completions"].as_i64())
        .flatten()
        .map(|n| n.max(0) as usize)
}

/// Counts the Job's pods (in Indexed mode, succeeded counts indexes).
pub fn count(job: &Value, pods: &[&Value]) -> Counts {
    let on_failure = job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure";
    let mut c = Counts::default();
    for p in pods {
        match phase(p) {
            "Succeeded" => c.succeeded += 1,
            "Failed" => c.failed += 1,
            _ if deleting(p) => c.terminating += 1,
            _ => {
                c.active += 1;
                if is_ready(p) {
                    c.ready += 1;
                }
                if on_failure {
                    c.failed += restarts(p);
                }
            }
        }
    }
    if let Some(n) = indexed_completions(job) {
        c.succeeded = job_index::succeeded_indexes(pods, n).len();
    }
    c
}

fn condition_true(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// How the Job has already finished, from its conditions.
fn finished(job: &Value) -> Option<Finish> {
    if condition_true(job, "Complete") {
        return Some(Finish::Complete);
    }
    let failed = job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")?;
    Some(if failed["reason"] == "DeadlineExceeded" {
        Finish::DeadlineExceeded
    } else {
        Finish::BackoffLimitExceeded
    })
}

fn seconds(v: &Value) -> Option<i64> {
    v.as_str()?.parse::<Timestamp>().ok().map(|t| t.as_second())
}

/// The pure decision: what to do with `job` whose pods are `pods`, at `now`
/// (Unix seconds).
pub fn plan(job: &Value, pods: &[&Value], now: i64) -> Plan {
    let spec = &job["spec"];
    let c = count(job, pods);
    let active: Vec<&&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let all_active = || {
        active
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let finish = finished(job).or_else(|| {
        let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6).max(0) as usize;
        let completions = spec["completions"].as_i64().map(|n| n.max(0) as usize);
        let deadline = spec["activeDeadlineSeconds"]
            .as_i64()
            .zip(seconds(&job["status"]["startTime"]))
            .is_some_and(|(d, start)| now >= start + d);
        if c.failed > backoff_limit {
            Some(Finish::BackoffLimitExceeded)
        } else if deadline {
            Some(Finish::DeadlineExceeded)
        } else if match completions {
            Some(n) => c.succeeded >= n,
            None => c.succeeded > 0 && c.active == 0,
        } {
            Some(Finish::Complete)
        } else {
            None
        }
    });
    if finish.is_some() || spec["suspend"] == true {
        return Plan {
            delete: all_active(),
            finish,
            ..Plan::default()
        };
    }
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0) as usize;
    let want = match spec["completions"].as_i64() {
        Some(n) => parallelism.min((n.max(0) as usize).saturating_sub(c.succeeded)),
        None if c.succeeded > 0 => 0,
        None => parallelism,
    };
    let mut plan = Plan::default();
    if let Some(n) = indexed_completions(job) {
        // One active pod per index not yet succeeded; any other goes.
        let succeeded = job_index::succeeded_indexes(pods, n);
        let mut running = BTreeSet::new();
        for p in &active {
            match index_of(p) {
                Some(i) if i < n && !succeeded.contains(&i) && running.insert(i) => {}
                _ => plan
                    .delete
                    .push(p["metadata"]["name"].as_str().unwrap_or("").to_string()),
            }
        }
        let room = want.saturating_sub(running.len());
        plan.indexes = job_index::indexes_to_start(n, &succeeded, &running, room);
        plan.create = plan.indexes.len();
        return plan;
    }
    if c.active < want {
        plan.create = want - c.active;
    } else if c.active > want {
        // Unbound first, then not running: the cheapest to lose.
        let mut extra: Vec<&&Value> = active.clone();
        extra.sort_by_key(|p| (!p["spec"]["nodeName"].is_null(), phase(p) == "Running"));
        plan.delete = extra[..c.active - want]
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
    }
    plan
}

/// The conditions a Job gets when it finishes (Kubernetes 1.32 adds the
/// interim SuccessCriteriaMet / FailureTarget alongside).
fn finish_conditions(finish: Finish, now: &str) -> Vec<Value> {
    let cond = |kind: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": "True", "reason": reason, "message": message,
               "lastProbeTime": now, "lastTransitionTime": now})
    };
    match finish {
        Finish::Complete => {
            let m = "Reached expected number of succeeded pods";
            vec![
                cond("SuccessCriteriaMet", "CompletionsReached", m),
                cond("Complete", "CompletionsReached", m),
            ]
        }
        Finish::BackoffLimitExceeded => {
            let m = "Job has reached the specified backoff limit";
            vec![
                cond("FailureTarget", "BackoffLimitExceeded", m),
                cond("Failed", "BackoffLimitExceeded", m),
            ]
        }
        Finish::DeadlineExceeded => {
            let m = "Job was active longer than specified deadline";
            vec![
                cond("FailureTarget", "DeadlineExceeded", m),
                cond("Failed", "DeadlineExceeded", m),
            ]
        }
    }
}

/// The Job's status after this step.
fn status(job: &Value, pods: &[&Value], c: &Counts, plan: &Plan, now: &str) -> Value {
    let old = &job["status"];
    let mut st = json!({
        "ready": c.ready,
        "terminating": c.terminating,
        "uncountedTerminatedPods": {},
    });
    let active = c.active.saturating_sub(plan.delete.len()) + plan.create;
    for (field, n) in [
        ("active", active),
        ("succeeded", c.succeeded),
        ("failed", c.failed),
    ] {
        if n > 0 {
            st[field] = json!(n);
        }
    }
    let suspended = job["spec"]["suspend"] == true;
    match &old["startTime"] {
        Value::String(t) => st["startTime"] = json!(t),
        _ if !suspended => st["startTime"] = json!(now),
        _ => {}
    }
    if let Some(n) = indexed_completions(job) {
        st["completedIndexes"] = json!(job_index::format_indexes(&job_index::succeeded_indexes(
            pods, n
        )));
    }
    let mut conditions = old["conditions"].as_array().cloned().unwrap_or_default();
    if let Some(finish) = plan.finish
        && finished(job).is_none()
    {
        conditions.extend(finish_conditions(finish, now));
        if finish == Finish::Complete {
            st["completionTime"] = json!(now);
        }
    }
    if let Some(t) = old.get("completionTime").filter(|t| t.is_string()) {
        st["completionTime"] = t.clone();
    }
    if !conditions.is_empty() {
        st["conditions"] = json!(conditions);
    }
    st
}

/// When a finished Job with `ttlSecondsAfterFinished` may be deleted.
fn expires_at(job: &Value) -> Option<i64> {
    let ttl = job["spec"]["ttlSecondsAfterFinished"].as_i64()?;
    let finished_at = job["status"]["conditions"]
        .as_array()?
        .iter()
        .filter(|c| {
            matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
        })
        .find_map(|c| seconds(&c["lastTransitionTime"]))?;
    Some(finished_at + ttl)
}

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut jobs = client.informer(resource("batch", "v1", "jobs"));
    let mut pods = client.informer(resource("", "v1", "pods"));
    let requeue = queue.clone();
    let _worker = spawn_worker(client.clone(), queue.clone(), "job", move |c, k| {
        let requeue = requeue.clone();
        async move { reconcile(&c, &k, &requeue).await }
    });
    loop {
        tokio::select! {
            Some(ev) = jobs.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev {
                queue.add(&key_of(&o));
            },
            Some(ev) = pods.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev
                && let Some(("Job", name, _)) = controller_of(&o)
            {
                queue.add(&format!("{}/{name}", o["metadata"]["namespace"].as_str().unwrap_or("")));
            },
            else => return,
        }
    }
}

/// One step for the Job `key`.
pub async fn reconcile(client: &Client, key: &str, requeue: &WorkQueue) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let jobs = resource("batch", "v1", "jobs");
    let pods = resource("", "v1", "pods");
    let job = match client.get(jobs, ns, name).await {
        Ok(j) => j,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if job["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let uid = job["metadata"]["uid"].as_str().unwrap_or("");
    let (all, _) = client.list(pods, Some(ns)).await?;
    let owned: Vec<&Value> = all
        .iter()
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        .collect();
    let now_s = clock::now().as_second();
    let plan = plan(&job, &owned, now_s);
    let now = clock::rfc3339_in(0);
    let template = pod_from_template(&job);
    let to_create: Vec<Value> = if plan.indexes.is_empty() {
        vec![template; plan.create]
    } else {
        plan.indexes
            .iter()
            .map(|i| job_index::indexed_pod(&job, &template, *i))
            .collect()
    };
    let creates = to_create.into_iter().map(|p| client.create(pods, ns, p));
    let deletes = plan
        .delete
        .iter()
        .map(|p| client.delete(pods, ns, p, json!({})));
    let (created, deleted) = futures::join!(join_all(creates), join_all(deletes));
    let mut first_error = None;
    for e in created.into_iter().filter_map(Result::err) {
        first_error.get_or_insert(e);
    }
    for e in deleted.into_iter().filter_map(Result::err) {
        if e.code != 404 {
            first_error.get_or_insert(e);
        }
    }
    let c = count(&job, &owned);
    let new_status = status(&job, &owned, &c, &plan, &now);
    if job["status"] != new_status {
        match client
            .merge_patch(jobs, ns, name, "status", &json!({"status": new_status}))
            .await
        {
            Err(e) if e.code != 404 => {
                first_error.get_or_insert(e);
            }
            _ => {}
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if plan.finish.is_some()
        && let Some(at) = expires_at(&job)
    {
        if now_s >= at {
            let opts = json!({"propagationPolicy": "Background"});
            match client.delete(jobs, ns, name, opts).await {
                Err(e) if e.code != 404 => return Err(e),
                _ => {}
            }
        } else {
            requeue.retry_after(key, Duration::from_secs((at - now_s) as u64));
        }
    }
    if plan.finish.is_none()
        && let Some(deadline) = job["spec"]["activeDeadlineSeconds"].as_i64()
    {
        // Look again when the deadline passes.
        let start = seconds(&new_status["startTime"]).unwrap_or(now_s);
        let left = (start + deadline - now_s).max(0) as u64 + 1;
        requeue.retry_after(key, Duration::from_secs(left));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value) -> Value {
        json!({"metadata": {"name": "j", "namespace": "d", "uid": "u"},
               "spec": spec, "status": {}})
    }

    fn pod(name: &str, phase: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"nodeName": "n"},
               "status": {"phase": phase}})
    }

    #[test]
    fn parallelism_bounds_active_pods_and_completions_bound_the_total() {
        let j = job(json!({"completions": 5, "parallelism": 2, "backoffLimit": 6}));
        assert_eq!(plan(&j, &[], 0).create, 2);
        let (a, s1, s2, s3, s4) = (
            pod("a", "Running"),
            pod("s1", "Succeeded"),
            pod("s2", "Succeeded"),
            pod("s3", "Succeeded"),
            pod("s4", "Succeeded"),
        );
        // 4 succeeded, 1 running: nothing more to start.
        let p = plan(&j, &[&a, &s1, &s2, &s3, &s4], 0);
        assert_eq!((p.create, p.delete.len(), p.finish), (0, 0, None));
        let s5 = pod("s5", "Succeeded");
        assert_eq!(
            plan(&j, &[&s1, &s2, &s3, &s4, &s5], 0).finish,
            Some(Finish::Complete)
        );
    }

    #[test]
    fn failures_beyond_the_backoff_limit_fail_the_job_and_stop_its_pods() {
        let j = job(json!({"completions": 1, "parallelism": 1, "backoffLimit": 1}));
        let (f1, f2, r) = (
            pod("f1", "Failed"),
            pod("f2", "Failed"),
            pod("r", "Running"),
        );
        let p = plan(&j, &[&f1], 0);
        assert_eq!((p.create, p.finish), (1, None));
        let p = plan(&j, &[&f1, &f2, &r], 0);
        assert_eq!(p.finish, Some(Finish::BackoffLimitExceeded));
        assert_eq!(p.delete, vec!["r".to_string()]);
    }

    #[test]
    fn on_failure_restarts_count_as_failures() {
        let j = job(
            json!({"completions": 1, "parallelism": 1, "backoffLimit": 2,
                           "template": {"spec": {"restartPolicy": "OnFailure"}}}),
        );
        let mut r = pod("r", "Running");
        r["status"]["containerStatuses"] = json!([{"restartCount": 3}]);
        assert_eq!(count(&j, &[&r]).failed, 3);
        assert_eq!(
            plan(&j, &[&r], 0).finish,
            Some(Finish::BackoffLimitExceeded)
        );
    }

    #[test]
    fn a_work_queue_completes_when_one_succeeded_and_none_runs() {
        let j = job(json!({"parallelism": 3, "backoffLimit": 6}));
        assert_eq!(plan(&j, &[], 0).create, 3);
        let (s, r) = (pod("s", "Succeeded"), pod("r", "Running"));
        assert_eq!(plan(&j, &[&s, &r], 0).finish, None);
        assert_eq!(plan(&j, &[&s, &r], 0).create, 0);
        assert_eq!(plan(&j, &[&s], 0).finish, Some(Finish::Complete));
    }

    #[test]
    fn finishing_sets_kubernetes_conditions_and_completion_time() {
        let j = job(json!({"completions": 1, "parallelism": 1}));
        let s = pod("s", "Succeeded");
        let p = plan(&j, &[&s], 0);
        let st = status(&j, &[&s], &count(&j, &[&s]), &p, "2026-11-25T00:00:00Z");
        assert_eq!(st["succeeded"], 1);
        assert!(st.get("failed").is_none());
        assert_eq!(st["completionTime"], "2026-11-25T00:00:00Z");
        let types: Vec<&str> = st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
        // Already finished: no new conditions.
        let mut done = j.clone();
        done["status"] = st.clone();
        let again = status(
            &done,
            &[&s],
            &count(&done, &[&s]),
            &plan(&done, &[&s], 10),
            "later",
        );
        assert_eq!(again["conditions"], st["conditions"]);
    }

    fn indexed_pod(name: &str, phase: &str, index: usize) -> Value {
        let mut p = pod(name, phase);
        p["metadata"]["annotations"] = json!({job_index::INDEX_KEY: index.to_string()});
        p
    }

    #[test]
    fn indexed_jobs_start_missing_indexes_and_complete_when_all_succeeded() {
        let j = job(json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"}));
        assert_eq!(plan(&j, &[], 0).indexes, vec![0, 1]);
        let (s0, r1, f2) = (
            indexed_pod("s0", "Succeeded", 0),
            indexed_pod("r1", "Running", 1),
            indexed_pod("f2", "Failed", 2),
        );
        // 0 done, 1 running, 2 failed: 2 is started again, with one slot.
        let p = plan(&j, &[&s0, &r1, &f2], 0);
        assert_eq!((p.indexes.clone(), p.delete.len()), (vec![2], 0));
        // A second pod of a running index and one out of range go.
        let (dup, out) = (
            indexed_pod("dup", "Running", 1),
            indexed_pod("out", "Running", 9),
        );
        let p = plan(&j, &[&s0, &r1, &dup, &out], 0);
        assert_eq!(p.delete, vec!["dup".to_string(), "out".to_string()]);
        // Two pods succeeded for index 0 count once.
        let s0b = indexed_pod("s0b", "Succeeded", 0);
        assert_eq!(count(&j, &[&s0, &s0b]).succeeded, 1);
        let done: Vec<Value> = (0..4)
            .map(|i| indexed_pod(&format!("s{i}"), "Succeeded", i))
            .collect();
        let refs: Vec<&Value> = done.iter().collect();
        let p = plan(&j, &refs, 0);
        assert_eq!(p.finish, Some(Finish::Complete));
        let st = status(
            &j,
            &refs[..3],
            &count(&j, &refs[..3]),
            &plan(&j, &refs[..3], 0),
            "t",
        );
        assert_eq!(st["completedIndexes"], "0-2");
        assert_eq!(st["succeeded"], 3);
    }

    #[test]
    fn the_active_deadline_fails_a_running_job() {
        let mut j = job(json!({"completions": 1, "parallelism": 1, "activeDeadlineSeconds": 10}));
        j["status"]["startTime"] = json!("2026-11-25T00:00:00Z");
        let start = seconds(&j["status"]["startTime"]).unwrap();
        let r = pod("r", "Running");
        assert_eq!(plan(&j, &[&r], start + 5).finish, None);
        assert_eq!(
            plan(&j, &[&r], start + 10).finish,
            Some(Finish::DeadlineExceeded)
        );
    }
}
