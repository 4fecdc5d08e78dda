//! The local backend's folder tree: walking it for listings (never past the root, never into
//! temporary files) and making the folders of a new object (never through a symlink that leaves
//! the root).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::TMP_PREFIX;
use crate::{KeyError, ListedObject, StorageError, StorageKey};

/// Creates the folders of `key` below `root`, one at a time, refusing to go through one that
/// resolves outside the root (a symlinked `live/`, say): nothing is ever created out there. Returns
/// the real path of the key's folder. A refusal is the layout's fault, not the backend's: it never
/// counts as an outage.
pub(super) fn create_folders_inside(root: &Path, key: &StorageKey) -> Result<PathBuf, StorageError> {
    let mut real = root.to_path_buf();
    let folders = key.as_str().rsplit_once('/').map_or("", |(folders, _)| folders);
    for part in folders.split('/').filter(|p| !p.is_empty()) {
        let next = real.join(part);
        match fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                let resolved = fs::canonicalize(&next).map_err(|e| StorageError::io(key, e))?;
                if !resolved.starts_with(root) {
                    tracing::warn!(%key, "refusing to write through a folder that resolves outside the storage root");
                    return Err(StorageError::InvalidKey(KeyError::OutsideRoot));
                }
                real = resolved;
            }
            Ok(_) => real = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&next) {
                Ok(()) => real = next,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    real = fs::canonicalize(&next).map_err(|e| StorageError::io(key, e))?
                }
                Err(e) => return Err(StorageError::io(key, e)),
            },
            Err(e) => return Err(StorageError::io(key, e)),
        }
        if !real.starts_with(root) {
            return Err(StorageError::InvalidKey(KeyError::OutsideRoot));
        }
    }
    Ok(real)
}

/// Splits a listing prefix into the folder to walk; refuses prefixes that could climb out.
pub(super) fn prefix_folder(prefix: &str) -> Result<Option<StorageKey>, StorageError> {
    match prefix.rfind('/') {
        None => Ok(None),
        Some(i) => Ok(Some(StorageKey::parse(&prefix[..i])?)),
    }
}

/// Adds the files below `dir` whose keys start with `prefix` to `out`, stopping once it holds more
/// than `limit`.
pub(super) fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ListedObject>, limit: usize) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // A prefix through a file ("a.mp4/x/") lists nothing; it is no storage failure.
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        if out.len() > limit {
            return Ok(());
        }
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        // Follow symlinks only while they stay below the root.
        let Ok(real) = fs::canonicalize(&path) else { continue };
        if !real.starts_with(root) {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let Some(rel) = rel.to_str() else { continue };
        let md = fs::metadata(&real)?;
        if md.is_dir() {
            let dir_key = format!("{rel}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(root, &path, prefix, out, limit)?;
            }
        } else if md.is_file() && rel.starts_with(prefix) {
            if let Ok(key) = StorageKey::parse(rel) {
                out.push(ListedObject { key, size: md.len(), modified: md.modified().ok() });
            }
        }
    }
    Ok(())
}
