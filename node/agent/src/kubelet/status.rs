//! The pod status the kubelet reports, computed by a pure function from the
//! pod spec and the kubelet's record of what it observed: phase, the four
//! conditions (PodScheduled, Initialized, ContainersReady, Ready),
//! containerStatuses and initContainerStatuses (state, lastState,
//! restartCount, ready, started), hostIP, podIP and startTime.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::record::{ContainerRecord, Observed, PodRecord, Termination};

/// The pod's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn of(pod: &Pod) -> RestartPolicy {
        match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Should a container that exited with `exit_code` run again?
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

pub fn time(s: &Option<String>) -> Option<Time> {
    s.as_deref().and_then(|s| s.parse().ok()).map(Time)
}

fn terminated(t: &Termination) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(format!("kc://{}", t.container_id)),
            exit_code: t.exit_code,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: time(&t.started_at),
            finished_at: time(&t.finished_at),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_status(name: &str, c: &ContainerRecord) -> ContainerStatus {
    let state = match &c.state {
        Observed::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        Observed::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(started_at),
            }),
            ..Default::default()
        },
        Observed::Terminated(t) => terminated(t),
    };
    let running = matches!(c.state, Observed::Running { .. });
    ContainerStatus {
        name: name.to_string(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.id.as_ref().map(|id| format!("kc://{id}")),
        ready: running && c.started && c.ready,
        started: Some(running && c.started),
        restart_count: c.restart_count,
        state: Some(state),
        last_state: Some(c.last_state.as_ref().map(terminated).unwrap_or_default()),
        ..Default::default()
    }
}

fn exit_code(c: &ContainerRecord) -> Option<i32> {
    match &c.state {
        Observed::Terminated(t) => Some(t.exit_code),
        _ => None,
    }
}

fn ever_ran(c: &ContainerRecord) -> bool {
    !matches!(c.state, Observed::Waiting { .. }) || c.last_state.is_some()
}

/// Init containers all completed successfully.
pub fn initialized(pod: &Pod, rec: &PodRecord) -> bool {
    init_names(pod)
        .iter()
        .all(|n| rec.init.get(n).and_then(exit_code) == Some(0))
}

/// An init container failed for good (restartPolicy Never).
pub fn init_failed(pod: &Pod, rec: &PodRecord) -> bool {
    RestartPolicy::of(pod) == RestartPolicy::Never
        && rec
            .init
            .values()
            .any(|c| exit_code(c).is_some_and(|e| e != 0))
}

fn init_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|v| v.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

fn app_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The pod phase (Kubernetes' rules, for the states we observe).
pub fn phase(pod: &Pod, rec: &PodRecord) -> &'static str {
    if init_failed(pod, rec) {
        return "Failed";
    }
    if !initialized(pod, rec) {
        return "Pending";
    }
    let policy = RestartPolicy::of(pod);
    let apps: Vec<ContainerRecord> = app_names(pod)
        .iter()
        .map(|n| rec.containers.get(n).cloned().unwrap_or_default())
        .collect();
    let codes: Vec<Option<i32>> = apps.iter().map(exit_code).collect();
    let all_done = !codes.is_empty() && codes.iter().all(|c| c.is_some());
    if all_done && policy != RestartPolicy::Always {
        let all_ok = codes.iter().all(|c| *c == Some(0));
        if all_ok {
            return "Succeeded";
        }
        if policy == RestartPolicy::Never {
            return "Failed";
        }
    }
    if apps
        .iter()
        .any(|c| matches!(c.state, Observed::Running { .. }))
    {
        return "Running";
    }
    if apps.iter().all(ever_ran) && !apps.is_empty() {
        // Restarting (back-off) or some finished while others wait to restart.
        return "Running";
    }
    "Pending"
}

fn condition(kind: &str, ok: bool, reason: Option<&str>) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: if ok { None } else { reason.map(str::to_string) },
        ..Default::default()
    }
}

