//! The tests a plain `cargo test` runs: the real xtask binary, its files and the
//! real cargo, with no pinned tool (no registry, no `just`, no workflow validator).
//! `cargo xtask test` runs them too, with the registry suite in `tests/it/`.

#[path = "../support/mod.rs"]
mod support;
pub use support::xtask_bin;

mod setup;
mod test_task;
mod tidy;
