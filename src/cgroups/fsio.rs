//! Small helpers for reading and writing cgroup files with errors that name file and field.

use std::collections::BTreeMap;
use std::fs::{self};
use std::io::{self};
use std::path::{Path, PathBuf};

use super::CgroupError;

/// Writes `value` to the existing cgroup file `dir/file` (never creates or truncates files).
pub fn write(field: &str, dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    crate::hostfs::write_existing(&path, value.as_bytes()).map_err(|source| CgroupError::Write {
        field: field.to_owned(),
        path,
        value: value.to_owned(),
        source,
    })
}

/// Reads a whole cgroup file.
pub fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file holding one number; `max` reads as `None`.
pub fn read_max(path: &Path) -> Result<Option<u64>, CgroupError> {
    let content = read(path)?;
    let trimmed = content.trim();
    if trimmed == "max" {
        return Ok(None);
    }
    trimmed.parse().map(Some).map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content,
    })
}

/// Reads a file holding one unsigned number.
pub fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    read_max(path)?.ok_or_else(|| CgroupError::Parse {
        path: path.to_path_buf(),
        content: "max".into(),
    })
}

/// Reads a flat keyed file (`key value` per line, e.g. `memory.stat`, `cpu.stat`).
pub fn read_keyed(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    let content = read(path)?;
    let mut map = BTreeMap::new();
    for line in content.lines() {
        let mut words = line.split_whitespace();
        if let (Some(key), Some(value)) = (words.next(), words.next()) {
            let value = value.parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.to_owned(),
            })?;
            map.insert(key.to_owned(), value);
        }
    }
    Ok(map)
}

/// Whether a cgroup file exists (a controller file missing means the kernel lacks the feature).
pub fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Every directory below `dir` (depth first, children before parents), not including `dir`.
pub fn subdirs_deepest_first(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let path = entry.path();
            out.extend(subdirs_deepest_first(&path)?);
            out.push(path);
        }
    }
    Ok(out)
}
