//! Growing and shrinking the control plane from the outside, over the
//! network client: what `kcnode join --control-plane` and the `kcnode store
//! member-add/member-remove` commands do.
//!
//! A member is added as a learner first (it receives the log, starting from
//! a snapshot, but does not vote, so a slow newcomer cannot cost the
//! cluster its quorum), and promoted to voter once it has caught up with the
//! leader's commit index. Changes always go to the current leader, found by
//! asking the given members; a change that fails (leader lost, another
//! change in progress) is retried a few times. `check_removal` says whether
//! a removal keeps the cluster able to serve.

use std::collections::BTreeSet;
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

/// Why a member may not be removed now (`check_removal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemovalRefused {
    #[error("member {0} is not in the control plane's membership")]
    NotAMember(u64),
    #[error(
        "member {0} is the last voting member of the control plane: removing it would end the cluster; to dismantle the cluster, stop its kcnode and delete its data directory"
    )]
    LastMember(u64),
    #[error(
        "the control plane has no quorum now (only {live} of {voters} voting members answer), so no membership change can be committed: start the stopped members first"
    )]
    NoQuorumNow { live: usize, voters: usize },
    #[error(
        "removing member {id} would leave {remaining} voting members of which only {live} answer, fewer than the {needed} a quorum needs: start the stopped members, or first remove the dead ones from a live member with `kcnode member remove`"
    )]
    WouldLoseQuorum {
        id: u64,
        remaining: usize,
        live: usize,
        needed: usize,
    },
}

/// Whether member `id` may be removed from a configuration of `voters`
/// and `learners` when the members in `live` answer: the change must be
/// committed by a quorum of the current voters, and the remaining voters
/// must still have a live quorum of their own (so the cluster keeps
/// serving). A learner's removal only needs the first.
pub fn check_removal(
    voters: &[u64],
    learners: &[u64],
    id: u64,
    live: &BTreeSet<u64>,
) -> Result<(), RemovalRefused> {
    let is_voter = voters.contains(&id);
    if !is_voter && !learners.contains(&id) {
        return Err(RemovalRefused::NotAMember(id));
    }
    if is_voter && voters.len() == 1 {
        return Err(RemovalRefused::LastMember(id));
    }
    let live_voters = voters.iter().filter(|v| live.contains(v)).count();
    if live_voters < quorum(voters.len()) {
        return Err(RemovalRefused::NoQuorumNow {
            live: live_voters,
            voters: voters.len(),
        });
    }
    if is_voter {
        let remaining = voters.len() - 1;
        let live_remaining = voters
            .iter()
            .filter(|v| **v != id && live.contains(v))
            .count();
        if live_remaining < quorum(remaining) {
            return Err(RemovalRefused::WouldLoseQuorum {
                id,
                remaining,
                live: live_remaining,
                needed: quorum(remaining),
            });
        }
    }
    Ok(())
}

/// A majority of `n` voters.
fn quorum(n: usize) -> usize {
    n / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_live_member_of_three_may_leave_and_a_dead_one_may_be_removed() {
        assert_eq!(check_removal(&[1, 2, 3], &[], 2, &live(&[1, 2, 3])), Ok(()));
        assert_eq!(check_removal(&[1, 2, 3], &[], 3, &live(&[1, 2])), Ok(()));
    }

    #[test]
    fn leaving_with_another_member_dead_would_lose_the_quorum() {
        assert_eq!(
            check_removal(&[1, 2, 3], &[], 2, &live(&[1, 2])),
            Err(RemovalRefused::WouldLoseQuorum {
                id: 2,
                remaining: 2,
                live: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn the_last_member_and_strangers_are_refused() {
        assert_eq!(
            check_removal(&[1], &[], 1, &live(&[1])),
            Err(RemovalRefused::LastMember(1))
        );
        assert_eq!(
            check_removal(&[1, 2], &[], 9, &live(&[1, 2])),
            Err(RemovalRefused::NotAMember(9))
        );
    }

    #[test]
    fn without_a_quorum_now_nothing_can_be_removed() {
        assert_eq!(
            check_removal(&[1, 2], &[], 2, &live(&[1])),
            Err(RemovalRefused::NoQuorumNow { live: 1, voters: 2 })
        );
        // A learner goes as long as the voters can commit the change.
        assert_eq!(check_removal(&[1, 2, 3], &[4], 4, &live(&[1, 2])), Ok(()));
    }
}
