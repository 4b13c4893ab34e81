//! Thin wrappers over the system calls that nix does not cover. The only `unsafe` in the init.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// The outcome of [`fork_as_sibling`].
pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// Forks a child whose parent is our own parent (`CLONE_PARENT`), so the container's PID 1 is
/// the runtime's child and reparents to the caller's subreaper when the runtime exits.
pub fn fork_as_sibling() -> io::Result<Forked> {
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves like fork(); the caller is
    // single-threaded (freshly exec'd init), so the child's copy of the address space is coherent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens `path` as if `root` were `/`: symlinks and `..` cannot leave `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

/// Like [`open_in_root`], but no component of `path` may be a symlink (ELOOP otherwise).
pub fn open_in_root_no_symlinks(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
}

fn openat2(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let path = cstring(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: `how` and `path` outlive the call; the kernel checks the struct size we pass.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(ret) {
            // SAFETY: openat2 returned a new descriptor that we now own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sets and clears `MOUNT_ATTR_*` on the mount at `fd` and every mount below it.
pub fn mount_setattr_recursive(fd: BorrowedFd<'_>, set: u64, clear: u64) -> io::Result<()> {
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    mount_setattr_flags(fd, set, clear, AT_RECURSIVE)
}

fn mount_setattr_flags(
    fd: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    flags: libc::c_uint,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const SYS_MOUNT_SETATTR: libc::c_long = 442;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` and the empty path outlive the call; the size matches the struct.
    let ret = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags | libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// Marks every descriptor from `first` upwards close-on-exec. `fd_dir` opens the process's own
/// fd directory (`/proc/self/fd` of a trusted procfs), used where `close_range` is refused: kernels
/// before 5.11 lack `CLOSE_RANGE_CLOEXEC` (EINVAL), older ones the call (ENOSYS), and a seccomp
/// filter the runtime itself runs under may deny it (EPERM).
pub fn cloexec_from(first: u32, fd_dir: impl FnOnce() -> io::Result<OwnedFd>) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOEXEC only changes descriptor flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    match check(ret) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::ENOSYS | libc::EINVAL)
            ) =>
        {
            cloexec_listed(first, fd_dir()?)
        }
        other => other.map(drop),
    }
}

/// Sets FD_CLOEXEC on every descriptor listed in `fd_dir` from `first` upwards.
fn cloexec_listed(first: u32, fd_dir: OwnedFd) -> io::Result<()> {
    let dir = nix::dir::Dir::from_fd(fd_dir.into_raw_fd())?;
    for entry in dir {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue; // "." and ".."
        };
        if fd < first as RawFd {
            continue;
        }
        // The directory's own descriptor is listed too: it is closed with the iterator anyway.
        match nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        ) {
            Ok(_) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Gives the process a new, anonymous session keyring.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for an anonymous keyring; no pointers are retained.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    check(ret).map(drop)
}

pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`, which outlives the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    check(ret as libc::c_long).map(drop)
}

pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    let ret = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &limit) };
    check(ret as libc::c_long).map(drop)
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) as libc::c_long)?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) as libc::c_long)?;
    }
    Ok(())
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &Path, args: &[String], env: &[String]) -> io::Error {
    let to_c = |v: &[String]| -> Option<Vec<CString>> {
        v.iter().map(|s| CString::new(s.as_bytes()).ok()).collect()
    };
    let (Ok(path), Some(args), Some(env)) = (cstring(path), to_c(args), to_c(env)) else {
        return io::ErrorKind::InvalidInput.into();
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are null-terminated arrays of pointers into CStrings that live
    // until execve returns (which it only does on failure).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// A descriptor that becomes readable when process `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes no pointers.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a non-negative result is a new descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = left.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: pfd is a valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut pfd, 1, millis) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// A new pseudo-terminal from the devpts behind `ptmx`: (master, slave, slave's number).
pub fn open_pty(ptmx: &Path) -> io::Result<(OwnedFd, OwnedFd, u32)> {
    let master: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)?
        .into();
    let unlock: libc::c_int = 0;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK reads an int, TIOCGPTN writes an unsigned int; both outlive the calls.
    unsafe {
        check(libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) as libc::c_long)?;
        check(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) as libc::c_long)?;
    }
    // TIOCGPTPEER opens the slave through the master, so no path lookup can be raced.
    // SAFETY: the ioctl takes open flags by value and returns a new descriptor.
    let slave = check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    } as libc::c_long)?;
    // SAFETY: a new descriptor that we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave as RawFd) };
    Ok((master, slave, number))
}

/// Sets a terminal's window size.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that outlives the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) } as libc::c_long).map(drop)
}

/// Reads a terminal's window size as (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: winsize is plain old data.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes the winsize we own.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } as libc::c_long)?;
    Ok((size.ws_row, size.ws_col))
}

/// Makes `fd` the controlling terminal of this (session leader) process.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } as libc::c_long).map(drop)
}

