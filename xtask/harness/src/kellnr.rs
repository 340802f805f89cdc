//! A real kellnr registry per test.
//!
//! Why a real registry: the xtask's job is to get cargo's credentials right, and
//! only cargo itself talking to a server that demands auth shows whether they
//! are (the `Basic` prefix, the base64, the credential provider config).

use std::fs::{self, File};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, Response, json_string};
use crate::{basic_header, kellnr_bin, random_token, unique_temp_dir};

/// How long [`Kellnr::start`] waits for the server to answer (it usually takes
/// well under a second; a cold, busy 2-core CI machine can be much slower).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running kellnr on `127.0.0.1:<free port>` with its own temporary data dir
/// and `--registry-auth-required true`.
///
/// Dropping it kills the server and waits for it (so a panicking test stops it
/// too), then removes the data dir. Should the test process itself be killed,
/// a small watchdog (`sh` reading a pipe from this process) kills the server
/// when the pipe closes, so no registry is left listening.
pub struct Kellnr {
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
    dir: PathBuf,
    port: u16,
    admin_token: String,
    admin_password: String,
    startup: Duration,
}

impl Kellnr {
    /// Starts a kellnr and waits until it answers `GET /api/v1/health`.
    ///
    /// Panics (with the server's log) if it does not answer within 30 s. If it
    /// exits early (most likely the free port was taken in between), it is
    /// retried on another port a few times.
    pub fn start() -> Kellnr {
        let bin = kellnr_bin();
        let mut last_log = String::new();
        for _attempt in 0..4 {
            match Self::try_start(&bin) {
                Ok(k) => return k,
                Err(log) => last_log = log,
            }
        }
        panic!("kellnr exited early on every attempt; its last log:\n{last_log}");
    }

