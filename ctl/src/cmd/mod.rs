//! The verbs, one module per family. Each takes the shared [`crate::ctx::Ctx`]
//! and its own clap arguments, prints what kubectl prints, and returns the
//! process exit code (errors bubble up to `main`, which words them).

pub mod apply;
pub mod config;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod get;
pub mod image;
pub mod info;
pub mod logs;
pub mod metadata;
pub mod node;
pub mod portforward;
pub mod rollout;
pub mod run;
pub mod top;
