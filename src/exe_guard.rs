//! Keeps the runtime binary out of the container's reach (CVE-2019-5736).
//!
//! # The attack
//!
//! The init of every container and every `exec` is husk's own binary, re-executed (for the
//! library: the embedding program's binary, or the one given to `Runtime::with_init_binary`).
//! While it runs inside the container's namespaces, `/proc/<pid>/exe` of that process is a
//! handle on the binary. The init makes itself non-dumpable first thing, which keeps other
//! processes out of its `/proc/<pid>` files, but that does not hold across `execve`: when the
//! init executes an image file that starts with `#!/proc/self/exe`, the kernel runs the
//! *init's* executable again, now as an ordinary, dumpable container process. A process of
//! the container then opens `/proc/<pid>/exe`, keeps the descriptor until the runtime binary
//! is no longer running (which lifts `ETXTBSY`), reopens it for writing through
//! `/proc/self/fd/N` and replaces the host's binary, which the host runs as root next time.
//! CAP_SYS_PTRACE reaches even the non-dumpable init the same way.
//!
//! # The defence
//!
//! The init is never executed from the host's file itself but from a descriptor whose file
//! cannot be written, whatever the container's capabilities:
//!
//! 1. **A read-only overlayfs view** (the normal case). A new overlayfs superblock is made with
//!    the new mount API (`fsopen`, `fsconfig`, `fsmount`) whose top lower layer is the binary's
//!    directory, mounted read-only (`MOUNT_ATTR_RDONLY`, plus `nosuid`, `nodev`) and
//!    *detached*: it is never attached to any mount tree, so it shows in no mount table and
//!    propagates nowhere, and it disappears when the last descriptor or process using it is
//!    gone. The binary is opened from the mount's descriptor (`O_PATH`) and executed through
//!    `/proc/self/fd/N`. `/proc/<pid>/exe` of the init (and of anything it execs through
//!    `/proc/self/exe`) is then that overlay file: opening it for writing fails with `EROFS`,
//!    and an overlay without an upper layer cannot be made writable at all (remounting it
//!    read-write would need CAP_SYS_ADMIN in the host's user namespace, and would still find
//!    no upper layer to write to). Nothing is copied: overlayfs maps the lower file's pages,
//!    so the page cache stays shared with every other run of the binary. The cost is a new
//!    superblock per start (see the README's Performance section).
//!
//!    Overlayfs without an upper layer insists on two lower layers. The second one is a spare
//!    directory whose contents never matter (the binary's directory is above it and only the
//!    binary's name is looked up): the container's state directory, which husk owns and no
//!    container can write. Overlayfs refuses layers that overlap on one filesystem (one inside
//!    the other, as when the binary sits in `/` and the state root on the root filesystem too);
//!    then an empty detached tmpfs serves instead (kernels that accept detached mounts as
//!    layers, 6.15 on).
//!
//!    The layers are given as `/proc/self/fd/N` of descriptors opened here, so no path needs
//!    escaping for overlayfs's option syntax (`:`, `,`, `\`). The file opened through the
//!    overlay must be the file that `binary` named (inode, size and modification time; `xino=off`
//!    keeps the layers' inode numbers), so that a binary replaced or deleted since the caller
//!    started (a package upgrade under a long-running embedder) never runs as the init in its
//!    place: that case falls back to the sealed copy of the file the caller named.
//!
//! 2. **A sealed memfd copy** (the fallback, when the kernel has no new mount API (before
//!    5.2), no overlayfs, or refuses the layers: e.g. a binary on an overlayfs already two
//!    deep, the kernel's stacking limit). The binary is copied into a `memfd` sealed against
//!    every change (`F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`): a write
//!    through `/proc/<pid>/exe` reaches only the copy, and the seals refuse it. This costs a
//!    copy of the binary (about 5 MB) per start.
//!
//! If both fail, the container is not started: the protection is never skipped.
//!
//! # Why husk has its own code here
//!
//! No crate offers this (a handle on one's own binary that a container cannot write through):
//! runc and crun implement it in their own trees. For the system calls, nix 0.29 has no
//! wrappers for the new mount API (`fsopen`, `fsconfig`, `fsmount`) and libc only their
//! numbers; rustix has them, but husk does not depend on it directly. So the three calls are
//! small `unsafe` wrappers below, as in the init crate.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use husk_init::sys;

