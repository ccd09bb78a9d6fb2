//! kc's API client: what the scheduler, the controllers, leader election
//! and hollow nodes know of the cluster (the place of client-go and
//! apimachinery in Kubernetes).
//!
//! - `api`: the `Api` a client talks to (the API server's REST verbs on
//!   JSON objects), and `request`'s targets, queries and outcomes;
//! - `client`: `Client`, typed helpers over an `Api`, and informers;
//! - `status`: API errors as Kubernetes `Status` objects;
//! - `registry`: the table of the built-in resources (group, version,
//!   kind, plural, scope, subresources);
//! - `binding`: a pod-to-node binding; `leader`: leader election on Leases;
//!   `clock`: the API's timestamps.
//!
//! It depends on no server crate: the API server implements `Api` (the
//! in-process client of a member), so nothing that takes a `Client` can
//! reach the store or the API server's internals.

pub mod api;
pub mod binding;
pub mod client;
pub mod clock;
pub mod cron;
pub mod labels;
pub mod leader;
pub mod registry;
pub mod request;
pub mod status;

pub use api::{Api, Change};
pub use binding::Binding;
pub use client::{Client, Event, key_of, resource};
pub use registry::Resource;
pub use request::{Outcome, PatchType, Query, Target};
pub use status::{ApiError, Cause};
