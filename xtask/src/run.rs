//! The one way the xtask runs an external program (az, gh, git, the nested cargo).
//!
//! Every call gets its output captured (or its stderr lines streamed), a typed
//! failure ([`RunError`]) whose stderr has every secret of the call redacted, and a
//! time limit ([`Program::timeout`], or `XTASK_TIMEOUT_SECS` for all), at which the
//! child and (Unix) its whole process group are killed: `az` is a script that starts
//! python. A Ctrl-C is passed on to the child's group ([`crate::interrupt`]), which
//! is waited for, so nothing is left running.
//!
//! The one exception is `az login` (`az.rs`), attached to the user's terminal with
//! no capture and no limit, since a human is at the other end.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use crate::secret::{Secret, SecretEnv, redact};
use crate::tool;

/// The environment variable that sets the time limit of every call, in seconds.
pub const TIMEOUT_VAR: &str = "XTASK_TIMEOUT_SECS";

/// The limit of a call that names none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a child may run silently before a line says what is being waited for
/// (then again every [`NOTICE_REPEAT`]).
const NOTICE_AFTER: Duration = Duration::from_secs(5);
const NOTICE_REPEAT: Duration = Duration::from_secs(30);

/// How often a running child is checked for its exit and for an interrupt.
const POLL: Duration = Duration::from_millis(100);

/// How long an interrupted child may take to stop before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// How long to wait for the output pipes once a timed-out child is killed: a
/// grandchild outside its process group could hold them open for ever.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(2);

/// Variables cargo sets for the program it runs (`cargo run`, build scripts,
/// tests): they describe the xtask, not what a nested cargo works on.
const CARGO_OWN_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_MANIFEST_"];
const CARGO_OWN_VARS: &[&str] = &[
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_MAKEFLAGS",
    "OUT_DIR",
];

/// One external program to run, with what the runner must know about it.
pub struct Program {
    command: Command,
    label: String,
    stdin: Option<Secret>,
    forms: Vec<String>,
    stdout_is_secret: bool,
    timeout: Duration,
}

/// What a program printed, once it exited 0. `stderr` is redacted; `stdout` is
/// not (it is data, and may be a secret the caller asked for: no `Debug`).
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Why a program did not run to a successful end.
#[derive(Debug)]
pub struct RunError {
    /// What ran, as shown to the user (`az account get-access-token`).
    pub program: String,
    pub kind: RunErrorKind,
}

#[derive(Debug)]
pub enum RunErrorKind {
    /// It could not be started (not found, not executable).
    Start(std::io::Error),
    /// It exited non-zero (or was killed by a signal). `stderr` is redacted.
    Exit { status: ExitStatus, stderr: String },
    /// It ran longer than `limit` and was killed.
    TimedOut { limit: Duration },
    /// Its output could not be read.
    Read(std::io::Error),
    /// An interrupt (Ctrl-C) arrived: it was passed on to the program, which was
    /// waited for (and killed if it did not stop).
    Interrupted,
}

impl RunError {
    /// The redacted stderr of a program that ran and failed; `None` otherwise.
    pub fn stderr(&self) -> Option<&str> {
        match &self.kind {
            RunErrorKind::Exit { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = &self.program;
        match &self.kind {
            RunErrorKind::Start(err) => write!(f, "cannot run `{program}`: {err}"),
            RunErrorKind::Exit { status, stderr, .. } => {
                let stderr = stderr.trim_end();
                if stderr.is_empty() {
                    write!(f, "`{program}` failed ({status}) without a message")
                } else {
                    write!(f, "`{program}` failed ({status}):\n{stderr}")
                }
            }
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

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            RunErrorKind::Start(err) | RunErrorKind::Read(err) => Some(err),
            _ => None,
        }
    }
}

/// The time limit of a call whose own default is `default`: `XTASK_TIMEOUT_SECS`
/// when set, for every call.
pub fn timeout_or(default: Duration) -> Duration {
    std::env::var(TIMEOUT_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&secs| secs > 0)
        .map_or(default, Duration::from_secs)
}

/// `program` (a path found with [`tool`]) with `args`, in `dir`.
pub fn program<I, S>(program: impl AsRef<OsStr>, dir: &Utf8Path, args: I) -> Program
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    Program::new(command)
}

/// The nested cargo (the one running the xtask, [`tool::cargo`]) with `args`, in
/// `dir`, without the variables cargo set for the xtask itself.
pub fn cargo<I, S>(dir: &Utf8Path, args: I) -> Program
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cargo = program(tool::cargo(), dir, args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if CARGO_OWN_VARS.contains(&key.as_ref()) || CARGO_OWN_PREFIXES.iter().any(|p| key.starts_with(p)) {
            cargo.command.env_remove(key.as_ref());
        }
    }
    cargo
}