use crate::error::{Context, Result};

/// The runtime binary, opened so that no process running it exposes a writable file as its
/// `/proc/<pid>/exe`. Execute it through [`GuardedBinary::exec_path`].
#[derive(Debug)]
pub(crate) struct GuardedBinary {
    fd: OwnedFd,
    /// The path the caller named, for messages.
    binary: PathBuf,
}

impl GuardedBinary {
    /// Opens `binary` (symlinks and `/proc/self/exe` are followed) read-only through a private
    /// overlayfs mount, or else as a sealed copy. `spare_layer` is a directory husk owns (the
    /// container's state directory), used as overlayfs's required second layer.
    pub(crate) fn open(binary: &Path, spare_layer: &Path) -> Result<GuardedBinary> {
        let original = open_raw(None, binary, libc::O_PATH)
            .context(|| format!("open the init binary {}", binary.display()))?;
        let fd = match read_only_overlay_view(&original, spare_layer) {
            Ok(fd) => fd,
            Err(overlay_failure) => sealed_copy(&original).context(|| {
                format!(
                    "protect the init binary {} (read-only overlay: {overlay_failure}; sealed copy)",
                    binary.display()
                )
            })?,
        };
        Ok(GuardedBinary {
            fd,
            binary: binary.to_path_buf(),
        })
    }

    /// The binary as the caller named it.
    pub(crate) fn binary(&self) -> &Path {
        &self.binary
    }

    /// The path to execute: `/proc/self/fd/N` of a close-on-exec duplicate whose number is
    /// above `lowest_free` (so that the descriptors a child places below it never replace it).
    /// Keep the returned descriptor open until the child has exec'd.
    pub(crate) fn exec_path(&self, lowest_free: RawFd) -> io::Result<(OwnedFd, PathBuf)> {
        // SAFETY: F_DUPFD_CLOEXEC only reads our own open descriptor.
        let ret = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, lowest_free) };
        let fd = owned(ret.into())?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok((fd, path))
    }
}

/// Why the read-only overlay could not be used: the step that failed and its error.
#[derive(Debug)]
pub(crate) struct OverlayFailure {
    step: &'static str,
    source: io::Error,
}

impl fmt::Display for OverlayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.source)
    }
}

trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, OverlayFailure>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, step: &'static str) -> Result<T, OverlayFailure> {
        self.map_err(|source| OverlayFailure { step, source })
    }
}

