//! The xtask's own files checked against each other, with no tool but the
//! toolchain (a plain `cargo test` runs these): its docs, help texts, dependency
//! comments, config entries, its workflows' cache keys and toolchain. The checks that
//! need the real `just` and the workflow validator are in `tests/it/recipes.rs`.
//!
//! Only what the xtask owns is checked (named in the lists below), never the host
//! repository's own README, CI or Justfile: these tests pass inside any host.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use xtask_harness::repo_root;

use crate::support::{RECIPES, XTASK_DOCS, XTASK_WORKFLOWS, read, recipes_file, run, tasks, text};

// ---------------------------------------------------------------- helpers

/// The xtask's docs, every one of which must exist.
fn docs_files() -> Vec<PathBuf> {
    XTASK_DOCS.iter().map(|d| repo_root().join(d)).collect()
}

/// The line of `text` that starts with `cargo xtask <task>` (after any `VAR=value`
/// assignments, as in `PAT=... cargo xtask cargo-login-ci`).
fn has_example(text: &str, task: &str) -> bool {
    text.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().skip_while(|w| w.contains('=')).collect();
        words.len() >= 3 && words[0] == "cargo" && words[1] == "xtask" && words[2] == task
    })
}

// ---------------------------------------------------------------- workflows

/// xtask.yml caches the pinned tools under a key naming their versions; a bump in
/// `harness/src/pinned.rs` must show in the key, or CI keeps restoring the old tools.
#[test]
fn ci_cache_key_names_the_pinned_tool_versions() {
    use xtask_harness::pinned;
    let ci = read(&repo_root().join(".github").join("workflows").join("xtask.yml"));
    let key = ci
        .lines()
        .find_map(|l| l.trim().strip_prefix("key:"))
        .expect("xtask.yml has no actions/cache `key:`")
        .trim();
    for (tool, version) in
        [("kellnr", pinned::KELLNR), ("just", pinned::JUST), ("action-validator", pinned::ACTION_VALIDATOR)]
    {
        let want = format!("{tool}-{version}");
        assert!(key.contains(&want), "xtask.yml cache key `{key}` lacks `{want}` (pinned in pinned.rs)");
    }
}

/// xtask.yml, and the host job docs/adding-the-xtask.md shows, keep `xtask/target`
/// under a key naming the lock file and the sources: a CI job must not compile the
/// xtask cold each time, nor restore a build of other sources as if it were current.
#[test]
fn ci_caches_the_xtask_build_keyed_on_its_lock_and_sources() {
    let root = repo_root();
    for file in [
        root.join(".github").join("workflows").join("xtask.yml"),
        root.join("docs").join("adding-the-xtask.md"),
    ] {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = lines.iter().position(|l| *l == "path: xtask/target");
        let key = at.and_then(|i| lines[i..].iter().find_map(|l| l.strip_prefix("key:")));
        let key =
            key.unwrap_or_else(|| panic!("{} caches no `path: xtask/target` under a `key:`", file.display()));
        for want in ["hashFiles(", "'xtask/Cargo.lock'", "'xtask/src/**'"] {
            assert!(
                key.contains(want),
                "{}: the xtask/target cache key `{key}` lacks {want}",
                file.display()
            );
        }
    }
}

/// The xtask's workflows install stable for it (publishing needs cargo 1.90), but a
/// host's `rust-toolchain.toml` beats `rustup default`: only `RUSTUP_TOOLCHAIN` beats
/// the pin (Hyperlight pinned 1.74.0 in 2023, which cannot even build the xtask).
#[test]
fn workflows_run_the_xtask_on_stable_whatever_the_host_pins() {
    for workflow in XTASK_WORKFLOWS {
        let text = read(&repo_root().join(".github").join("workflows").join(workflow));
        // By lines: a Windows checkout may have CRLF line ends.
        let lines: Vec<&str> = text.lines().collect();
        let env = lines.iter().position(|l| *l == "env:");
        let stable = env.is_some_and(|at| {
            lines[at + 1..]
                .iter()
                .take_while(|l| l.starts_with(' '))
                .any(|l| l.trim() == "RUSTUP_TOOLCHAIN: stable")
        });
        assert!(stable, "{workflow}: its top-level `env:` lacks `RUSTUP_TOOLCHAIN: stable`");
    }
}