impl Program {
    /// A command built with xshell's `cmd!` (its directory and environment kept).
    pub fn cmd(cmd: xshell::Cmd<'_>) -> Program {
        Program::new(Command::from(cmd))
    }

    fn new(command: Command) -> Program {
        let label = label_of(&command);
        Program {
            command,
            label,
            stdin: None,
            forms: Vec::new(),
            stdout_is_secret: false,
            timeout: timeout_or(DEFAULT_TIMEOUT),
        }
    }

    /// How the program is named in waiting lines and errors (default: its file
    /// name and arguments).
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
    pub fn env(mut self, key: &str, value: &str) -> Program {
        self.command.env(key, value);
        self
    }

    /// Sets the secret variables of `env` in the child's environment, and redacts
    /// their values in everything this call reports.
    pub fn secret_env(mut self, env: &SecretEnv) -> Program {
        for (key, value) in env.vars() {
            self.command.env(key, value);
        }
        self.forms.extend_from_slice(env.forms());
        self
    }

    /// Writes `secret` to the child's stdin (and redacts it in what it reports).
    pub fn stdin_secret(mut self, secret: &Secret) -> Program {
        self.forms.push(secret.expose().to_owned());
        self.stdin = Some(secret.clone());
        self
    }

    /// More forms of secrets to redact from what the child prints.
    pub fn redact<S: AsRef<str>>(mut self, forms: &[S]) -> Program {
        self.forms.extend(forms.iter().map(|f| f.as_ref().to_owned()));
        self
    }

    /// The child's stdout is a secret (a token, an API answer holding one): it is
    /// redacted from its stderr, and never kept in a [`RunError`].
    pub fn stdout_is_secret(mut self) -> Program {
        self.stdout_is_secret = true;
        self
    }

    /// Runs it to the end, capturing stdout and stderr; fails unless it exits 0.
    pub fn output(self) -> Result<Output, RunError> {
        self.run(None)
    }

    /// Runs it to the end, handing each stderr line (redacted) to `on_line` as it
    /// comes; fails unless it exits 0. The waiting line is printed only after
    /// [`NOTICE_AFTER`] without a line, as the user sees the lines otherwise.
    pub fn stream(self, mut on_line: impl FnMut(&str)) -> Result<Output, RunError> {
        self.run(Some(&mut on_line))
    }

    fn run(mut self, on_line: Option<&mut dyn FnMut(&str)>) -> Result<Output, RunError> {
        let mut child = self.spawn()?;
        feed_stdin(&mut child, self.stdin.take());
        let mut pipes = Pipes::start(&mut child, on_line, self.forms.clone());
        let end = self.supervise(&mut child, &mut pipes);
        pipes.drain(&mut child);
        if !matches!(end, Ok(End::Exited(_))) {
            let _ = child.wait();
        }
        self.assemble(end?, pipes)
    }

    fn error(&self, kind: RunErrorKind) -> RunError {
        RunError { program: self.label.clone(), kind }
    }