/// Restores the default action of SIGPIPE, which the Rust runtime ignores at startup: an
/// ignored signal would be inherited across execve by the container's process.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Gives every signal its default action and unblocks all of them. Ignored signals and the
/// mask survive execve: whatever the caller ignored or blocked (`nohup`, a daemon, `husk run`
/// forwarding signals, the Rust runtime's SIGPIPE) would reach the container's process.
/// Errors are ignored: SIGKILL and SIGSTOP, and the signals glibc reserves, cannot be changed.
pub fn reset_signal_state() {
    /// The kernel's `struct sigaction` on x86_64 (glibc's wrapper refuses the signals it
    /// reserves for itself, 32 and 33, which a caller may still have ignored).
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the action installs no handler code; the struct outlives the call and its
        // size matches the 8-byte kernel sigset passed as the last argument.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Whether `signal` is pending for this thread or the process (blocked, so not yet delivered).
pub fn signal_pending(signal: libc::c_int) -> bool {
    // SAFETY: sigset_t is plain old data; sigpending fills the one we own.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for both calls.
    unsafe { libc::sigpending(&mut set) == 0 && libc::sigismember(&set, signal) == 1 }
}

/// personality(2).
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain integer.
    check(unsafe { libc::personality(persona as libc::c_ulong) } as libc::c_long).map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, value).
pub fn set_io_priority(value: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes plain integers.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) }).map(drop)
}

/// sched_setattr(2) for the calling thread.
pub fn set_scheduler(plan: &crate::proto::SchedulerPlan) -> io::Result<()> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: plan.policy,
        flags: plan.flags,
        nice: plan.nice,
        priority: plan.priority,
        runtime: plan.runtime,
        deadline: plan.deadline,
        period: plan.period,
    };
    // SAFETY: `attr` is a valid sched_attr of the size it declares, alive during the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

/// Pins the calling process to `cpus`.
pub fn set_cpu_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus {
        set.set(*cpu).map_err(io::Error::from)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

// --- The new mount API (Linux 5.2+) and friends: mounts made and moved by descriptor, so that
// no path the container can touch is resolved between a check and the mount.

/// `RESOLVE_*` flags for [`openat2_resolve`].
pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;

/// `openat2` relative to `dir` with the given `RESOLVE_*` flags (O_CLOEXEC is always added).
pub fn openat2_resolve(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    openat2(dir, path, flags, resolve)
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: only called with the non-negative result of a syscall that returns a new
    // descriptor, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `fsopen(name)`: a filesystem context for a new superblock of type `name`.
pub fn fsopen(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
    check(ret).map(owned)
}

/// `fsconfig(FSCONFIG_SET_STRING, key, value)` on a filesystem context.
pub fn fsconfig_set_string(
    fs: BorrowedFd<'_>,
    key: &std::ffi::CStr,
    value: &str,
) -> io::Result<()> {
    let value = CString::new(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: key and value are valid C strings for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    check(ret).map(drop)
}

/// `fsconfig(FSCONFIG_SET_FLAG, key)` on a filesystem context: an option without a value.
pub fn fsconfig_set_flag(fs: BorrowedFd<'_>, key: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: key is a valid C string for the duration of the call; the value must be null.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    check(ret).map(drop)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: makes the context's superblock.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the create command takes no pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    check(ret).map(drop)
}

/// `fsmount`: a detached mount of the context's superblock (made by [`fsconfig_create`]),
/// with `MOUNT_ATTR_*` flags `attrs`.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: fsmount takes no pointers; MOUNT_ATTR_* fit the unsigned int it takes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    };
    check(ret).map(owned)
}

/// `open_tree(dir, path, OPEN_TREE_CLONE)`: a detached copy of the mount at `path` (the empty
/// path: `dir` itself), without the mounts below it unless `recursive`.
pub fn open_tree_clone(dir: BorrowedFd<'_>, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let c_path = cstring(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `c_path` is a valid C string for the duration of the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), c_path.as_ptr(), flags) };
    check(ret).map(owned)
}

/// `move_mount` of the detached or attached mount `from` onto the object `to` refers to.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty C strings; the kernel uses the descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(ret).map(drop)
}

/// Sets and clears `MOUNT_ATTR_*` on the mount at `fd` alone.
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clear: u64) -> io::Result<()> {
    mount_setattr_flags(fd, set, clear, 0)
}

/// The target of the magic link `/proc/self/fd/N` read through `proc` (a procfs root), or
/// the link `name` below it.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &Path) -> io::Result<std::path::PathBuf> {
    nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)
        .map(std::path::PathBuf::from)
        .map_err(io::Error::from)
}

/// Whether `fd` is an open Unix socket of type SOCK_SEQPACKET (the bootstrap socket's kind).
pub fn is_seqpacket_socket(fd: RawFd) -> bool {
    let int_option = |option: libc::c_int| -> Option<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, an int we own; a bad or
        // non-socket fd only makes it fail.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    };
    int_option(libc::SO_DOMAIN) == Some(libc::AF_UNIX)
        && int_option(libc::SO_TYPE) == Some(libc::SOCK_SEQPACKET)
}
