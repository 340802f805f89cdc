//! The build-time benchmark of `cargo xtask` (README, "Benchmarks"):
//!
//! ```text
//! cargo run --manifest-path xtask/Cargo.toml -p xtask-harness --release --bin bench-build [-- --runs N --help-runs K --baseline REV]
//! ```
//!
//! `cargo xtask` is compiled cold on every fresh CI job, so its cost is the cold
//! debug build. That build is compared with the floor no xtask can beat: a bare
//! crate that depends on the same six crates, with the same versions (the repo's
//! xtask/Cargo.lock) and features (the `[dependencies]` lines of xtask/Cargo.toml,
//! copied so they cannot drift) and the same `[profile.dev]`. The builds take turns,
//! each with a fresh target dir, so a change of machine load hits all of them.
//! With `--baseline REV`, each round also builds the xtask as it was at REV, and the
//! round-by-round difference says whether a change moved the build time beyond the
//! noise of the machine (`--baseline HEAD` measures that noise).
//! Then the warm `cargo xtask --help` time: the built binary alone, and through
//! cargo's alias as a user types it.
//!
//! Budgets (issue 2): xtask / bare at most 1.15 (every extra dependency and every
//! line of the xtask is paid for inside that 15%), warm `cargo xtask --help` at
//! most 0.15 s. Exits 1 when over a budget. Not a test: timings depend on the
//! machine, so this prints figures for a human to read and note.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const RATIO_BUDGET: f64 = 1.15;
const HELP_BUDGET: Duration = Duration::from_millis(150);
const USAGE: &str =
    "usage: cargo run -p xtask-harness --release --bin bench-build [-- --runs N] [--help-runs K] [--baseline REV] [--keep]

  --runs N        rounds: one cold build of each crate per round, taking turns (default 3)
  --help-runs K   timed runs of each warm `--help` measurement (default 15)
  --baseline REV  also build the xtask as it was at REV (a commit of this repo) in each
                  round, and print the round-by-round difference: whether a change
                  moved the build time beyond the noise (`--baseline HEAD` shows the noise)
  --keep          keep the temp dir (bare crate, last target dirs) and print its path";

struct Options {
    runs: usize,
    help_runs: usize,
    keep: bool,
    baseline: Option<String>,
}