/// xtask.yml validates every workflow of the xtask (`recipes.rs`) and checks its
/// pages, so a change to any of them alone must start it, on push and on pull
/// requests alike; the host's other docs must not (Hyperlight's docs/ has dozens).
#[test]
fn ci_runs_when_any_xtask_workflow_or_page_changes() {
    let ci = read(&repo_root().join(".github").join("workflows").join("xtask.yml"));
    let workflows = XTASK_WORKFLOWS.map(|w| format!(".github/workflows/{w}"));
    let pages = XTASK_DOCS.iter().filter(|d| d.starts_with("docs/")).map(|d| d.to_string());
    for path in workflows.into_iter().chain(pages) {
        let entry = format!("- \"{path}\"");
        let filters = ci.lines().filter(|l| l.trim() == entry).count();
        assert_eq!(filters, 2, "xtask.yml's push and pull_request `paths:` should each hold `{entry}`");
    }
    assert!(!ci.contains("\"docs/**\""), "xtask.yml runs for every change to the host's docs/");
}

/// The publishing workflows log in to every feed, dry runs too: the engine resolves the
/// host's whole graph (the consumer check, the verification), which may take crates
/// from another feed than the one published to (Hyperlight in 2023: both).
#[test]
fn publishing_workflows_log_in_to_every_feed() {
    for workflow in ["publish.yml", "publish-redist.yml"] {
        let text = read(&repo_root().join(".github").join("workflows").join(workflow));
        let logins: Vec<&str> = text.lines().filter(|l| l.contains("cargo xtask cargo-login")).collect();
        assert!(!logins.is_empty(), "{workflow} has no login step");
        for login in logins {
            assert!(!login.contains("--registry"), "{workflow} logs in to one feed only: `{}`", login.trim());
        }
        // A dry run reads the feeds too: verifying against them, the consumer check.
        assert!(!text.contains("!inputs.dry-run"), "{workflow} logs in for real runs only");
    }
}

/// The workflows that package the host's crates or build its members check out its
/// submodules: a run copies and packages what is checked out, and today's Hyperlight
/// builds `hyperlight-libc` from the submodule `third_party/picolibc`.
#[test]
fn workflows_that_package_the_host_check_out_its_submodules() {
    for workflow in ["publish.yml", "publish-redist.yml"] {
        let text = read(&repo_root().join(".github").join("workflows").join(workflow));
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.trim_start().starts_with("- uses: actions/checkout@"));
        let step = at.map(|i| lines[i + 1..].iter().take_while(|l| !l.trim_start().starts_with("- ")));
        let recursive = step.is_some_and(|mut s| s.any(|l| l.trim() == "submodules: recursive"));
        assert!(recursive, "{workflow}: its checkout lacks `submodules: recursive`");
    }
}

// ---------------------------------------------------------------- recipes

/// The recipe file sets nothing globally and takes no name the host already has.
#[test]
fn the_recipes_set_nothing_global_and_take_no_host_name() {
    let shims = read(&recipes_file());
    for line in shims.lines() {
        let t = line.trim_start();
        assert!(
            !(t.starts_with("set ") || t.starts_with("import ") || t.starts_with("mod ")),
            "xtask.just must not change the host's settings or imports: `{line}`"
        );
    }
    let host: BTreeSet<&str> =
        ["default", "build", "test", "check", "clippy", "fmt-check", "help", "fmt-apply"].into();
    for (recipe, _) in RECIPES {
        assert!(!host.contains(recipe), "the shim `{recipe}` takes a recipe name of the host's");
    }
}

