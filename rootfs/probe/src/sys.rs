//! Thin safe wrappers over the few libc calls the probe needs that std does not offer.

use std::io;

/// The calling thread's errno after a failed call.
pub fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn getpid() -> i32 {
    // SAFETY: getpid(2) has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> i32 {
    // SAFETY: getppid(2) has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

/// Real, effective and saved ids from getresuid(2) (`gid == true`: getresgid(2)).
pub fn resids(gid: bool) -> [u32; 3] {
    let (mut real, mut effective, mut saved) = (0, 0, 0);
    // SAFETY: the three out-pointers are valid, distinct u32 locations for the duration of the call.
    let rc = unsafe {
        if gid {
            libc::getresgid(&mut real, &mut effective, &mut saved)
        } else {
            libc::getresuid(&mut real, &mut effective, &mut saved)
        }
    };
    assert_eq!(
        rc,
        0,
        "getres{}id: errno {}",
        if gid { "g" } else { "u" },
        last_errno()
    );
    [real, effective, saved]
}

/// Supplementary groups from getgroups(2).
pub fn groups() -> Vec<u32> {
    // SAFETY: a zero size with a null pointer only asks for the count.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    assert!(count >= 0, "getgroups: errno {}", last_errno());
    let mut groups = vec![0; count as usize];
    // SAFETY: the buffer holds exactly `count` gid_t entries.
    let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    assert!(got >= 0, "getgroups: errno {}", last_errno());
    groups.truncate(got as usize);
    groups
}

fn field(chars: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// uname(2) fields: sysname, nodename, release, machine, domainname.
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub machine: String,
    pub domainname: String,
}

pub fn uname() -> Uname {
    // SAFETY: utsname is plain old data; all-zero bytes are a valid value.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: buf is a valid, writable utsname.
    let rc = unsafe { libc::uname(&mut buf) };
    assert_eq!(rc, 0, "uname: errno {}", last_errno());
    Uname {
        sysname: field(&buf.sysname),
        nodename: field(&buf.nodename),
        release: field(&buf.release),
        machine: field(&buf.machine),
        domainname: field(&buf.domainname),
    }
}

/// The current execution domain: personality(0xffffffff) only queries.
pub fn personality() -> i64 {
    // SAFETY: the all-ones argument makes personality(2) a pure query.
    i64::from(unsafe { libc::personality(0xffff_ffff) })
}

/// prctl(PR_GET_NO_NEW_PRIVS).
pub fn no_new_privs() -> bool {
    // SAFETY: PR_GET_NO_NEW_PRIVS reads a flag; the unused arguments must be zero.
    let rc = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    rc == 1
}

/// getrlimit(2): (soft, hard), with RLIM_INFINITY as u64::MAX.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> Result<(u64, u64), i32> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    if rc == 0 {
        Ok((limit.rlim_cur, limit.rlim_max))
    } else {
        Err(last_errno())
    }
}

/// A raw system call with up to six integer arguments: `Ok(return value)` or `Err(errno)`.
///
/// # Safety
/// Every argument that the kernel interprets as a pointer must point to memory valid for that system call.
pub unsafe fn raw_syscall(number: libc::c_long, args: [libc::c_long; 6]) -> Result<i64, i32> {
    // SAFETY: the caller vouches for the pointer arguments; integers need nothing.
    let rc = unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(rc)
    }
}

/// Closes `fd`, ignoring errors (used to undo a probing system call that returned a new descriptor).
pub fn close(fd: i32) {
    // SAFETY: closing a descriptor this process just received from the kernel and owns nowhere else.
    unsafe { libc::close(fd) };
}

/// fork(2) for the fork-limit probe: `Ok(0)` in the child, `Ok(pid)` in the parent, `Err(errno)` on failure.
pub fn fork() -> Result<i32, i32> {
    // SAFETY: the probe is single-threaded; the child only calls async-signal-safe functions (read, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(last_errno())
    } else {
        Ok(pid)
    }
}

/// Blocks on `fd` until it reports end of file or an error, then exits without running any destructor.
pub fn child_wait_then_exit(fd: i32) -> ! {
    let mut byte = 0u8;
    // SAFETY: the buffer is one valid byte; read(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::read(fd, (&mut byte as *mut u8).cast(), 1);
        libc::_exit(0)
    }
}

/// A pipe with both ends close-on-exec: (read end, write end).
pub fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: errno {}", last_errno());
    (fds[0], fds[1])
}

/// Waits for any child; returns false when there is none left.
pub fn wait_any() -> bool {
    let mut status = 0;
    // SAFETY: status is a valid int.
    unsafe { libc::wait(&mut status) > 0 }
}

/// The symbolic name of an errno value, for people reading reports.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::EDOM => "EDOM",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSUP => "ENOTSUP",
        libc::ELOOP => "ELOOP",
        _ => return format!("E#{errno}"),
    };
    name.to_owned()
}

/// Whether `fd` is a terminal, and its window size (rows, columns) if it is.
pub fn terminal(fd: i32) -> (bool, Option<(u16, u16)>) {
    // SAFETY: isatty(3) only inspects the descriptor.
    let is_tty = unsafe { libc::isatty(fd) } == 1;
    if !is_tty {
        return (false, None);
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid, writable `size`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (true, (rc == 0).then_some((size.ws_row, size.ws_col)))
}

/// The I/O priority of the calling process (ioprio_get(IOPRIO_WHO_PROCESS, 0)): `(class, level)`.
pub fn io_priority() -> Result<(i64, i64), i32> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: both arguments are integers.
    let value = unsafe { raw_syscall(libc::SYS_ioprio_get, [IOPRIO_WHO_PROCESS, 0, 0, 0, 0, 0]) }?;
    Ok((value >> 13, value & 0x1fff))
}

/// The scheduling policy (sched_getscheduler(0)) and nice value (getpriority(PRIO_PROCESS, 0)).
pub fn scheduler() -> (i32, i32) {
    // SAFETY: pid 0 means the calling process; no pointers are involved.
    let policy = unsafe { libc::sched_getscheduler(0) };
    // SAFETY: as above; getpriority can return -1 legitimately, which is fine for a report.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    (policy & !libc::SCHED_RESET_ON_FORK, nice)
}