    /// Starts the child with piped output, in a process group of its own (Unix) so
    /// that a time-out can kill everything it started.
    fn spawn(&mut self) -> Result<Child, RunError> {
        self.command
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut self.command, 0);
        self.command.spawn().map_err(|e| self.error(RunErrorKind::Start(e)))
    }

    /// Waits for the child to exit, collecting its output, until the time limit or
    /// an interrupt; says what it waits for after a few silent seconds.
    fn supervise(&self, child: &mut Child, pipes: &mut Pipes) -> Result<End, RunError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut notice_at = started + NOTICE_AFTER.min(self.timeout / 2);
        loop {
            let exited = child.try_wait().map_err(|e| {
                kill(child);
                self.error(RunErrorKind::Read(e))
            })?;
            if let Some(status) = exited {
                return Ok(End::Exited(status));
            }
            if crate::interrupt::requested() {
                stop_interrupted(child, pipes);
                return Ok(End::Interrupted);
            }
            let now = Instant::now();
            if now >= deadline {
                kill(child);
                return Ok(End::TimedOut);
            }
            if now >= notice_at {
                let (waited, limit) = (started.elapsed().as_secs(), self.timeout.as_secs());
                eprintln!("waiting for `{}` ({waited} s; stopping it after {limit} s)…", self.label);
                notice_at = now + NOTICE_REPEAT;
            }
            if pipes.receive(deadline.min(notice_at).min(now + POLL) - now) {
                notice_at = Instant::now() + NOTICE_AFTER;
            }
        }
    }

    /// The result: an error for an interrupt, a time-out, a read error or a non-zero
    /// exit. Stderr is redacted, of stdout too when stdout is a secret.
    fn assemble(&self, end: End, pipes: Pipes) -> Result<Output, RunError> {
        let status = match end {
            End::Exited(status) => status,
            End::TimedOut => return Err(self.error(RunErrorKind::TimedOut { limit: self.timeout })),
            End::Interrupted => return Err(self.error(RunErrorKind::Interrupted)),
        };
        if let Some(err) = pipes.read_error {
            return Err(self.error(RunErrorKind::Read(err)));
        }
        let stdout = pipes.stdout.unwrap_or_default();
        let mut forms = self.forms.clone();
        if self.stdout_is_secret && !stdout.trim().is_empty() {
            forms.push(stdout.trim().to_owned());
        }
        let stderr = redact(&pipes.stderr, &forms);
        if !status.success() {
            return Err(self.error(RunErrorKind::Exit { status, stderr }));
        }
        Ok(Output { stdout, stderr })
    }
}

/// How a supervised child ended.
enum End {
    Exited(ExitStatus),
    TimedOut,
    Interrupted,
}

/// Writes the secret from a thread: a child that writes before it reads must not
/// block on a full pipe while this thread blocks on writing. A child that exits
/// without reading closes the pipe, and its exit status says what went wrong.
fn feed_stdin(child: &mut Child, secret: Option<Secret>) {
    if let (Some(secret), Some(mut pipe)) = (secret, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = pipe.write_all(secret.expose().as_bytes());
        });
    }
}

/// Passes the interrupt on to the child's group, then waits for it (collecting
/// output) for [`INTERRUPT_GRACE`] before killing it.
fn stop_interrupted(child: &mut Child, pipes: &mut Pipes) {
    crate::interrupt::forward(child);
    let until = Instant::now() + INTERRUPT_GRACE;
    while matches!(child.try_wait(), Ok(None)) {
        let now = Instant::now();
        if now >= until {
            kill(child);
            return;
        }
        pipes.receive(POLL.min(until - now));
    }
}

/// What the reader threads send.
enum Event {
    Stdout(std::io::Result<Vec<u8>>),
    StderrLine(String),
    StderrError(std::io::Error),
    StderrEnd,
}

/// The child's output as it arrives from one thread per pipe: stdout whole, stderr
/// line by line (handed to `on_line`, redacted, when streaming).
struct Pipes<'a> {
    events: mpsc::Receiver<Event>,
    on_line: Option<&'a mut dyn FnMut(&str)>,
    forms: Vec<String>,
    stdout: Option<String>,
    stderr: String,
    stderr_done: bool,
    read_error: Option<std::io::Error>,
}

