//! Growing and shrinking the control plane from the outside, over the
//! network client: what `kcnode join --control-plane` and the `kcnode store
//! member-add/member-remove` commands do.
//!
//! A member is added as a learner first (it receives the log, starting from
//! a snapshot, but does not vote, so a slow newcomer cannot cost the
//! cluster its quorum), and promoted to voter once it has caught up with the
//! leader's commit index. Changes always go to the current leader, found by
//! asking the given members; a change that fails (leader lost, another
//! change in progress) is retried a few times.

use std::future::Future;
use std::time::Duration;

use super::api::{MemberStatus, MembershipChange};
use super::client::{ClientError, StoreClient};
use super::transport::MemberTls;

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("no leader among {0:?}: is a quorum of the control plane running?")]
    NoLeader(Vec<String>),
    #[error(
        "member {id} at {address} did not catch up within {secs} s; is it running (with --join)?"
    )]
    NoCatchUp { id: u64, address: String, secs: u64 },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A client connected to the current leader.
pub async fn leader_client(
    endpoints: &[String],
    tls: &MemberTls,
) -> Result<StoreClient, MembershipError> {
    for _ in 0..50 {
        for e in endpoints {
            let Ok(c) = StoreClient::connect(e, tls).await else {
                continue;
            };
            let Ok(s) = c.status().await else { continue };
            if s.leader == s.id {
                return Ok(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(MembershipError::NoLeader(endpoints.to_vec()))
}

/// Run `f` against the leader, retrying a few times if it fails.
pub async fn with_leader<F, Fut, T>(
    endpoints: &[String],
    tls: &MemberTls,
    f: F,
) -> Result<T, MembershipError>
where
    F: Fn(StoreClient) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut last = None;
    for _ in 0..5 {
        let c = leader_client(endpoints, tls).await?;
        match f(c).await {
            Ok(t) => return Ok(t),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    Err(last
        .map(MembershipError::from)
        .unwrap_or_else(|| MembershipError::NoLeader(endpoints.to_vec())))
}

/// Add member `id` (running at `address`, started to join): learner, wait
/// until it caught up, then voter. Idempotent: an existing member is left
/// as it is, a learner is promoted.
pub async fn add_member(
    endpoints: &[String],
    tls: &MemberTls,
    id: u64,
    address: &str,
    catch_up: Duration,
) -> Result<MemberStatus, MembershipError> {
    let s = with_leader(endpoints, tls, |c| async move {
        let s = c.status().await?;
        if s.voters.contains(&id) || s.learners.contains(&id) {
            return Ok(s);
        }
        c.change_membership(MembershipChange::AddLearner {
            id,
            address: address.to_string(),
        })
        .await
    })
    .await?;
    if s.voters.contains(&id) {
        return Ok(s);
    }
    let newcomer = StoreClient::connect(address, tls).await?;
    let deadline = tokio::time::Instant::now() + catch_up;
    loop {
        let leader = leader_client(endpoints, tls).await?.status().await?;
        // Caught up: it holds a configuration that names it, and its log
        // is close to the leader's.
        if let Ok(mine) = newcomer.status().await
            && (mine.learners.contains(&id) || mine.voters.contains(&id))
            && mine.applied_index + 10 >= leader.commit_index
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(MembershipError::NoCatchUp {
                id,
                address: address.to_string(),
                secs: catch_up.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    with_leader(endpoints, tls, |c| async move {
        c.change_membership(MembershipChange::AddVoter {
            id,
            address: address.to_string(),
        })
        .await
    })
    .await
}

/// Remove member `id` from the cluster.
pub async fn remove_member(
    endpoints: &[String],
    tls: &MemberTls,
    id: u64,
) -> Result<MemberStatus, MembershipError> {
    with_leader(endpoints, tls, |c| async move {
        c.change_membership(MembershipChange::Remove { id }).await
    })
    .await
}
