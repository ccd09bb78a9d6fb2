//! kc's control plane: the replicated store (the etcd of kc), the API server,
//! the scheduler and controllers (leader-elected, in-process API clients),
//! hollow nodes for tests and benchmarks, and (to come) the image registry. Each
//! long-lived part is an actix actor.

pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod hollow;
pub mod leader;
pub mod member;
pub mod nodeapi;
pub mod pki;
pub mod registry;
pub mod scheduler;
pub mod store;
pub mod tls;
