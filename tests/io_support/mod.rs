//! Helpers shared by the exec, terminal, stdio and subreaper tests: a console-socket receiver, pty reading with a
//! deadline, commands with caller-chosen stdio, fds placed at fixed numbers, and /proc parsing.
//!
//! Each test file includes this module with `mod io_support;` and uses only part of it.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use husk_testing::{Bundle, Runtime, TempDir};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// How long a test waits for a container to do something it was asked to.
pub const WAIT: Duration = Duration::from_secs(20);

/// The runtime under test (husk unless `HUSK_TEST_RUNTIME` names another).
pub fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// A container process that records when it is ready, then sleeps: a target for `exec`.
pub fn sleeper(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
        .with_shared_dir()
        .sh("echo ready > /shared/ready; exec sleep 1000")
}

/// The value of a `Key:\tvalue` line of a /proc/<pid>/status text.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
}

/// /proc/<pid>/status of a host process.
pub fn proc_status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"))
}

/// `readlink` of `/proc/<pid>/<rel>` on the host.
pub fn proc_link(pid: i32, rel: &str) -> String {
    let path = format!("/proc/{pid}/{rel}");
    std::fs::read_link(&path)
        .unwrap_or_else(|e| panic!("cannot readlink {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Reads a decimal pid from a pid file (runc writes digits without a newline; whitespace is tolerated).
pub fn read_pid_file(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no pid file {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file {} holds {text:?}, not a pid", path.display()))
}

/// A listening unix socket for `--console-socket`, in its own temporary directory.
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

/// What a runtime sends over the console socket: the payload (runc sends the pty's name) and the pty master.
pub struct ReceivedConsole {
    pub payload: String,
    pub master: File,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = TempDir::new("husk-test-console");
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("cannot bind {}: {e}", path.display()));
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts in a background thread (the runtime may block until someone accepts), so the caller can run the
    /// runtime meanwhile. The thread gives up after [`WAIT`].
    pub fn receive_in_background(&self) -> JoinHandle<Result<ReceivedConsole, String>> {
        let listener = self.listener.try_clone().expect("dup listener");
        std::thread::spawn(move || receive_console(&listener, WAIT))
    }
}

fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> Result<bool, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
}

fn receive_console(listener: &UnixListener, timeout: Duration) -> Result<ReceivedConsole, String> {
    let deadline = Instant::now() + timeout;
    if !wait_readable(listener.as_fd(), deadline)? {
        return Err(format!(
            "nobody connected to the console socket within {timeout:?}"
        ));
    }
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    if !wait_readable(stream.as_fd(), deadline)? {
        return Err("console socket connection sent nothing".into());
    }
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            fds.extend(received);
        }
    }
    let bytes = msg.bytes;
    let payload = String::from_utf8_lossy(&buf[..bytes]).into_owned();
    // SAFETY: SCM_RIGHTS installed these descriptors in this process just now; nothing else owns them.
    let mut owned: Vec<OwnedFd> = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if owned.len() != 1 {
        return Err(format!(
            "expected exactly one fd over the console socket, got {} (payload {payload:?})",
            owned.len()
        ));
    }
    Ok(ReceivedConsole {
        payload,
        master: File::from(owned.remove(0)),
    })
}

/// Waits for the console from [`ConsoleSocket::receive_in_background`], panicking with the reason on failure.
pub fn join_console(handle: JoinHandle<Result<ReceivedConsole, String>>) -> ReceivedConsole {
    handle
        .join()
        .expect("console receiver thread panicked")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Reads from a pty master until `done` accepts what was read so far, EOF/EIO (every slave closed), or the
/// deadline. Carriage returns added by the terminal's output processing are removed.
pub fn read_pty_until(master: &File, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let text = |raw: &[u8]| String::from_utf8_lossy(raw).replace('\r', "");
    loop {
        if done(&text(&raw)) {
            break;
        }
        match wait_readable(master.as_fd(), deadline) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => panic!("{e}"),
        }
        let mut buf = [0u8; 4096];
        match (&*master).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    text(&raw)
}

/// Reads a pty master until every slave is closed (or the deadline).
pub fn read_pty_to_end(master: &File, timeout: Duration) -> String {
    read_pty_until(master, timeout, |_| false)
}

/// Reads a pipe until every writer has closed it, giving up (with what was read) at the deadline.
pub fn read_pipe_to_end(pipe: &File, timeout: Duration) -> String {
    read_pty_until(pipe, timeout, |_| false)
}

/// The pty number of a master (`TIOCGPTN`): the slave is `/dev/pts/<n>` of the devpts instance it came from.
pub fn pty_number(master: &File) -> u32 {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the pointer, which points at a live local.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    assert_eq!(
        rc,
        0,
        "TIOCGPTN on the received fd failed (not a pty master?): {}",
        std::io::Error::last_os_error()
    );
    n
}

/// Sets the window size of a terminal.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points at a live local.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(
        rc,
        0,
        "TIOCSWINSZ failed: {}",
        std::io::Error::last_os_error()
    );
}

/// A pipe as (read end, write end), both close-on-exec (the child gets copies through `Stdio`).
pub fn pipe() -> (File, File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    (File::from(r), File::from(w))
}

/// The inode of an open file (for a pipe, the N of `pipe:[N]`).
pub fn inode(file: &File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    file.metadata().expect("fstat").ino()
}

/// Makes `fds[i]` appear as descriptor `3 + i` in the child (without close-on-exec), e.g. for `--preserve-fds`.
pub fn place_fds_from_3(cmd: &mut Command, fds: &[&File]) {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions (fcntl, dup2)
    // on integers captured by value.
    unsafe {
        cmd.pre_exec(move || {
            // First move every source above the target range, so that placing one cannot clobber another.
            let mut moved = Vec::with_capacity(raw.len());
            for &fd in &raw {
                let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if high < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved.push(high);
            }
            for (i, &fd) in moved.iter().enumerate() {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Waits for `child` until `timeout`, killing it then and panicking with `what`.
pub fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Directories of the cgroups of process `pid` in every hierarchy mounted on this host (host paths), found from
/// /proc/<pid>/cgroup and this process's mountinfo.
pub fn cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/cgroup: {e}"));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut dirs = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mount = mountinfo.lines().find_map(|m| {
            let (left, right) = m.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (fstype, options) = (right.first()?, right.get(2)?);
            let matches = if id == "0" {
                *fstype == "cgroup2"
            } else {
                *fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| options.split(',').any(|o| o == c))
            };
            // Only mounts of the hierarchy's root map cgroup paths one to one.
            (matches && fields.get(3) == Some(&"/")).then(|| PathBuf::from(fields[4]))
        });
        if let Some(mount) = mount {
            dirs.push(mount.join(path.trim_start_matches('/')));
        }
    }
    dirs
}

/// True if `text` is an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// `struct seccomp_notif` and `struct seccomp_notif_resp` of linux/seccomp.h.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// A seccomp agent at `linux.seccomp.listenerPath`: takes one connection (the container's state and the notify
/// fd), then answers every notification with `errno`; returns the state and how many it answered once the
/// container is gone.
pub fn seccomp_agent(listener: UnixListener, errno: i32) -> (serde_json::Value, u32) {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a descriptor received through SCM_RIGHTS is ours.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let len = msg.bytes;
    let state: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
    let fd = fd.expect("no notify fd with the state");
    let mut answered = 0;
    loop {
        let mut req = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a seccomp_notif we own.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } < 0 {
            // The container is gone: no more notifications.
            return (state, answered);
        }
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads the response we own.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
        answered += 1;
    }
}
