//! kc's object model and wire formats.
//!
//! Owns what crosses a process boundary: the Kubernetes API objects (from
//! `k8s-openapi`, JSON exactly as Kubernetes writes it), the internal messages
//! between nodes and the control plane and between store members, and their
//! framing (length-prefixed bincode with a hard size limit and a protocol
//! version). Invariant: this crate does no I/O.

pub use k8s_openapi;

pub mod duration;
pub mod frame;
pub mod frame_io;
pub mod node_api;
pub mod streams;