/// One crate built cold in each round.
struct Contender {
    name: &'static str,
    dir: PathBuf,
    args: &'static [&'static str],
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("bench-build: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { runs: 3, help_runs: 15, keep: false, baseline: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{flag} needs a number"))?;
            v.parse::<usize>().ok().filter(|n| *n > 0).ok_or(format!("{flag} {v}: not a positive number"))
        };
        match arg.as_str() {
            "--runs" => o.runs = number("--runs")?,
            "--help-runs" => o.help_runs = number("--help-runs")?,
            "--keep" => o.keep = true,
            "--baseline" => o.baseline = Some(args.next().ok_or("--baseline needs a revision")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(o)
}

/// Runs the whole benchmark; `Ok(false)` when a budget is exceeded.
fn bench(o: &Options) -> Result<bool, String> {
    let root = xtask_harness::repo_root();
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let work = std::env::temp_dir().join(format!("xtask-bench-build-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
    let result = bench_in(o, &root, &cargo, &work);
    if o.keep {
        println!("kept {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    result
}

fn bench_in(o: &Options, root: &Path, cargo: &Path, work: &Path) -> Result<bool, String> {
    let deps = dependency_lines(&read(&root.join("xtask").join("Cargo.toml"))?)?;
    // The xtask's own workspace root holds its profile and lock file.
    let xtask_dir = root.join("xtask");
    let profile = table(&read(&xtask_dir.join("Cargo.toml"))?, "[profile.dev]");
    let bare = work.join("bare");
    write_bare_crate(&bare, &deps, &profile, &xtask_dir.join("Cargo.lock"))?;

    println!("bench-build: cold `cargo build` of the xtask vs a bare crate with its dependencies");
    println!("  machine: {} CPUs{}", cpus(), load().map(|l| format!(", load {l}")).unwrap_or_default());
    println!("  {}", output(Command::new(cargo).arg("--version"))?.trim());
    println!("  bare crate dependencies (from xtask/Cargo.toml):");
    for d in &deps {
        println!("    {d}");
    }

    // Fetch once, so the timed builds measure compiling, not downloading.
    output(Command::new(cargo).args(["fetch", "--locked"]).current_dir(&xtask_dir))?;
    output(Command::new(cargo).arg("fetch").current_dir(&bare))?;
    check_same_versions(&read(&bare.join("Cargo.lock"))?, &read(&xtask_dir.join("Cargo.lock"))?)?;

    let baseline = match &o.baseline {
        Some(rev) => Some(check_out_baseline(cargo, root, rev, &work.join("baseline"))?),
        None => None,
    };

    // The contenders of each round: the bare crate, the xtask and, with
    // `--baseline`, the xtask at that revision (its own workspace and lock).
    let mut contenders = vec![
        Contender { name: "bare", dir: bare.clone(), args: &["build", "--offline"] },
        Contender {
            name: "xtask",
            dir: xtask_dir.clone(),
            args: &["build", "--offline", "--locked", "-p", "xtask"],
        },
    ];
    if let Some((_, dir)) = &baseline {
        contenders.push(Contender {
            name: "baseline",
            dir: dir.clone(),
            args: &["build", "--offline", "--locked", "-p", "xtask"],
        });
    }

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    let mut last_xtask_target = None;
    let mut header = format!("\n  {:>5}  {:<8}  {:<21}  {:<21}", "round", "first", "bare crate", "xtask");
    if baseline.is_some() {
        header.push_str(&format!("  {:<21}  {:<16}", "baseline", "xtask - baseline"));
    }
    println!("{header}  ratio");
    for round in 0..o.runs {
        // Rotate which goes first, so none always gets the warmer caches.
        let order: Vec<usize> = (0..contenders.len()).map(|i| (i + round) % contenders.len()).collect();
        let mut this_round = vec![(Duration::ZERO, 0); contenders.len()];
        for &i in &order {
            let contender = &contenders[i];
            let target = work.join(format!("target-{}-{round}", contender.name));
            let mut cmd = Command::new(cargo);
            cmd.args(contender.args).current_dir(&contender.dir);
            this_round[i] = cold_build(cmd, &target)?;
            times[i].push(this_round[i].0);
            if contender.name == "xtask" {
                if let Some(old) = last_xtask_target.replace(target) {
                    let _ = fs::remove_dir_all(old);
                }
            } else {
                let _ = fs::remove_dir_all(&target);
            }
        }
        let cell = |(d, n): (Duration, usize)| format!("{:>7.2} s ({n:>2} crates)", d.as_secs_f64());
        let first = contenders[order[0]].name;
        let mut line =
            format!("  {:>5}  {first:<8}  {}  {}", round + 1, cell(this_round[0]), cell(this_round[1]));
        if baseline.is_some() {
            let difference = secs(this_round[1].0) - secs(this_round[2].0);
            line.push_str(&format!("  {}  {:<16}", cell(this_round[2]), format!("{difference:+.2} s")));
        }
        println!("{line}  {:.3}", secs(this_round[1].0) / secs(this_round[0].0));
    }
    // `median` sorts, so it gets copies: the rounds' pairing is needed below.
    let medians: Vec<Duration> = times.iter().map(|t| median(&mut t.clone())).collect();
    let (bare_med, xtask_med) = (medians[0], medians[1]);
    let ratio = xtask_med.as_secs_f64() / bare_med.as_secs_f64();

    let target = last_xtask_target.expect("at least one round");
    let bin = target.join("debug").join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    let mut direct = Command::new(&bin);
    direct.arg("--help");
    let direct = time_repeated(direct, o.help_runs)?;
    let mut via_cargo = Command::new(cargo);
    via_cargo.args(["xtask", "--help"]).current_dir(root).env("CARGO_TARGET_DIR", &target);
    let via_cargo = time_repeated(via_cargo, o.help_runs)?;

    let ratio_ok = ratio <= RATIO_BUDGET;
    let help_ok = via_cargo <= HELP_BUDGET;
    let verdict = |ok: bool| if ok { "within budget" } else { "OVER BUDGET" };
    println!("\n  median cold build: bare {:.2} s, xtask {:.2} s", secs(bare_med), secs(xtask_med));
    println!(
        "  ratio xtask / bare: {ratio:.3} (budget {RATIO_BUDGET:.2}: {}), the xtask's own share {:+.2} s",
        verdict(ratio_ok),
        secs(xtask_med) - secs(bare_med)
    );
    if let Some((label, _)) = &baseline {
        let differences = sorted_differences(&times[1], &times[2]);
        let median_difference = median_of_sorted(&differences);
        println!(
            "  baseline {label}: median {:.2} s, ratio baseline / bare {:.3}",
            secs(medians[2]),
            secs(medians[2]) / secs(bare_med)
        );
        println!(
            "  xtask - baseline, round by round: median {median_difference:+.2} s (from {:+.2} to {:+.2} s)",
            differences[0],
            differences[differences.len() - 1]
        );
    }
    println!(
        "  warm `cargo xtask --help`: {:.3} s median of {} (budget {:.2} s: {})",
        secs(via_cargo),
        o.help_runs,
        secs(HELP_BUDGET),
        verdict(help_ok)
    );
    println!("  warm binary `xtask --help` alone: {:.4} s median of {}", secs(direct), o.help_runs);
    Ok(ratio_ok && help_ok)
}

/// A clone of the repository at `rev` in `dir` (sharing this repository's objects,
/// changing nothing in it), its dependencies fetched. Returns a label for `rev` and
/// the clone's `xtask/`, where `cargo build -p xtask` finds that revision's own
/// workspace, whichever layout it had.
fn check_out_baseline(cargo: &Path, root: &Path, rev: &str, dir: &Path) -> Result<(String, PathBuf), String> {
    let git = |args: &[&str], cwd: &Path| output(Command::new("git").args(args).current_dir(cwd));
    let sha = git(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], root)
        .map_err(|_| format!("--baseline {rev}: not a commit of {}", root.display()))?;
    let sha = sha.trim();
    let clone_into = dir.to_str().ok_or(format!("{} is not UTF-8", dir.display()))?;
    let from = root.to_str().ok_or(format!("{} is not UTF-8", root.display()))?;
    git(&["clone", "--quiet", "--shared", "--no-checkout", from, clone_into], root)?;
    git(&["checkout", "--quiet", "--detach", sha], dir)?;
    let xtask_dir = dir.join("xtask");
    if !xtask_dir.join("Cargo.toml").is_file() {
        return Err(format!("--baseline {rev}: that revision has no xtask/Cargo.toml"));
    }
    output(Command::new(cargo).args(["fetch", "--locked"]).current_dir(&xtask_dir))?;
    Ok((format!("{rev} ({})", &sha[..sha.len().min(10)]), xtask_dir))
}

/// One cold build into a fresh `target`; returns its wall time and how many crates
/// cargo compiled.
fn cold_build(mut cmd: Command, target: &Path) -> Result<(Duration, usize), String> {
    let _ = fs::remove_dir_all(target);
    cmd.env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never")
        // A compiler cache would turn a cold build into a warm one.
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER");
    let began = Instant::now();
    let out = output_full(&mut cmd)?;
    let took = began.elapsed();
    let crates = out.lines().filter(|l| l.trim_start().starts_with("Compiling ")).count();
    Ok((took, crates))
}

/// The median wall time of `runs` runs of `cmd`, after one untimed warm-up run.
fn time_repeated(mut cmd: Command, runs: usize) -> Result<Duration, String> {
    output_full(&mut cmd)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let began = Instant::now();
        output_full(&mut cmd)?;
        times.push(began.elapsed());
    }
    Ok(median(&mut times))
}

/// The dependency lines of the `[dependencies]` table, comments left out. Each is
/// a one-line `name = spec` (a tidy test keeps it so), copied verbatim.
fn dependency_lines(manifest: &str) -> Result<Vec<String>, String> {
    let lines: Vec<String> = table(manifest, "[dependencies]")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if lines.is_empty() || lines.iter().any(|l| !l.contains('=')) {
        return Err(format!("cannot read the [dependencies] of xtask/Cargo.toml: {lines:?}"));
    }
    Ok(lines)
}

/// The body of table `header` (up to the next table header), or "" when absent.
fn table(toml: &str, header: &str) -> String {
    toml.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_bare_crate(dir: &Path, deps: &[String], profile: &str, lock: &Path) -> Result<(), String> {
    fs::create_dir_all(dir.join("src")).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let manifest = format!(
        "[package]\nname = \"bare-six-deps\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{}\n\n[profile.dev]\n{profile}\n\n# Its own workspace, never the repo's.\n[workspace]\n",
        deps.join("\n")
    );
    write(&dir.join("Cargo.toml"), &manifest)?;
    write(&dir.join("src").join("main.rs"), "fn main() {}\n")?;
    // The repo's lock pins the same versions; cargo drops the entries it does not need.
    fs::copy(lock, dir.join("Cargo.lock")).map_err(|e| format!("copy {}: {e}", lock.display()))?;
    Ok(())
}

/// Every package of the bare crate's lock (but itself) at a version the repo's lock has.
fn check_same_versions(bare_lock: &str, repo_lock: &str) -> Result<(), String> {
    let repo = packages(repo_lock);
    let differ: Vec<String> = packages(bare_lock)
        .into_iter()
        .filter(|p| !p.starts_with("bare-six-deps ") && !repo.contains(p))
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!("the bare crate resolved versions the repo's Cargo.lock lacks: {differ:?}"))
    }
}

/// `name version` of every `[[package]]` of a Cargo.lock.
fn packages(lock: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            out.push(format!("{n} {}", v.trim_matches('"')));
        }
    }
    out
}

