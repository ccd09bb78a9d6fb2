//! The CronJob controller against `kcnode serve-api` (its controllers run,
//! no node does: the Jobs it starts never finish unless a test marks them
//! so through their status), driven with kubectl 1.32 on a schedule of
//! every minute. Each conformance behaviour of the CronJob suite kc
//! implements is a function named after its codename and written from its
//! description; one test runs them all at once, each on its own API
//! server, since each waits on the same minute boundaries (run two at a
//! time by the harness they took five minutes, together two and a half).

mod api_common;

use std::time::{Duration, Instant};

use api_common::ApiServer;
use serde_json::{Value, json};

/// A CronJob firing every minute with `policy`; `extra` merged into spec.
fn cron_job(api: &ApiServer, name: &str, policy: &str, extra: Value) {
    let mut cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": policy,
            "jobTemplate": {"metadata": {"labels": {"cronjob": name}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}]}}}}}});
    if let (Some(spec), Some(more)) = (cj["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(more.clone());
    }
    let out = api.apply_text(&cj.to_string(), &[]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));
}

/// The Jobs the CronJob owns, by name (those being deleted left out).
fn jobs_of(api: &ApiServer, cronjob: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(&api.ok(&["get", "jobs", "-o", "json"])).unwrap();
    let mut jobs: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| {
            j["metadata"]["deletionTimestamp"].is_null()
                && j["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        r["kind"] == "CronJob" && r["name"] == cronjob && r["controller"] == true
                    })
        })
        .cloned()
        .collect();
    jobs.sort_by_key(|j| j["metadata"]["name"].as_str().unwrap_or("").to_string());
    jobs
}

fn status(api: &ApiServer, cronjob: &str) -> Value {
    let cj: Value =
        serde_json::from_str(&api.ok(&["get", "cronjob", cronjob, "-o", "json"])).unwrap();
    cj["status"].clone()
}

/// Waits up to `seconds` for `ok` (a schedule of every minute fires
/// within 60 s of any moment).
fn wait(what: &str, seconds: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("timed out after {seconds}s waiting for {what}");
}

fn sig_apps_cron_job_should_schedule_multiple_jobs_concurrently() {
    let api = ApiServer::start();
    cron_job(&api, "concurrent", "Allow", json!({}));
    wait("two active Jobs", 150, || {
        jobs_of(&api, "concurrent").len() >= 2
    });
    let jobs = jobs_of(&api, "concurrent");
    for j in &jobs {
        let name = j["metadata"]["name"].as_str().unwrap();
        let minutes: i64 = name
            .strip_prefix("concurrent-")
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not <cronjob>-<minutes>"));
        let scheduled =
            j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} lacks its scheduled time"));
        assert!(scheduled.ends_with(":00Z"), "{scheduled}");
        assert!(minutes > 0);
        assert_eq!(j["metadata"]["labels"]["cronjob"], "concurrent");
    }
    wait("both in status.active", 10, || {
        status(&api, "concurrent")["active"]
            .as_array()
            .is_some_and(|a| a.len() >= 2)
    });
    assert!(status(&api, "concurrent")["lastScheduleTime"].is_string());
    let printed = api.ok(&["get", "cronjob", "concurrent"]);
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    // NAME, the five schedule fields, TIMEZONE, SUSPEND, then ACTIVE.
    assert!(row[8].parse::<u32>().unwrap() >= 2, "ACTIVE: {printed}");
}

fn sig_apps_cron_job_should_not_schedule_new_jobs_when_forbid_concurrent() {
    let api = ApiServer::start();
    cron_job(&api, "forbid", "Forbid", json!({}));
    wait("the first Job", 75, || !jobs_of(&api, "forbid").is_empty());
    let first = jobs_of(&api, "forbid");
    // The next minute passes with the first still running: nothing new.
    std::thread::sleep(Duration::from_secs(65));
    let now = jobs_of(&api, "forbid");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["metadata"]["uid"], first[0]["metadata"]["uid"]);
    assert_eq!(
        status(&api, "forbid")["active"].as_array().map(Vec::len),
        Some(1)
    );
}