impl<'a> Pipes<'a> {
    fn start(child: &mut Child, on_line: Option<&'a mut dyn FnMut(&str)>, forms: Vec<String>) -> Pipes<'a> {
        let (sender, events) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let read = BufReader::new(stdout).read_to_end(&mut bytes).map(|_| bytes);
                let _ = sender.send(Event::Stdout(read));
            });
        }
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || read_lines(BufReader::new(stderr), &sender));
        }
        let (stdout, stderr, stderr_done, read_error) = (None, String::new(), false, None);
        Pipes { events, on_line, forms, stdout, stderr, stderr_done, read_error }
    }

    fn done(&self) -> bool {
        self.stdout.is_some() && self.stderr_done
    }

    /// Takes what arrives within `wait`; true when a line was streamed.
    fn receive(&mut self, wait: Duration) -> bool {
        if self.done() {
            // Nothing more to read: only the exit to wait for.
            std::thread::sleep(wait);
            return false;
        }
        match self.events.recv_timeout(wait) {
            Ok(Event::Stdout(Ok(bytes))) => self.stdout = Some(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Event::Stdout(Err(err))) => {
                self.read_error.get_or_insert(err);
                self.stdout = Some(String::new());
            }
            Ok(Event::StderrLine(line)) => {
                self.stderr.push_str(&line);
                self.stderr.push('\n');
                if let Some(on_line) = self.on_line.as_deref_mut() {
                    on_line(&redact(&line, &self.forms));
                    return true;
                }
            }
            Ok(Event::StderrError(err)) => {
                self.read_error.get_or_insert(err);
                self.stderr_done = true;
            }
            Ok(Event::StderrEnd) => self.stderr_done = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.stdout.get_or_insert_with(String::new);
                self.stderr_done = true;
            }
        }
        false
    }

    /// Reads to the end of both pipes once the child has ended, for at most
    /// [`DRAIN_AFTER_KILL`]: a grandchild left holding them is killed with the group.
    fn drain(&mut self, child: &mut Child) {
        let until = Instant::now() + DRAIN_AFTER_KILL;
        while !self.done() {
            let now = Instant::now();
            if now >= until {
                kill(child);
                self.stdout.get_or_insert_with(String::new);
                return;
            }
            self.receive(until - now);
        }
    }
}

/// Sends each stderr line, then the end (or the read error).
fn read_lines(mut reader: impl BufRead, sender: &mpsc::Sender<Event>) {
    loop {
        let mut line = Vec::new();
        let event = match reader.read_until(b'\n', &mut line) {
            Ok(0) => Event::StderrEnd,
            Ok(_) => {
                Event::StderrLine(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_owned())
            }
            Err(err) => Event::StderrError(err),
        };
        let last = !matches!(event, Event::StderrLine(_));
        if sender.send(event).is_err() || last {
            return;
        }
    }
}

/// The program's file name and its arguments, as the default label.
fn label_of(command: &Command) -> String {
    let program = std::path::Path::new(command.get_program())
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::iter::once(program)
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kills the child and (Unix) its whole process group.
fn kill(child: &mut Child) {
    crate::interrupt::kill_group(child);
    let _ = child.kill();
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Program {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        Program::new(command).label("the test script")
    }

    #[test]
    fn a_failure_carries_the_program_status_and_redacted_stderr() {
        let header = "Basic UEFUOnMzY3IzdC12YWx1ZQ==";
        let env =
            SecretEnv::default().secret("TOKEN", &Secret::new(header.into()), vec!["s3cr3t-value".into()]);
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
        let err = Program::new(Command::new("/nonexistent/xtask-test")).output().err().expect("fails");
        assert!(matches!(err.kind, RunErrorKind::Start(_)), "{err:?}");
    }

    #[test]
    fn nested_cargo_loses_the_variables_cargo_set_for_the_xtask() {
        let program = cargo(Utf8Path::new("."), ["--version"]);
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
