//! The one way to run an external program: output captured or streamed, failures typed
//! and redacted, a time limit that kills the child's whole process group (`az` starts python).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use crate::interrupt;
use crate::secret::{Secret, SecretEnv, redact};

/// The time limit of every call, in seconds, when set.
pub const TIMEOUT_VAR: &str = "XTASK_TIMEOUT_SECS";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// A silent child gets a line saying what is waited for.
const NOTICE_AFTER: Duration = Duration::from_secs(5);
const NOTICE_REPEAT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);
/// A grandchild outside the child's group could hold the pipes open for ever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// What cargo sets for the xtask, not for a nested cargo.
const CARGO_OWN_VARS: [&str; 9] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_MAKEFLAGS",
    "OUT_DIR",
];

pub struct Program {
    command: Command,
    label: String,
    stdin: Option<Secret>,
    forms: Vec<String>,
    stdout_is_secret: bool,
    timeout: Duration,
}

/// `stderr` is redacted; `stdout` may be a secret the caller asked for, so no `Debug`.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Why a program did not run to a successful end; `program` is its label.
#[derive(Debug)]
pub struct RunError {
    pub program: String,
    pub kind: RunErrorKind,
}

/// `Exit`'s stderr is redacted; `Interrupted` is a Ctrl-C, passed on to the program.
#[derive(Debug)]
pub enum RunErrorKind {
    Start(std::io::Error),
    Exit { status: ExitStatus, stderr: String },
    TimedOut { limit: Duration },
    Read(std::io::Error),
    Interrupted,
}

impl RunError {
    /// The redacted stderr of a program that ran and failed.
    pub fn stderr(&self) -> Option<&str> {
        match &self.kind {
            RunErrorKind::Exit { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let program = &self.program;
        match &self.kind {
            RunErrorKind::Start(err) => write!(f, "cannot run `{program}`: {err}"),
            RunErrorKind::Exit { status, stderr } => match stderr.trim_end() {
                "" => write!(f, "`{program}` failed ({status}) without a message"),
                stderr => write!(f, "`{program}` failed ({status}):\n{stderr}"),
            },
            RunErrorKind::TimedOut { limit } => write!(
                f,
                "`{program}` gave no result within {} s and was stopped: check what it waits for \
                 (the network, a login prompt), or allow more time with {TIMEOUT_VAR}=<seconds>",
                limit.as_secs()
            ),
            RunErrorKind::Read(err) => write!(f, "cannot read the output of `{program}`: {err}"),
            RunErrorKind::Interrupted => write!(f, "interrupted while `{program}` ran; it was stopped"),
        }
    }
}

impl std::error::Error for RunError {}

/// `default`, or `XTASK_TIMEOUT_SECS` when set (0: the default).
pub fn timeout_or(default: Duration) -> Duration {
    let value = std::env::var(TIMEOUT_VAR).unwrap_or_default();
    let secs = value.trim().parse::<u64>().ok();
    if secs.is_none() && !value.is_empty() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("warning: {TIMEOUT_VAR}={value} is not a number of seconds: ignored"));
    }
    secs.filter(|&secs| secs > 0).map_or(default, Duration::from_secs)
}

/// `program` (a path found with `tool`) with `args`, in `dir`.
pub fn program(program: impl AsRef<OsStr>, dir: &Utf8Path, args: &[&str]) -> Program {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    let name = std::path::Path::new(command.get_program()).file_stem().unwrap_or_default();
    let label = args.iter().fold(name.to_string_lossy().into_owned(), |label, arg| format!("{label} {arg}"));
    let (stdin, forms, timeout) = (None, Vec::new(), timeout_or(DEFAULT_TIMEOUT));
    Program { command, label, stdin, forms, stdout_is_secret: false, timeout }
}

/// The cargo running the xtask with `args`, in `dir`, without what cargo set for the xtask.
pub fn cargo(dir: &Utf8Path, args: &[&str]) -> Program {
    let mut program = program(crate::tool::cargo(), dir, args);
    for (key, _) in std::env::vars_os() {
        if CARGO_OWN_VARS.iter().any(|own| key.to_string_lossy().starts_with(own)) {
            program.command.env_remove(key);
        }
    }
    // What the tasks read of cargo's output is plain and there, whatever the user's
    // `[term]` (Hyperlight's workflows set CARGO_TERM_COLOR=always); a verbose or logging
    // cargo prints a credential provider's arguments, an offline one answers from its cache.
    program = program.env("CARGO_TERM_COLOR", "never").env("CARGO_TERM_QUIET", "false");
    program = program.env("CARGO_TERM_VERBOSE", "false").env_remove("CARGO_LOG");
    program = program.env("CARGO_TERM_PROGRESS_WHEN", "never").env("CARGO_NET_OFFLINE", "false");
    // Cargo takes a relative CARGO_HOME from its directory, which `dir` changes.
    match std::env::var_os("CARGO_HOME").map(std::path::absolute) {
        Some(Ok(home)) => program.env("CARGO_HOME", home),
        _ => program,
    }
}

