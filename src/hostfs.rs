//! Every file the host side of husk opens for writing goes through here (clippy.toml forbids
//! the std calls elsewhere). The paths callers pass are husk's own: the state directory, cgroup
//! files, /proc/<pid> of the init it started, or a path the caller named on the command line
//! (`--pid-file`, `--log`, `spec --bundle`) — never one taken from config.json.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` with `options` (for writing, or a fifo read-write).
#[allow(clippy::disallowed_methods)]
pub fn open(path: &Path, options: &OpenOptions) -> io::Result<File> {
    options.open(path)
}

/// Writes `bytes` to an existing file (a cgroup or /proc file): no create, no truncate.
pub fn write_existing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    open(path, OpenOptions::new().write(true))?.write_all(bytes)
}

/// Copies `from` to a new file `to`.
#[allow(clippy::disallowed_methods)]
pub fn copy(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::copy(from, to).map(drop)
}

/// Writes `bytes` to `path` through a temp file and rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = open(
            &tmp,
            OpenOptions::new().write(true).create_new(true).mode(0o644),
        )?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
