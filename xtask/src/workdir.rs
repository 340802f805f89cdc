//! A run's work dir: unique (cargo keys what it extracts by the index URL, and the package
//! stage's index lives here), removed at the end, or by a later run when this one was killed.

use std::fs::File;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};

/// Locked while the run owns the dir, and (Unix) by its children: a killed run's dir stays while cargo runs.
const OWNER_FILE: &str = ".owner";

/// Marks a dir kept with `--keep`: never removed by a later run.
const KEPT_FILE: &str = ".kept";

/// A dir this old without an owner file is a run killed before it locked it.
const UNOWNED_GRACE: Duration = Duration::from_secs(600);

pub struct WorkDir {
    path: Utf8PathBuf,
    owner: Option<File>,
    keep: bool,
}

impl WorkDir {
    /// A new `<temp>/hyperlight-xtask-<task>-<pid>-<nanos>`, after removing those
    /// killed runs of `task` left. With `keep`, it stays.
    pub fn create(task: &str, keep: bool) -> anyhow::Result<WorkDir> {
        let temp = Utf8PathBuf::try_from(std::env::temp_dir())
            .context("the temporary directory's path is not UTF-8: set TMPDIR (TEMP on Windows)")?;
        let prefix = format!("hyperlight-xtask-{task}-");
        remove_stale(&temp, &prefix);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let path = temp.join(format!("{prefix}{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(|err| {
            anyhow::anyhow!("cannot create the work dir {path} ({err}): set TMPDIR (TEMP on Windows) to a directory you can write to")
        })?;
        let owner = File::create(path.join(OWNER_FILE))
            .and_then(|file| file.try_lock().map(|()| file).map_err(std::io::Error::from))
            .and_then(inherited)
            .with_context(|| format!("cannot lock the work dir {path}"))?;
        Ok(WorkDir { path, owner: Some(owner), keep })
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Marked kept while still locked, so no other run takes it as stale meanwhile.
        if self.keep {
            let _ = std::fs::write(self.path.join(KEPT_FILE), "kept with --keep\n");
        }
        // Unlocked before removing: Windows cannot remove an open file.
        drop(self.owner.take());
        if self.keep {
            let _ = std::fs::remove_file(self.path.join(OWNER_FILE));
        } else if let Err(err) = remove_dir_all(&self.path) {
            eprintln!("warning: cannot remove the work dir {} ({err}); remove it by hand", self.path);
        }
    }
}

/// Lets the processes the run starts inherit `file` (std opens files close-on-exec).
fn inherited(file: File) -> std::io::Result<File> {
    // SAFETY: clears the descriptor flags of a descriptor this process owns.
    #[cfg(unix)]
    if unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_SETFD, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Removes the work dirs of `prefix` whose run is gone (owner file unlocked, or missing and old).
fn remove_stale(temp: &Utf8Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !name.starts_with(prefix) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = temp.join(&name);
        let stale = match File::open(dir.join(OWNER_FILE)) {
            Ok(owner) => owner.try_lock().is_ok() && !dir.join(KEPT_FILE).exists(),
            Err(_) if dir.join(OWNER_FILE).exists() || dir.join(KEPT_FILE).exists() => false,
            Err(_) => {
                let age =
                    std::fs::metadata(&dir).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                age.is_some_and(|age| age > UNOWNED_GRACE)
            }
        };
        if stale && remove_dir_all(&dir).is_ok() {
            eprintln!("removed {dir}, the work dir of an earlier run that was stopped");
        }
    }
}

/// `remove_dir_all` that takes a dir already gone for removed. std removes read-only files
/// (git's packs) on Windows too, with `FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE`.
pub fn remove_dir_all(dir: &Utf8Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_its_own_dir_and_killed_runs_are_cleaned_up() {
        let a = WorkDir::create("unit-test", false).unwrap();
        let b = WorkDir::create("unit-test", false).unwrap();
        assert_ne!(a.path(), b.path());
        // A dir of a run that is gone: an owner file nobody holds.
        let dead =
            a.path().parent().unwrap().join(format!("hyperlight-xtask-unit-test-1-{}", std::process::id()));
        std::fs::create_dir_all(dead.join("src/.git/objects")).unwrap();
        std::fs::write(dead.join(OWNER_FILE), "").unwrap();
        let pack = dead.join("src/.git/objects/pack");
        std::fs::write(&pack, "read-only, as git's packs are").unwrap();
        let mut permissions = std::fs::metadata(&pack).unwrap().permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&pack, permissions).unwrap();
        let c = WorkDir::create("unit-test", false).unwrap();
        assert!(!dead.exists(), "the dead run's dir is still there");
        // Live runs' dirs are left alone.
        assert!(a.path().exists() && b.path().exists());
        let paths = [a.path().to_owned(), b.path().to_owned(), c.path().to_owned()];
        drop((a, b, c));
        assert!(paths.iter().all(|p| !p.exists()), "work dirs left behind: {paths:?}");
    }

    #[test]
    fn a_kept_dir_is_never_taken_for_stale() {
        let a = WorkDir::create("unit-kept", false).unwrap();
        let kept =
            a.path().parent().unwrap().join(format!("hyperlight-xtask-unit-kept-2-{}", std::process::id()));
        std::fs::create_dir_all(&kept).unwrap();
        // As a kept run leaves it for a moment: marked kept, its owner file unlocked.
        std::fs::write(kept.join(OWNER_FILE), "").unwrap();
        std::fs::write(kept.join(KEPT_FILE), "").unwrap();
        let b = WorkDir::create("unit-kept", false).unwrap();
        assert!(kept.exists(), "a kept dir was removed");
        remove_dir_all(&kept).unwrap();
        drop((a, b));
    }
}
