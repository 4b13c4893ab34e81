//! A procfs the init can trust for every write it makes under `/proc`.
//!
//! The init writes sysctls, `oom_score_adj`, `timens_offsets` and LSM attributes. Through the
//! container's `/proc` such a write can be redirected (CVE-2025-52881): a volume mounted over
//! part of `/proc/sys`, a symlink inside such a volume, or a bind of another procfs file onto
//! the target sends the value to a file the container must never reach, such as a global
//! sysctl of the host. So stage 1 opens a procfs of its own before it enters any of the
//! container's namespaces, and every write is resolved from that root with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`: no symlink is followed and no
//! mount is crossed, so neither a planted link nor an overmount can move the write.
//!
//! Which procfs, in order of preference:
//! 1. a new, detached instance (`fsopen("proc")` + `fsmount`): nothing can be mounted on it;
//! 2. a detached clone of the host's `/proc` mount without its submounts
//!    (`open_tree(OPEN_TREE_CLONE)`), for kernels or sandboxes that refuse a new instance;
//! 3. the host's `/proc` itself, still checked to be a procfs root.
//!
//! Per-process files are reached by the pid the instance gives its `self` link, never through
//! the `self` symlink (which `RESOLVE_NO_SYMLINKS` would refuse). Sysctls are namespaced by
//! the namespaces of the process that opens them, not by the procfs instance, so a procfs made
//! on the host still reaches the container's own network, IPC and UTS sysctls.
//!
//! No crate offers this: `procfs` reads through path strings, and the `pathrs` crate needs
//! the C library libpathrs.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::sys::{self, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};

/// Files under /proc that may be mounted over (the ones tools such as lxcfs provide). The host
/// side checks the destinations of the config against it, the init the real place each
/// destination resolves to.
pub const PROC_MOUNT_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// The inode number of every procfs root.
const PROC_ROOT_INO: u64 = 1;

/// A verified procfs root.
pub struct Procfs {
    root: OwnedFd,
}

impl Procfs {
    /// Opens a procfs that the container cannot influence. Call it before entering any of the
    /// container's namespaces.
    pub fn open() -> io::Result<Procfs> {
        let root = new_instance()
            .or_else(|_| sys::open_tree_clone(cwd(), Path::new("/proc"), false))
            .or_else(|_| {
                nix::fcntl::open(
                    "/proc",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(|fd| {
                    // SAFETY: open returned a new descriptor that we own.
                    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
                })
                .map_err(io::Error::from)
            })?;
        let stat = nix::sys::stat::fstat(root.as_raw_fd())?;
        if !is_procfs(root.as_fd())? || stat.st_ino != PROC_ROOT_INO {
            return Err(io::Error::other("/proc is not the root of a procfs"));
        }
        Ok(Procfs { root })
    }

    /// Opens `path` (relative to the procfs root) with `flags`, following no symlink and
    /// crossing no mount, and checks that the result is on procfs.
    pub fn open_file(&self, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
        let fd = sys::openat2_resolve(
            self.root.as_fd(),
            path,
            flags,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
        )?;
        if !is_procfs(fd.as_fd())? {
            return Err(io::Error::other(format!(
                "/proc/{} is not on procfs",
                path.display()
            )));
        }
        Ok(fd)
    }

    /// The path of this process's directory, as `<pid>` in this procfs.
    fn own_dir(&self) -> io::Result<PathBuf> {
        sys::readlink_at(self.root.as_fd(), Path::new("self"))
    }

    /// Whether `/proc/self/<path>` exists.
    pub fn self_exists(&self, path: &Path) -> bool {
        self.own_dir()
            .and_then(|dir| self.open_file(&dir.join(path), libc::O_PATH))
            .is_ok()
    }

    /// Opens the directory `/proc/self/<path>` for reading its entries (e.g. `fd`).
    pub fn open_self_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        let dir = self.own_dir()?;
        self.open_file(&dir.join(path), libc::O_RDONLY | libc::O_DIRECTORY)
    }

    /// Writes `data` to `/proc/self/<path>`.
    pub fn write_self(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = self.own_dir()?;
        self.write(&dir.join(path), data)
    }

    /// Writes `data` to `/proc/<pid>/<name>` (the pid as this procfs numbers it).
    pub fn write_process_file(&self, pid: i32, name: &str, data: &[u8]) -> io::Result<()> {
        self.write(&Path::new(&pid.to_string()).join(name), data)
    }

    /// Writes `value` to the sysctl `key` (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`).
    pub fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let relative = key.replace('.', "/");
        if relative.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("malformed sysctl name {key:?}"),
            ));
        }
        self.write(&Path::new("sys").join(relative), value.as_bytes())
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let fd = self.open_file(path, libc::O_WRONLY)?;
        std::fs::File::from(fd).write_all(data)
    }

    /// The target of the magic link `/proc/self/fd/<fd>`: where `fd` really is.
    pub fn fd_target(&self, fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
        let dir = self.own_dir()?;
        sys::readlink_at(
            self.root.as_fd(),
            &dir.join("fd").join(fd.as_raw_fd().to_string()),
        )
    }
}

fn cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a valid dirfd argument for the *at calls for the whole process life.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

fn new_instance() -> io::Result<OwnedFd> {
    let fs = sys::fsopen(c"proc")?;
    sys::fsconfig_create(fs.as_fd())?;
    sys::fsmount(
        fs.as_fd(),
        libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
    )
}

/// Whether `fd` is on a procfs.
pub fn is_procfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(fstatfs(fd)?.filesystem_type() == PROC_SUPER_MAGIC)
}
