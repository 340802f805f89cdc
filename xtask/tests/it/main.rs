//! Integration tests: the real xtask binary, the real cargo and git, a real kellnr
//! registry with authentication required, and stand-ins only for az and gh.
//! One test binary (not one per file) so the suite links once.

mod adoption;
mod config_faults;
mod credentials;
mod faults;
mod login;
mod package_files;
mod publish;
mod publish_faults;
mod publish_redist;
mod setup;
mod standins;
mod tidy;

/// The xtask binary under test.
pub fn xtask_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_xtask"))
}
