//! `cargo-login` (developers: an Entra token from az), `cargo-login-ci` (CI: a PAT) and `cargo-logout`.

use anyhow::ensure;

use crate::access::{check_feeds, show_line};
use crate::az::Az;
use crate::feeds::{self, Registry};
use crate::secret::{PatToken, Secret, SecretEnv};
use crate::{cargo, gha, provider, setup};

#[derive(clap::Args)]
pub struct LoginFlags {
    /// Log in to this feed only (repeatable); default: every feed in `.cargo/config.toml`.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
    /// Skip `cargo xtask setup` (the feeds and a credential provider in the global config).
    #[arg(long)]
    pub no_setup: bool,
    /// Skip the check of each feed with a real authenticated request through cargo.
    #[arg(long)]
    pub no_check: bool,
}

/// Log cargo in to the feeds with your Azure account (developers).
///
/// Stores one Entra token from the Azure CLI for every feed through `cargo login`'s stdin,
/// then checks each feed. The token expires after about an hour: run this again then.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask cargo-login\n  cargo xtask cargo-login --az-login\n  cargo xtask cargo-login --provider\n  cargo xtask cargo-login --registry hyperlight_redist"
)]
pub struct CargoLogin {
    /// Run `az login` first, in this terminal.
    #[arg(long)]
    pub az_login: bool,
    /// Token-free: cargo asks the Azure CLI for a fresh token on each use (a feed's
    /// `credential-provider`), so no hourly re-login. `cargo xtask cargo-logout` undoes it.
    /// Refused where az ends its output with CRLF (Windows) and cargo is older than 1.98,
    /// which would send the CR.
    #[arg(long)]
    pub provider: bool,
    /// With `--provider`: replace a `credential-provider` of your own (else the run stops),
    /// kept in a comment that `cargo xtask cargo-logout` puts back.
    #[arg(long, requires = "provider")]
    pub force: bool,
    #[command(flatten)]
    pub flags: LoginFlags,
}

impl CargoLogin {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::select(&self.flags.registries)?;
        // Before anything is written: a machine without az gets nothing half-done.
        let az = Az::find()?;
        self.flags.set_up(&feeds)?;
        if self.az_login {
            az.login_interactive()?;
        }
        if self.provider {
            provider::enable(&feeds, &az, self.force)?;
            warn_of_env(&feeds, "credential-provider", "uses it instead of provider mode for");
            return self.flags.check(&feeds, &SecretEnv::default());
        }
        // A token first: provider mode stays on when az has none to give.
        let (header, expires) = az.access_token()?;
        // `cargo login` is unsupported for a feed whose provider is a command.
        provider::disable(&feeds, "cargo-login")?;
        cargo::login(&feeds, &header, "cargo-login: stored a bearer token")?;
        warn_of_env(&feeds, "token", "takes it over the token stored for");
        eprintln!("cargo-login: the token expires at {expires}; run `cargo xtask cargo-login` again then");
        self.flags.check(&feeds, &SecretEnv::hiding(header.forms()))
    }
}

/// Log cargo in to the feeds with a PAT (CI; replaces the bash and PowerShell recipes).
///
/// Stores an Azure DevOps PAT (scope Packaging) from an environment variable for every feed
/// through `cargo login`'s stdin, or with `--github-env` hands it to the job's later steps
/// instead. Under GitHub Actions every form of the PAT is masked first.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  PAT=... cargo xtask cargo-login-ci\n  cargo xtask cargo-login-ci --pat-env ADO_CARGO_RW_PAT\n  cargo xtask cargo-login-ci --github-env"
)]
pub struct CargoLoginCi {
    /// The environment variable that holds the PAT.
    #[arg(long, value_name = "VAR", default_value = "PAT")]
    pub pat_env: String,
    /// Write no credentials file: export `CARGO_REGISTRIES_<NAME>_TOKEN` and `..._CREDENTIAL_PROVIDER`
    /// to later steps through `$GITHUB_ENV`, as Microsoft's pipeline task does.
    #[arg(long)]
    pub github_env: bool,
    #[command(flatten)]
    pub flags: LoginFlags,
}

impl CargoLoginCi {
    pub fn run(self) -> anyhow::Result<()> {
        let pat = PatToken::from_env(&self.pat_env)?;
        gha::mask(&pat.forms());
        let feeds = feeds::select(&self.flags.registries)?;
        if !self.github_env {
            self.flags.set_up(&feeds)?;
            provider::disable(&feeds, "cargo-login-ci")?;
            cargo::login(&feeds, &pat.header(), "cargo-login-ci: stored the PAT")?;
            warn_of_env(&feeds, "token", "takes it over the token stored for");
            return self.flags.check(&feeds, &SecretEnv::hiding(pat.forms()));
        }
        let env = cargo::token_env(&feeds, &pat);
        for (name, value) in env.vars() {
            gha::export_env(name, &Secret::new(value.to_owned()))?;
            eprintln!("cargo-login-ci: exported {name} to later steps");
        }
        self.flags.check(&feeds, &env)
    }
}

/// Remove the stored tokens of the feeds (fine when none is stored).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask cargo-logout\n  cargo xtask cargo-logout --registry hyperlight_packages"
)]
pub struct CargoLogout {
    /// Log out of this feed only (repeatable); default: every feed.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
}

impl CargoLogout {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::select(&self.registries)?;
        // First: `cargo logout` is unsupported while provider mode is on.
        provider::disable(&feeds, "cargo-logout")?;
        for feed in &feeds {
            cargo::logout(feed)?;
            let left = cargo::tokens_left(feed)?;
            if left.is_empty() {
                eprintln!("cargo-logout: no token stored for {} any more", feed.name);
            }
            for path in left {
                let key = format!("registries.{}.token", feed.name);
                eprintln!(
                    "warning: {path} holds {key}, which cargo still uses and no logout removes: delete it"
                );
            }
        }
        warn_of_env(&feeds, "token", "still takes it as the token of");
        Ok(())
    }
}

/// A token or provider in cargo's environment beats the files', even empty, and no task changes it.
fn warn_of_env(feeds: &[Registry], key: &str, cargo_does: &str) {
    for feed in feeds {
        let var = feed.env_var(key);
        let Some(value) = std::env::var_os(&var) else { continue };
        let empty = if value.is_empty() { " (empty)" } else { "" };
        eprintln!("warning: {var} is set{empty}: cargo {cargo_does} {}; unset it", feed.name);
    }
}

impl LoginFlags {
    /// The global config set up for `feeds`, unless `--no-setup`.
    fn set_up(&self, feeds: &[Registry]) -> anyhow::Result<()> {
        if self.no_setup { Ok(()) } else { setup::Setup::default().ensure(feeds) }
    }

    /// Asks each feed through cargo whether the token is good.
    fn check(&self, feeds: &[Registry], env: &SecretEnv) -> anyhow::Result<()> {
        let failed = if self.no_check { Vec::new() } else { check_feeds(feeds, env, &show_line)? };
        ensure!(failed.is_empty(), "access check failed for {}", failed.join(", "));
        Ok(())
    }
}
