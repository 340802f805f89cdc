//! `cargo xtask`: the Hyperlight project's chores around its Azure Artifacts cargo
//! feeds, as typed tasks instead of justfile, bash and PowerShell snippets.
//!
//! `main` parses flags, makes one [`xshell::Shell`] at the repo root and hands it to
//! one `run(self, sh)` per task. Each task lives in its own module.

mod az;
mod cargo;
mod feeds;
mod gh;
mod gha;
mod run;
mod secret;
mod setup;
mod toml_file;
mod tool;

mod doctor;
mod login;
mod provider;
mod publish_redist;
mod rotate_pat;
mod test_task;

use std::process::ExitCode;

use camino::Utf8PathBuf;
use clap::{Parser, Subcommand};

/// Chores around the Hyperlight cargo feeds: set-up, login, publishing.
///
/// The feeds are the `[registries]` of this repo's `.cargo/config.toml`; cargo's own
/// `CARGO_REGISTRIES_<NAME>_INDEX` overrides an index, as it does for cargo.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    Setup(setup::Setup),
    CargoLogin(login::CargoLogin),
    CargoLoginCi(login::CargoLoginCi),
    CargoLogout(login::CargoLogout),
    PublishRedist(publish_redist::PublishRedist),
    RotatePat(rotate_pat::RotatePat),
    Doctor(doctor::Doctor),
    Test(test_task::Test),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            gha::error(&format!("{err:#}"));
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match task {
        Task::Setup(t) => t.run(&sh),
        Task::CargoLogin(t) => t.run(&sh),
        Task::CargoLoginCi(t) => t.run(&sh),
        Task::CargoLogout(t) => t.run(&sh),
        Task::PublishRedist(t) => t.run(&sh),
        Task::RotatePat(t) => t.run(&sh),
        Task::Doctor(t) => t.run(&sh),
        Task::Test(t) => t.run(&sh),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> Utf8PathBuf {
    let dir = Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().expect("xtask/ has a parent").to_owned()
}

/// The shell's directory as a UTF-8 path: std's file functions do not follow
/// `Shell::change_dir`, so paths for them are made absolute from it.
fn sh_dir(sh: &xshell::Shell) -> anyhow::Result<Utf8PathBuf> {
    Utf8PathBuf::try_from(sh.current_dir())
        .map_err(|e| anyhow::anyhow!("the working directory is not UTF-8: {e}"))
}
