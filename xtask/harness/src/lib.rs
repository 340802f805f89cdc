//! Test harness for the `xtask` integration tests.
//!
//! What it gives a test, and why:
//!
//! - [`Kellnr`]: a real cargo registry (kellnr 6.5.0) on a free loopback port,
//!   with authentication required, so that `cargo login`, `cargo publish` and
//!   index reads go through real cargo code paths instead of mocks. It is killed
//!   on drop, so a failing test does not leave a server behind.
//! - [`Sandbox`]: a private `CARGO_HOME`, `HOME` and `PATH` prefix per test, with
//!   inherited CI/registry variables removed, so a test never reads or writes the
//!   developer's real credentials and never depends on the machine it runs on.
//!   Every command's output is kept for [`Sandbox::assert_no_secret`], because
//!   leaking a PAT into logs is the defect this project most wants to prevent.
//! - Stand-ins: shell scripts first on `PATH` (for `az`, `gh`, ...) and a
//!   recording wrapper for cargo (through the `CARGO` variable the xtask uses),
//!   so tests can assert exactly which commands ran with which arguments.
//! - [`base64`] / [`basic_header`]: an independent encoder, so the tests do not
//!   trust the very code they check.
//!
//! The harness is std-only on purpose: it is built for every `cargo test` of the
//! xtask, whose dependency budget is tight.

pub mod http;
mod kellnr;
mod sandbox;
mod secrets;

pub use kellnr::Kellnr;
pub use sandbox::{Call, Run, Sandbox, sh_quote};
pub use secrets::{find_secret, secret_forms};

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "pinned.rs"]
pub mod pinned;

/// The kellnr version the tests are written against (see [`pinned`]).
pub const KELLNR_VERSION: &str = pinned::KELLNR;

/// A pinned tool the tests drive: env `var` when set, else where `cargo xtask test`
/// installs it in [`pinned::cache_dir`]. Panics when it is missing: a test that
/// silently skips would let the flows it covers go untested without anyone noticing.
fn pinned_tool(var: &str, what: &str, in_cache: impl FnOnce(&Path) -> PathBuf) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = pinned::cache_dir().unwrap_or_else(|| {
                panic!("no cache directory for the pinned tools: set XTASK_CACHE or {var}")
            });
            in_cache(&cache)
        }
    };
    if !path.is_file() {
        panic!(
            "{what} not found at {}: run `cargo xtask test` (installs it once per machine), or set {var} \
             to its path",
            path.display()
        );
    }
    path
}

/// The kellnr binary: env `XTASK_KELLNR` if set, else the one `cargo xtask test` installed.
pub fn kellnr_bin() -> PathBuf {
    pinned_tool("XTASK_KELLNR", &format!("kellnr {}", pinned::KELLNR), |cache| {
        pinned::installed_bin(cache, "kellnr", pinned::KELLNR)
    })
}

/// The `just` binary: env `XTASK_JUST` if set, else the one `cargo xtask test` installed.
pub fn just_bin() -> PathBuf {
    pinned_tool("XTASK_JUST", &format!("just {}", pinned::JUST), |cache| {
        pinned::installed_bin(cache, "just", pinned::JUST)
    })
}

/// The workflow validator: env `XTASK_ACTION_VALIDATOR` if set, else the one
/// `cargo xtask test` installed.
pub fn action_validator_bin() -> PathBuf {
    let what = format!("action-validator (npm @action-validator/cli {})", pinned::ACTION_VALIDATOR);
    pinned_tool("XTASK_ACTION_VALIDATOR", &what, pinned::action_validator_bin)
}

/// The repository root (the host repository holding `xtask/`), from the manifest dir
/// cargo names when it runs the test (`<root>/xtask` or `<root>/xtask/harness`), so it
/// is right whatever the cwd of the test. The one compiled in is only the fallback: it
/// is stale once the repository moved with its `xtask/target` (cargo does not rebuild).
pub fn repo_root() -> PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let root = here.ancestors().find(|dir| dir.join("xtask").join("Cargo.toml").is_file()).unwrap_or(&here);
    root.canonicalize().unwrap_or(root.to_path_buf())
}

/// The value cargo sends as `Authorization` for an Azure DevOps PAT login:
/// `"Basic " + base64(user + ":" + password)`; Azure uses user `PAT`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 (RFC 4648 §4: `+` `/`, `=` padding), never line-wrapped.
///
/// Written here rather than shared with the xtask so that a bug in the xtask's
/// encoder cannot hide itself in the tests. Never wrapping matters: GNU
/// `base64` wraps at 76 characters, which broke the old shell recipe for 84
/// character PATs.
pub fn base64(bytes: &[u8]) -> String {
    base64_with(bytes, STANDARD_ALPHABET, true)
}

pub(crate) const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const URL_SAFE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(crate) fn base64_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// A hard-to-guess alphanumeric string (std only: `RandomState` is seeded from
/// the OS per process, mixed with time, pid and a counter). Used for kellnr's
/// admin token and password, so parallel tests never share credentials.
pub fn random_token(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut v = h.finish();
        for _ in 0..10 {
            if out.len() == len {
                break;
            }
            out.push(CHARS[(v % CHARS.len() as u64) as usize] as char);
            v /= CHARS.len() as u64;
        }
    }
    out
}

/// Creates a fresh, empty directory `<temp>/<prefix>-<pid>-<random>`.
pub(crate) fn unique_temp_dir(prefix: &str) -> PathBuf {
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let dir = base.join(format!("{prefix}-{}-{}", std::process::id(), random_token(8)));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create temp dir {}: {e}", dir.display()),
        }
    }
    panic!("cannot create a unique temp dir under {}", base.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 §10, but for its two-byte vector, which the host's spell check refuses.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fa", "ZmE="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "base64({plain:?})");
        }
        // Bytes that use `+` and `/`.
        assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "+//+");
        assert_eq!(base64_with(&[0xfb, 0xff, 0xfe], URL_SAFE_ALPHABET, false), "-__-");
    }

    #[test]
    fn base64_of_a_long_pat_is_never_wrapped() {
        // 84-character PATs: "PAT:" + 84 = 88 bytes -> 120 characters, one line.
        let pat = "a".repeat(84);
        let enc = base64(format!("PAT:{pat}").as_bytes());
        assert_eq!(enc.len(), 120);
        assert!(!enc.contains(char::is_whitespace));
    }

    #[test]
    fn basic_header_matches_the_azure_form() {
        // echo -n 'PAT:secret' | base64
        assert_eq!(basic_header("PAT", "secret"), "Basic UEFUOnNlY3JldA==");
    }

    #[test]
    fn random_tokens_differ() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn repo_root_holds_the_xtask() {
        assert!(repo_root().join("xtask").join("harness").join("Cargo.toml").is_file());
    }
}
