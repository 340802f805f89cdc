//! A per-test sandbox for running the xtask, cargo and stand-ins.
//!
//! Why: the xtask writes cargo credentials and config. Run against the
//! developer's real `CARGO_HOME`/`HOME` it would read (and could overwrite)
//! real tokens, and inherited CI variables (`GITHUB_ACTIONS`, `PAT`, ...) would
//! change its behaviour depending on where the tests run. So every command runs
//! with a private `CARGO_HOME` and `HOME`, a scrubbed environment, and its
//! output kept for the secret scan.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::secrets::find_secret;
use crate::{Kellnr, repo_root, unique_temp_dir};

/// Default limit for one command: generous (a `cargo publish` verifies by
/// building), but a hung command fails the test instead of hanging CI.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Inherited variables removed from every command, by prefix: registry
/// configuration and credentials, CI markers that switch the xtask into CI
/// behaviour, and variables cargo sets for the test process itself.
const SCRUB_PREFIXES: &[&str] = &[
    "CARGO_REGISTRIES_",
    "CARGO_REGISTRY_",
    "CARGO_CREDENTIAL_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_BIN_",
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "AZURE_",
    "ADO_",
    "SYSTEM_",
    "GH_",
    "KELLNR_",
    "GIT_CONFIG_",
];

/// Inherited variables removed from every command, by exact name.
const SCRUB_EXACT: &[&str] = &[
    "CI",
    "TF_BUILD",
    "PAT",
    "GITHUB_TOKEN",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_TMPDIR",
    "CARGO_HOME",
    "CARGO",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MAKEFLAGS",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    // Set by the `just` recipes (`just xtask test` from a subdirectory).
    "XTASK_INVOCATION_DIR",
];

/// One command's captured output, kept for [`Sandbox::all_output`].
struct Captured {
    command: String,
    stdout: String,
    stderr: String,
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics, printing the command and its output, unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        if !self.status.success() {
            panic!("command failed ({}): {}", self.status, self.describe());
        }
        self
    }

    /// Panics, printing the command and its output, if it exited 0.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        if self.status.success() {
            panic!("command succeeded but should have failed: {}", self.describe());
        }
        self
    }

    /// Panics unless stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_output_contains(&self, needle: &str) -> &Self {
        if !self.combined().contains(needle) {
            panic!("output lacks {needle:?}: {}", self.describe());
        }
        self
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn describe(&self) -> String {
        format!(
            "`{}`\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.command, self.stdout, self.stderr
        )
    }
}

/// One recorded call of a stand-in or of cargo (through the `CARGO` wrapper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The arguments, *without* the program name (`["login", "--registry", "x"]`).
    pub argv: Vec<String>,
    /// What the stand-in read from stdin (empty when stdin was a terminal).
    /// Always empty for cargo: its wrapper passes stdin through unread, since
    /// `cargo login` reads the token from it.
    pub stdin: String,
    /// The complete environment of the call, in the order `env` printed it.
    pub env_vars: Vec<(String, String)>,
}

