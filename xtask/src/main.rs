//! `cargo xtask`: the Hyperlight project's chores around its Azure Artifacts cargo
//! feeds, as typed tasks instead of justfile, bash and PowerShell snippets. `main`
//! parses the flags and runs one task; each lives in its own module.

// std's print macros panic when the reader went away (`| head -1`, a runner's closed pipe)
// and the panic aborts the run: these, defined before the modules, drop what no one reads.
macro_rules! println { ($($a:tt)*) => {{ use std::io::Write; writeln!(std::io::stdout(), $($a)*).ok(); }} }
macro_rules! eprintln { ($($a:tt)*) => {{ use std::io::Write; writeln!(std::io::stderr(), $($a)*).ok(); }} }

mod access;
mod az;
mod cargo;
mod cargo_home;
mod doctor;
mod feeds;
mod gh;
mod gha;
mod git;
mod interrupt;
mod json;
mod login;
mod provider;
mod publish;
mod publish_crates;
mod publish_redist;
mod rotate_pat;
mod run;
mod secret;
mod setup;
mod test_task;
mod toml_file;
mod tool;
mod workdir;

use std::process::ExitCode;

use clap::Parser;

/// Chores around the Hyperlight cargo feeds: set-up, login, publishing.
///
/// The feeds are the `[registries]` of this repo's `.cargo/config.toml`; cargo's own
/// `CARGO_REGISTRIES_<NAME>_INDEX` overrides an index, as it does for cargo.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", arg_required_else_help = true)]
enum Task {
    Setup(setup::Setup),
    CargoLogin(login::CargoLogin),
    CargoLoginCi(login::CargoLoginCi),
    CargoLogout(login::CargoLogout),
    Publish(publish_crates::Publish),
    PublishRedist(publish_redist::PublishRedist),
    RotatePat(rotate_pat::RotatePat),
    Doctor(doctor::Doctor),
    Test(test_task::Test),
}

fn main() -> ExitCode {
    let task = Task::parse();
    interrupt::install();
    let result = match task {
        Task::Setup(t) => t.run(),
        Task::CargoLogin(t) => t.run(),
        Task::CargoLoginCi(t) => t.run(),
        Task::CargoLogout(t) => t.run(),
        Task::Publish(t) => t.run(),
        Task::PublishRedist(t) => t.run(),
        Task::RotatePat(t) => t.run(),
        Task::Doctor(t) => t.run(),
        Task::Test(t) => t.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<interrupt::Interrupted>() || interrupt::requested() => {
            // What the task said beyond the interrupt (a PAT left live, a crate uploaded).
            if err.chain().count() > 1 || !(err.is::<interrupt::Interrupted>() || err.is::<run::RunError>()) {
                eprintln!("error: {err:#}");
            }
            eprintln!("interrupted: stopped the running command and removed the work dir");
            ExitCode::from(interrupt::EXIT_CODE)
        }
        Err(err) => {
            gha::error(None, &format!("{err:#}"));
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
