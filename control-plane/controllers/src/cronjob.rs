//! CronJob: starts a Job from the CronJob's `jobTemplate` each time its
//! schedule fires (in its `timeZone`, or this process's), as
//! kube-controller-manager's controller does:
//! - the Job is named `<cronjob>-<scheduled time in minutes since the
//!   epoch>`, so a time is started at most once whoever retries, owned by
//!   the CronJob and annotated with its scheduled time;
//! - only the latest missed time is started (a restart or a long pause
//!   does not start a backlog), not when `startingDeadlineSeconds` has
//!   passed since it, and never while `suspend` is true;
//! - `concurrencyPolicy`: Allow starts beside running Jobs, Forbid skips
//!   the time while one runs, Replace deletes the running ones first;
//! - status: `active` (the running Jobs), `lastScheduleTime`,
//!   `lastSuccessfulTime`; finished Jobs beyond `successfulJobsHistoryLimit`
//!   and `failedJobsHistoryLimit` are deleted, oldest first.
//!
//! Each reconcile asks to run again when the schedule next fires, so the
//! loop needs no clock of its own; Job events wake it too.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::replicaset::{controller_of, owner_ref};
use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::clock;
use kc_client::cron;
use kc_client::status::ApiError;

/// The annotation a started Job carries: the time it was scheduled for.
pub const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut cronjobs = client.informer(resource("batch", "v1", "cronjobs"));
    let mut jobs = client.informer(resource("batch", "v1", "jobs"));
    let requeue = queue.clone();
    let _worker = spawn_worker(client.clone(), queue.clone(), "cronjob", move |c, k| {
        let requeue = requeue.clone();
        async move { reconcile(&c, &requeue, &k).await }
    });
    loop {
        tokio::select! {
            Some(ev) = cronjobs.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev {
                queue.add(&key_of(&o));
            },
            Some(ev) = jobs.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev
                && let Some(("CronJob", name, _)) = controller_of(&o)
            {
                queue.add(&format!("{}/{name}", o["metadata"]["namespace"].as_str().unwrap_or("")));
            },
            else => return,
        }
    }
}

/// How a Job ended (None: it has not).
fn finished(job: &Value) -> Option<&'static str> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "True")
        .find_map(|c| match c["type"].as_str() {
            Some("Complete") => Some("Complete"),
            Some("Failed") => Some("Failed"),
            _ => None,
        })
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn reference(job: &Value) -> Value {
    let meta = &job["metadata"];
    json!({"kind": "Job", "apiVersion": "batch/v1", "namespace": meta["namespace"],
        "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]})
}

/// The Job `cronjob` starts for `scheduled`.
pub fn job_for(cronjob: &Value, scheduled: Timestamp) -> Value {
    let template = &cronjob["spec"]["jobTemplate"];
    let name = format!(
        "{}-{}",
        cronjob["metadata"]["name"].as_str().unwrap_or("cronjob"),
        scheduled.as_second() / 60
    );
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(name);
    meta["namespace"] = cronjob["metadata"]["namespace"].clone();
    meta["ownerReferences"] = json!([owner_ref(cronjob)]);
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][SCHEDULED_AT] = json!(scheduled.to_string());
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template["spec"]})
}

async fn delete_job(client: &Client, ns: &str, job: &Value) -> Result<(), ApiError> {
    let jobs = resource("batch", "v1", "jobs");
    let name = job["metadata"]["name"].as_str().unwrap_or("");
    match client
        .delete(jobs, ns, name, json!({"propagationPolicy": "Background"}))
        .await
    {
        Err(e) if e.code != 404 => Err(e),
        _ => Ok(()),
    }
}