/// `xtask - baseline` of each round, in seconds, sorted. Paired by round, so that
/// what a round's machine load adds to both cancels out.
fn sorted_differences(xtask: &[Duration], baseline: &[Duration]) -> Vec<f64> {
    let mut differences: Vec<f64> = xtask.iter().zip(baseline).map(|(x, b)| secs(*x) - secs(*b)).collect();
    differences.sort_by(f64::total_cmp);
    differences
}

fn median_of_sorted(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    let n = times.len();
    if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2 }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1-minute load average where the OS tells it (Linux), to judge the figures.
fn load() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// Stdout of a command that must succeed.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Stdout and stderr of a command that must succeed.
fn output_full(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{text}"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_pair_the_builds_of_one_round() {
        let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
        // Round 2 was slow for both, round 3 for the baseline alone. Paired by round
        // (not each list sorted first, which would pair 8.0 with 7.5, 8.1 with 9.0
        // and 9.5 with 9.9), the differences are 0.5, 0.5 and -1.8.
        let xtask = ms(&[8_000, 9_500, 8_100]);
        let baseline = ms(&[7_500, 9_000, 9_900]);
        let differences = sorted_differences(&xtask, &baseline);
        assert_eq!(differences.len(), 3);
        for (got, want) in differences.iter().zip([-1.8, 0.5, 0.5]) {
            assert!((got - want).abs() < 1e-9, "{differences:?}");
        }
        assert!((median_of_sorted(&differences) - 0.5).abs() < 1e-9);
        assert!((median_of_sorted(&[0.1, 0.3]) - 0.2).abs() < 1e-9);
    }
}