impl Program {
    /// How the program is named in waiting lines and errors (default: its command line).
    pub fn label(mut self, label: impl Into<String>) -> Program {
        self.label = label.into();
        self
    }

    /// This call's own time limit; `XTASK_TIMEOUT_SECS` still wins when set.
    pub fn timeout(mut self, default: Duration) -> Program {
        self.timeout = timeout_or(default);
        self
    }

    /// Sets a variable that is no secret.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Program {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Program {
        self.command.env_remove(key);
        self
    }

    /// Sets the variables of `env` and redacts their values from what the call reports.
    pub fn secret_env(mut self, env: &SecretEnv) -> Program {
        self.command.envs(env.vars());
        self.redact(env.forms())
    }

    /// Writes `secret` to the child's stdin (and redacts it).
    pub fn stdin_secret(mut self, secret: &Secret) -> Program {
        self.stdin = Some(secret.clone());
        self.redact(&[secret.expose().to_owned()])
    }

    /// More forms of secrets to redact from what the child prints.
    pub fn redact(mut self, forms: &[String]) -> Program {
        self.forms.extend_from_slice(forms);
        self
    }

    /// The child's stdout is a secret (a token): it is redacted from its stderr.
    pub fn stdout_is_secret(mut self) -> Program {
        self.stdout_is_secret = true;
        self
    }

    /// Runs it to the end, capturing stdout and stderr; fails unless it exits 0.
    pub fn output(self) -> Result<Output, RunError> {
        self.run(None)
    }

    /// Like [`Program::output`], handing each stderr line (redacted) to `on_line`.
    pub fn stream(self, mut on_line: impl FnMut(&str)) -> Result<Output, RunError> {
        let forms = self.forms.clone();
        self.run(Some(&mut |line: &str| on_line(&redact(line, &forms))))
    }

    fn run(mut self, on_line: Option<&mut dyn FnMut(&str)>) -> Result<Output, RunError> {
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        self.command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        // A session of its own (Unix): a process group that a time-out kills whole, and no
        // terminal, so that a prompt on /dev/tty (ssh's host-key question) fails at once. Git (and
        // the git cargo runs) would wait out the time limit on a login prompt or GCM's window.
        self.command.env("GIT_TERMINAL_PROMPT", "0").env("GCM_INTERACTIVE", "never");
        #[cfg(unix)]
        // SAFETY: between fork and exec the closure only calls setsid, which is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut self.command, || {
                if libc::setsid() == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            })
        };
        let mut child = self.command.spawn().map_err(|e| self.error(RunErrorKind::Start(e)))?;
        if let (Some(secret), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // From a thread: a child that writes before it reads must not block us.
            std::thread::spawn(move || pipe.write_all(secret.expose().as_bytes()));
        }
        let mut pipes = Pipes::start(&mut child, on_line);
        let end = self.wait(&mut child, &mut pipes);
        let read = pipes.drain(&mut child);
        let status = end.map_err(|kind| self.error(kind))?;
        let (stdout, stderr) = read.map_err(|err| self.error(RunErrorKind::Read(err)))?;
        if self.stdout_is_secret {
            // Each line too: az's tsv answer is a token, then other fields, one a line.
            let lines = stdout.lines().map(str::trim).filter(|line| line.len() >= 8);
            self.forms.extend(lines.chain([stdout.trim()]).filter(|f| !f.is_empty()).map(str::to_owned));
        }
        let stderr = redact(&stderr, &self.forms);
        if !status.success() {
            return Err(self.error(RunErrorKind::Exit { status, stderr }));
        }
        Ok(Output { stdout, stderr })
    }

    /// Runs it on the user's terminal with no time limit; fails unless it exits 0.
    pub fn status(mut self) -> Result<(), RunError> {
        eprintln!("$ {}", self.label);
        let status = self.command.status().map_err(|err| self.error(RunErrorKind::Start(err)))?;
        let stderr = "its output is above".to_owned();
        status.success().then_some(()).ok_or_else(|| self.error(RunErrorKind::Exit { status, stderr }))
    }

    fn error(&self, kind: RunErrorKind) -> RunError {
        RunError { program: self.label.clone(), kind }
    }

    /// Waits for the exit, handing on stderr lines, until the time limit or an interrupt.
    fn wait(&self, child: &mut Child, pipes: &mut Pipes) -> Result<ExitStatus, RunErrorKind> {
        let started = Instant::now();
        let (mut stop_at, mut interrupted) = (started + self.timeout, false);
        let mut notice_at = started + NOTICE_AFTER.min(self.timeout / 2);
        loop {
            let now = Instant::now();
            let end = match child.try_wait() {
                Ok(Some(status)) if !interrupted => return Ok(status),
                Ok(None) if now < stop_at => None,
                // Ended or not, what it started and left running (a build script) is stopped too.
                Ok(_) if interrupted => Some(RunErrorKind::Interrupted),
                Ok(_) => Some(RunErrorKind::TimedOut { limit: self.timeout }),
                Err(err) => Some(RunErrorKind::Read(err)),
            };
            if let Some(kind) = end {
                kill(child);
                return Err(kind);
            }
            if !interrupted && interrupt::requested() {
                // Passed on to its process group; on Windows the console gives the child the Ctrl-C itself.
                #[cfg(unix)]
                signal_group(child, libc::SIGINT);
                (stop_at, interrupted) = (now + INTERRUPT_GRACE, true);
            } else if !interrupted && now >= notice_at {
                let (waited, limit) = (started.elapsed().as_secs(), self.timeout.as_secs());
                eprintln!("waiting for `{}` ({waited} s; stopping it after {limit} s)…", self.label);
                notice_at = now + NOTICE_REPEAT;
            }
            if pipes.receive(POLL) {
                notice_at = Instant::now() + NOTICE_AFTER;
            }
        }
    }
}

