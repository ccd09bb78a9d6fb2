//! The join exchange, served to hosts that have no certificate yet: the CA
//! for discovery, then a node certificate for a valid bootstrap token.
//! Nothing else is reachable without a certificate.

use std::net::IpAddr;

use kc_protocol::node_api::{JoinMessage, JoinRequest, JoinResponse};

use crate::apiserver::names;
use crate::pki::CertRequest;
use crate::store::wire::{WireError, read_frame, write_frame};

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

/// Checks the request and the token; issues the node certificate.
pub async fn answer(shared: &Shared, req: JoinRequest) -> JoinResponse {
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
    if !names::is_dns1123_subdomain(&req.node_name) {
        return Err(format!(
            "node name {:?} is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
            req.node_name
        ));
    }
    if req.control_plane {
        return Err(
            "joining as a control-plane member (--control-plane) is not supported yet: join as a worker"
                .into(),
        );
    }
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
