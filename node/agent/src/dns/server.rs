//! The DNS server loop: UDP requests parsed and answered with hickory-proto
//! messages from the current snapshot (swapped in by whoever watches the
//! API server): one datagram, one lookup in memory, one reply. `serve`
//! blocks (the dev command's thread); `serve_async` is the same loop as a
//! task on the node agent's tokio runtime (no thread of its own) and
//! forwards names outside the cluster zone to the node's nameserver.

use std::net::{SocketAddr, UdpSocket};
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

/// How long a forwarded query may wait for the upstream server.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Is `reply` a REFUSED answer (a name outside the cluster zone)?
fn refused(reply: &[u8]) -> bool {
    Message::from_vec(reply).is_ok_and(|m| m.response_code() == ResponseCode::Refused)
}

/// Asks `upstream` the same question; its answer, if one comes in time.
async fn forward(request: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await.ok()?;
    socket.connect(upstream).await.ok()?;
    socket.send(request).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(len);
    Some(buf)
}

/// `serve` as a task: answers on `socket` from `view` until the socket
/// fails. Names outside the cluster zone go to `upstream` (the node's own
/// nameserver, as CoreDNS forwards to the node's resolv.conf), each in a
/// task of its own; without one they are refused.
pub async fn serve_async(
    socket: tokio::net::UdpSocket,
    view: Arc<RwLock<Snapshot>>,
    upstream: Option<SocketAddr>,
) -> std::io::Result<()> {
    let socket = Arc::new(socket);
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = socket.recv_from(&mut buf).await?;
        let Some(reply) = respond_from(&view, &buf[..len]) else {
            continue;
        };
        if let Some(upstream) = upstream
            && refused(&reply)
        {
            let (socket, request) = (socket.clone(), buf[..len].to_vec());
            tokio::spawn(async move {
                let answer = forward(&request, upstream).await.unwrap_or(reply);
                let _ = socket.send_to(&answer, peer).await;
            });
        } else if let Err(err) = socket.send_to(&reply, peer).await {
            tracing::debug!(%peer, %err, "could not send a DNS reply");
        }
    }
}

/// The first nameserver of a resolv.conf text, port 53.
pub fn upstream_of(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next()?.parse::<std::net::IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, 53))
    })
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

    #[test]
    fn the_upstream_is_the_first_nameserver() {
        assert_eq!(
            upstream_of("# x\nsearch lan\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"),
            Some("192.0.2.53:53".parse().unwrap())
        );
        assert_eq!(upstream_of("search lan\n"), None);
    }

    #[tokio::test]
    async fn names_outside_the_cluster_go_upstream() {
        // A fake upstream answering every query with id 99 and NOERROR.
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, peer) = up.recv_from(&mut buf).await.unwrap();
            let mut m = Message::from_vec(&buf[..n]).unwrap();
            m.set_message_type(MessageType::Response);
            m.add_answer(Record::from_rdata(
                Name::from_ascii("example.com.").unwrap(),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            up.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
        });
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let view = Arc::new(RwLock::new(Snapshot::default()));
        tokio::spawn(serve_async(server, view, Some(up_addr)));
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut q = Message::new();
        q.set_id(5).add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        client
            .send_to(&q.to_vec().unwrap(), server_addr)
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(reply.id(), 5);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.answers().len(), 1);
    }
}