/// The child's output, from a reader thread per pipe: stdout whole, stderr line by line.
struct Pipes<'a> {
    stdout: JoinHandle<std::io::Result<String>>,
    stderr: JoinHandle<std::io::Result<String>>,
    lines: mpsc::Receiver<String>,
    on_line: Option<&'a mut dyn FnMut(&str)>,
    closed: bool,
}

impl<'a> Pipes<'a> {
    fn start(child: &mut Child, on_line: Option<&'a mut dyn FnMut(&str)>) -> Pipes<'a> {
        let (mut out, err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        // Each reader holds a sender: the channel closes when both pipes are at their end.
        let (sender, lines) = mpsc::channel();
        let open = sender.clone();
        let stdout = std::thread::spawn(move || {
            let (_open, mut bytes) = (open, Vec::new());
            out.read_to_end(&mut bytes).map(|_| String::from_utf8_lossy(&bytes).into_owned())
        });
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).split(b'\n') {
                let line = String::from_utf8_lossy(&line?).trim_end_matches('\r').to_owned();
                all = all + &line + "\n";
                let _ = sender.send(line);
            }
            Ok(all)
        });
        Pipes { stdout, stderr, lines, on_line, closed: false }
    }

    /// Takes what arrives within `wait`; true when a line was streamed.
    fn receive(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(line) => return self.on_line.as_deref_mut().map(|on_line| on_line(&line)).is_some(),
            Err(RecvTimeoutError::Timeout) => {}
            // Both pipes are closed: the exit is all that is left to wait for.
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        false
    }

    /// Reads both pipes to their end, killing the group if they stay open after the exit.
    fn drain(mut self, child: &mut Child) -> std::io::Result<(String, String)> {
        if !self.closed_within(DRAIN_AFTER_EXIT) {
            kill(child);
            // The group is gone, so the pipes end now, unless a process outside it holds them.
            if !self.closed_within(Duration::from_secs(1)) {
                let why = "a process it started, outside its process group, holds its output open";
                return Err(std::io::Error::other(why));
            }
        }
        let join = |reader: JoinHandle<_>| reader.join().unwrap_or(Ok(String::new()));
        Ok((join(self.stdout)?, join(self.stderr)?))
    }

    fn closed_within(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while !self.closed && Instant::now() < until {
            self.receive(until.saturating_duration_since(Instant::now()));
        }
        self.closed
    }
}

