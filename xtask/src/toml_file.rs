//! The one way to edit TOML files a user owns (their global cargo config, a
//! manifest): format-preserving through `toml_edit`, written atomically, and not
//! written at all when nothing changes or the input is bad.

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::DocumentMut;

/// Parses a TOML file; the error names the file, line and column.
pub fn read(path: &Utf8Path) -> anyhow::Result<DocumentMut> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    parse(path, &text)
}

pub fn parse(path: &Utf8Path, text: &str) -> anyhow::Result<DocumentMut> {
    text.parse::<DocumentMut>()
        .map_err(|err| anyhow::anyhow!("{path} is not valid TOML; fix it and run again:\n{err}"))
}

/// A planned change to a file: the text before (None when the file does not exist)
/// and after. Nothing is written until [`Edit::write`].
pub struct Edit {
    pub path: Utf8PathBuf,
    pub before: Option<String>,
    pub after: String,
}

impl Edit {
    /// Reads `path` (a missing file is an empty document) and applies `change` to it
    /// in memory.
    pub fn plan(
        path: &Utf8Path,
        change: impl FnOnce(&mut DocumentMut) -> anyhow::Result<()>,
    ) -> anyhow::Result<Edit> {
        let before = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("cannot read {path}")),
        };
        let mut doc = parse(path, before.as_deref().unwrap_or(""))?;
        // A file of comments only keeps them as the document's trailer, which
        // would put new tables above them: keep them at the top instead.
        if doc.as_table().is_empty() {
            let comments = doc.trailing().as_str().unwrap_or_default().to_owned();
            doc.as_table_mut().decor_mut().set_prefix(comments);
            doc.set_trailing("");
        }
        change(&mut doc)?;
        Ok(Edit { path: path.to_owned(), before, after: doc.to_string() })
    }

    pub fn changes(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }

    /// Writes the new text if it differs; returns whether it wrote.
    pub fn write(&self) -> anyhow::Result<bool> {
        if !self.changes() {
            return Ok(false);
        }
        write_atomic(&self.path, &self.after)?;
        Ok(true)
    }
}

/// Writes through a temporary file in the same directory and a rename, so a reader
/// (or a crash) sees the old file or the new one, never half of either. Keeps the
/// old file's permissions.
pub fn write_atomic(path: &Utf8Path, contents: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_str().is_empty()).unwrap_or(Utf8Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    let name = path.file_name().unwrap_or("file");
    let temp = dir.join(format!(".{name}.xtask-{}.tmp", std::process::id()));
    let result = (|| {
        std::fs::write(&temp, contents)?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&temp, meta.permissions())?;
        }
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("cannot write {path}"))
}

/// The table at `key` in `table`, created as a real `[table]` (not an inline one)
/// when missing. Fails when `key` holds something that is not a table.
pub fn table_mut<'a>(
    table: &'a mut toml_edit::Table,
    key: &str,
    path: &Utf8Path,
) -> anyhow::Result<&'a mut dyn toml_edit::TableLike> {
    let item = table.entry(key).or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    item.as_table_like_mut()
        .with_context(|| format!("`{key}` in {path} is not a table; fix it and run again"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_file_and_line() {
        let err = parse(Utf8Path::new("/home/u/.cargo/config.toml"), "[a]\nx = = 1\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/home/u/.cargo/config.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }
}