/// `original` (an `O_PATH` descriptor), opened again through a detached read-only overlayfs
/// mount of its directory.
fn read_only_overlay_view(original: &OwnedFd, spare: &Path) -> Result<OwnedFd, OverlayFailure> {
    let path = std::fs::read_link(fd_path(original)).step("find the binary's path")?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(OverlayFailure {
            step: "find the binary's directory",
            source: io::Error::from_raw_os_error(libc::ENOENT),
        });
    };
    let dir = open_raw(None, dir, libc::O_PATH | libc::O_DIRECTORY).step("open its directory")?;
    let spare =
        open_raw(None, spare, libc::O_PATH | libc::O_DIRECTORY).step("open the spare layer")?;
    // Layers that overlap on one filesystem make overlayfs fail (ELOOP) after it has set up
    // its context: go straight to the empty tmpfs then (a binary in /root, say, and a state
    // root under it).
    let attempt = if overlapping(&dir, &spare) {
        Err(OverlayFailure {
            step: "create the overlay",
            source: io::Error::from_raw_os_error(libc::ELOOP),
        })
    } else {
        overlay_mount(&dir, &spare)
    };
    let mount = match attempt {
        Ok(mount) => mount,
        // Overlapping layers, or a layer on a filesystem overlayfs refuses: an empty detached
        // tmpfs cannot overlap anything (accepted as a layer from Linux 6.15).
        Err(e) if e.step == "create the overlay" => {
            let empty = empty_tmpfs().map_err(|_| e)?;
            overlay_mount(&dir, &empty)?
        }
        Err(e) => return Err(e),
    };
    let view = open_raw(
        Some(&mount),
        Path::new(name),
        libc::O_PATH | libc::O_NOFOLLOW,
    )
    .step("open the binary in the overlay")?;
    let (want, got) = (fstat(original), fstat(&view));
    let same = |a: &libc::stat, b: &libc::stat| {
        a.st_mode & libc::S_IFMT == libc::S_IFREG
            && (a.st_mode, a.st_ino, a.st_size) == (b.st_mode, b.st_ino, b.st_size)
            && (a.st_mtime, a.st_mtime_nsec) == (b.st_mtime, b.st_mtime_nsec)
    };
    match (want, got) {
        (Ok(want), Ok(got)) if same(&want, &got) => Ok(view),
        (Err(e), _) | (_, Err(e)) => Err(e).step("stat the binary"),
        _ => Err(OverlayFailure {
            step: "find the binary in the overlay",
            // The name now holds another file (replaced or deleted since it was started).
            source: io::Error::from_raw_os_error(libc::ESTALE),
        }),
    }
}

/// Whether one of the directories `a` and `b` is the other or inside it, on one filesystem
/// (overlayfs refuses such layers). False when unknown: overlayfs then tells.
fn overlapping(a: &OwnedFd, b: &OwnedFd) -> bool {
    let (Ok(sa), Ok(sb)) = (fstat(a), fstat(b)) else {
        return false;
    };
    if sa.st_dev != sb.st_dev {
        return false;
    }
    match (
        std::fs::read_link(fd_path(a)),
        std::fs::read_link(fd_path(b)),
    ) {
        (Ok(pa), Ok(pb)) => pa.starts_with(&pb) || pb.starts_with(&pa),
        _ => false,
    }
}

/// A detached read-only overlayfs mount with `top` above `bottom`.
fn overlay_mount(top: &OwnedFd, bottom: &OwnedFd) -> Result<OwnedFd, OverlayFailure> {
    let fs = sys::fsopen(c"overlay").step("open an overlayfs context")?;
    let layers = format!("{}:{}", fd_path(top).display(), fd_path(bottom).display());
    sys::fsconfig_set_string(fs.as_fd(), c"lowerdir", &layers).step("set the overlay's layers")?;
    // Inode numbers as the layers have them, for the identity check in the caller.
    sys::fsconfig_set_string(fs.as_fd(), c"xino", "off").step("set the overlay's inode numbers")?;
    sys::fsconfig_create(fs.as_fd()).step("create the overlay")?;
    sys::fsmount(
        fs.as_fd(),
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
    )
    .step("mount the overlay")
}

/// A detached, empty, read-only tmpfs.
fn empty_tmpfs() -> io::Result<OwnedFd> {
    let fs = sys::fsopen(c"tmpfs")?;
    sys::fsconfig_create(fs.as_fd())?;
    sys::fsmount(fs.as_fd(), libc::MOUNT_ATTR_RDONLY)
}

