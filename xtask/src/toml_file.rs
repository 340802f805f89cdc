//! The one way to edit TOML files a user owns: format-preserving, locked against other
//! runs, written atomically where the file really lives, and not at all when nothing changes.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

/// The byte-order mark some Windows editors put at the start of a UTF-8 file.
const BOM: char = '\u{feff}';

/// Serialises the edits of `cargo xtask` runs. Not cargo's own lock: the cargo
/// commands the tasks run take that one, and would wait for us for ever.
pub const LOCK_FILE_NAME: &str = ".hyperlight-xtask.lock";

/// An edit holds the lock for milliseconds: a wait this long means trouble.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

pub fn read(path: &Utf8Path) -> Result<DocumentMut> {
    parse(path, &std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?)
}

pub fn read_if_exists(path: &Utf8Path) -> Result<Option<DocumentMut>> {
    read_text(path)?.map(|text| parse(path, &text)).transpose()
}

fn read_text(path: &Utf8Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {path}")),
    }
}

pub fn parse(path: &Utf8Path, text: &str) -> Result<DocumentMut> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let parsed = text.parse().map_err(|err| parse_error(text, &err));
    parsed.map_err(|at| anyhow::anyhow!("{path} is not valid TOML at {at}; fix it and run again"))
}

/// Where and why `text` is not TOML, without toml_edit's quote of the line (a credentials line is a token).
pub fn parse_error(text: &str, err: &toml_edit::TomlError) -> String {
    let before = text.get(..err.span().map_or(0, |span| span.start)).unwrap_or(text);
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("line {}, column {column}: {}", before.matches('\n').count() + 1, err.message().trim_end())
}

/// A change to a parsed document, which may run twice (see [`update`]).
pub type Change<'a> = &'a mut dyn FnMut(&mut DocumentMut) -> Result<()>;

/// The new text of `path` (a missing file is an empty document) after `change`, made in
/// memory, if it changes anything. A file whose TOML does not change keeps its exact text.
pub fn plan(path: &Utf8Path, change: Change) -> Result<Option<String>> {
    let original = read_text(path)?.unwrap_or_default();
    let mut doc = parse(path, &original)?;
    let unchanged = doc.to_string();
    // A file of comments only keeps them as the trailer, below any new table: keep them on top.
    if doc.as_table().is_empty() {
        let comments = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.as_table_mut().decor_mut().set_prefix(comments);
        doc.set_trailing("");
    }
    change(&mut doc)?;
    let rendered = doc.to_string();
    // Compared as toml_edit writes them: mixed line ends or a BOM alone are no change.
    if rendered == unchanged {
        return Ok(None);
    }
    // toml_edit reads CRLF (as the first line ends) and a BOM but writes neither: put them back.
    let crlf = original.find('\n').is_some_and(|at| original[..at].ends_with('\r'));
    let after = if crlf { rendered.replace("\r\n", "\n").replace('\n', "\r\n") } else { rendered };
    let after = if original.starts_with(BOM) { format!("{BOM}{after}") } else { after };
    Ok(Some(after))
}

/// Read-modify-write: a `change` that changes anything runs again under the lock on what
/// the file holds then, so no other run's edit is lost. Returns whether it wrote.
pub fn update(path: &Utf8Path, change: Change) -> Result<bool> {
    if plan(path, change)?.is_none() {
        return Ok(false);
    }
    // Beside the link, when `path` is one: that is where every run looks.
    let lock = parent_dir(path).join(LOCK_FILE_NAME);
    let waiting = format!("waiting for another cargo xtask editing {path}");
    let _lock = lock_file(&lock, Some(LOCK_TIMEOUT), Duration::from_secs(1), &waiting)?;
    let Some(after) = plan(path, change)? else { return Ok(false) };
    write_atomic(path, &after)?;
    Ok(true)
}

