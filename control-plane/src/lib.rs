//! kc's control plane: the API server, the node API,
//! the scheduler and controllers (leader-elected, in-process API clients),
//! a member wired together, hollow nodes for tests and benchmarks. The
//! replicated store (`kc-store`, the etcd of kc), the PKI (`kc-pki`) and
//! the image registry (`kc-registry`) are crates of their own beside this
//! one in `control-plane/`.

pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod hollow;
pub mod leader;
pub mod member;
pub mod nodeapi;
pub mod scheduler;

// Crates of their own (issue: the control plane as a folder of crates),
// re-exported under their old paths.
pub use kc_pki as pki;
pub use kc_pki::tls;
pub use kc_registry as registry;
pub use kc_store as store;