/// Copies the file behind `original` into a memfd sealed against every change.
fn sealed_copy(original: &OwnedFd) -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let mut source = std::fs::File::open(fd_path(original))?;
    let memfd = memfd_create(
        c"husk-init",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut copy = std::fs::File::from(memfd);
    std::io::copy(&mut source, &mut copy)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(copy.into())
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ret` is a new descriptor just returned by the kernel, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat(dir or the cwd, path, flags | O_CLOEXEC)`.
fn open_raw(dir: Option<&OwnedFd>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c_path = cstring(path.as_os_str().as_bytes())?;
    let dir = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c_path` is a valid C string for the duration of the call.
    let ret = unsafe { libc::openat(dir, c_path.as_ptr(), flags | libc::O_CLOEXEC) };
    owned(ret.into())
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat` for the duration of the call.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use husk_testing::TempDir;

    fn is_root() -> bool {
        // SAFETY: geteuid(2) cannot fail and has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// A small executable file `dir/name` and its contents.
    fn program(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
        let path = dir.join(name);
        let contents = b"#!/bin/sh\nexit 0\n".to_vec();
        crate::hostfs::write_atomic(&path, &contents).unwrap();
        (path, contents)
    }

    /// Where the guarded descriptor points, and what opening it for writing and writing to it
    /// give: `Ok(())` only if a write went through.
    fn attack(guarded: &GuardedBinary) -> (String, io::Result<()>) {
        let (_fd, path) = guarded.exec_path(3).unwrap();
        let target = std::fs::read_link(&path).unwrap();
        let write = open_raw(None, &path, libc::O_WRONLY).and_then(|fd| {
            let file = std::fs::File::from(fd);
            std::io::Write::write_all(&mut &file, b"pwned")
        });
        (target.to_string_lossy().into_owned(), write)
    }

    fn contents(guarded: &GuardedBinary) -> Vec<u8> {
        std::fs::read(guarded.exec_path(3).unwrap().1).unwrap()
    }

    #[test]
    fn the_binary_is_seen_through_a_read_only_overlay() {
        let (dir, state) = (
            TempDir::new("husk-guard-bin"),
            TempDir::new("husk-guard-state"),
        );
        let (path, original) = program(dir.path(), "prog");
        let guarded = GuardedBinary::open(&path, state.path()).unwrap();
        let (target, write) = attack(&guarded);
        assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
        if is_root() {
            assert_eq!(target, "/prog", "expected the overlay's view");
        }
        assert_eq!(contents(&guarded), original);
        assert_eq!(std::fs::read(&path).unwrap(), original);
    }

    #[test]
    fn overlapping_layers_still_give_a_protected_binary() {
        // The state directory inside the binary's directory: overlayfs refuses these layers.
        let dir = TempDir::new("husk-guard-bin");
        let state = dir.join("state");
        std::fs::create_dir(&state).unwrap();
        let (path, original) = program(dir.path(), "prog");
        let guarded = GuardedBinary::open(&path, &state).unwrap();
        let (target, write) = attack(&guarded);
        eprintln!("overlapping layers: the init runs from {target}");
        assert!(write.is_err(), "wrote through {target}");
        assert_eq!(contents(&guarded), original);
        assert_eq!(std::fs::read(&path).unwrap(), original);
    }

    #[test]
    fn a_replaced_binary_runs_as_a_sealed_copy_of_the_original() {
        let (dir, state) = (
            TempDir::new("husk-guard-bin"),
            TempDir::new("husk-guard-state"),
        );
        let (path, original) = program(dir.path(), "prog");
        let held = open_raw(None, &path, libc::O_PATH).unwrap();
        // An upgrade replaces the file under the name while a process still holds the old one.
        crate::hostfs::write_atomic(&path, b"#!/bin/sh\nexit 1\n").unwrap();
        let guarded = GuardedBinary::open(&fd_path(&held), state.path()).unwrap();
        let (target, write) = attack(&guarded);
        assert!(target.starts_with("/memfd:husk-init"), "{target}");
        assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EPERM));
        assert_eq!(contents(&guarded), original);
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_it() {
        let state = TempDir::new("husk-guard-state");
        let err = GuardedBinary::open(Path::new("/nonexistent/husk"), state.path()).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(err.to_string().contains("/nonexistent/husk"), "{err}");
    }
}