/// Locks `path` until the returned file is dropped, waiting up to `timeout` (None: until
/// an interrupt), saying `waiting` once after `say_after`.
pub fn lock_file(
    path: &Utf8Path,
    timeout: Option<Duration>,
    say_after: Duration,
    waiting: &str,
) -> Result<File> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    let file = File::options().create(true).truncate(false).write(true).open(path);
    let file = file.with_context(|| format!("cannot open the lock file {path}"))?;
    let (began, mut said_so) = (Instant::now(), false);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => Err(err).with_context(|| format!("cannot lock {path}"))?,
        }
        crate::interrupt::check()?;
        let waited = began.elapsed();
        ensure!(
            timeout.is_none_or(|t| waited < t),
            "{waiting} for {} s: another cargo xtask still holds the lock {path}; let it finish \
                 and run again (if no cargo xtask is running, stop the process that holds {path})",
            waited.as_secs()
        );
        if !said_so && waited >= say_after {
            eprintln!("{waiting} (lock {path})");
            said_so = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn parent_dir(path: &Utf8Path) -> &Utf8Path {
    path.parent().filter(|d| !d.as_str().is_empty()).unwrap_or(Utf8Path::new("."))
}

/// Writes through a temporary file and a rename, keeping the permissions; a symbolic link
/// (a dotfiles repo) stays a link and its target is written; a read-only file is refused.
pub fn write_atomic(path: &Utf8Path, contents: &str) -> Result<()> {
    let target = link_target(path)?;
    let shown = if target == path { path.to_string() } else { format!("{path} (a link to {target})") };
    let permissions = match std::fs::metadata(&target) {
        Ok(meta) => Some(meta.permissions()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {shown}")),
    };
    ensure!(
        permissions.as_ref().is_none_or(|p| !p.readonly()),
        "{shown} is read-only, so it is left as it is: make it writable (e.g. `{} {target}`) \
             and run again, or make the change yourself",
        if cfg!(windows) { "attrib -r" } else { "chmod u+w" }
    );
    let name = format!(".{}.xtask-{}.tmp", target.file_name().unwrap_or("file"), std::process::id());
    let temp = parent_dir(&target).join(name);
    let mut options = File::options();
    options.write(true).create(true).truncate(true);
    // Private until it has the file's permissions, whatever the umask: it may hold tokens.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Synced before the rename: after a crash the file is old or new, never empty.
    let write = |mut file: File| file.write_all(contents.as_bytes()).and_then(|()| file.sync_all());
    let result = (options.open(&temp).and_then(write))
        .and_then(|()| permissions.map_or(Ok(()), |p| std::fs::set_permissions(&temp, p)))
        .and_then(|()| std::fs::rename(&temp, &target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("cannot write {shown}"))
}

fn link_target(path: &Utf8Path) -> Result<Utf8PathBuf> {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Ok(path.to_owned());
    }
    let target = std::fs::canonicalize(path).with_context(|| {
        let points_to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
        format!("{path} is a symbolic link to {points_to}, which cannot be resolved: create that file or remove the link, and run again")
    })?;
    Utf8PathBuf::from_path_buf(target)
        .map_err(|p| anyhow::anyhow!("{path} links to {}, not UTF-8", p.display()))
}

/// The table at `key` in `table`, created as a real `[table]` when missing.
pub fn table_mut<'a>(table: &'a mut Table, key: &str, path: &Utf8Path) -> Result<&'a mut dyn TableLike> {
    let item = table.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    item.as_table_like_mut()
        .with_context(|| format!("`{key}` in {path} is not a table; fix it and run again"))
}

