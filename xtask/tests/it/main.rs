//! The registry suite: the real xtask binary, the real cargo and git, a real kellnr
//! registry with authentication required, the real `just` and workflow validator,
//! and stand-ins only for az and gh. `test = false` in Cargo.toml: a plain `cargo
//! test` leaves it out (it needs the pinned tools); `cargo xtask test` installs them
//! and runs it, and it fails, never skips, when one is missing. One test binary (not
//! one per file) so the suite links once.

#[path = "../support/mod.rs"]
mod support;
pub use support::xtask_bin;

mod adoption;
mod config_faults;
mod credentials;
mod faults;
mod login;
mod package_files;
mod publish;
mod publish_faults;
mod publish_redist;
mod recipes;
mod standins;

/// The exit status of `child`, which must end within a minute of `what` (a signal).
#[cfg(unix)]
pub fn exit_after(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the xtask did not stop after {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
