//! Job controller with the scheduler and hollow nodes (which run a
//! container whose command is `true` to success and `false` to failure):
//! completions and parallelism, the pods' labels and owner, the Complete
//! condition; backoffLimit turning failures into Failed /
//! BackoffLimitExceeded with exactly backoffLimit + 1 pods.

use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers::replicaset::controller_of;
use kc_tests::hollow::{HollowCluster, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn job(name: &str, command: &str, completions: i64, parallelism: i64, backoff: i64) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"completions": completions, "parallelism": parallelism, "backoffLimit": backoff,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "work", "image": "busybox", "command": [command]}]}}}})
}

async fn pods_of(c: &HollowCluster, job: &str) -> Vec<Value> {
    c.pods("default")
        .await
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["job-name"] == job)
        .collect()
}

fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_run_with_bounded_parallelism_then_the_job_completes() {
    let c = HollowCluster::start(2).await;
    let jobs = resource("batch", "v1", "jobs");
    let created = c
        .client
        .create(jobs, "default", job("count", "true", 5, 2, 6))
        .await
        .expect("create job");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let most_active = std::sync::atomic::AtomicUsize::new(0);
    let done = eventually(WAIT, "the job to complete", || async {
        let active = pods_of(&c, "count")
            .await
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        most_active.fetch_max(active, std::sync::atomic::Ordering::Relaxed);
        let j = c.client.get(jobs, "default", "count").await.ok()?;
        condition(&j, "Complete").is_some().then_some(j)
    })
    .await;
    let most_active = most_active.into_inner();
    assert!(
        most_active <= 2,
        "at most parallelism pods run at once, saw {most_active}"
    );
    assert_eq!(done["status"]["succeeded"], 5, "{}", done["status"]);
    assert!(done["status"].get("failed").is_none_or(Value::is_null));
    assert!(done["status"]["completionTime"].is_string());
    assert_eq!(
        condition(&done, "Complete").unwrap()["reason"],
        "CompletionsReached"
    );
    // Give a wrong controller a moment to overshoot, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = pods_of(&c, "count").await;
    assert_eq!(pods.len(), 5, "exactly completions pods");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded");
        assert_eq!(controller_of(p), Some(("Job", "count", uid.as_str())));
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "count"
        );
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
            uid
        );
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert!(p["spec"]["nodeName"].is_string(), "scheduled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_beyond_the_backoff_limit_fail_the_job() {
    let c = HollowCluster::start(2).await;
    let jobs = resource("batch", "v1", "jobs");
    c.client
        .create(jobs, "default", job("flaky", "false", 1, 1, 2))
        .await
        .expect("create job");
    let failed = eventually(WAIT, "the job to fail", || async {
        let j = c.client.get(jobs, "default", "flaky").await.ok()?;
        condition(&j, "Failed").cloned().map(|cond| (j, cond))
    })
    .await;
    let (j, cond) = failed;
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(
        cond["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(j["status"]["failed"], 3, "{}", j["status"]);
    assert!(condition(&j, "Complete").is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = pods_of(&c, "flaky").await;
    assert_eq!(pods.len(), 3, "backoffLimit + 1 pods, no more");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_validated_like_kubernetes() {
    let c = HollowCluster::start(1).await;
    let jobs = resource("batch", "v1", "jobs");
    let mut bad = job("always", "true", 1, 1, 6);
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let e = c
        .client
        .create(jobs, "default", bad)
        .await
        .expect_err("restartPolicy Always is refused");
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains(
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_job_runs_each_index_once_and_reports_completed_indexes() {
    let c = HollowCluster::start(2).await;
    let jobs = resource("batch", "v1", "jobs");
    let mut spec = job("idx", "true", 4, 2, 6);
    spec["spec"]["completionMode"] = json!("Indexed");
    c.client
        .create(jobs, "default", spec)
        .await
        .expect("create indexed job");
    let done = eventually(WAIT, "the indexed job to complete", || async {
        let j = c.client.get(jobs, "default", "idx").await.ok()?;
        condition(&j, "Complete").is_some().then_some(j)
    })
    .await;
    assert_eq!(
        done["status"]["completedIndexes"], "0-3",
        "{}",
        done["status"]
    );
    assert_eq!(done["status"]["succeeded"], 4);
    let mut indexes: Vec<String> = Vec::new();
    for p in pods_of(&c, "idx").await {
        let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("the index annotation")
            .to_string();
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.starts_with(&format!("idx-{index}-")), "{name}");
        assert_eq!(p["spec"]["hostname"], format!("idx-{index}"));
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            index
        );
        let env = &p["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .is_some_and(|e| e.iter().any(|v| v["name"] == "JOB_COMPLETION_INDEX")),
            "{env}"
        );
        indexes.push(index);
    }
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3"], "one pod per index");
    let refused = c
        .client
        .create(jobs, "default", {
            let mut j = job("noidx", "true", 1, 1, 6);
            j["spec"]["completionMode"] = json!("Indexed");
            j["spec"]["completions"] = Value::Null;
            j["spec"]["parallelism"] = json!(2);
            j
        })
        .await
        .expect_err("Indexed needs completions");
    assert!(
        refused
            .message
            .contains("spec.completions: Required value: when completion mode is Indexed"),
        "{}",
        refused.message
    );
}