impl Call {
    /// The value of one variable in the call's environment.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env_vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The arguments joined by spaces, handy in assertions and messages.
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// A per-test sandbox: a temp dir (removed on drop unless `XTASK_KEEP_SANDBOX`
/// is set) holding a private `CARGO_HOME`, `HOME`, a `bin` dir first on `PATH`
/// for stand-ins, the call records, and scratch crates.
pub struct Sandbox {
    root: PathBuf,
    xtask_bin: PathBuf,
    real_cargo: PathBuf,
    /// Per-test overrides; `None` removes the variable.
    env: BTreeMap<String, Option<String>>,
    /// Feed name -> index URL, as set by [`Sandbox::feed`].
    feeds: Vec<(String, String)>,
    captured: Vec<Captured>,
    timeout: Duration,
}

impl Sandbox {
    /// A fresh sandbox for running `xtask_bin` (tests pass
    /// `env!("CARGO_BIN_EXE_xtask")`; tests that only run cargo may pass any path).
    pub fn new(xtask_bin: &Path) -> Sandbox {
        let root = unique_temp_dir("xtask-sandbox");
        let root = root.canonicalize().unwrap_or(root);
        let real_cargo = real_cargo();
        let sb = Sandbox {
            root,
            xtask_bin: xtask_bin.to_path_buf(),
            real_cargo,
            env: BTreeMap::new(),
            feeds: Vec::new(),
            captured: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        };
        for dir in [
            sb.cargo_home(),
            sb.bin_dir(),
            sb.records_dir(),
            sb.home(),
            sb.home().join(".config"),
            sb.wrap_dir(),
            sb.tmp_dir(),
            sb.host().join(".cargo"),
            sb.host().join("xtask"),
        ] {
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        write_host(&sb.host());
        // The cargo wrapper: record, then hand over to the real cargo with
        // stdin untouched (cargo login reads the token from it).
        let wrapper = format!(
            "#!/bin/sh\n# Recording wrapper for cargo, set as CARGO by xtask-harness.\n{}exec {} \"$@\"\n",
            sb.record_args_and_env("cargo"),
            sh_quote(&sb.real_cargo.to_string_lossy())
        );
        write_executable(&sb.wrap_dir().join("cargo"), &wrapper);
        sb
    }

    /// The sandbox's temp dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/cargo-home`: the `CARGO_HOME` of every command (created empty).
    pub fn cargo_home(&self) -> PathBuf {
        self.root.join("cargo-home")
    }

    /// `<root>/bin`: first on `PATH`, for stand-ins.
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// `<root>/records`: one directory `<name>.<n>` per recorded call, holding
    /// `argv` (NUL-terminated arguments), `env` (`env -0`) and, for
    /// stand-ins, `stdin`.
    pub fn records_dir(&self) -> PathBuf {
        self.root.join("records")
    }

    /// `<root>/home`: the `HOME` of every command, so no user git, az or gh
    /// config leaks in. `XDG_CONFIG_HOME` is `<home>/.config`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// `<root>/host`: the repository the xtask sits in (`CARGO_MANIFEST_DIR` is its
    /// `xtask/`) and its working directory, holding only what the xtask brings: the
    /// repository's own root would lend every test its `.cargo/config.toml` (cargo reads
    /// it from the working directory up), and so its `[registry]` or `[source]` tables.
    pub fn host(&self) -> PathBuf {
        self.root.join("host")
    }

    /// `<root>/wrap`: the cargo wrapper (not on `PATH`; reached through `CARGO`).
    fn wrap_dir(&self) -> PathBuf {
        self.root.join("wrap")
    }

    /// `<root>/tmp`: `TMPDIR` of every command, so their temp files die with the sandbox.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The cargo that [`Sandbox::cargo`] runs and the wrapper hands over to:
    /// env `CARGO` of the test process (the toolchain running the tests), else
    /// `cargo` found on `PATH`.
    pub fn real_cargo(&self) -> &Path {
        &self.real_cargo
    }

    /// Points feed `name` at `kellnr` through `CARGO_REGISTRIES_<NAME>_INDEX`
    /// (name upper-cased, `-` and `.` turned into `_`).
    ///
    /// Cargo refuses two registries with the same index URL, so a second feed on
    /// the same server gets [`Kellnr::index_url_alias`]; a third panics (start
    /// another `Kellnr`). Beware cargo#11737: a dashed name configured only
    /// through the environment loses its token.
    pub fn feed(&mut self, name: &str, kellnr: &Kellnr) {
        self.feeds.retain(|(n, _)| n != name);
        let taken = |url: &str| self.feeds.iter().any(|(_, u)| u == url);
        let url = if !taken(&kellnr.index_url()) {
            kellnr.index_url()
        } else if !taken(&kellnr.index_url_alias()) {
            kellnr.index_url_alias()
        } else {
            panic!(
                "feed {name:?}: kellnr on port {} already serves two feeds of this sandbox; \
                 cargo refuses registries with the same index URL: start another Kellnr",
                kellnr.port()
            );
        };
        self.feeds.push((name.to_string(), url));
    }

    /// The index URL feed `name` was pointed at, if any.
    pub fn feed_index(&self, name: &str) -> Option<&str> {
        self.feeds.iter().find(|(n, _)| n == name).map(|(_, u)| u.as_str())
    }

    /// Sets an extra variable for every later command (beats the defaults).
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), Some(value.to_string()));
    }

    /// Removes a variable from every later command (including a default the
    /// sandbox would set).
    pub fn env_remove(&mut self, key: &str) {
        self.env.insert(key.to_string(), None);
    }

    /// Changes the time limit of each later command (default 600 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs the xtask with `args` in [`Sandbox::host`], stdin empty.
    pub fn xtask(&mut self, args: &[&str]) -> Run {
        self.run_xtask(args, None)
    }

    /// Runs the xtask with `args` in [`Sandbox::host`], `stdin` fed to it.
    pub fn xtask_stdin(&mut self, args: &[&str], stdin: &str) -> Run {
        self.run_xtask(args, Some(stdin))
    }

    /// Runs the xtask once per argument list, all at the same time (to test runs
    /// that race each other), stdin empty; the results in the order given.
    pub fn xtask_together(&mut self, arg_lists: &[&[&str]]) -> Vec<Run> {
        let started: Vec<Started> = arg_lists
            .iter()
            .map(|args| Started::spawn(self.xtask_command(args), command_line("xtask", args), None))
            .collect();
        started.into_iter().map(|s| self.finish(s)).collect()
    }

    fn run_xtask(&mut self, args: &[&str], stdin: Option<&str>) -> Run {
        let cmd = self.xtask_command(args);
        self.execute(cmd, command_line("xtask", args), stdin)
    }

    /// The xtask with `args` and the sandbox environment, for a test that sets its stdio.
    pub fn xtask_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(self.xtask_bin.as_os_str(), args, &self.host());
        self.apply_overrides(&mut cmd);
        cmd
    }

    /// Starts the xtask with `args` in [`Sandbox::host`] and returns at once, for
    /// a test that acts on the running process (an interrupt). Its stdout and
    /// stderr go to `<root>/spawned.out` and `.err`; stdin is empty. Unlike
    /// [`Sandbox::xtask`], it is not in a process group of its own, so a signal
    /// sent to it reaches it alone.
    pub fn spawn_xtask(&mut self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command(self.xtask_bin.as_os_str(), args, &self.host());
        self.apply_overrides(&mut cmd);
        let out = fs::File::create(self.root.join("spawned.out")).expect("create spawned.out");
        let err = fs::File::create(self.root.join("spawned.err")).expect("create spawned.err");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.spawn().unwrap_or_else(|e| panic!("cannot start the xtask: {e}"))
    }

    /// What a [`Sandbox::spawn_xtask`] process printed so far: (stdout, stderr).
    /// Kept for the secret scan.
    pub fn spawned_output(&mut self, label: &str) -> (String, String) {
        let read = |name: &str| fs::read_to_string(self.root.join(name)).unwrap_or_default();
        let (stdout, stderr) = (read("spawned.out"), read("spawned.err"));
        self.captured.push(Captured {
            command: label.to_string(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        });
        (stdout, stderr)
    }

    /// Runs the real cargo (not the recording wrapper) in `dir`.
    pub fn cargo(&mut self, dir: &Path, args: &[&str]) -> Run {
        let cargo = self.real_cargo.clone();
        let mut cmd = self.command(cargo.as_os_str(), args, dir);
        self.apply_overrides(&mut cmd);
        self.execute(cmd, command_line("cargo", args), None)
    }

    /// Runs the real cargo in `dir` with `stdin` fed to it (e.g. `cargo login`).
    pub fn cargo_stdin(&mut self, dir: &Path, args: &[&str], stdin: &str) -> Run {
        let cargo = self.real_cargo.clone();
        let mut cmd = self.command(cargo.as_os_str(), args, dir);
        self.apply_overrides(&mut cmd);
        self.execute(cmd, command_line("cargo", args), Some(stdin))
    }

    /// Runs any program in `dir` with the sandbox environment.
    pub fn run(&mut self, program: &str, args: &[&str], dir: &Path) -> Run {
        let mut cmd = self.command(OsStr::new(program), args, dir);
        self.apply_overrides(&mut cmd);
        self.execute(cmd, command_line(program, args), None)
    }

    /// A scratch crate `<root>/crates/<name>` (version 0.1.0) with
    /// `dependencies_toml` as its `[dependencies]` body and an empty
    /// `src/lib.rs`. It has its own `[workspace]` so it never joins an outer
    /// one, and its target dir is its own `target/`.
    pub fn scratch_crate(&self, name: &str, dependencies_toml: &str) -> PathBuf {
        self.scratch_crate_version(name, "0.1.0", dependencies_toml)
    }

    /// [`Sandbox::scratch_crate`] with a chosen version (feed versions are
    /// immutable, so republishing tests need new ones). The directory is
    /// `<root>/crates/<name>-<version>`.
    pub fn scratch_crate_version(&self, name: &str, version: &str, dependencies_toml: &str) -> PathBuf {
        let dir = self.root.join("crates").join(format!("{name}-{version}"));
        assert!(!dir.exists(), "scratch crate {} exists already", dir.display());
        fs::create_dir_all(dir.join("src")).expect("create scratch crate dir");
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
             description = \"Scratch crate of an xtask test\"\nlicense = \"Apache-2.0\"\n\n\
             [dependencies]\n{dependencies_toml}\n\n\
             # Never join a workspace further up.\n[workspace]\n"
        );
        fs::write(dir.join("Cargo.toml"), manifest).expect("write scratch Cargo.toml");
        fs::write(dir.join("src").join("lib.rs"), "").expect("write scratch lib.rs");
        dir
    }

    /// Every byte of stdout and stderr of every command run so far, then every
    /// recorded argument list of stand-ins and of cargo, each under a header.
    pub fn all_output(&self) -> String {
        let mut out = String::new();
        for (label, text) in self.texts() {
            let _ = writeln!(out, "==== {label}\n{text}");
        }
        out
    }

    /// Every scanned text with a label saying where it came from.
    fn texts(&self) -> Vec<(String, String)> {
        let mut texts = Vec::new();
        for c in &self.captured {
            texts.push((format!("stdout of `{}`", c.command), c.stdout.clone()));
            texts.push((format!("stderr of `{}`", c.command), c.stderr.clone()));
        }
        for (name, n, dir) in self.record_dirs() {
            let argv = read_nul_list(&dir.join("argv"));
            texts.push((format!("arguments of {name} call #{n}"), argv.join("\n")));
        }
        texts
    }

    /// Panics if any of `secrets` occurs, in any form [`crate::secret_forms`]
    /// lists (plain, base64 inside any encoded text, percent-encoded, JSON), in
    /// any command's output or any recorded argument list. Returns how many
    /// texts were scanned, so a test can assert the scan saw something.
    ///
    /// Not scanned, on purpose: recorded stdin and environments (the token is
    /// *supposed* to reach `cargo login`'s stdin or `CARGO_REGISTRIES_*_TOKEN`)
    /// and files in `CARGO_HOME` (where cargo stores it).
    #[track_caller]
    pub fn assert_no_secret(&self, secrets: &[&str]) -> usize {
        let texts = self.texts();
        for (label, text) in &texts {
            if let Some(found) = find_secret(text, secrets) {
                panic!("{found} in {label}:\n{text}");
            }
        }
        texts.len()
    }

    /// Writes the executable script `<bin>/<name>`. A `#!/bin/sh` line is
    /// added unless the script has its own `#!`.
    pub fn install_standin(&self, name: &str, script: &str) {
        check_name(name);
        let text = if script.starts_with("#!") { script.to_string() } else { format!("#!/bin/sh\n{script}") };
        write_executable(&self.bin_dir().join(name), &text);
    }

    /// [`Sandbox::install_standin`] with [`Sandbox::recording_prelude`]
    /// before `body`: the usual way to write an `az` or `gh` stand-in.
    pub fn install_recording_standin(&self, name: &str, body: &str) {
        self.install_standin(name, &format!("{}{body}", self.recording_prelude(name)));
    }

    /// Shell that records one call of stand-in `name` for [`Sandbox::calls`]:
    /// its arguments, its environment, and its stdin (read only when stdin is
    /// not a terminal). Stdin is then re-opened from the recording, so the rest
    /// of the script can still read it. Sets `STANDIN_RECORD` to the call's
    /// record directory.
    pub fn recording_prelude(&self, name: &str) -> String {
        format!(
            "{}if [ -t 0 ]; then : > \"$STANDIN_RECORD/stdin\"; \
             else cat > \"$STANDIN_RECORD/stdin\" 2>/dev/null; exec < \"$STANDIN_RECORD/stdin\"; fi\n",
            self.record_args_and_env(name)
        )
    }

    /// Shell recording arguments and environment into a new, numbered record dir
    /// (`mkdir` is atomic, so concurrent calls get distinct numbers).
    fn record_args_and_env(&self, name: &str) -> String {
        check_name(name);
        let records = sh_quote(&self.records_dir().to_string_lossy());
        format!(
            "STANDIN_RECORD={records}; __n=1\n\
             while ! mkdir \"$STANDIN_RECORD/{name}.$__n\" 2>/dev/null; do __n=$((__n+1)); done\n\
             STANDIN_RECORD=\"$STANDIN_RECORD/{name}.$__n\"; unset __n\n\
             if [ $# -gt 0 ]; then printf '%s\\0' \"$@\" > \"$STANDIN_RECORD/argv\"; \
             else : > \"$STANDIN_RECORD/argv\"; fi\n\
             env -0 > \"$STANDIN_RECORD/env\" 2>/dev/null || env > \"$STANDIN_RECORD/env\"\n"
        )
    }

    /// The recorded calls of stand-in `name` (or `"cargo"` for the calls the
    /// xtask made through `CARGO`), in order.
    pub fn calls(&self, name: &str) -> Vec<Call> {
        self.record_dirs()
            .into_iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, dir)| Call {
                argv: read_nul_list(&dir.join("argv")),
                stdin: fs::read(dir.join("stdin"))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
                env_vars: read_nul_list(&dir.join("env"))
                    .into_iter()
                    .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
                    .collect(),
            })
            .collect()
    }

    /// (name, number, dir) of every record, sorted by name then number.
    fn record_dirs(&self) -> Vec<(String, u64, PathBuf)> {
        let mut out = Vec::new();
        if let Ok(entries) = fs::read_dir(self.records_dir()) {
            for e in entries.flatten() {
                let file_name = e.file_name().to_string_lossy().into_owned();
                if let Some((name, n)) = file_name.rsplit_once('.')
                    && let Ok(n) = n.parse::<u64>()
                {
                    out.push((name.to_string(), n, e.path()));
                }
            }
        }
        out.sort();
        out
    }

    /// A command with the sandbox environment (overrides applied separately,
    /// last, by [`Sandbox::apply_overrides`]).
    fn command(&self, program: &OsStr, args: &[&str], dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(dir);
        for (key, _) in std::env::vars_os() {
            if is_scrubbed(&key.to_string_lossy()) {
                cmd.env_remove(&key);
            }
        }
        let mut path = std::ffi::OsString::from(self.bin_dir());
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(if cfg!(windows) { ";" } else { ":" });
            path.push(inherited);
        }
        cmd.env("PATH", path)
            .env("CARGO_HOME", self.cargo_home())
            .env("CARGO", self.wrap_dir().join("cargo"))
            .env("RUSTUP_HOME", real_rustup_home())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("TMPDIR", self.tmp_dir())
            // As `cargo run` sets them: the xtask takes its repository from them.
            .env("CARGO_PKG_NAME", "xtask")
            .env("CARGO_MANIFEST_DIR", self.host().join("xtask"))
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_NET_RETRY", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "xtask test")
            .env("GIT_AUTHOR_EMAIL", "xtask-test@example.invalid")
            .env("GIT_COMMITTER_NAME", "xtask test")
            .env("GIT_COMMITTER_EMAIL", "xtask-test@example.invalid");
        for (name, url) in &self.feeds {
            cmd.env(format!("CARGO_REGISTRIES_{}_INDEX", env_name(name)), url);
        }
        cmd
    }

    fn apply_overrides(&self, cmd: &mut Command) {
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
    }

    /// Runs `cmd` to the end (or the timeout), capturing and recording output.
    fn execute(&mut self, cmd: Command, label: String, stdin: Option<&str>) -> Run {
        let started = Started::spawn(cmd, label, stdin);
        self.finish(started)
    }

    /// Waits for a started command (killing it at the timeout) and records its output.
    fn finish(&mut self, mut started: Started) -> Run {
        let label = started.label;
        let mut timed_out = false;
        let status = loop {
            match started.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.began.elapsed() > self.timeout => {
                    timed_out = true;
                    kill_group(started.child.id());
                    let _ = started.child.kill();
                    break started.child.wait().expect("wait for killed child");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for `{label}`: {e}"),
            }
        };
        if let Some(f) = started.feeder {
            let _ = f.join();
        }
        let stdout = started.stdout.join().unwrap_or_default();
        let stderr = started.stderr.join().unwrap_or_default();
        self.captured.push(Captured {
            command: label.clone(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        });
        let run = Run { command: label, status, stdout, stderr };
        if timed_out {
            panic!("command timed out after {:?} and was killed: {}", self.timeout, run.describe());
        }
        run
    }
}