    /// Ok: ready. Err(log): exited before answering (worth a retry). Panics on timeout.
    fn try_start(bin: &Path) -> Result<Kellnr, String> {
        let dir = unique_temp_dir("xtask-kellnr");
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("create kellnr data dir");
        let log_path = dir.join("kellnr.log");
        let log = File::create(&log_path).expect("create kellnr log");
        let port = free_port();
        let admin_token = random_token(32);
        let admin_password = random_token(24);
        let port_s = port.to_string();

        let mut cmd = Command::new(bin);
        cmd.arg("start")
            .arg("--registry-data-dir")
            .arg(&data)
            .args(["--local-ip", "127.0.0.1", "--local-port", &port_s])
            .args(["--origin-hostname", "127.0.0.1", "--origin-port", &port_s])
            .args(["--setup-admin-token", &admin_token])
            .args(["--setup-admin-pwd", &admin_password])
            .args(["--registry-auth-required", "true"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // A developer's own kellnr settings must not change the test server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KELLNR_") {
                cmd.env_remove(key);
            }
        }
        let began = Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let watchdog = spawn_watchdog(child.id());
        let mut k =
            Kellnr { child, watchdog, dir, port, admin_token, admin_password, startup: Duration::ZERO };
        loop {
            if let Ok(Some(status)) = k.child.try_wait() {
                let log = k.log();
                return Err(format!("(exit status {status})\n{log}"));
            }
            if let Ok(r) = k.get("/api/v1/health", None)
                && r.status == 200
            {
                k.startup = began.elapsed();
                return Ok(k);
            }
            if began.elapsed() > START_TIMEOUT {
                panic!(
                    "kellnr on port {port} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                    k.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `sparse+http://127.0.0.1:P/api/v1/crates/`: the form cargo needs (with the
    /// trailing `/`) for `CARGO_REGISTRIES_<NAME>_INDEX`.
    pub fn index_url(&self) -> String {
        format!("sparse+http://127.0.0.1:{}/api/v1/crates/", self.port)
    }

    /// The same index under `localhost` instead of `127.0.0.1`.
    ///
    /// Cargo refuses two registries with the same index URL (`multiple
    /// registries are configured with the same index url`); this second
    /// spelling lets two feeds share one server.
    pub fn index_url_alias(&self) -> String {
        format!("sparse+http://localhost:{}/api/v1/crates/", self.port)
    }

    /// The `--setup-admin-token` value. Kellnr 6.5.0 accepts it bare or as
    /// `Bearer TOKEN` in `Authorization`.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The `--setup-admin-pwd` value: `Basic base64("admin:" + pwd)` is accepted
    /// too, and it is what the web login takes.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The server's process id (for tests proving it is gone after drop).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long the server took to answer its first health check.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The server's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("kellnr.log")).unwrap_or_default()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `GET path` with an optional `Authorization` header value.
    pub fn get(&self, path: &str, authorization: Option<&str>) -> std::io::Result<Response> {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("Authorization", a)).into_iter().collect();
        http::request(self.addr(), "GET", path, &headers, &[])
    }

    /// Any request, for tests that need more than [`Kellnr::get`].
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        http::request(self.addr(), method, path, headers, body)
    }

    /// Creates user `name` with `password` (as admin, read-write), so that
    /// `Basic base64(name:password)` is accepted by the registry.
    ///
    /// This is how the Azure PAT form `Basic base64("PAT:" + pat)` is made valid:
    /// `add_user("PAT", pat)`. Kellnr only creates users from a web session, so
    /// this logs in as admin first and sends the session cookies back.
    pub fn add_user(&self, name: &str, password: &str) {
        let login = format!("{{\"user\":\"admin\",\"pwd\":{}}}", json_string(&self.admin_password));
        let r = self
            .request("POST", "/api/v1/auth/login", &[("Content-Type", "application/json")], login.as_bytes())
            .expect("kellnr admin login request");
        assert_eq!(r.status, 200, "kellnr admin login failed: {} {}", r.status, r.text());
        let cookies: Vec<&str> =
            r.headers_all("Set-Cookie").map(|c| c.split(';').next().unwrap_or_default().trim()).collect();
        assert!(!cookies.is_empty(), "kellnr login set no session cookie: {r:?}");
        let cookie = cookies.join("; ");
        let body = format!(
            "{{\"name\":{},\"pwd1\":{p},\"pwd2\":{p},\"is_admin\":true,\"is_read_only\":false}}",
            json_string(name),
            p = json_string(password)
        );
        let r = self
            .request(
                "POST",
                "/api/v1/users",
                &[("Content-Type", "application/json"), ("Cookie", &cookie)],
                body.as_bytes(),
            )
            .expect("kellnr add user request");
        assert!(
            r.status == 200 || r.status == 201,
            "kellnr refused to add user {name:?}: {} {}",
            r.status,
            r.text()
        );
        // Prove it took, so a test failing later is not blamed on the user setup.
        let check = self
            .get("/api/v1/crates/config.json", Some(&basic_header(name, password)))
            .expect("kellnr config.json request");
        assert_eq!(check.status, 200, "user {name:?} was added but Basic auth is refused: {}", check.text());
    }

    /// The `.crate` of `crate_name` at `version` as the registry serves it to
    /// cargo, read with admin auth; `None` if the registry has no such version.
    pub fn crate_file(&self, crate_name: &str, version: &str) -> Option<Vec<u8>> {
        let path = self.download_path(crate_name, version);
        let r = self
            .get(&path, Some(&self.admin_token))
            .unwrap_or_else(|e| panic!("GET {path} from kellnr: {e}"));
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET {path} from kellnr: unexpected {s}: {}", r.text()),
        }
    }

    /// The path cargo downloads a `.crate` from: `dl` of `config.json`, with its
    /// markers replaced or `/{crate}/{version}/download` appended, as cargo does.
    fn download_path(&self, crate_name: &str, version: &str) -> String {
        let config =
            self.get("/api/v1/crates/config.json", Some(&self.admin_token)).expect("kellnr config.json");
        let config = config.text();
        let dl = config.split("\"dl\":\"").nth(1).and_then(|r| r.split('"').next());
        let dl = dl.unwrap_or_else(|| panic!("no `dl` in kellnr's config.json: {config}"));
        let path = dl.split_once("://").and_then(|(_, r)| r.find('/').map(|at| &r[at..])).unwrap_or(dl);
        if path.contains("{crate}") {
            path.replace("{crate}", crate_name).replace("{version}", version)
        } else {
            format!("{}/{crate_name}/{version}/download", path.trim_end_matches('/'))
        }
    }

    /// The sparse index file of `crate_name` (layout `1/`, `2/`, `3/x/`,
    /// `ab/cd/`), read with admin auth; `None` if the registry has no such crate.
    pub fn index_entry(&self, crate_name: &str) -> Option<String> {
        let path = format!("/api/v1/crates/{}", index_path(crate_name));
        let r = self
            .get(&path, Some(&self.admin_token))
            .unwrap_or_else(|e| panic!("GET {path} from kellnr: {e}"));
        match r.status {
            200 => Some(r.text()),
            404 => None,
            s => panic!("GET {path} from kellnr: unexpected {s}: {}", r.text()),
        }
    }
}

/// The sparse index path of a crate: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd...`,
/// lower-cased as cargo requests it.
pub(crate) fn index_path(crate_name: &str) -> String {
    let n = crate_name.to_ascii_lowercase();
    match n.len() {
        0 => panic!("empty crate name"),
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
}

/// A port the OS just called free. Another process may take it before kellnr
/// binds it; [`Kellnr::start`] retries when that happens.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// `sh -c 'cat >/dev/null; kill -9 PID'` with its stdin a pipe held by this
/// process: when this process dies for any reason, the pipe closes and the
/// server goes with it. Best effort: without `sh`, no watchdog.
fn spawn_watchdog(pid: u32) -> Option<(Child, ChildStdin)> {
    if !cfg!(unix) {
        return None;
    }
    let mut child = Command::new("sh")
        .args(["-c", "cat >/dev/null; kill -9 \"$1\" 2>/dev/null", "sh"])
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

impl Drop for Kellnr {
    fn drop(&mut self) {
        // Closing the watchdog's pipe makes it kill the server; waiting for the
        // watchdog first means the server is not reaped yet, so its pid cannot
        // have been reused by anything else when the kill arrives.
        if let Some((mut wd, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = wd.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("XTASK_KEEP_SANDBOX").is_some() {
            let _ = writeln!(std::io::stderr(), "kept kellnr data dir {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_index_paths() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("mshv-bindings"), "ms/hv/mshv-bindings");
        assert_eq!(index_path("Serde"), "se/rd/serde");
    }
}