/// The status to report for `pod`, given what the kubelet observed.
pub fn compute(pod: &Pod, rec: &PodRecord, host_ip: &str, pod_ip: &str) -> PodStatus {
    let phase = phase(pod, rec);
    let initialized = initialized(pod, rec);
    let app = app_names(pod);
    let statuses: Vec<ContainerStatus> = app
        .iter()
        .map(|n| {
            let mut c = rec.containers.get(n).cloned().unwrap_or_default();
            if !initialized && c.id.is_none() && c.state == Observed::default() {
                c.state = Observed::Waiting {
                    reason: "PodInitializing".into(),
                    message: None,
                };
            }
            container_status(n, &c)
        })
        .collect();
    let init_statuses: Vec<ContainerStatus> = init_names(pod)
        .iter()
        .map(|n| {
            let mut c = rec.init.get(n).cloned().unwrap_or_default();
            if c.state == Observed::default() && c.id.is_none() {
                c.state = Observed::Waiting {
                    reason: "PodInitializing".into(),
                    message: None,
                };
            }
            container_status(n, &c)
        })
        .collect();
    let done = phase == "Succeeded" || phase == "Failed";
    let ready = !done && !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let not_ready_reason = if done {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let mut status = PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(vec![
            condition("PodScheduled", true, None),
            condition(
                "Initialized",
                initialized || done && !init_failed(pod, rec),
                Some("ContainersNotInitialized"),
            ),
            condition("ContainersReady", ready, Some(not_ready_reason)),
            condition("Ready", ready, Some(not_ready_reason)),
        ]),
        container_statuses: Some(statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        start_time: time(&rec.start_time),
        qos_class: Some(qos_class(pod).to_string()),
        ..Default::default()
    };
    if !host_ip.is_empty() {
        status.host_ip = Some(host_ip.to_string());
        status.host_ips = Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]);
    }
    if !pod_ip.is_empty() {
        status.pod_ip = Some(pod_ip.to_string());
        status.pod_ips = Some(vec![PodIP {
            ip: pod_ip.to_string(),
        }]);
    }
    status
}

