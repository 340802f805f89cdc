# The old recipe names, kept so that muscle memory, CI files and docs that say
# `just cargo-login` still work. Each is one call of a `cargo xtask` task: the logic
# lives in Rust (xtask/), where it is typed, portable and tested, not here.
# Extra arguments go through unchanged, e.g. `just cargo-login --az-login`.

# `"$@"` passes each argument as it was given (`{{args}}` would re-split on spaces).
# It needs an sh-compatible shell, just's default on every OS (on Windows the `sh`
# of Git for Windows, present on GitHub's runners).
set positional-arguments

# List the tasks (the first recipe is what a bare `just` runs).
help *args:
    cargo xtask help "$@"

# One-time set-up of the global cargo config for the feeds.
setup *args:
    cargo xtask setup "$@"

# Log in to the feeds with your Azure account (developers).
cargo-login *args:
    cargo xtask cargo-login "$@"

# Log in to the feeds with the PAT in env `PAT` (CI).
cargo-login-ci *args:
    cargo xtask cargo-login-ci "$@"

# Was a PowerShell recipe; the same Rust task now serves every OS.
cargo-login-ci-windows *args:
    cargo xtask cargo-login-ci "$@"

# Remove the stored tokens of the feeds.
cargo-logout *args:
    cargo xtask cargo-logout "$@"

# Republish the pinned rust-vmm mshv crates to the redist feed.
publish-redist *args:
    cargo xtask publish-redist "$@"

# Create a new PAT and store it in the repository's GitHub secret.
rotate-pat *args:
    cargo xtask rotate-pat "$@"

# Report, per feed, whether cargo can use it.
doctor *args:
    cargo xtask doctor "$@"

# Format check, clippy and every test (installs the pinned tools once).
test *args:
    cargo xtask test "$@"