/// A command running in the background, its output being read.
struct Started {
    label: String,
    child: std::process::Child,
    began: Instant,
    feeder: Option<std::thread::JoinHandle<()>>,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Started {
    fn spawn(mut cmd: Command, label: String, stdin: Option<&str>) -> Started {
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so a timeout can kill cargo and stand-ins too
        // (they hold the output pipes open).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run `{label}`: {e}"));
        let feeder = stdin.map(|text| {
            let mut pipe = child.stdin.take().expect("piped stdin");
            let text = text.to_string();
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            })
        });
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        Started { label, child, began: Instant::now(), feeder, stdout, stderr }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::env::var_os("XTASK_KEEP_SANDBOX").is_some() {
            eprintln!("kept sandbox {}", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// The files of [`Sandbox::host`]: the config block docs/adding-the-xtask.md adds (the
/// alias and the two feeds), and `xtask/Cargo.toml` (publish-redist's defaults).
fn write_host(host: &Path) {
    let doc = repo_root().join("docs").join("adding-the-xtask.md");
    let doc = fs::read_to_string(&doc).unwrap_or_else(|e| panic!("read {}: {e}", doc.display()));
    let block: Vec<&str> = (doc.lines().map(str::trim_start))
        .skip_while(|l| !l.starts_with("# ---- added by"))
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(block.len() > 2, "docs/adding-the-xtask.md gives no config block");
    fs::write(host.join(".cargo").join("config.toml"), block.join("\n") + "\n")
        .expect("write the host's config");
    let manifest = repo_root().join("xtask").join("Cargo.toml");
    fs::copy(&manifest, host.join("xtask").join("Cargo.toml")).expect("copy xtask/Cargo.toml to the host");
}

/// Whether an inherited variable is kept away from sandbox commands.
fn is_scrubbed(key: &str) -> bool {
    SCRUB_EXACT.contains(&key) || SCRUB_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `NAME` of `CARGO_REGISTRIES_<NAME>_*`: upper-cased, `-` and `.` as `_`.
pub(crate) fn env_name(registry: &str) -> String {
    registry
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn kill_group(pid: u32) {
    if cfg!(unix) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
    }
}

fn real_cargo() -> PathBuf {
    if let Some(c) = std::env::var_os("CARGO").filter(|c| !c.is_empty()) {
        return PathBuf::from(c);
    }
    let exe = format!("cargo{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(&exe))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no `cargo` on PATH and CARGO is not set"))
}

/// The developer's rustup home: changing `CARGO_HOME`/`HOME` must not lose the
/// toolchain the rustup proxies resolve.
fn real_rustup_home() -> PathBuf {
    if let Some(h) = std::env::var_os("RUSTUP_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".rustup")
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c)) {
                a.to_string()
            } else {
                sh_quote(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single-quotes `s` for `sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn check_name(name: &str) {
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "stand-in name {name:?}: use letters, digits, `-`, `_` and `.` only"
    );
}

fn read_nul_list(path: &Path) -> Vec<String> {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut items: Vec<String> = text.split('\0').map(str::to_string).collect();
    if items.last().is_some_and(String::is_empty) {
        items.pop();
    }
    items
}

/// Writes an executable script.
///
/// On Unix the bytes are written by a `sh` child, never through a file handle
/// of this (multi-threaded) test process: a handle open for writing here is
/// inherited by any child another test thread forks at that moment, and
/// exec'ing the script then fails with ETXTBSY ("Text file busy") until that
/// child execs. Seen in parallel test runs; this makes it impossible.
fn write_executable(path: &Path, text: &str) {
    #[cfg(unix)]
    {
        let mut child = Command::new("sh")
            .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("write {}: cannot run sh: {e}", path.display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        drop(stdin);
        let status = child.wait().expect("wait for sh");
        assert!(status.success(), "write {}: sh failed: {status}", path.display());
    }
    #[cfg(not(unix))]
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox::new(Path::new("/nonexistent/xtask"))
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("hyperlight_redist"), "HYPERLIGHT_REDIST");
        assert_eq!(env_name("my-feed.x"), "MY_FEED_X");
    }

    #[test]
    fn layout_and_cleanup() {
        let sb = sandbox();
        let root = sb.root().to_path_buf();
        assert!(sb.cargo_home().is_dir());
        assert_eq!(fs::read_dir(sb.cargo_home()).unwrap().count(), 0);
        assert!(sb.bin_dir().is_dir());
        drop(sb);
        if std::env::var_os("XTASK_KEEP_SANDBOX").is_none() {
            assert!(!root.exists());
        }
    }

    /// The xtask runs outside the repository the suite sits in, so cargo never reads that
    /// repository's `.cargo/config.toml` (Hyperlight's of 2023 had a `[registry]` table).
    #[test]
    fn the_xtask_runs_in_a_host_of_its_own() {
        let sb = sandbox();
        let cmd = sb.xtask_command(&["doctor"]);
        assert_eq!(cmd.get_current_dir(), Some(sb.host().as_path()));
        let manifest_dir = cmd.get_envs().find(|(k, _)| *k == "CARGO_MANIFEST_DIR").and_then(|(_, v)| v);
        assert_eq!(manifest_dir, Some(sb.host().join("xtask").as_os_str()));
        assert!(!sb.host().starts_with(repo_root()), "{}", sb.host().display());
        let config = fs::read_to_string(sb.host().join(".cargo/config.toml")).unwrap();
        assert!(config.contains("[registries]") && !config.contains("[registry]"), "{config}");
    }

    #[test]
    fn standins_record_argv_stdin_and_env() {
        let mut sb = sandbox();
        sb.install_recording_standin("az", "read line; echo \"got $line\"; echo oops >&2; exit 3\n");
        sb.env("PAT", "not-for-az");
        let dir = sb.root().to_path_buf();
        let r = sb.run("sh", &["-c", "echo hello | az account 'two words' ''"], &dir);
        r.assert_failure();
        assert_eq!(r.stdout, "got hello\n");
        assert_eq!(r.stderr, "oops\n");
        sb.run("az", &[], &dir);
        let calls = sb.calls("az");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].argv, ["account", "two words", ""]);
        assert_eq!(calls[0].stdin, "hello\n");
        assert_eq!(calls[0].env("PAT"), Some("not-for-az"));
        assert_eq!(calls[0].env("HOME"), Some(sb.home().to_str().unwrap()));
        assert!(calls[1].argv.is_empty());
        assert!(sb.calls("gh").is_empty());
    }

    #[test]
    fn scrub_list() {
        for k in [
            "CI",
            "PAT",
            "GITHUB_ACTIONS",
            "GITHUB_ENV",
            "RUNNER_TEMP",
            "AZURE_DEVOPS_EXT_PAT",
            "GH_TOKEN",
            "CARGO_REGISTRIES_HYPERLIGHT_REDIST_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO",
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "RUSTC_WRAPPER",
        ] {
            assert!(is_scrubbed(k), "{k}");
        }
        for k in ["PATH", "RUSTUP_TOOLCHAIN", "CARGO_HTTP_CAINFO", "SSL_CERT_FILE", "LANG"] {
            assert!(!is_scrubbed(k), "{k}");
        }
    }

    #[test]
    fn sandbox_env_defaults_and_overrides() {
        let mut sb = sandbox();
        let dir = sb.root().to_path_buf();
        let r = sb.run("env", &[], &dir);
        r.assert_success();
        for (k, v) in std::env::vars() {
            if is_scrubbed(&k) {
                let leaked = r.stdout.lines().any(|l| l == format!("{k}={v}"));
                assert!(!leaked, "{k} leaked into the sandbox");
            }
        }
        let home = format!("CARGO_HOME={}", sb.cargo_home().display());
        assert!(r.stdout.lines().any(|l| l == home), "{}", r.stdout);
        let manifest_dir = format!("CARGO_MANIFEST_DIR={}", sb.host().join("xtask").display());
        assert!(r.stdout.lines().any(|l| l == manifest_dir), "{}", r.stdout);
        assert!(r.stdout.contains("CARGO_TERM_COLOR=never"));
        let path = format!("PATH={}:", sb.bin_dir().display());
        assert!(r.stdout.lines().any(|l| l.starts_with(&path)), "{}", r.stdout);
        sb.env_remove("CARGO_TERM_COLOR");
        sb.env("PAT", "set-by-the-test");
        let r = sb.run("env", &[], &dir);
        assert!(!r.stdout.contains("CARGO_TERM_COLOR="));
        assert!(r.stdout.lines().any(|l| l == "PAT=set-by-the-test"));
    }

    #[test]
    fn cargo_wrapper_records_and_passes_stdin_through() {
        let mut sb = sandbox();
        let dir = sb.root().to_path_buf();
        // `$CARGO` is what the xtask runs; stdin must reach the real cargo.
        let r = sb.run("sh", &["-c", "echo x | \"$CARGO\" --version"], &dir);
        r.assert_success().assert_output_contains("cargo ");
        let calls = sb.calls("cargo");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].argv, ["--version"]);
        assert_eq!(calls[0].stdin, "");
    }

    #[test]
    fn scanner_catches_secrets_in_output_and_argv() {
        let secret = "s3cr3t-PAT-value-0123456789";
        let mut sb = sandbox();
        let dir = sb.root().to_path_buf();
        sb.run("echo", &["harmless"], &dir);
        assert!(sb.assert_no_secret(&[secret]) >= 2);
        sb.install_recording_standin("gh", "exit 0\n");
        sb.run("gh", &["secret", "set", "X", "--body", secret], &dir);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sb.assert_no_secret(&[secret]);
        }));
        assert!(caught.is_err(), "argv leak must be caught");

        let mut sb = sandbox();
        let dir = sb.root().to_path_buf();
        let header = crate::basic_header("PAT", secret);
        sb.run("sh", &["-c", &format!("echo 'Authorization: {header}' >&2")], &dir);
        let msg = *std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sb.assert_no_secret(&[secret]);
        }))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
        assert!(msg.contains("base64") && msg.contains("stderr of `sh"), "{msg}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let mut sb = sandbox();
        sb.set_timeout(Duration::from_millis(300));
        let dir = sb.root().to_path_buf();
        let began = Instant::now();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sb.run("sh", &["-c", "sleep 30 & sleep 30; echo never"], &dir);
        }));
        assert!(caught.is_err());
        assert!(began.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn scratch_crate_is_its_own_workspace() {
        let sb = sandbox();
        let dir = sb.scratch_crate("demo", "");
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
        assert!(dir.join("src/lib.rs").is_file());
    }
}
