//! The join exchange, served to hosts that have no certificate yet: the CA
//! for discovery, then a node certificate for a valid bootstrap token.
//! Nothing else is reachable without a certificate.

use std::net::IpAddr;

use kc_protocol::node_api::{JoinMessage, JoinRequest, JoinResponse};

use kc_apiserver::names;
use kc_pki::CertRequest;
use kc_store_api::wire::{WireError, read_frame, write_frame};

use super::{Shared, read_hello, tokens};

pub async fn serve(
    shared: &Shared,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), WireError> {
    read_hello(&mut send, &mut recv, JoinResponse::Refused).await?;
    let Some(message) = read_frame::<JoinMessage>(&mut recv).await? else {
        return Ok(());
    };
    let response = match message {
        JoinMessage::GetCa => JoinResponse::Ca {
            ca_pem: shared.ca.cert_pem().to_string(),
        },
        JoinMessage::Join(req) => answer(shared, req).await,
    };
    write_frame(&mut send, &response).await?;
    let _ = send.finish();
    // Let the answer reach the peer before the stream is dropped.
    let _ = send.stopped().await;
    Ok(())
}

/// Checks the request and the token; issues the node certificate (or,
/// for a control-plane join, hands over what a new member needs).
pub async fn answer(shared: &Shared, req: JoinRequest) -> JoinResponse {
    if req.control_plane {
        return match check_member(shared, &req).await {
            Ok(()) => admit_member(shared, &req),
            Err(why) => {
                tracing::warn!(node = %req.node_name, "control-plane join refused: {why}");
                JoinResponse::Refused(why)
            }
        };
    }
    match check(shared, &req).await {
        Ok(ips) => issue(shared, &req, &ips),
        Err(why) => {
            tracing::warn!(node = %req.node_name, "join refused: {why}");
            JoinResponse::Refused(why)
        }
    }
}

async fn check(shared: &Shared, req: &JoinRequest) -> Result<Vec<IpAddr>, String> {
    tokens::verify(&shared.rest, &req.token).await?;
    check_name(req)?;
    req.addresses
        .iter()
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| format!("address {a:?} of node {} is not an IP", req.node_name))
        })
        .collect()
}

fn issue(shared: &Shared, req: &JoinRequest, ips: &[IpAddr]) -> JoinResponse {
    let mut ips = ips.to_vec();
    let loopback: IpAddr = [127, 0, 0, 1].into();
    if !ips.contains(&loopback) {
        ips.push(loopback);
    }
    let request = CertRequest::node(&req.node_name, std::slice::from_ref(&req.node_name), &ips);
    match shared.ca.issue(&request) {
        Ok(cert) => {
            tracing::info!(node = %req.node_name, "node joined; certificate issued");
            JoinResponse::Accepted {
                ca_pem: shared.ca.cert_pem().to_string(),
                cert_pem: cert.cert_pem,
                key_pem: cert.key_pem,
                members: shared.members(),
            }
        }
        Err(e) => JoinResponse::Refused(format!("cannot issue the node certificate: {e}")),
    }
}

fn check_name(req: &JoinRequest) -> Result<(), String> {
    if names::is_dns1123_subdomain(&req.node_name) {
        Ok(())
    } else {
        Err(format!(
            "node name {:?} is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
            req.node_name
        ))
    }
}

async fn check_member(shared: &Shared, req: &JoinRequest) -> Result<(), String> {
    tokens::verify_control_plane(&shared.rest, &req.token).await?;
    check_name(req)?;
    if shared.store_members().is_empty() {
        return Err(
            "this control plane runs no replicated store: restart its `kcnode init` with this version, then join again"
                .into(),
        );
    }
    Ok(())
}

/// A fresh Raft id (random, so two hosts joining at once never collide),
/// unused by `taken`.
pub fn new_member_id(taken: &std::collections::BTreeMap<u64, String>) -> u64 {
    loop {
        let id = rand::random::<u64>() >> 16;
        if id > 1 && !taken.contains_key(&id) {
            return id;
        }
    }
}

fn admit_member(shared: &Shared, req: &JoinRequest) -> JoinResponse {
    let members = shared.store_members();
    let member_id = new_member_id(&members);
    tracing::info!(node = %req.node_name, member_id, "control-plane member admitted; it adds itself to the store");
    JoinResponse::MemberAccepted {
        ca_pem: shared.ca.cert_pem().to_string(),
        ca_key_pem: shared.ca.key_pem().to_string(),
        member_id,
        members: members.into_iter().collect(),
    }
}