fn sig_apps_cron_job_should_replace_jobs_when_replace_concurrent() {
    let api = ApiServer::start();
    cron_job(&api, "replace", "Replace", json!({}));
    wait("the first Job", 75, || !jobs_of(&api, "replace").is_empty());
    let first = jobs_of(&api, "replace")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    wait("a Job replacing the first", 75, || {
        let now = jobs_of(&api, "replace");
        now.len() == 1 && now[0]["metadata"]["name"] != first.as_str()
    });
    let active = status(&api, "replace")["active"].clone();
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{active}");
}

fn sig_apps_cron_job_should_not_schedule_jobs_when_suspended() {
    let api = ApiServer::start();
    cron_job(&api, "suspended", "Allow", json!({"suspend": true}));
    std::thread::sleep(Duration::from_secs(65));
    assert!(jobs_of(&api, "suspended").is_empty());
    assert!(status(&api, "suspended")["active"].is_null());
    // Resumed, it starts the latest time it missed.
    api.ok(&[
        "patch",
        "cronjob",
        "suspended",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    wait("a Job once resumed", 75, || {
        !jobs_of(&api, "suspended").is_empty()
    });
}

fn finished_jobs_beyond_the_history_limits_are_deleted() {
    let api = ApiServer::start();
    cron_job(
        &api,
        "history",
        "Allow",
        json!({"successfulJobsHistoryLimit": 1}),
    );
    wait("two Jobs", 150, || jobs_of(&api, "history").len() >= 2);
    // What a Job controller with nodes would write when the pods succeed.
    for (i, j) in jobs_of(&api, "history").iter().take(2).enumerate() {
        let name = j["metadata"]["name"].as_str().unwrap();
        let done = format!("2026-01-01T00:0{i}:00Z");
        let patch = json!({"status": {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
            "completionTime": done,
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                           {"type": "Complete", "status": "True"}]}});
        api.ok(&[
            "patch",
            "job",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    }
    wait("the older finished Job to be deleted", 30, || {
        let finished: Vec<Value> = jobs_of(&api, "history")
            .into_iter()
            .filter(|j| {
                j["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True")
            })
            .collect();
        finished.len() == 1
    });
    wait("lastSuccessfulTime", 10, || {
        status(&api, "history")["lastSuccessfulTime"].is_string()
    });
}

#[test]
fn cron_job_behaviours() {
    let behaviours: [(&str, fn()); 5] = [
        (
            "sig_apps_cron_job_should_schedule_multiple_jobs_concurrently",
            sig_apps_cron_job_should_schedule_multiple_jobs_concurrently,
        ),
        (
            "sig_apps_cron_job_should_not_schedule_new_jobs_when_forbid_concurrent",
            sig_apps_cron_job_should_not_schedule_new_jobs_when_forbid_concurrent,
        ),
        (
            "sig_apps_cron_job_should_replace_jobs_when_replace_concurrent",
            sig_apps_cron_job_should_replace_jobs_when_replace_concurrent,
        ),
        (
            "sig_apps_cron_job_should_not_schedule_jobs_when_suspended",
            sig_apps_cron_job_should_not_schedule_jobs_when_suspended,
        ),
        (
            "finished_jobs_beyond_the_history_limits_are_deleted",
            finished_jobs_beyond_the_history_limits_are_deleted,
        ),
    ];
    let running: Vec<_> = behaviours
        .iter()
        .map(|(name, f)| (*name, std::thread::spawn(*f)))
        .collect();
    let failed: Vec<&str> = running
        .into_iter()
        .filter_map(|(name, t)| t.join().is_err().then_some(name))
        .collect();
    assert!(
        failed.is_empty(),
        "failed: {failed:?} (their panics are above)"
    );
}
