//! Every file the host side of husk opens for writing goes through here (clippy.toml forbids
//! the std calls elsewhere). The paths callers pass are husk's own: the state directory, cgroup
//! files, `/proc/<pid>` of the init it started, or a path the caller named on the command line
//! (`--pid-file`, `--log`, `spec --bundle`) — never one taken from config.json.
//!
//! Reading the bundle's files goes through [`read_regular`]: a config.json may be a fifo or a
//! device put there by whoever can write the bundle directory, and husk must neither block on it
//! nor read it without end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest config.json husk reads. Real ones, seccomp profiles and all, are well under 1 MiB.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Mode of the files husk keeps in a container's state directory: they hold the config, whose
/// env may carry secrets.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Opens `path` with `options` (for writing, or a fifo read-write).
#[allow(clippy::disallowed_methods)]
pub fn open(path: &Path, options: &OpenOptions) -> io::Result<File> {
    options.open(path)
}

/// Writes `bytes` to an existing file (a cgroup or /proc file): no create, no truncate.
pub fn write_existing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    open(path, OpenOptions::new().write(true))?.write_all(bytes)
}

/// Reads the regular file at `path`, at most `max` bytes; anything else is an error, at once.
///
/// A symlink is followed (a bundle may link its config.json to a generated file, and runc
/// reads it that way too; the bundle is the caller's choice, not the image's), but a fifo,
/// socket or device is refused: the open does not block (O_NONBLOCK) and the type is checked on
/// the opened file, so nothing can swap it in between.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    #[allow(clippy::disallowed_methods)] // read-only
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (a {})", file_kind(&meta.file_type())),
        ));
    }
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        )
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed tells a file that grew after the fstat.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Copies the regular file `from` (see [`read_regular`], at most [`MAX_CONFIG_BYTES`]) to a new
/// file `to` that only its owner can read: the copy lands in a state directory, and a bundle's
/// file may hold secrets whatever its own mode.
pub fn copy(from: &Path, to: &Path) -> io::Result<()> {
    let bytes = read_regular(from, MAX_CONFIG_BYTES)?;
    open(
        to,
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC),
    )?
    .write_all(&bytes)
}

/// Writes `bytes` to `path` through a temp file and rename, so readers never see half a file.
/// The file gets mode 0644 (less the umask), as runc gives a pid file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] for a file only its owner may read (mode 0600).
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, PRIVATE_FILE_MODE)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = open(
            &tmp,
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_CLOEXEC),
        )?;
        f.write_all(bytes)?;
        crate::fault::point("state.temp-written");
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_regular_refuses_a_fifo_without_blocking() {
        let dir = std::env::temp_dir().join(format!("husk-hostfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_regular(&fifo, 10).unwrap_err();
        assert!(
            err.to_string().contains("not a regular file (a fifo)"),
            "{err}"
        );
        let file = dir.join("file");
        write_atomic(&file, b"0123456789x").unwrap();
        assert!(read_regular(&file, 10).is_err());
        assert_eq!(read_regular(&file, 11).unwrap(), b"0123456789x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