/// Every call of the xtask in the recipes, PowerShell's too (the registry suite runs
/// only sh's), says where `just` was started, the line before or the same line.
#[test]
fn every_recipe_tells_the_xtask_where_just_was_started() {
    let shims = read(&recipes_file());
    let lines: Vec<&str> = shims.lines().collect();
    let calls: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("    ") && lines[i].contains("cargo xtask "))
        .collect();
    assert_eq!(calls.len(), 2 * RECIPES.len(), "a call of each recipe for sh and PowerShell:\n{shims}");
    for i in calls {
        let told = |line: &str| line.contains("XTASK_INVOCATION_DIR");
        assert!(
            told(lines[i]) || told(lines[i - 1]),
            "xtask.just: `{}` is not told XTASK_INVOCATION_DIR",
            lines[i]
        );
    }
}

/// docs/adding-the-xtask.md names the oldest `just` that reads xtask.just: the newest
/// of the releases that made each of its attributes stable (an older `just` rejects
/// the host's whole Justfile). An attribute not in the list fails until it is added.
#[test]
fn the_docs_name_the_oldest_just_that_reads_the_recipes() {
    // From just's changelog (`just --changelog`).
    let since = [
        ("unix", 8),
        ("windows", 8),
        ("no-exit-message", 7),
        ("positional-arguments", 29),
        ("extension", 32),
        ("script", 44),
    ];
    let shims = read(&recipes_file());
    let mut need = 0;
    for line in shims.lines().filter_map(|l| l.strip_prefix('[')) {
        let (mut depth, mut names) = (0, String::new());
        for c in line.chars() {
            depth += i32::from(c == '(') - i32::from(c == ')');
            if depth == 0 && c != ')' {
                names.push(c);
            }
        }
        for name in names.trim_end_matches(']').split(", ") {
            let minor = since.iter().find(|(n, _)| *n == name).map(|(_, m)| *m);
            need = need.max(minor.unwrap_or_else(|| {
                panic!("xtask.just uses `[{name}]`: add the `just` that made it stable here")
            }));
        }
    }
    let doc = read(&repo_root().join("docs").join("adding-the-xtask.md"));
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let want = format!("`just` 1.{need} or later");
    assert!(
        doc.contains(&want),
        "docs/adding-the-xtask.md should say {want}, which xtask.just's attributes need"
    );
}

/// The recipes' toolchain check compares with the xtask's `rust-version`
/// (xtask/Cargo.toml) and says it, in sh and in PowerShell: a raised minimum must
/// show in both.
#[test]
fn the_recipes_check_the_xtask_rust_version() {
    let manifest = read(&repo_root().join("xtask").join("Cargo.toml"));
    let version = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .expect("xtask/Cargo.toml has no `rust-version`")
        .trim_matches('"');
    let minor = version.strip_prefix("1.").expect("a 1.x rust-version");
    let shims = read(&recipes_file());
    assert_eq!(shims.matches("-lt ").count(), 2, "xtask.just should compare versions twice (sh, PowerShell)");
    for want in [format!("-lt {minor} ]"), format!("-lt {minor})")] {
        assert!(
            shims.contains(&want),
            "xtask.just's toolchain check lacks `{want}` (rust-version {version})"
        );
    }
    let said = format!("needs Rust {version} or later");
    assert_eq!(shims.matches(&said).count(), 2, "xtask.just should say `{said}` in sh and in PowerShell");
}

// ---------------------------------------------------------------- docs and help

#[test]
fn every_task_is_documented_with_an_example_in_readme_and_docs() {
    let root = repo_root();
    let readme = read(&root.join("xtask").join("README.md"));
    let docs: String = docs_files().iter().map(|p| read(p)).collect::<Vec<_>>().join("\n");
    assert!(!docs.is_empty(), "docs/ holds no Markdown");
    let mut missing = Vec::new();
    for task in tasks() {
        if !has_example(&readme, &task) {
            missing.push(format!("xtask/README.md has no example line `cargo xtask {task} ...`"));
        }
        if !docs.contains(&format!("cargo xtask {task}")) {
            missing.push(format!("docs/*.md never mention `cargo xtask {task}`"));
        }
    }
    assert!(missing.is_empty(), "undocumented tasks:\n{}", missing.join("\n"));
}

