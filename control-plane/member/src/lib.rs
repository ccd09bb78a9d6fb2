//! A kc control-plane member wired together: the store, the API server
//! (with the image registry), the node API, and the scheduler and
//! controller manager as in-process API clients (`member`, `single`,
//! `control_loops`); hollow nodes for tests and benchmarks (`hollow`).
//!
//! Each component is a crate of its own in `control-plane/` (see
//! ARCHITECTURE.md); they are re-exported here under the names the
//! commands use.

pub mod control_loops;
pub mod hollow;
pub mod member;
pub mod single;

pub use kc_apiserver as apiserver;
pub use kc_client as client;
pub use kc_client::leader;
pub use kc_controllers as controllers;
pub use kc_nodeapi as nodeapi;
pub use kc_pki as pki;
pub use kc_pki::tls;
pub use kc_registry as registry;
pub use kc_scheduler as scheduler;
pub use kc_store as store;