/// Kills the child and (Unix) its whole process group (build scripts, `az`'s python), and reaps it.
fn kill(child: &mut Child) {
    #[cfg(unix)]
    signal_group(child, libc::SIGKILL);
    // Windows has no process groups and `kill` ends the child alone (az.cmd's cmd.exe, not its python).
    #[cfg(windows)]
    let _ = Command::new("taskkill").args(["/F", "/T", "/PID", &child.id().to_string()]).output();
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
fn signal_group(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(-pid, sig) };
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Program {
        program("sh", Utf8Path::new("."), &["-c", script]).label("the test script")
    }

    /// A grandchild in the group holding the pipes is killed after the drain time,
    /// and what the child printed is kept.
    #[cfg(unix)]
    #[test]
    fn the_output_survives_a_grandchild_holding_the_pipes() {
        let out = sh("echo data; sleep 30 &").output().expect("exit 0");
        assert_eq!(out.stdout, "data\n");
    }

    /// One outside the group is out of reach: an error, never an empty stdout.
    #[cfg(target_os = "linux")]
    #[test]
    fn output_held_open_outside_the_group_is_an_error() {
        let err = sh("echo data; setsid sleep 5 &").output().err().expect("not a silent empty stdout");
        assert!(err.to_string().contains("outside its process group, holds its output open"), "{err}");
    }

    #[test]
    fn a_failure_carries_the_program_status_and_redacted_stderr() {
        let header = "Basic UEFUOnMzY3IzdC12YWx1ZQ==";
        let env = SecretEnv::hiding(vec!["s3cr3t-value".into()]).secret("TOKEN", &Secret::new(header.into()));
        let err = sh("echo \"server said: $TOKEN and s3cr3t-value\" >&2; exit 3")
            .secret_env(&env)
            .output()
            .err()
            .expect("exit 3 is a failure");
        assert_eq!(err.program, "the test script");
        match &err.kind {
            RunErrorKind::Exit { status, stderr, .. } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr.trim(), "server said: <redacted> and <redacted>");
            }
            other => panic!("{other:?}"),
        }
        let shown = format!("{err} {err:?}");
        let shown = format!("{shown} {:#}", anyhow::Error::new(err));
        assert!(!shown.contains("s3cr3t") && !shown.contains("UEFU"), "{shown}");
        assert!(shown.contains("`the test script` failed (exit status: 3)"), "{shown}");
    }

    #[test]
    fn each_line_of_a_secret_stdout_is_redacted() {
        let err = sh("echo tok-s3cr3t-value; echo None; echo \"az: tok-s3cr3t-value None\" >&2; exit 1")
            .stdout_is_secret()
            .output()
            .err()
            .expect("exit 1 is a failure");
        assert_eq!(err.stderr(), Some("az: <redacted> None\n"), "{err}");
    }

    #[test]
    fn the_anyhow_error_can_be_classified_again() {
        let err = anyhow::Error::new(sh("exit 1").output().err().expect("fails"));
        assert!(err.downcast_ref::<RunError>().is_some_and(|e| e.stderr() == Some("")));
    }

    #[test]
    fn a_hanging_child_and_its_group_are_stopped_at_the_limit() {
        let started = Instant::now();
        let err =
            sh("sleep 30 & sleep 30").timeout(Duration::from_millis(1500)).output().err().expect("times out");
        assert!(matches!(err.kind, RunErrorKind::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let shown = err.to_string();
        assert!(shown.contains("the test script") && shown.contains(TIMEOUT_VAR), "{shown}");
    }

    #[test]
    fn stdin_output_and_streamed_lines() {
        let secret = Secret::new("s3cr3t-value".into());
        let mut lines = Vec::new();
        let out = sh("read x; echo \"one $x\" >&2; echo two >&2; echo out")
            .stdin_secret(&secret)
            .stream(|line| lines.push(line.to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines, ["one <redacted>", "two"]);
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "one <redacted>\ntwo\n");
    }

    #[test]
    fn a_missing_program_is_a_start_error() {
        let err = program("/nonexistent/xtask-test", Utf8Path::new("."), &[]).output().err().expect("fails");
        assert!(matches!(err.kind, RunErrorKind::Start(_)), "{err:?}");
    }

    #[test]
    fn nested_cargo_loses_the_variables_cargo_set_for_the_xtask() {
        let program = cargo(Utf8Path::new("."), &["--version"]);
        let removed: Vec<String> = program
            .command
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        // `cargo test` sets these for the test binary, as `cargo run` does for the xtask.
        for var in ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR"] {
            assert!(removed.iter().any(|r| r == var), "{var} kept: {removed:?}");
        }
    }
}