/// BestEffort (no requests or limits), Guaranteed (limits = requests for
/// cpu and memory in every container) or Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let res: Vec<_> = spec
        .containers
        .iter()
        .map(|c| c.resources.clone())
        .collect();
    let any = res.iter().any(|r| {
        r.as_ref().is_some_and(|r| {
            r.limits.as_ref().is_some_and(|l| !l.is_empty())
                || r.requests.as_ref().is_some_and(|q| !q.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = res.iter().all(|r| {
        let Some(r) = r else { return false };
        ["cpu", "memory"].iter().all(|k| {
            let l = r.limits.as_ref().and_then(|l| l.get(*k));
            let q = r.requests.as_ref().and_then(|q| q.get(*k)).or(l);
            l.is_some() && l == q
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(policy: &str, containers: &[&str], inits: &[&str]) -> Pod {
        let c = |n: &&str| k8s_openapi::api::core::v1::Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                restart_policy: Some(policy.into()),
                containers: containers.iter().map(c).collect(),
                init_containers: Some(inits.iter().map(c).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn term(code: i32, reason: &str) -> Termination {
        Termination {
            container_id: "x".into(),
            exit_code: code,
            reason: reason.into(),
            message: None,
            started_at: Some("2026-01-01T00:00:00Z".into()),
            finished_at: Some("2026-01-01T00:00:01Z".into()),
        }
    }

    fn running(ready: bool) -> ContainerRecord {
        ContainerRecord {
            id: Some("c1".into()),
            state: Observed::Running {
                started_at: Some("2026-01-01T00:00:00Z".into()),
            },
            started: true,
            ready,
            ..Default::default()
        }
    }

    fn exited(code: i32) -> ContainerRecord {
        ContainerRecord {
            id: Some("c1".into()),
            state: Observed::Terminated(term(code, if code == 0 { "Completed" } else { "Error" })),
            ..Default::default()
        }
    }

    fn cond(s: &PodStatus, kind: &str) -> String {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
            .status
            .clone()
    }

    #[test]
    fn new_pod_is_pending_and_not_ready() {
        let p = pod("Always", &["a"], &[]);
        let s = compute(&p, &PodRecord::default(), "10.0.0.1", "");
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "PodScheduled"), "True");
        assert_eq!(cond(&s, "Initialized"), "True");
        assert_eq!(cond(&s, "Ready"), "False");
        assert_eq!(s.host_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(s.pod_ip, None);
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
    }

    #[test]
    fn running_and_ready_containers_make_the_pod_ready() {
        let p = pod("Always", &["a", "b"], &[]);
        let mut rec = PodRecord::default();
        rec.containers.insert("a".into(), running(true));
        rec.containers.insert("b".into(), running(false));
        let s = compute(&p, &rec, "", "");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "ContainersReady"), "False");
        rec.containers.insert("b".into(), running(true));
        let s = compute(&p, &rec, "", "");
        assert_eq!(cond(&s, "ContainersReady"), "True");
        assert_eq!(cond(&s, "Ready"), "True");
    }

    #[test]
    fn phases_follow_restart_policy() {
        for (policy, code, want) in [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Always", 0, "Running"),
        ] {
            let p = pod(policy, &["a"], &[]);
            let mut rec = PodRecord::default();
            rec.containers.insert("a".into(), exited(code));
            assert_eq!(phase(&p, &rec), want, "{policy} exit {code}");
        }
    }

    #[test]
    fn completed_pod_reports_pod_completed_and_reason() {
        let p = pod("Never", &["a"], &[]);
        let mut rec = PodRecord::default();
        rec.containers.insert("a".into(), exited(0));
        let s = compute(&p, &rec, "", "");
        let ready = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
        let t = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(t.reason.as_deref(), Some("Completed"));
        assert_eq!(t.container_id.as_deref(), Some("kc://x"));
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let p = pod("Always", &["a"], &["i1", "i2"]);
        let mut rec = PodRecord::default();
        rec.init.insert("i1".into(), exited(0));
        let s = compute(&p, &rec, "", "");
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let app = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            app.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("PodInitializing")
        );
        assert_eq!(cond(&s, "Initialized"), "False");
        let inits = s.init_container_statuses.unwrap();
        assert_eq!(
            inits[1]
                .state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("PodInitializing")
        );
        rec.init.insert("i2".into(), exited(0));
        assert_eq!(cond(&compute(&p, &rec, "", ""), "Initialized"), "True");
        let never = pod("Never", &["a"], &["i1"]);
        let mut rec = PodRecord::default();
        rec.init.insert("i1".into(), exited(2));
        assert_eq!(phase(&never, &rec), "Failed");
    }

    #[test]
    fn crash_loop_keeps_last_state_and_restart_count() {
        let p = pod("Always", &["a"], &[]);
        let mut rec = PodRecord::default();
        rec.containers.insert(
            "a".into(),
            ContainerRecord {
                id: Some("c2".into()),
                state: Observed::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some("back-off 10s".into()),
                },
                last_state: Some(term(137, "OOMKilled")),
                restart_count: 2,
                ..Default::default()
            },
        );
        let s = compute(&p, &rec, "", "");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 2);
        assert!(!cs.ready);
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.reason.as_deref(), Some("OOMKilled"));
        assert_eq!(last.exit_code, 137);
    }

    #[test]
    fn qos_classes() {
        use k8s_openapi::api::core::v1::ResourceRequirements;
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut p = pod("Always", &["a"], &[]);
        assert_eq!(qos_class(&p), "BestEffort");
        let lim = [("cpu", "1"), ("memory", "64Mi")]
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        p.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements {
            limits: Some(lim),
            ..Default::default()
        });
        assert_eq!(qos_class(&p), "Guaranteed");
        p.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .limits
            .as_mut()
            .unwrap()
            .remove("cpu");
        assert_eq!(qos_class(&p), "Burstable");
    }
}
