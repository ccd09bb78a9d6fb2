//! Job `completionMode: Indexed` (each
//! pod runs one completion index `0..completions`, told by the
//! `batch.kubernetes.io/job-completion-index` annotation and label, the
//! `JOB_COMPLETION_INDEX` variable and the hostname `<job>-<index>`; the Job
//! reports `status.completedIndexes` as `1,3-5`), as Kubernetes' Job
//! controller does. Pure functions; `job` uses them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Annotation and label holding a pod's completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The variable holding it in every container.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Whether the Job runs in Indexed completion mode.
pub fn is_indexed(job: &Value) -> bool {
    job["spec"]["completionMode"] == "Indexed"
}

/// A pod's completion index (its annotation), if any and valid.
pub fn index_of(pod: &Value) -> Option<usize> {
    pod["metadata"]["annotations"][INDEX_KEY]
        .as_str()?
        .parse()
        .ok()
}

/// `0,1,2,4,6,7` -> `0-2,4,6-7` (Kubernetes' `completedIndexes` format).
pub fn format_indexes(indexes: &BTreeSet<usize>) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in indexes {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    runs.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The indexes below `completions` with a succeeded pod.
pub fn succeeded_indexes(pods: &[&Value], completions: usize) -> BTreeSet<usize> {
    pods.iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .filter_map(|p| index_of(p))
        .filter(|i| *i < completions)
        .collect()
}

/// The `want` lowest indexes that neither succeeded nor have a pod running.
pub fn indexes_to_start(
    completions: usize,
    succeeded: &BTreeSet<usize>,
    running: &BTreeSet<usize>,
    want: usize,
) -> Vec<usize> {
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !running.contains(i))
        .take(want)
        .collect()
}

/// The pod of index `index` from the Job's template pod: named
/// `<job>-<index>-<random>`, hostname `<job>-<index>`, the index in an
/// annotation, a label and every container's environment.
pub fn indexed_pod(job: &Value, template_pod: &Value, index: usize) -> Value {
    let job_name = job["metadata"]["name"].as_str().unwrap_or("job");
    let mut pod = template_pod.clone();
    let meta = &mut pod["metadata"];
    meta["generateName"] = json!(format!("{job_name}-{index}-"));
    for map in ["annotations", "labels"] {
        if !meta[map].is_object() {
            meta[map] = json!({});
        }
        meta[map][INDEX_KEY] = json!(index.to_string());
    }
    let spec = &mut pod["spec"];
    if spec["hostname"].as_str().is_none_or(str::is_empty) {
        spec["hostname"] = json!(format!("{job_name}-{index}"));
    }
    let env = json!({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
        "fieldPath": format!("metadata.annotations['{INDEX_KEY}']")}}});
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            let has = c["env"]
                .as_array()
                .is_some_and(|e| e.iter().any(|v| v["name"] == INDEX_ENV));
            if has {
                continue;
            }
            if !c["env"].is_array() {
                c["env"] = json!([]);
            }
            if let Some(e) = c["env"].as_array_mut() {
                e.push(env.clone());
            }
        }
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_runs() {
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(format_indexes(&set(&[0, 1, 2, 4, 6, 7])), "0-2,4,6-7");
        assert_eq!(format_indexes(&set(&[3])), "3");
        assert_eq!(format_indexes(&set(&[])), "");
    }

    #[test]
    fn missing_indexes_start_lowest_first() {
        let succeeded: BTreeSet<usize> = [0, 2].into();
        let running: BTreeSet<usize> = [1].into();
        assert_eq!(indexes_to_start(6, &succeeded, &running, 2), vec![3, 4]);
        assert_eq!(
            indexes_to_start(3, &succeeded, &running, 2),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn an_indexed_pod_carries_its_index_everywhere() {
        let job = json!({"metadata": {"name": "work"}});
        let template = json!({"metadata": {"generateName": "work-", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]},
                                    {"name": "d"}]}});
        let pod = indexed_pod(&job, &template, 3);
        assert_eq!(pod["metadata"]["generateName"], "work-3-");
        assert_eq!(pod["metadata"]["annotations"][INDEX_KEY], "3");
        assert_eq!(pod["metadata"]["labels"][INDEX_KEY], "3");
        assert_eq!(pod["metadata"]["labels"]["a"], "b");
        assert_eq!(pod["spec"]["hostname"], "work-3");
        for c in pod["spec"]["containers"].as_array().unwrap() {
            let env = c["env"].as_array().unwrap();
            let idx = env.iter().find(|e| e["name"] == INDEX_ENV).unwrap();
            assert_eq!(
                idx["valueFrom"]["fieldRef"]["fieldPath"],
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
        }
        assert_eq!(index_of(&pod), Some(3));
    }
}
