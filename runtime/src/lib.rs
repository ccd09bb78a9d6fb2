//! kc's container runtime: what `docker build` / `docker run` do, on one host.
//!
//! The seed guide's three kernel features live here: namespaces
//! (`container::namespaces`), cgroups (`container::cgroup`) and the changed
//! root (`container::rootfs`: overlayfs over image layers, then pivot_root).
//! Images (content-addressed OCI store, import/export, Dockerfile build) are
//! in `image`. Invariant: nothing here knows about Kubernetes or the network
//! between hosts; the node agent drives this crate through its actor API.

pub mod container;
pub mod image;
pub mod sandbox;