#[test]
fn every_task_help_has_examples_and_says_cargo_xtask() {
    let mut problems = Vec::new();
    for task in tasks() {
        let out = run(Command::new(crate::xtask_bin()).args([task.as_str(), "--help"]));
        let help = text(&out.stdout);
        if !out.status.success() {
            problems.push(format!("`cargo xtask {task} --help` failed:\n{}", text(&out.stderr)));
            continue;
        }
        if !help.contains(&format!("Usage: cargo xtask {task}")) {
            problems.push(format!("`{task} --help` does not show `Usage: cargo xtask {task}`:\n{help}"));
        }
        let examples: String =
            help.lines().skip_while(|l| l.trim() != "Examples:").skip(1).collect::<Vec<_>>().join("\n");
        if !has_example(&examples, &task) {
            problems.push(format!(
                "`{task} --help` lacks an `Examples:` section with a `cargo xtask {task}` line \
                 (add `after_help` to the task's `#[command]`):\n{help}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A mistyped task or flag gets the one meant, as cargo's own do: clap's `suggestions`.
#[test]
fn a_typo_in_a_task_or_flag_names_the_one_meant() {
    for (args, meant) in [(&["publsh"][..], "'publish'"), (&["publish", "--dryrun"], "'--dry-run'")] {
        let out = run(Command::new(crate::xtask_bin()).args(args));
        let stderr = text(&out.stderr);
        assert!(!out.status.success() && stderr.contains("similar") && stderr.contains(meant), "{stderr}");
    }
}

/// Every flag a doc gives a `cargo xtask <task>` command (up to a comment, a code
/// span's end or `--`) is one that task's `--help` lists: a renamed flag fails here.
#[test]
fn the_docs_give_each_task_only_its_own_flags() {
    let mut helps = std::collections::BTreeMap::new();
    for task in tasks() {
        let help = text(&run(Command::new(crate::xtask_bin()).args([task.as_str(), "--help"])).stdout);
        helps.insert(task, help);
    }
    let mut unknown = Vec::new();
    for path in docs_files() {
        for line in read(&path).lines() {
            for command in line.split("cargo xtask ").skip(1) {
                let command = command.split(['`', '#']).next().unwrap_or_default();
                let words: Vec<&str> = command.split_whitespace().take_while(|w| *w != "--").collect();
                let Some(help) = words.first().and_then(|task| helps.get(*task)) else { continue };
                let listed = |flag: &&str| help.split_whitespace().any(|w| w.trim_end_matches(',') == *flag);
                let flags = words.iter().filter(|w| w.starts_with('-')).map(|w| w.split('=').next().unwrap());
                for flag in flags.filter(|flag| !listed(flag)) {
                    unknown.push(format!("{}: `cargo xtask {}` has no {flag}", path.display(), words[0]));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

/// Relative links in the xtask's docs lead to files that exist.
#[test]
fn relative_links_in_the_docs_resolve() {
    let files = docs_files();
    let mut broken = Vec::new();
    for file in &files {
        let body = read(file);
        for target in body.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = file.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: `{target}`", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to missing files:\n{}", broken.join("\n"));
}

/// docs/publish-redist.md shows `[workspace.metadata.publish-redist]`: a new pin in
/// xtask/Cargo.toml must show there too.
#[test]
fn the_publish_redist_page_shows_the_defaults() {
    let manifest = read(&repo_root().join("xtask").join("Cargo.toml"));
    let page = read(&repo_root().join("docs").join("publish-redist.md"));
    let entries: Vec<&str> = (manifest.lines())
        .skip_while(|l| l.trim() != "[workspace.metadata.publish-redist]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!entries.is_empty(), "xtask/Cargo.toml has no [workspace.metadata.publish-redist]");
    let missing: Vec<&str> =
        entries.into_iter().filter(|e| !page.lines().any(|l| l.starts_with(e.trim_end()))).collect();
    assert!(
        missing.is_empty(),
        "docs/publish-redist.md's defaults lack these of xtask/Cargo.toml: {missing:?}"
    );
}

/// The benchmark the README names exists where the README says.
#[test]
fn readme_names_the_build_benchmark() {
    let root = repo_root();
    let readme = read(&root.join("xtask").join("README.md"));
    let command = "cargo run --manifest-path xtask/Cargo.toml -p xtask-harness --release --bin bench-build";
    assert!(readme.contains(command), "xtask/README.md should tell how to run the benchmark: `{command}`");
    let source = root.join("xtask").join("harness").join("src").join("bin").join("bench-build.rs");
    assert!(source.is_file(), "{} is missing", source.display());
}

// ---------------------------------------------------------------- dependencies

#[test]
fn every_dependency_has_a_comment_saying_why() {
    let root = repo_root();
    let mut problems = Vec::new();
    for manifest in
        [root.join("xtask").join("Cargo.toml"), root.join("xtask").join("harness").join("Cargo.toml")]
    {
        let body = read(&manifest);
        let lines: Vec<&str> = body.lines().collect();
        let mut in_deps = false;
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                // `[dependencies]` opens a table of entries; `[dependencies.NAME]` is one.
                let header = t.trim_matches(|c| c == '[' || c == ']').trim();
                in_deps = header.ends_with("dependencies");
                let one_entry = header.contains("dependencies.");
                if one_entry && !commented(&lines, i) {
                    problems.push(format!("{}:{}: `{t}` has no comment above it", manifest.display(), i + 1));
                }
                continue;
            }
            if in_deps && !t.is_empty() && !t.starts_with('#') && t.contains('=') && !commented(&lines, i) {
                problems.push(format!("{}:{}: `{t}` has no comment above it", manifest.display(), i + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "each dependency needs a comment line right above it saying why it is worth its build time:\n{}",
        problems.join("\n")
    );
}

fn commented(lines: &[&str], i: usize) -> bool {
    i > 0 && lines[i - 1].trim_start().starts_with('#')
}

/// The dependency rule: a dependency must delete more than it costs, so the comment
/// above each one in xtask/Cargo.toml gives its measured cold build time (`Cost:`, a
/// figure in seconds) and what it deletes (`Deletes`).
#[test]
fn every_dependency_says_what_it_costs_and_deletes() {
    let body = read(&repo_root().join("xtask").join("Cargo.toml"));
    let lines: Vec<&str> = body.lines().collect();
    let (mut problems, mut seen, mut in_table) = (Vec::new(), 0, false);
    for i in 0..lines.len() {
        let line = lines[i].trim();
        if line.starts_with('[') {
            // `[dependencies]` and `[target.'cfg(…)'.dependencies]`.
            in_table =
                line == "[dependencies]" || line.starts_with("[target.") && line.ends_with(".dependencies]");
            continue;
        }
        if !in_table || line.is_empty() || line.starts_with('#') {
            continue;
        }
        seen += 1;
        let mut note: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .map(|l| l.trim_start_matches([' ', '#']))
            .collect();
        note.reverse();
        let note = note.join(" ");
        if !(has_seconds_after(&note, "Cost:") && note.contains("Deletes")) {
            problems.push(format!("xtask/Cargo.toml:{}: `{line}`", i + 1));
        }
    }
    assert!(seen >= 6, "found only {seen} dependencies in xtask/Cargo.toml");
    assert!(
        problems.is_empty(),
        "each dependency needs a note above it with its measured cost (`Cost: ... 0.3 s ...`) and \
         what it deletes (`Deletes ...`); see the dependency rule in xtask/README.md:\n{}",
        problems.join("\n")
    );
}

/// Whether `text` has, within 100 bytes after `label`, a number followed by ` s` (a
/// figure in seconds).
fn has_seconds_after(text: &str, label: &str) -> bool {
    let Some(at) = text.find(label) else { return false };
    let rest: String = text[at..].chars().take(100).collect();
    rest.match_indices(" s").any(|(i, _)| rest[..i].ends_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn the_dependency_note_needs_a_figure() {
    assert!(has_seconds_after("Cost: 0.3 s CPU cold. Deletes 81 lines", "Cost:"));
    assert!(!has_seconds_after("Cost: small. Deletes 81 lines", "Cost:"));
    assert!(!has_seconds_after(&format!("Cost: small.{} 2 s", " ".repeat(100)), "Cost:"));
    assert!(!has_seconds_after("0.3 s before. Cost: negligible", "Cost:"));
}

// ---------------------------------------------------------------- config entries

/// The xtask's entries in the host's `.cargo/config.toml`: the alias runs the
/// xtask's own workspace (so it builds with no feed reachable), and the feeds are
/// there. Nothing else in that file is the xtask's business.
#[test]
fn the_config_entries_are_the_alias_and_the_feeds() {
    let text = read(&repo_root().join(".cargo").join("config.toml"));
    let alias = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("xtask = "))
        .expect(".cargo/config.toml has no `xtask = ...` alias");
    assert_eq!(
        alias, "\"run --manifest-path xtask/Cargo.toml --\"",
        "the alias must run the xtask's own workspace"
    );
    assert!(text.contains("[registries]"), ".cargo/config.toml lists no feeds under [registries]");
}

// ---------------------------------------------------------------- one runner

/// One way to run a program (ARCHITECTURE.md): outside `run.rs`, no module captures
/// a child by hand (`.ignore_status()`) or builds a `std::process::Command`, but for
/// the documented interactive exception, which needs the user's terminal: `az login`
/// in az.rs (with the number of lines it takes).
#[test]
fn programs_run_through_the_runner_only() {
    let (src, files) = sources();
    let mut problems = Vec::new();
    for file in files {
        let name = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if name == "run.rs" {
            continue;
        }
        let body = read(&file);
        for (n, line) in body.lines().enumerate() {
            if line.contains(".ignore_status()") {
                problems.push(format!("{name}:{}: `.ignore_status()`: run it with run::Program", n + 1));
            }
        }
        let building: Vec<usize> = body
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                ["process::Command", "Command::new(", "Command::from("].iter().any(|p| l.contains(p))
            })
            .map(|(n, _)| n + 1)
            .collect();
        if !building.is_empty() {
            problems.push(format!(
                "{name}: builds a std::process::Command at lines {building:?}: run it with run::Program \
                 (`Program::status` for one on the user's terminal)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Hyperlight's CI spell-checks its whole repository (crate-ci/typos 1.49 in
/// ValidatePullRequest.yml), the xtask's files too once it moved in: none of the
/// words it flagged there (spelled here in pieces, which it reads as other words).
#[test]
fn no_word_the_hosts_spell_check_flagged() {
    let flagged = [concat!("f", "o"), concat!("tr", "u"), concat!("alike", "s")];
    let mut files: Vec<PathBuf> = docs_files();
    let mut dirs = vec![repo_root().join("xtask")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with("target") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for file in files {
        for (n, line) in read(&file).lines().enumerate() {
            if line.split(|c: char| !c.is_alphanumeric()).any(|w| flagged.contains(&w)) {
                found.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// `xtask/src` and every `.rs` file under it.
fn sources() -> (PathBuf, Vec<PathBuf>) {
    let src = repo_root().join("xtask").join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "found too few sources under {}", src.display());
    (src, files)
}

/// Issue 15: no function outside the test modules over 60 lines, from its `fn` line to
/// its closing brace (rustfmt puts that at the `fn` line's indent).
#[test]
fn no_function_is_over_60_lines() {
    let (src, files) = sources();
    let mut long = Vec::new();
    for file in files {
        let body = read(&file);
        let lines: Vec<&str> = body.lines().take_while(|l| l.trim() != "#[cfg(test)]").collect();
        for (start, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let code = code.strip_prefix("pub ").or(code.strip_prefix("pub(crate) ")).unwrap_or(code);
            if !code.starts_with("fn ") {
                continue;
            }
            let close = format!("{}}}", &line[..line.len() - line.trim_start().len()]);
            let end = lines[start..].iter().position(|l| *l == close).unwrap_or(0);
            if end + 1 > 60 {
                let name = file.strip_prefix(&src).unwrap().display().to_string();
                long.push(format!("{name}:{}: {} lines", start + 1, end + 1));
            }
        }
    }
    assert!(long.is_empty(), "split these functions:\n{}", long.join("\n"));
}

/// Issue 15: no two modules import each other, through `crate::`, `super::` or a parent's
/// paths into its children (`main.rs` is the crate root, `main`).
#[test]
fn no_two_modules_import_each_other() {
    let (src, files) = sources();
    let name = |f: &PathBuf| {
        let rel = f.strip_prefix(&src).unwrap().with_extension("").display().to_string().replace('\\', "/");
        rel.strip_suffix("/mod").map_or(rel.clone(), str::to_owned)
    };
    let modules: BTreeSet<String> = files.iter().map(name).collect();
    assert!(modules.contains("main") && modules.contains("publish/engine"), "{modules:?}");
    let mut edges = BTreeSet::new();
    for file in &files {
        let from = name(file);
        let parent = from.rsplit_once('/').map_or("main", |(parent, _)| parent).to_owned();
        let body = read(file);
        let code: Vec<&str> = body.lines().take_while(|l| l.trim() != "#[cfg(test)]").collect();
        // In a file with an inline module (`mod imp {`), an indented `super::` is the file.
        let inline = code.iter().any(|l| l.trim_start().starts_with("mod ") && l.ends_with('{'));
        for line in code.iter().filter(|l| !l.trim_start().starts_with("//")) {
            let parent = if inline && line.starts_with(' ') { &from } else { &parent };
            for path in
                paths(line).into_iter().filter(|p| p.len() > 1 || !["crate", "super"].contains(&&*p[0]))
            {
                let module = |base: &str, at: usize| {
                    let child = path
                        .get(at)
                        .map(|seg| if base == "main" { seg.clone() } else { format!("{base}/{seg}") });
                    child.filter(|c| modules.contains(c)).unwrap_or_else(|| base.to_owned())
                };
                let to = match path[0].as_str() {
                    "crate" => module(&module("main", 1), 2),
                    "super" => module(parent, 1),
                    _ if from == "main" && modules.contains(&path[0]) => path[0].clone(),
                    _ if modules.contains(&format!("{from}/{}", path[0])) => format!("{from}/{}", path[0]),
                    _ => continue,
                };
                if to != from {
                    edges.insert((from.clone(), to));
                }
            }
        }
    }
    assert!(edges.contains(&("main".to_owned(), "tool".to_owned())), "the scan finds no imports: {edges:?}");
    let both: Vec<_> =
        edges.iter().filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone()))).collect();
    assert!(both.is_empty(), "these modules import each other: {both:?}");
}

/// The paths a line names, each as its segments; a group `a::{b, c::d}` as `a::b` and `a::c::d`.
fn paths(line: &str) -> Vec<Vec<String>> {
    let segments = |path: &str| -> Vec<String> {
        path.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    };
    let (mut out, mut rest) = (Vec::new(), line);
    while let Some(start) = rest.find(|c: char| c.is_alphabetic() || c == '_') {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
        let head = segments(&tail[..end]);
        rest = &tail[end..];
        if tail[..end].ends_with("::") && rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            out.extend(group.split(',').map(|item| [head.clone(), segments(item)].concat()));
            rest = &rest[1 + group.len()..];
        } else if !head.is_empty() {
            out.push(head);
        }
    }
    out
}
