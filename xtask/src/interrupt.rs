//! Ctrl-C and its kin, turned from "die now" into a flag the running task sees:
//! SIGINT, SIGTERM (a cancelled CI job) and SIGHUP (a closed terminal) on Unix;
//! the console's Ctrl-C, Ctrl-Break and close on Windows. The child the task waits
//! for is interrupted and waited for, the work dir is removed by the normal
//! drops, and the xtask exits 130 whichever it was. Without this a Ctrl-C left
//! megabytes of work dir behind, and a signal to the xtask alone left `cargo
//! package` and its build scripts running (they are in a process group of their
//! own, which a terminal's hangup does not reach).
//!
//! Std only: the few OS calls it needs are declared here. signal-hook 0.3.18
//! would replace about 15 of these lines (the handler and its installation; the
//! `kill` calls stay) for 4 crates (libc with its build script, errno,
//! signal-hook-registry), 7.8 s of a cold debug build on the shared 2-core
//! machine (measured 2026-12-01): not worth it.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a process stopped by SIGINT, as shells report it.
pub const EXIT_CODE: u8 = 130;

/// The error a task returns when it stopped because of an interrupt; `main` turns
/// it into exit code 130.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Whether an interrupt arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with [`Interrupted`] when an interrupt arrived: for the points between
/// stages where a long task checks in.
pub fn check() -> anyhow::Result<()> {
    if requested() { Err(Interrupted.into()) } else { Ok(()) }
}

/// Installs the handler; called once by `main`.
pub fn install() {
    imp::install();
}

/// Asks the process group of `child` (Unix: started with its own process group by
/// the runner) to stop, as a terminal's Ctrl-C would.
pub fn forward(child: &std::process::Child) {
    imp::forward(child);
}

/// Kills the process group of `child` (Unix; elsewhere the runner's `Child::kill`
/// is all there is): everything it started, build scripts and `az`'s python too.
pub fn kill_group(child: &std::process::Child) {
    imp::kill_group(child);
}

#[cfg(unix)]
mod imp {
    use std::ffi::c_int;
    use std::sync::atomic::Ordering;

    const SIGHUP: c_int = 1;
    const SIGINT: c_int = 2;
    const SIGKILL: c_int = 9;
    const SIGTERM: c_int = 15;

    // From the C library std links anyway: the two functions needed, not worth a
    // dependency.
    unsafe extern "C" {
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
        safe fn siginterrupt(sig: c_int, flag: c_int) -> c_int;
        safe fn kill(pid: c_int, sig: c_int) -> c_int;
    }

    /// Async-signal-safe: one atomic store.
    extern "C" fn on_signal(_: c_int) {
        super::REQUESTED.store(true, Ordering::SeqCst);
    }

    pub fn install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // SAFETY: installs a handler that only stores to an atomic.
            unsafe { signal(sig, on_signal) };
            // A read the signal interrupts returns (EINTR) instead of restarting,
            // so a prompt waiting for the terminal can see the flag; std retries
            // EINTR everywhere else.
            siginterrupt(sig, 1);
        }
    }

    /// The negative pid names the child's process group.
    pub fn forward(child: &std::process::Child) {
        if let Ok(pid) = c_int::try_from(child.id()) {
            kill(-pid, SIGINT);
        }
    }

    pub fn kill_group(child: &std::process::Child) {
        if let Ok(pid) = c_int::try_from(child.id()) {
            kill(-pid, SIGKILL);
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::sync::atomic::Ordering;

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn SetConsoleCtrlHandler(handler: Option<unsafe extern "system" fn(u32) -> i32>, add: i32) -> i32;
    }

    /// CTRL_C_EVENT, CTRL_BREAK_EVENT and CTRL_CLOSE_EVENT set the flag; logoff
    /// and shutdown take the default path. Windows ends the process when the
    /// handler of a close returns (or after 5 s), so that handler waits, in its own
    /// thread, for the task to stop its child and remove its work dir and exit.
    unsafe extern "system" fn on_ctrl(event: u32) -> i32 {
        if event > 2 {
            return 0;
        }
        super::REQUESTED.store(true, Ordering::SeqCst);
        if event == 2 {
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
        1
    }

    pub fn install() {
        // SAFETY: registers a handler that only stores to an atomic.
        unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) };
    }

    /// The console delivers Ctrl-C to every process attached to it, the child
    /// included; nothing to forward. (A child that ignores it is killed by the
    /// runner after its grace period.)
    pub fn forward(_child: &std::process::Child) {}

    pub fn kill_group(_child: &std::process::Child) {}
}

#[cfg(not(any(unix, windows)))]
mod imp {
    pub fn install() {}
    pub fn forward(_child: &std::process::Child) {}
    pub fn kill_group(_child: &std::process::Child) {}
}
