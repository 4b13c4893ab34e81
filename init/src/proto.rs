//! The bootstrap protocol shared by the host side (`husk::spawn`) and the init.
//!
//! One `SOCK_SEQPACKET` socketpair joins the parent and the init. Every packet is one
//! JSON-encoded message after a tag byte; file descriptors travel beside it as `SCM_RIGHTS`. A
//! message over 64 KiB (a big env, many mounts) travels in a sealed memfd instead, passed as the
//! packet's last fd: a packet must fit the socket buffer whole. The exchange is:
//!
//! ```text
//! parent                                   init (stage 1, then stage 2)
//!   Bootstrap (+ exec fifo fd)      ──▶
//!                                   ◀──   NeedIdMaps            (only with a new user namespace)
//!   IdMapsWritten                   ──▶
//!                                   ◀──   Stage2Pid(pid)        (stage 1 then exits)
//!                                   ◀──   RunRuntimeHooks       (stage 2, mounts done, before pivot_root)
//!   HooksDone { state }             ──▶
//!                                   ◀──   Console(name) + master fd   (only with process.terminal)
//!                                   ◀──   Ready                 (stage 2 now waits on the exec fifo;
//!                                                                with exec, it execs: EOF = success)
//! any time:                         ◀──   Failed(InitFailure)
//! ```
//!
//! After a fork, `Stage2Pid` comes from stage 1 and the rest from stage 2, two processes on one
//! socket. Stage 2 sends nothing until stage 1 has sent the pid (a pipe between them, see
//! `stage1`), so `Stage2Pid` always comes before anything that needs it; the parent refuses a
//! message that needs the pid and comes first, instead of waiting for a pid that may never come.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Bumped whenever a message changes shape: a parent and an init from different builds refuse
/// each other instead of misreading.
pub const PROTOCOL_VERSION: u32 = 3;

/// The argument that makes the husk binary (or an embedding program) run as the container's
/// init. Not `init`: a program that embeds husk may have an `init` subcommand of its own.
pub const INIT_ARG: &str = "__husk_init__";

/// A namespace kind, with its `CLONE_NEW*` flag.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    User,
    Mount,
    Pid,
    Network,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl NamespaceKind {
    /// The order the kernel needs for joining and creating: the user namespace first (it owns the
    /// others), the mount namespace last among the joined ones so that the other paths still
    /// resolve on the host.
    pub const SETUP_ORDER: [NamespaceKind; 8] = [
        NamespaceKind::User,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Network,
        NamespaceKind::Pid,
        NamespaceKind::Cgroup,
        NamespaceKind::Time,
        NamespaceKind::Mount,
    ];

    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NamespaceKind::User => libc::CLONE_NEWUSER,
            NamespaceKind::Mount => libc::CLONE_NEWNS,
            NamespaceKind::Pid => libc::CLONE_NEWPID,
            NamespaceKind::Network => libc::CLONE_NEWNET,
            NamespaceKind::Uts => libc::CLONE_NEWUTS,
            NamespaceKind::Ipc => libc::CLONE_NEWIPC,
            NamespaceKind::Cgroup => libc::CLONE_NEWCGROUP,
            NamespaceKind::Time => libc::CLONE_NEWTIME,
        }
    }

    /// The name under /proc/<pid>/ns/ and in config.json's `linux.namespaces[].type`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "net",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }
}

/// A namespace to create (`path: None`) or join.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    pub kind: NamespaceKind,
    pub path: Option<PathBuf>,
}

/// What a mount entry becomes once its options are parsed on the host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount; `recursive` for rbind.
    Bind { recursive: bool },
    /// Any filesystem mounted by type (proc, tmpfs, sysfs, devpts, mqueue, ...).
    Filesystem,
    /// `type: cgroup`/`cgroup2`: the container's view of its cgroups.
    Cgroup,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// For binds an absolute host path; for filesystems the mount source string.
    pub source: Option<PathBuf>,
    pub fstype: Option<String>,
    pub kind: MountKind,
    /// `MS_*` flags for the mount itself.
    pub flags: u64,
    /// `MS_*` flags cleared by options such as `rw`, `suid`, `dev` (used by bind remounts).
    pub clear_flags: u64,
    /// `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE` (with `MS_REC`), applied after mounting.
    pub propagation: Vec<u64>,
    /// Filesystem-specific options joined with commas.
    pub data: String,
    /// `MOUNT_ATTR_*` set and cleared on the whole tree (`rro`, `rnosuid`, ...).
    pub recursive_attr_set: u64,
    pub recursive_attr_clear: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub file_type: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RlimitPlan {
    /// `RLIMIT_*` resource number.
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HookPlan {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<RlimitPlan>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `process.capabilities`, applied around the uid/gid change.
    pub capabilities: Option<oci_spec::runtime::LinuxCapabilities>,
    /// AppArmor profile to exec into (the host checked that AppArmor is enabled).
    pub apparmor_profile: Option<String>,
    /// SELinux process label (the host checked that SELinux is enabled).
    pub selinux_label: Option<String>,
    /// `linux.personality` as the personality(2) argument.
    pub personality: Option<u64>,
    /// `process.ioPriority` as the ioprio_set(2) value.
    pub io_priority: Option<i32>,
    pub scheduler: Option<SchedulerPlan>,
    /// `process.execCPUAffinity` (exec only): CPUs before joining the container, and at execve.
    pub cpu_affinity_initial: Option<Vec<usize>>,
    pub cpu_affinity_final: Option<Vec<usize>>,
}

/// `process.scheduler`, as sched_setattr(2) takes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SchedulerPlan {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// One mounted cgroup hierarchy of the host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Where the host mounts it, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// The hierarchy's controller options, e.g. `memory` or `name=systemd`.
    pub options: String,
    /// The container's cgroup directory in this hierarchy (bound into the container when it
    /// has no cgroup namespace of its own).
    pub container_dir: Option<PathBuf>,
}

