//! The DNS server loop: UDP requests parsed and answered with hickory-proto
//! messages from the current snapshot (swapped in by whoever watches the
//! API server): one datagram, one lookup in memory, one reply. `serve`
//! blocks (the dev command's thread); `serve_async` is the same loop as a
//! task on the node agent's tokio runtime (no thread of its own).

use std::net::UdpSocket;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::records::{Answer, Data, Kind, lookup};
use crate::proxy::Snapshot;

/// Seconds clients may cache an answer (short: Services come and go).
const TTL: u32 = 5;

/// The reply to one request datagram; None for datagrams that are not DNS
/// messages (dropped, as resolvers expect).
pub fn respond(snap: &Snapshot, request: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(request).ok()?;
    if req.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_op_code(req.op_code())
        .set_recursion_desired(req.recursion_desired())
        .set_authoritative(true);
    let Some(query) = req.queries().first() else {
        resp.set_response_code(ResponseCode::FormErr);
        return resp.to_vec().ok();
    };
    resp.add_query(query.clone());
    let kind = match query.query_type() {
        RecordType::A => Kind::A,
        RecordType::SRV => Kind::Srv,
        RecordType::PTR => Kind::Ptr,
        _ => Kind::Other,
    };
    match lookup(snap, &query.name().to_ascii(), kind) {
        Answer::Records(list) => {
            for data in list {
                let rdata = match data {
                    Data::A(ip) => RData::A(A(ip)),
                    Data::Srv(port, target) => RData::SRV(SRV::new(
                        0,
                        100,
                        port,
                        Name::from_ascii(format!("{target}.")).ok()?,
                    )),
                    Data::Ptr(target) => {
                        RData::PTR(PTR(Name::from_ascii(format!("{target}.")).ok()?))
                    }
                };
                resp.add_answer(Record::from_rdata(query.name().clone(), TTL, rdata));
            }
        }
        Answer::NoData => {}
        Answer::NxDomain => {
            resp.set_response_code(ResponseCode::NXDomain);
        }
        Answer::Refused => {
            resp.set_response_code(ResponseCode::Refused);
        }
    }
    resp.to_vec().ok()
}

/// `respond` from the snapshot behind `view`.
fn respond_from(view: &RwLock<Snapshot>, request: &[u8]) -> Option<Vec<u8>> {
    let snap = view.read().unwrap_or_else(|p| p.into_inner());
    respond(&snap, request)
}

/// Serves forever on `socket` from the snapshot behind `view`; `refresh`
/// runs before each request (the dev command re-reads its file there).
pub fn serve(
    socket: &UdpSocket,
    view: &Arc<RwLock<Snapshot>>,
    mut refresh: impl FnMut(&Arc<RwLock<Snapshot>>),
) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = socket.recv_from(&mut buf)?;
        refresh(view);
        if let Some(reply) = respond_from(view, &buf[..len])
            && let Err(err) = socket.send_to(&reply, peer)
        {
            tracing::debug!(%peer, %err, "could not send a DNS reply");
        }
    }
}

/// `serve` as a task: answers on `socket` from `view` until the socket fails.
pub async fn serve_async(
    socket: tokio::net::UdpSocket,
    view: Arc<RwLock<Snapshot>>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = socket.recv_from(&mut buf).await?;
        if let Some(reply) = respond_from(&view, &buf[..len])
            && let Err(err) = socket.send_to(&reply, peer).await
        {
            tracing::debug!(%peer, %err, "could not send a DNS reply");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    #[test]
    fn garbage_is_dropped_and_unknown_names_are_nxdomain() {
        assert!(respond(&Snapshot::default(), b"\x01\x02garbage").is_none());
        let mut q = Message::new();
        q.set_id(7).add_query(Query::query(
            Name::from_ascii("x.default.svc.cluster.local.").unwrap(),
            RecordType::A,
        ));
        let reply = respond(&Snapshot::default(), &q.to_vec().unwrap()).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.id(), 7);
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);
    }
}
