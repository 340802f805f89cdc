//! `cargo xtask test` itself, with a stand-in cargo: no tool is really installed.

use std::fs;

use xtask_harness::Sandbox;

/// Helpers started at once each built kellnr (about 11 minutes on 2 cores): now one
/// installs the tools while the others wait for it, saying so, then find them there.
#[test]
fn runs_started_at_once_install_the_tools_once() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let cache = sb.root().join("tool-cache");
    let installs = sb.root().join("installs");
    // `cargo install NAME --locked --version V --root DIR` makes DIR/bin/NAME slowly;
    // any other cargo command (the tests) succeeds at once.
    let cargo = format!(
        "if [ \"$1\" = install ]; then\n\
         \x20 echo \"$2\" >> '{}'; sleep 2; mkdir -p \"$7/bin\"; touch \"$7/bin/$2\"\n\
         fi\n",
        installs.display()
    );
    sb.install_standin("cargo-installs", &cargo);
    sb.env("CARGO", sb.bin_dir().join("cargo-installs").to_str().unwrap());
    sb.env("XTASK_CACHE", cache.to_str().unwrap());
    let validator = xtask_harness::pinned::action_validator_bin(&cache);
    fs::create_dir_all(validator.parent().unwrap()).unwrap();
    fs::write(&validator, "").unwrap();
    let runs = sb.xtask_together(&[&["test", "--no-lint"], &["test", "--no-lint"]]);
    for run in &runs {
        run.assert_success();
    }
    assert_eq!(fs::read_to_string(&installs).unwrap(), "kellnr\njust\n");
    let waited =
        runs.iter().filter(|run| run.stderr.contains("waiting for another cargo xtask test")).count();
    assert_eq!(waited, 1, "{}\n{}", runs[0].stderr, runs[1].stderr);
}