/// Everything the init needs, validated and resolved on the host before any fork.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Bootstrap {
    pub version: u32,
    pub namespaces: Vec<NamespacePlan>,
    /// `/proc/self/timens_offsets` lines, written right after the time namespace is created.
    pub time_offsets: Vec<String>,
    /// Absolute host path of the root filesystem.
    pub rootfs: PathBuf,
    /// Device and inode of `rootfs` as `create` validated it (a directory reached through no
    /// symlink); the init opens it again only if it is still that directory. None for exec.
    pub rootfs_identity: Option<(u64, u64)>,
    pub rootfs_readonly: bool,
    /// Propagation applied to the container's view of `/` (`MS_SLAVE|MS_REC` by default).
    pub rootfs_propagation: u64,
    /// `linux.rootfsPropagation` was given: apply it to the new `/` again after pivot_root.
    pub rootfs_propagation_explicit: bool,
    pub mounts: Vec<MountPlan>,
    pub no_pivot: bool,
    /// The standard devices (null, zero, full, random, urandom, tty) not overridden by the spec.
    pub devices: Vec<DevicePlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub process: ProcessPlan,
    /// `linux.seccomp`, built by the runtime (the init only loads it).
    pub seccomp: Option<crate::security::SeccompFilter>,
    /// `linux.seccomp.listenerPath` and `listenerMetadata`: the runtime hands the notify fd
    /// to that agent itself, so they are its own and never sent to the init.
    #[serde(skip)]
    pub seccomp_listener: Option<(PathBuf, Option<String>)>,
    pub new_session_keyring: bool,
    pub create_container_hooks: Vec<HookPlan>,
    pub start_container_hooks: Vec<HookPlan>,
    /// Whether the parent asks for prestart/createRuntime hooks (saves a round trip when none).
    pub has_runtime_hooks: bool,
    /// Fds 3..3+N are the caller's and stay open in the container.
    pub preserve_fds: u32,
    /// The host's cgroup hierarchies, for `type: cgroup` mounts (empty when there is none).
    pub cgroup_hierarchies: Vec<CgroupHierarchy>,
    /// `husk exec`: join a running container (every namespace by path) and exec right away.
    pub exec: bool,
    /// `process.terminal`: a pty from the container's devpts becomes the process's stdio and
    /// its master goes to the parent.
    pub terminal: bool,
    /// `process.consoleSize` as (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// Where init failed, with the errno when a system call failed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InitFailure {
    /// What init was doing, e.g. `mount proc on /proc`.
    pub step: String,
    pub errno: Option<i32>,
    /// Extra text when there is no errno (or beside it).
    pub detail: Option<String>,
}