/// Replaces a value keeping its comments (`insert` also drops the comment line above its key).
pub fn set_keeping_decor(table: &mut dyn TableLike, key: &str, mut value: Value) {
    if let Some(Item::Value(old)) = table.get_mut(key) {
        *value.decor_mut() = old.decor().clone();
        *old = value;
    } else {
        table.insert(key, Item::Value(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed when dropped.
    struct TempDir(Utf8PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("xtask-toml-file-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(Utf8PathBuf::from_path_buf(dir).unwrap())
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn add_key(doc: &mut DocumentMut) -> Result<()> {
        let table = table_mut(doc.as_table_mut(), "registry", Utf8Path::new("config.toml"))?;
        table.insert("default", toml_edit::value("mine"));
        Ok(())
    }

    #[test]
    fn parse_errors_name_the_file_and_line() {
        let err = parse(Utf8Path::new("/home/u/.cargo/config.toml"), "[a]\nx = = 1\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/home/u/.cargo/config.toml"), "{msg}");
        assert!(msg.contains("line 2, column 5"), "{msg}");
    }

    /// toml_edit quotes the line it stops at: in a credentials file, a token.
    #[test]
    fn parse_errors_never_quote_the_line() {
        let text = "[registry]\ntoken = \"cio-s3cr3t-token-value\n";
        let msg = format!("{:#}", parse(Utf8Path::new("credentials.toml"), text).unwrap_err());
        assert!(!msg.contains("s3cr3t"), "{msg}");
        assert!(msg.contains("credentials.toml is not valid TOML at line 2, column "), "{msg}");
    }

    #[test]
    fn crlf_line_ends_and_a_bom_are_kept() {
        let dir = TempDir::new("crlf");
        let path = dir.0.join("config.toml");
        let before = "\u{feff}# mine\r\n[build]\r\njobs = 2 # small\r\n";
        std::fs::write(&path, before).unwrap();
        assert!(update(&path, &mut add_key).unwrap());
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "\u{feff}# mine\r\n[build]\r\njobs = 2 # small\r\n\r\n[registry]\r\ndefault = \"mine\"\r\n"
        );
        // Parsed again, nothing is left to change.
        assert!(!update(&path, &mut add_key).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    }

    #[test]
    fn lf_files_stay_lf_and_unchanged_files_keep_their_exact_bytes() {
        let dir = TempDir::new("mixed");
        let path = dir.0.join("config.toml");
        // The first line ends with LF: the file is written with LF alone.
        std::fs::write(&path, "a = 1\nb = 2\r\n").unwrap();
        assert!(!plan(&path, &mut add_key).unwrap().unwrap().contains('\r'));
        // Mixed line ends, a BOM, and the key already there: nothing to write.
        let before = "\u{feff}[registry]\r\ndefault = \"mine\"\n";
        std::fs::write(&path, before).unwrap();
        assert!(plan(&path, &mut add_key).unwrap().is_none());
        assert!(!update(&path, &mut add_key).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(dir.entries(), ["config.toml"], "no lock or temp file for a no-op");
    }

    #[test]
    fn a_missing_file_is_made_only_when_something_changes() {
        let dir = TempDir::new("missing");
        let path = dir.0.join("credentials.toml");
        assert!(plan(&path, &mut |_| Ok(())).unwrap().is_none());
        assert!(!update(&path, &mut |_| Ok(())).unwrap());
        assert!(dir.entries().is_empty(), "{:?}", dir.entries());
        // One that something changes is made (a new machine's first setup).
        assert!(update(&path, &mut add_key).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[registry]\ndefault = \"mine\"\n");
        // Private whatever the umask: it may hold a token; a file's own mode is kept.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(), 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(
                update(&path, &mut |doc| add_key(doc).map(|()| doc["registry"]["x"] = toml_edit::value(1)))
                    .unwrap()
            );
            assert_eq!(mode(), 0o640);
        }
    }

    /// Only a missing file reads as empty: one cargo cannot read either is never written over.
    #[test]
    fn a_file_that_is_not_utf8_is_refused_and_left_byte_identical() {
        let dir = TempDir::new("not-utf8");
        let path = dir.0.join("config.toml");
        std::fs::write(&path, b"# caf\xe9\n").unwrap();
        let err = format!("{:#}", update(&path, &mut add_key).unwrap_err());
        assert!(err.starts_with(&format!("cannot read {path}: ")), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"# caf\xe9\n");
    }

    #[test]
    fn a_read_only_file_is_refused_and_left_byte_identical() {
        let dir = TempDir::new("readonly");
        let path = dir.0.join("config.toml");
        let before = "[build]\njobs = 2\n";
        std::fs::write(&path, before).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&path, permissions).unwrap();

        let err = format!("{:#}", update(&path, &mut add_key).unwrap_err());
        assert!(err.contains(path.as_str()) && err.contains("read-only"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
        assert_eq!(dir.entries(), [LOCK_FILE_NAME, "config.toml"], "a temp file was left behind");
    }

    // Creating a symbolic link on Windows needs a privilege that test machines
    // usually lack; the code path itself is the same there.
    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_is_written_through_the_link() {
        let dir = TempDir::new("symlink");
        let dotfiles = dir.0.join("dotfiles");
        std::fs::create_dir(&dotfiles).unwrap();
        let target = dotfiles.join("cargo-config.toml");
        std::fs::write(&target, "[build]\njobs = 2\n").unwrap();
        let home = dir.0.join("cargo-home");
        std::fs::create_dir(&home).unwrap();
        let link = home.join("config.toml");
        std::os::unix::fs::symlink("../dotfiles/cargo-config.toml", &link).unwrap();

        assert!(update(&link, &mut add_key).unwrap());
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
        let written = std::fs::read_to_string(&target).unwrap();
        assert_eq!(written, "[build]\njobs = 2\n\n[registry]\ndefault = \"mine\"\n");
        let in_dotfiles: Vec<_> =
            std::fs::read_dir(&dotfiles).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(in_dotfiles, ["cargo-config.toml"], "a temp file was left behind");
    }

    #[test]
    fn a_held_lock_makes_the_next_one_wait_then_give_up_naming_the_lock_file() {
        let dir = TempDir::new("lock");
        let path = dir.0.join("config.toml");
        let lock_beside = |path: &Utf8Path, timeout| {
            lock_file(
                &parent_dir(path).join(LOCK_FILE_NAME),
                Some(timeout),
                Duration::from_secs(1),
                "waiting",
            )
        };
        let held = lock_beside(&path, Duration::from_secs(1)).unwrap();
        let began = Instant::now();
        let err = format!("{:#}", lock_beside(&path, Duration::from_millis(300)).unwrap_err());
        assert!(began.elapsed() >= Duration::from_millis(300));
        assert!(err.contains(dir.0.join(LOCK_FILE_NAME).as_str()), "{err}");
        drop(held);
        lock_beside(&path, Duration::from_millis(300)).unwrap();
    }
}