/// One step for the CronJob `key`.
pub async fn reconcile(client: &Client, queue: &WorkQueue, key: &str) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let cronjobs = resource("batch", "v1", "cronjobs");
    let jobs = resource("batch", "v1", "jobs");
    let cj = match client.get(cronjobs, ns, name).await {
        Ok(cj) => cj,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if cj["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let spec = &cj["spec"];
    let zone_name = spec["timeZone"].as_str();
    let (schedule, zone) = match (
        cron::parse(spec["schedule"].as_str().unwrap_or(""), zone_name),
        cron::time_zone(zone_name),
    ) {
        (Ok(s), Ok(z)) => (s, z),
        (Err(why), _) | (_, Err(why)) => {
            // The API server refuses these; one stored before it did waits.
            tracing::warn!(cronjob = key, "cannot schedule: {why}");
            return Ok(());
        }
    };
    let uid = cj["metadata"]["uid"].as_str().unwrap_or("");
    let (all, _) = client.list(jobs, Some(ns)).await?;
    let mut owned: Vec<Value> = all
        .into_iter()
        .filter(|j| controller_of(j).is_some_and(|(k, _, u)| k == "CronJob" && u == uid))
        .collect();
    let now = clock::now();
    let since = timestamp(&cj["status"]["lastScheduleTime"])
        .or_else(|| timestamp(&cj["metadata"]["creationTimestamp"]))
        .unwrap_or(now);
    let mut last_schedule = cj["status"]["lastScheduleTime"].clone();
    let (due, missed) = cron::latest_missed(&schedule, &zone, since, now);
    if let Some(t) = due
        && spec["suspend"] != true
    {
        if missed > cron::MAX_MISSED {
            tracing::warn!(
                cronjob = key,
                "too many missed start times ({}+): starting only the latest, {t}",
                cron::MAX_MISSED
            );
        }
        let deadline = spec["startingDeadlineSeconds"].as_i64();
        let too_late = deadline.is_some_and(|d| now.as_second() - t.as_second() > d);
        let policy = spec["concurrencyPolicy"].as_str().unwrap_or("Allow");
        let running = owned.iter().any(|j| finished(j).is_none());
        let forbidden = policy == "Forbid" && running;
        let start = !(too_late || forbidden);
        if start && policy == "Replace" && running {
            let replaced: Vec<Value> = owned
                .iter()
                .filter(|j| finished(j).is_none())
                .cloned()
                .collect();
            for j in &replaced {
                delete_job(client, ns, j).await?;
            }
            owned.retain(|j| finished(j).is_some());
        }
        if start {
            let job = job_for(&cj, t);
            match client.create(jobs, ns, job).await {
                Ok(made) => owned.push(made),
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
            last_schedule = json!(t.to_string());
        }
    }
    // History: the newest finished Jobs of each outcome are kept.
    for (outcome, limit_field, default) in [
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ] {
        let limit = spec[limit_field].as_i64().unwrap_or(default).max(0) as usize;
        let mut ended: Vec<&Value> = owned
            .iter()
            .filter(|j| finished(j) == Some(outcome))
            .collect();
        ended.sort_by_key(|j| {
            timestamp(&j["status"]["completionTime"])
                .or_else(|| timestamp(&j["metadata"]["creationTimestamp"]))
        });
        if ended.len() > limit {
            for j in &ended[..ended.len() - limit] {
                delete_job(client, ns, j).await?;
            }
        }
    }
    let active: Vec<Value> = owned
        .iter()
        .filter(|j| finished(j).is_none() && j["metadata"]["deletionTimestamp"].is_null())
        .map(reference)
        .collect();
    let last_success = owned
        .iter()
        .filter(|j| finished(j) == Some("Complete"))
        .filter_map(|j| timestamp(&j["status"]["completionTime"]))
        .max()
        .map(|t| json!(t.to_string()))
        .unwrap_or_else(|| cj["status"]["lastSuccessfulTime"].clone());
    let mut status = json!({});
    if !active.is_empty() {
        status["active"] = json!(active);
    }
    if !last_schedule.is_null() {
        status["lastScheduleTime"] = last_schedule;
    }
    if !last_success.is_null() {
        status["lastSuccessfulTime"] = last_success;
    }
    if cj["status"] != status {
        let mut patch = status.clone();
        if active.is_empty() {
            patch["active"] = Value::Null;
        }
        match client
            .merge_patch(cronjobs, ns, name, "status", &json!({"status": patch}))
            .await
        {
            Err(e) if e.code != 404 => return Err(e),
            _ => {}
        }
    }
    if let Some(next) = cron::next_after(&schedule, &zone, clock::now()) {
        let wait = (next.as_second() - clock::now().as_second()).max(0) as u64;
        queue.retry_after(key, Duration::from_secs(wait) + Duration::from_millis(500));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_named_by_their_minute_and_owned_by_the_cronjob() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "default", "uid": "u1"},
            "spec": {"jobTemplate": {"metadata": {"labels": {"app": "x"}},
                "spec": {"template": {"spec": {"restartPolicy": "Never"}}}}}});
        let t: Timestamp = "2026-12-08T03:00:00Z".parse().unwrap();
        let job = job_for(&cj, t);
        assert_eq!(
            job["metadata"]["name"],
            format!("nightly-{}", t.as_second() / 60)
        );
        assert_eq!(job["metadata"]["labels"]["app"], "x");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_AT],
            "2026-12-08T03:00:00Z"
        );
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn finished_jobs_say_how() {
        assert_eq!(finished(&json!({})), None);
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(finished(&done), Some("Complete"));
    }
}
