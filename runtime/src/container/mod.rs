//! Containers: isolated process groups made of namespaces, cgroups and a
//! changed root, each watched by a small monitor process that outlives the
//! `kcnode` that started it.
//!
//! Reading order: `spec` (what is asked), `ops` (create/start/stop/remove
//! on one node), `monitor` (the per-container parent process), `init` (the
//! container's first process: `namespaces`, `cgroup`, `rootfs`, `user`,
//! `security`, then exec), `logs`, `proxy` (published ports), `exec`, `tty`,
//! `state` (the record on disk), `build_step` (RUN steps of `kcnode build`).

pub mod actor;
pub mod build_step;
pub mod cgroup;
pub mod exec;
pub mod init;
pub mod logs;
pub mod monitor;
pub mod namespaces;
pub mod ops;
pub mod proxy;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod shim;
pub mod shim_process;
pub mod spec;
pub mod state;
pub mod tty;
pub mod user;
pub mod zygote;

pub use build_step::BuildStepRunner;
pub use exec::ExecSpec;
pub use ops::{Attach, Containers, Error, Running};
pub use spec::ContainerSpec;
pub use state::{State, Status};