impl std::fmt::Display for InitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A detail, when there is one, already tells the whole story (errno included).
        f.write_str(&self.step)?;
        match (&self.detail, self.errno) {
            (Some(detail), _) => write!(f, ": {detail}"),
            (None, Some(errno)) => write!(f, ": {}", io::Error::from_raw_os_error(errno)),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub enum ToInit {
    /// First message; the exec fifo (opened read-write) travels with it.
    Bootstrap(Box<Bootstrap>),
    IdMapsWritten,
    /// Prestart and createRuntime hooks have run; `state` is the state JSON for the
    /// createContainer and startContainer hooks.
    HooksDone {
        state: String,
    },
}

#[derive(Serialize, Deserialize, Debug)]
pub enum ToParent {
    NeedIdMaps,
    /// The container's PID 1 as seen from the parent's pid namespace.
    Stage2Pid(i32),
    RunRuntimeHooks,
    /// The pty master (as SCM_RIGHTS) and the slave's path in the container.
    Console(String),
    /// The seccomp notify fd (as SCM_RIGHTS), for the agent at `linux.seccomp.listenerPath`.
    SeccompNotify,
    Ready,
    Failed(InitFailure),
}

/// One end of the bootstrap socketpair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Largest packet accepted: a one-byte tag and the JSON of a message sent inline.
const MAX_MESSAGE: usize = MAX_INLINE + 1;

/// Largest JSON sent in the packet itself. A SEQPACKET message must fit the socket's send
/// buffer (about 208 KiB by default) whole, or sendmsg fails with EMSGSIZE.
const MAX_INLINE: usize = 64 << 10;

/// Largest JSON accepted from a memfd: config.json is refused over 64 MiB, and its bootstrap is
/// about its size.
const MAX_MEMFD_MESSAGE: u64 = 128 << 20;

/// First byte of a packet: the JSON follows in the packet.
const INLINE: u8 = b'J';
/// First (and only) byte of a packet whose JSON is in a memfd, the packet's last fd.
const IN_MEMFD: u8 = b'M';

/// A memfd holding `bytes`, sealed so that neither side can change it after sending.
fn sealed_memfd(bytes: &[u8]) -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let memfd = memfd_create(
        c"husk-bootstrap",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(memfd);
    io::Write::write_all(&mut file, bytes)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(file.into())
}

/// The contents of a message's memfd, read from its start and bounded.
fn read_memfd(memfd: OwnedFd) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(memfd);
    let len = file.metadata()?.len();
    if len > MAX_MEMFD_MESSAGE {
        return Err(io::Error::other("bootstrap message too large"));
    }
    let mut bytes = vec![0u8; len as usize];
    // read_exact_at: the sender's writes left the shared file offset at the end.
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Adopts an inherited descriptor (the init's end after exec).
    ///
    /// # Safety
    /// `fd` must be an open socket that nothing else owns.
    pub unsafe fn from_raw_fd(fd: RawFd) -> Channel {
        // SAFETY: the caller guarantees sole ownership of an open descriptor.
        Channel {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends `msg` with `fds` as SCM_RIGHTS. A message too big for one packet (a config with a
    /// megabyte of env) travels in a sealed memfd passed as the last fd.
    pub fn send<T: Serialize>(&self, msg: &T, fds: &[RawFd]) -> io::Result<()> {
        let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let memfd;
        let mut all_fds = fds.to_vec();
        let packet = if json.len() <= MAX_INLINE {
            let mut packet = Vec::with_capacity(json.len() + 1);
            packet.push(INLINE);
            packet.extend_from_slice(&json);
            packet
        } else {
            memfd = sealed_memfd(&json)?;
            all_fds.push(memfd.as_raw_fd());
            vec![IN_MEMFD]
        };
        let iov = [IoSlice::new(&packet)];
        let cmsgs: Vec<ControlMessage> = if all_fds.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&all_fds)]
        };
        let sent = sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        if sent != packet.len() {
            return Err(io::Error::other("short write on bootstrap socket"));
        }
        Ok(())
    }

    /// Receives one message; a closed peer is `UnexpectedEof`.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<(T, Vec<OwnedFd>)> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // Peek with MSG_TRUNC to learn the real size of a packet larger than the buffer.
            let peeked = nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut buf[..1],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            );
            match peeked {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) if n > MAX_MESSAGE => {
                    return Err(io::Error::other("bootstrap message too large"))
                }
                Ok(n) if n > buf.len() => buf.resize(n, 0),
                Ok(_) => {}
            }
            break;
        }
        let mut cmsg_space = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let (len, mut fds) = loop {
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                        if let ControlMessageOwned::ScmRights(raw) = cmsg {
                            for fd in raw {
                                // SAFETY: SCM_RIGHTS hands us fresh descriptors we now own.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break (msg.bytes, fds);
                }
            }
        };
        let msg = match buf[..len].split_first() {
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
            Some((&INLINE, json)) => serde_json::from_slice(json).map_err(io::Error::other)?,
            Some((&IN_MEMFD, [])) => {
                let memfd = fds
                    .pop()
                    .ok_or_else(|| io::Error::other("bootstrap message without its memfd"))?;
                serde_json::from_slice(&read_memfd(memfd)?).map_err(io::Error::other)?
            }
            Some(_) => return Err(io::Error::other("malformed bootstrap packet")),
        };
        Ok((msg, fds))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_too_big_for_a_packet_goes_through_a_memfd() {
        let (a, b) = Channel::pair().unwrap();
        // Two megabytes: far over the socket buffer, which one packet must fit whole.
        let big = ToInit::HooksDone {
            state: "x".repeat(2 << 20),
        };
        a.send(&big, &[]).unwrap();
        let small = ToInit::IdMapsWritten;
        a.send(&small, &[]).unwrap();
        match b.recv::<ToInit>().unwrap() {
            (ToInit::HooksDone { state }, fds) => {
                assert_eq!(state.len(), 2 << 20);
                assert!(fds.is_empty(), "the memfd is not handed to the caller");
            }
            other => panic!("got {other:?}"),
        }
        assert!(matches!(
            b.recv::<ToInit>().unwrap().0,
            ToInit::IdMapsWritten
        ));
    }

    #[test]
    fn a_big_message_keeps_the_caller_fds() {
        let (a, b) = Channel::pair().unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        let big = ToInit::HooksDone {
            state: "y".repeat(300 << 10),
        };
        a.send(&big, &[r.as_raw_fd()]).unwrap();
        let (_, fds) = b.recv::<ToInit>().unwrap();
        assert_eq!(fds.len(), 1, "the caller's fd, not the memfd");
        let st = nix::sys::stat::fstat(fds[0].as_raw_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFIFO);
    }
}
