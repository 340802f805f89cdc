//! Ctrl-C, SIGTERM (a cancelled CI job), SIGHUP (a closed terminal) or the Windows console's
//! events, turned into a flag: the runner passes it on, the drops clean up, `main` exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

pub use imp::install;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a process stopped by SIGINT, as shells report it.
pub const EXIT_CODE: u8 = 130;

#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

pub fn check() -> anyhow::Result<()> {
    if requested() { Err(Interrupted.into()) } else { Ok(()) }
}

/// Runs `cleanup` (undoing what a stopped task left: a PAT made but not stored) as if
/// no interrupt had come, so that only a second one stops it; the flag stays set after.
pub fn despite<T>(cleanup: impl FnOnce() -> T) -> T {
    let earlier = REQUESTED.swap(false, Ordering::SeqCst);
    let out = cleanup();
    REQUESTED.fetch_or(earlier, Ordering::SeqCst);
    out
}

#[cfg(unix)]
mod imp {
    use libc::{SIGHUP, SIGINT, SIGTERM, c_int};

    /// Async-signal-safe: one atomic store.
    extern "C" fn on_signal(_: c_int) {
        super::REQUESTED.store(true, super::Ordering::SeqCst);
    }

    pub fn install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // SAFETY: a zeroed `sigaction` is valid; the handler only stores to an atomic.
            // No SA_RESTART: a read the signal interrupts returns (EINTR), so a prompt sees the flag.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(windows)]
mod imp {
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn SetConsoleCtrlHandler(handler: Option<unsafe extern "system" fn(u32) -> i32>, add: i32) -> i32;
    }

    /// Windows ends the process when the handler of a close returns: it waits for the clean-up.
    unsafe extern "system" fn on_ctrl(event: u32) -> i32 {
        if event > 2 {
            return 0;
        }
        super::REQUESTED.store(true, super::Ordering::SeqCst);
        if event == 2 {
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
        1
    }

    pub fn install() {
        // SAFETY: registers a handler that only stores to an atomic.
        unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) };
    }
}
