//! A hardened container spec for running untrusted code, safe without configuration.
//!
//! [`HardenedProfile`] builds an OCI [`Spec`] in which every knob that is not needed by an
//! ordinary program is turned off, and [`default_seccomp_profile`] is its syscall allowlist.
//!
//! ```no_run
//! # fn main() -> husk::Result<()> {
//! use husk::profile::HardenedProfile;
//! let bundle = std::path::Path::new("/run/my-app/bundles/job-1");
//! HardenedProfile::new("/srv/images/python", vec!["python3".into(), "job.py".into()])
//!     .cwd("/work")
//!     .read_only_bind("/srv/jobs/1", "/work")
//!     .memory_limit(512 << 20)
//!     .write_bundle(bundle)?;
//! let runtime = husk::Runtime::new("/run/my-app");
//! let mut c = runtime.create("job-1", bundle, &Default::default())?;
//! c.start()?;
//! let status = c.wait()?;
//! c.delete(false)?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! # What the profile does, and why
//!
//! **User.** The process runs as uid/gid 65534 (`nobody`/`nogroup` on most distributions) with
//! no supplementary groups. There is no user namespace, so this is the host's uid 65534 too:
//! files the host owns elsewhere are protected by ordinary permissions, and the uid owns nothing
//! in a normal system. Give each sandbox its own uid ([`HardenedProfile::user`]) when sandboxes
//! must not share `RLIMIT_NPROC` or files in shared binds. Root (0) can be chosen but is not
//! recommended: even without capabilities, uid 0 owns most of a typical image.
//!
//! **Capabilities: none.** All five sets (bounding, effective, permitted, inheritable, ambient)
//! are empty. A non-root process has empty effective and permitted sets after `execve` anyway
//! unless capabilities are ambient or come from file capabilities; the empty *bounding* set makes
//! sure no file capability or setuid-root binary can add any, and `noNewPrivileges` stops
//! setuid/setgid and file capabilities at `execve` as well. Nothing an ordinary program does
//! needs a capability: binding ports below 1024 (`CAP_NET_BIND_SERVICE`) is pointless without a
//! network, and `CAP_KILL`/`CAP_CHOWN`-style privileges only matter across uids, which the
//! sandbox has none of.
//!
//! **`noNewPrivileges: true`**, so `execve` never grants privileges (setuid bits, file
//! capabilities, SELinux transitions), and the seccomp filter is installed unprivileged.
//!
//! **Seccomp:** [`default_seccomp_profile`], an allowlist whose default action is `EPERM`.
//!
//! **Namespaces:** new pid, ipc, uts, mount, network and cgroup namespaces. The network
//! namespace holds only the loopback interface (husk brings it up): no route out. No time
//! namespace (nothing to hide) and no user namespace (see above).
//!
//! **Filesystem.** The root filesystem is mounted read-only and referenced by absolute path, so
//! one image directory can serve many sandboxes. Writable places are size-limited tmpfs mounts,
//! all `nosuid,nodev`: `/tmp` ([`HardenedProfile::tmp_size`], default 64 MiB; executables are
//! allowed there, since interpreters and build tools need that) and `/dev/shm` (64 MiB,
//! `noexec`). Mount points the image lacks are created in it before it turns read-only, so an
//! image used by several sandboxes should already contain them (`/proc`, `/sys`, `/dev`, `/tmp`
//! and bind destinations).
//! - `/proc`: `nosuid,noexec,nodev`; `/sys`: sysfs **read-only**, `nosuid,noexec,nodev`;
//!   `/sys/fs/cgroup`: read-only (runtimes such as the JVM read their limits there; the cgroup
//!   namespace shows only the container's own cgroup).
//! - `/dev`: a small tmpfs (`nosuid,noexec`) holding only the runtime's default devices
//!   (`null`, `zero`, `full`, `random`, `urandom`, `tty`), a private `devpts` for ptys and
//!   `/dev/shm`. `linux.devices` is empty and the device cgroup starts from "deny everything",
//!   so no other device node can be opened even if one appeared.
//! - Masked paths (a tmpfs or `/dev/null` mounted over them) hide kernel information that
//!   leaks host details or helps attacks: `/proc/acpi`, `/proc/asound`, `/proc/kcore`,
//!   `/proc/keys`, `/proc/latency_stats`, `/proc/timer_list`, `/proc/timer_stats`,
//!   `/proc/sched_debug`, `/proc/scsi`, `/sys/firmware`, and `/sys/devices/virtual/powercap`
//!   (energy counters usable as a side channel).
//! - Read-only paths: `/proc/bus`, `/proc/fs`, `/proc/irq`, `/proc/sys`, `/proc/sysrq-trigger`.
//! - Extra binds ([`HardenedProfile::read_only_bind`], [`HardenedProfile::writable_bind`]) are
//!   non-recursive and `nosuid,nodev`.
//!
//! **Resources.** A pids cgroup limit (default 256) stops fork bombs inside the container; a
//! memory limit is optional ([`HardenedProfile::memory_limit`]; the tmpfs mounts are charged to
//! it). Rlimits: `RLIMIT_NOFILE` 1024 soft / 4096 hard (the kernel's own defaults),
//! `RLIMIT_NPROC` 4096 (it counts all processes of the uid on the host, so it is a backstop
//! across sandboxes sharing a uid, not the per-container limit), `RLIMIT_CORE` 0 (no core files
//! of untrusted programs) and `RLIMIT_MEMLOCK` 8 MiB (the kernel default, so it does not depend
//! on the caller's limits).
//!
//! The [`Spec`] from [`HardenedProfile::spec`] can be changed further before it is written; the
//! point of the profile is that nothing has to be.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};

use crate::error::{Context, Error, Result};

/// `nobody` on most distributions.
pub const DEFAULT_UID: u32 = 65534;
/// `nogroup` (Debian) / `nobody` (Fedora).
pub const DEFAULT_GID: u32 = 65534;
/// Enough for shells, build tools and thread pools; a fork bomb stops here.
pub const DEFAULT_PIDS_LIMIT: u32 = 256;
/// Size of the `/tmp` tmpfs.
pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;
/// Size of the `/dev/shm` tmpfs.
pub const SHM_SIZE: u64 = 64 << 20;
/// `RLIMIT_NOFILE` soft and hard.
pub const DEFAULT_NOFILE: (u64, u64) = (1024, 4096);
/// `RLIMIT_NPROC` (per host uid).
pub const DEFAULT_NPROC: u64 = 4096;
/// `RLIMIT_MEMLOCK`.
pub const MEMLOCK: u64 = 8 << 20;
/// Hostname inside the sandbox.
pub const DEFAULT_HOSTNAME: &str = "sandbox";

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A hardened container configuration for untrusted code; see the [module docs](self) for
/// every choice it makes. Built with chained setters, turned into a [`Spec`] by
/// [`HardenedProfile::spec`] or a bundle directory by [`HardenedProfile::write_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardenedProfile {
    rootfs: PathBuf,
    args: Vec<String>,
    env: Vec<String>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    pids_limit: u32,
    memory_limit: Option<i64>,
    tmp_size: u64,
    hostname: String,
    nofile: (u64, u64),
    nproc: u64,
    binds: Vec<Bind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Bind {
    source: PathBuf,
    destination: PathBuf,
    writable: bool,
}

impl HardenedProfile {
    /// The profile for running `args` (`args[0]` is looked up in `PATH`) in the root filesystem
    /// at `rootfs`, a directory on the host (made absolute; never written to once the
    /// container runs).
    pub fn new(rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        HardenedProfile {
            rootfs: rootfs.into(),
            args,
            env: vec![DEFAULT_PATH.to_string()],
            cwd: PathBuf::from("/"),
            uid: DEFAULT_UID,
            gid: DEFAULT_GID,
            pids_limit: DEFAULT_PIDS_LIMIT,
            memory_limit: None,
            tmp_size: DEFAULT_TMP_SIZE,
            hostname: DEFAULT_HOSTNAME.to_string(),
            nofile: DEFAULT_NOFILE,
            nproc: DEFAULT_NPROC,
            binds: Vec::new(),
        }
    }

    /// Sets the environment variable `key` (replacing an earlier value, including `PATH`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let prefix = format!("{key}=");
        self.env.retain(|kv| !kv.starts_with(&prefix));
        self.env.push(format!("{key}={value}"));
        self
    }

    /// Working directory inside the container (absolute; default `/`).
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = cwd.into();
        self
    }

    /// The uid and gid the process runs as (default 65534:65534).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Maximum number of processes and threads in the container (pids cgroup; default 256).
    pub fn pids_limit(mut self, limit: u32) -> Self {
        self.pids_limit = limit;
        self
    }

    /// Memory limit of the container's cgroup in bytes (default: none).
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Size of the `/tmp` tmpfs in bytes (default 64 MiB).
    pub fn tmp_size(mut self, bytes: u64) -> Self {
        self.tmp_size = bytes;
        self
    }

    /// Hostname inside the container (default `sandbox`).
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = hostname.to_string();
        self
    }

    /// `RLIMIT_NOFILE` (default 1024 soft, 4096 hard).
    pub fn open_files_limit(mut self, soft: u64, hard: u64) -> Self {
        self.nofile = (soft, hard);
        self
    }

    /// `RLIMIT_NPROC`: processes of the uid on the whole host, not only in this container
    /// (default 4096).
    pub fn process_limit(mut self, limit: u64) -> Self {
        self.nproc = limit;
        self
    }

    /// Makes the host path `source` visible read-only at `destination` in the container.
    pub fn read_only_bind(
        self,
        source: impl Into<PathBuf>,
        destination: impl Into<PathBuf>,
    ) -> Self {
        self.bind(source.into(), destination.into(), false)
    }

    /// Makes the host path `source` writable at `destination` in the container (for results).
    /// The container's uid needs permission to write there.
    pub fn writable_bind(
        self,
        source: impl Into<PathBuf>,
        destination: impl Into<PathBuf>,
    ) -> Self {
        self.bind(source.into(), destination.into(), true)
    }

    fn bind(mut self, source: PathBuf, destination: PathBuf, writable: bool) -> Self {
        self.binds.push(Bind {
            source,
            destination,
            writable,
        });
        self
    }

    /// Checks what [`spec`](Self::spec) cannot: the rootfs and bind sources exist, paths inside
    /// the container are absolute, and no limit is 0 (which would mean "unlimited" to the
    /// kernel or the runtime).
    pub fn validate(&self) -> Result<()> {
        if !self.rootfs.is_dir() {
            return Err(Error::config(
                "rootfs",
                format!("{} is not a directory", self.rootfs.display()),
            ));
        }
        if self.args.is_empty() {
            return Err(Error::config("args", "empty: there is no program to run"));
        }
        check_container_path("cwd", &self.cwd)?;
        if self.pids_limit == 0 {
            return Err(Error::config("pids_limit", "0 would mean no limit"));
        }
        if self.memory_limit.is_some_and(|m| m <= 0) {
            return Err(Error::config("memory_limit", "must be positive"));
        }
        if self.tmp_size == 0 {
            return Err(Error::config("tmp_size", "0 would make /tmp unlimited"));
        }
        if self.nofile.0 == 0 || self.nofile.0 > self.nofile.1 {
            return Err(Error::config(
                "open_files_limit",
                "the soft limit must be positive and at most the hard limit",
            ));
        }
        if self.nproc == 0 {
            return Err(Error::config("process_limit", "must be positive"));
        }
        if self.hostname.is_empty() {
            return Err(Error::config("hostname", "empty"));
        }
        for (i, bind) in self.binds.iter().enumerate() {
            let field = format!("binds[{i}] ({})", bind.destination.display());
            if !bind.source.exists() {
                return Err(Error::config(
                    field,
                    format!("source {} does not exist", bind.source.display()),
                ));
            }
            check_container_path(&field, &bind.destination)?;
            if bind.destination == Path::new("/") {
                return Err(Error::config(field, "cannot replace the root"));
            }
        }
        Ok(())
    }

    /// The OCI spec of this profile. The rootfs path is made absolute; other paths are used
    /// as given, so call [`validate`](Self::validate) (or use
    /// [`write_bundle`](Self::write_bundle), which does) before running it.
    pub fn spec(&self) -> Spec {
        let rootfs = std::path::absolute(&self.rootfs).unwrap_or_else(|_| self.rootfs.clone());
        let mut root = Root::default();
        root.set_path(rootfs);
        root.set_readonly(Some(true));

        let mut spec = Spec::default();
        spec.set_version("1.0.2".to_string());
        spec.set_root(Some(root));
        spec.set_hostname(Some(self.hostname.clone()));
        spec.set_domainname(None);
        spec.set_mounts(Some(self.mounts()));
        spec.set_process(Some(self.process()));
        spec.set_hooks(None);
        spec.set_annotations(None);
        spec.set_linux(Some(self.linux()));
        spec
    }

    /// Writes `config.json` for this profile into `dir` (created if missing) after
    /// [`validate`](Self::validate). The root filesystem is referenced by its canonical absolute
    /// path and not copied, so `dir` holds only the config.
    pub fn write_bundle(&self, dir: &Path) -> Result<()> {
        self.validate()?;
        let mut spec = self.spec();
        let rootfs = std::fs::canonicalize(&self.rootfs)
            .context(|| format!("resolve rootfs {}", self.rootfs.display()))?;
        if let Some(root) = spec.root_mut() {
            root.set_path(rootfs);
        }
        std::fs::create_dir_all(dir).context(|| format!("create bundle {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Bundle {
            path: dir.to_path_buf(),
            reason: format!("serializing config.json: {e}"),
        })?;
        let path = dir.join("config.json");
        // A bundle directory the embedder chose.
        crate::hostfs::write_atomic(&path, &json).context(|| format!("write {}", path.display()))
    }

    fn process(&self) -> Process {
        let mut user = User::default();
        user.set_uid(self.uid);
        user.set_gid(self.gid);
        user.set_additional_gids(None);
        user.set_umask(Some(0o022));

        let none = || Some(HashSet::new());
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(none());
        caps.set_effective(none());
        caps.set_permitted(none());
        caps.set_inheritable(none());
        caps.set_ambient(none());

        let rlimit = |typ, soft, hard| {
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                // Every field is given and the builder has no validation: it cannot fail.
                .expect("rlimit builder")
        };
        let mut process = Process::default();
        process.set_terminal(Some(false));
        process.set_user(user);
        process.set_args(Some(self.args.clone()));
        process.set_env(Some(self.env.clone()));
        process.set_cwd(self.cwd.clone());
        process.set_capabilities(Some(caps));
        process.set_no_new_privileges(Some(true));
        process.set_rlimits(Some(vec![
            rlimit(PosixRlimitType::RlimitNofile, self.nofile.0, self.nofile.1),
            rlimit(PosixRlimitType::RlimitNproc, self.nproc, self.nproc),
            rlimit(PosixRlimitType::RlimitCore, 0, 0),
            rlimit(PosixRlimitType::RlimitMemlock, MEMLOCK, MEMLOCK),
        ]));
        process.set_oom_score_adj(None);
        process.set_apparmor_profile(None);
        process.set_selinux_label(None);
        process
    }

    fn mounts(&self) -> Vec<Mount> {
        let tmp_size = format!("size={}k", self.tmp_size.div_ceil(1024));
        let shm_size = format!("size={}k", SHM_SIZE / 1024);
        let mut mounts = vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            // Device nodes need `dev`; nothing else is written here (it is root's, mode 755).
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "noexec", "strictatime", "mode=755", "size=64k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["ro", "nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["ro", "nosuid", "noexec", "nodev", "relatime"],
            ),
            mount(
                "/tmp",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "mode=1777", &tmp_size],
            ),
        ];
        for bind in &self.binds {
            let mut m = Mount::default();
            m.set_destination(bind.destination.clone());
            m.set_typ(Some("bind".to_string()));
            m.set_source(Some(bind.source.clone()));
            let mut options = vec!["bind", "nosuid", "nodev", "rprivate"];
            options.push(if bind.writable { "rw" } else { "ro" });
            m.set_options(Some(options.into_iter().map(String::from).collect()));
            mounts.push(m);
        }
        mounts
    }

    fn linux(&self) -> oci_spec::runtime::Linux {
        let namespaces = [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup,
        ]
        .into_iter()
        .map(|typ| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(typ);
            ns.set_path(None);
            ns
        })
        .collect();

        let mut deny_all_devices = LinuxDeviceCgroup::default();
        deny_all_devices.set_allow(false);
        deny_all_devices.set_typ(Some(LinuxDeviceType::A));
        deny_all_devices.set_access(Some("rwm".to_string()));
        let mut pids = LinuxPids::default();
        pids.set_limit(i64::from(self.pids_limit));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![deny_all_devices]));
        resources.set_pids(Some(pids));
        if let Some(limit) = self.memory_limit {
            let mut memory = LinuxMemory::default();
            memory.set_limit(Some(limit));
            resources.set_memory(Some(memory));
        }

        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        let mut linux = oci_spec::runtime::Linux::default();
        linux.set_namespaces(Some(namespaces));
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
        linux.set_devices(Some(Vec::new()));
        linux.set_resources(Some(resources));
        linux.set_cgroups_path(None);
        linux.set_sysctl(None);
        linux.set_rootfs_propagation(Some("rslave".to_string()));
        linux.set_masked_paths(strings(MASKED_PATHS));
        linux.set_readonly_paths(strings(READONLY_PATHS));
        linux.set_seccomp(Some(default_seccomp_profile()));
        linux
    }
}

fn check_container_path(field: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::config(
            field,
            format!("{} must be absolute, without \"..\"", path.display()),
        ));
    }
    Ok(())
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// Hidden behind an empty read-only tmpfs (directories) or `/dev/null` (files).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Bound read-only over themselves.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

// ---------------------------------------------------------------------------------------------
// Seccomp
// ---------------------------------------------------------------------------------------------

/// The errno of refused syscalls: what the kernel itself says when a privilege is missing.
const EPERM: u32 = libc::EPERM as u32;
/// What libc expects from a kernel that lacks a syscall, so that it falls back to an older one.
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Process life cycle, identity and self-inspection.
///
/// The set*id calls can only move between ids the process already has, since it holds no
/// capability. `prctl` and `seccomp` let a program restrict itself further (and with
/// `noNewPrivileges` set, a seccomp filter can only add restrictions); the landlock calls are
/// self-sandboxing too. `clone`, `clone3` and `personality` are in [`conditional_rules`].
const PROCESS: &[&str] = &[
    "exit",
    "exit_group",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "wait4",
    "waitid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "restart_syscall",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    "prctl",
    "arch_prctl",
    "set_thread_area",
    "get_thread_area",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "uname",
    "sysinfo",
    "getcpu",
    "getrandom",
    "umask",
    "times",
    "getrusage",
    "getrlimit",
    "setrlimit",
    "prlimit64",
];

/// Scheduling of the caller's own threads. Raising priority or real-time classes needs
/// `CAP_SYS_NICE` (or a nonzero `RLIMIT_RTPRIO`), which the sandbox lacks.
const SCHEDULING: &[&str] = &[
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_getattr",
    "sched_setattr",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
];

/// Signals. They reach only processes of the same uid, and the pid namespace hides all others.
const SIGNALS: &[&str] = &[
    "kill",
    "tkill",
    "tgkill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
];

/// The caller's own address space. Locked memory is bounded by `RLIMIT_MEMLOCK`; the NUMA
/// policy calls act on the caller's own pages (moving other processes' pages, `migrate_pages`
/// and `move_pages`, is refused). `map_shadow_stack` and `mseal` are hardening features.
const MEMORY: &[&str] = &[
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "msync",
    "mincore",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "remap_file_pages",
    "membarrier",
    "memfd_create",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "mbind",
    "get_mempolicy",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "map_shadow_stack",
    "mseal",
];

/// Files and descriptors. Permissions are the filesystem's business: the root is read-only,
/// devices cannot be created (`mknod` of anything but FIFOs and sockets needs `CAP_MKNOD`) and
/// ownership cannot be given away (`chown` needs `CAP_CHOWN`). `ioctl` is in
/// [`conditional_rules`]'s notes too.
const FILES: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "lseek",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "ioctl",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "sendfile",
    "copy_file_range",
    "splice",
    "tee",
    "vmsplice",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "mknod",
    "mknodat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "getxattrat",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "listxattrat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "setxattrat",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "removexattrat",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
];

/// Waiting for events, pipes, timers, futexes and POSIX AIO (not io_uring).
const EVENTS: &[&str] = &[
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "pipe",
    "pipe2",
    "futex",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_getevents",
    "io_pgetevents",
    "io_cancel",
];

/// Reading clocks and sleeping; timers of the caller's own. Setting clocks is refused.
const TIME: &[&str] = &[
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "gettimeofday",
    "time",
    "nanosleep",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
];

/// Socket operations on sockets the process has; which sockets it may create is decided by
/// the `socket` and `socketpair` rules in [`conditional_rules`].
const NETWORK: &[&str] = &[
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "setsockopt",
    "getsockopt",
];

/// System V and POSIX IPC; both are confined to the container's IPC namespace.
const IPC: &[&str] = &[
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
];

/// The same operations under the names 32-bit ABIs (and a few architectures) give them. With
/// the filter's native architecture only, they matter when husk itself runs on such an
/// architecture (i386, arm, riscv64's icache flush ...).
const OTHER_ABI_SPELLINGS: &[&str] = &[
    "_llseek",
    "_newselect",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "lstat64",
    "stat64",
    "statfs64",
    "fstatfs64",
    "ftruncate64",
    "truncate64",
    "mmap2",
    "sendfile64",
    "ugetrlimit",
    "fadvise64_64",
    "arm_fadvise64_64",
    "sync_file_range2",
    "arm_sync_file_range",
    "getuid32",
    "geteuid32",
    "getgid32",
    "getegid32",
    "getresuid32",
    "getresgid32",
    "getgroups32",
    "setuid32",
    "setgid32",
    "setreuid32",
    "setregid32",
    "setresuid32",
    "setresgid32",
    "setgroups32",
    "setfsuid32",
    "setfsgid32",
    "chown32",
    "fchown32",
    "lchown32",
    "sigreturn",
    "sigaction",
    "sigprocmask",
    "sigsuspend",
    "sigpending",
    "waitpid",
    "clock_gettime64",
    "clock_getres_time64",
    "clock_nanosleep_time64",
    "timer_gettime64",
    "timer_settime64",
    "timerfd_gettime64",
    "timerfd_settime64",
    "utimensat_time64",
    "pselect6_time64",
    "ppoll_time64",
    "io_pgetevents_time64",
    "recvmmsg_time64",
    "mq_timedsend_time64",
    "mq_timedreceive_time64",
    "semtimedop_time64",
    "rt_sigtimedwait_time64",
    "futex_time64",
    "sched_rr_get_interval_time64",
    "set_tls",
    "cacheflush",
    "breakpoint",
    "riscv_flush_icache",
];

/// Every group of unconditionally allowed syscalls, by name (for documentation and tests).
pub const ALLOWED_GROUPS: &[(&str, &[&str])] = &[
    ("process", PROCESS),
    ("scheduling", SCHEDULING),
    ("signals", SIGNALS),
    ("memory", MEMORY),
    ("files", FILES),
    ("events", EVENTS),
    ("time", TIME),
    ("network", NETWORK),
    ("ipc", IPC),
    ("other-abi-spellings", OTHER_ABI_SPELLINGS),
];

/// Syscalls the profile refuses on purpose (none of them is in an allowed group; `clone`,
/// `clone3`, `personality`, `socket` and `socketpair` are allowed only in their safe forms).
/// Not consulted by the filter, which refuses everything not allowed; listed so the reasons
/// are written down and tests can check that none slips into the allowlist.
pub const REFUSED: &[(&str, &[&str])] = &[
    (
        "mounts and the root: would let the container rearrange or escape its filesystem view",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "chroot",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
        ],
    ),
    (
        "namespaces: unshare/setns reach kernel code (notably user namespaces) built for privileged callers",
        &["unshare", "setns"],
    ),
    (
        "kernel extension and replacement",
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
            "kexec_load",
            "kexec_file_load",
            "bpf",
        ],
    ),
    (
        "inspecting or changing other processes",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_mrelease",
            "migrate_pages",
            "move_pages",
        ],
    ),
    (
        "host-wide state: power, swap, accounting, quotas, clocks, host names, kernel log",
        &[
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "quotactl",
            "quotactl_fd",
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
            "sethostname",
            "setdomainname",
            "syslog",
            "vhangup",
        ],
    ),
    (
        "the kernel keyring is not namespaced",
        &["add_key", "request_key", "keyctl"],
    ),
    (
        "large attack surface for little use in a sandbox",
        &[
            "perf_event_open",
            "userfaultfd",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "fanotify_init",
            "fanotify_mark",
            "open_by_handle_at",
            "name_to_handle_at",
            "lookup_dcookie",
            "memfd_secret",
            "cachestat",
        ],
    ),
    (
        "hardware access and legacy ABIs",
        &[
            "iopl",
            "ioperm",
            "modify_ldt",
            "vm86",
            "vm86old",
            "uselib",
            "nfsservctl",
            "_sysctl",
            "sysfs",
            "ustat",
            "socketcall",
            "ipc",
        ],
    ),
];

/// Flags of `clone` that create namespaces; the container gets none of its own.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// `clone`'s flags argument: the first everywhere but on s390x, whose ABI swaps the first two.
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// personality(2) values that only change what `uname` reports or select the 32-bit/64-bit
/// Linux persona: `PER_LINUX` (0), `PER_LINUX32` (8), each with `UNAME26` (0x20000), and
/// 0xffffffff, which only queries. Flags that weaken the process are refused:
/// `ADDR_NO_RANDOMIZE` (no ASLR for exec'd programs), `READ_IMPLIES_EXEC`, `MMAP_PAGE_ZERO`,
/// the address-limit flags.
const SAFE_PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Socket families the sandbox may create: local sockets and IP (usable on loopback only).
/// Everything else is refused: packet and raw-ish families, AF_VSOCK (a path to the host of a
/// VM), AF_ALG (kernel crypto), and the rarely used protocol families whose modules the
/// kernel would otherwise load on demand.
const SOCKET_FAMILIES: &[u64] = &[
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
];

fn syscall_rule(names: &[&str], action: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| n.to_string()).collect());
    rule.set_action(action);
    rule.set_errno_ret(errno);
    rule
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let builder = match value_two {
        Some(v) => builder.value_two(v),
        None => builder,
    };
    // Every required field is given and the builder has no validation: it cannot fail.
    builder.build().expect("seccomp argument builder")
}

fn with_args(mut rule: LinuxSyscall, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    rule.set_args(Some(args));
    rule
}

/// Rules that look at arguments (or answer with something other than allow).
///
/// - `clone` only without namespace flags. `clone3` passes its flags in memory, which seccomp
///   cannot read, so it fails with ENOSYS: libc then falls back to `clone`.
/// - `personality` only with [`SAFE_PERSONALITIES`].
/// - `socket` only for [`SOCKET_FAMILIES`], plus `AF_NETLINK` with `NETLINK_ROUTE` (how
///   `getifaddrs` and `ip` read interfaces and addresses); `socketpair` only for `AF_UNIX`.
///
/// `ioctl` is allowed with any command. TIOCSTI (pushing input into a terminal, the classic way
/// out through a terminal shared with the host) is refused by the kernel already: the process
/// is in its own session (husk's init calls `setsid`), so no terminal is its controlling one,
/// and using TIOCSTI on another terminal needs `CAP_SYS_ADMIN`. A seccomp rule could not add
/// much: libseccomp lets an unconditional allow win over a conditional refusal, and "the low
/// 32 bits differ from TIOCSTI" (the kernel ignores the upper half of the command) takes one
/// masked comparison per bit.
///
/// Arguments are compared as 64-bit values: passing junk in the upper half of a 32-bit
/// argument makes an allow rule fail to match, never the reverse.
fn conditional_rules() -> Vec<LinuxSyscall> {
    use LinuxSeccompAction::{ScmpActAllow as Allow, ScmpActErrno as Errno};
    use LinuxSeccompOperator::{ScmpCmpEq as Eq, ScmpCmpMaskedEq as MaskedEq};
    vec![
        with_args(
            syscall_rule(&["clone"], Allow, None),
            vec![arg(
                CLONE_FLAGS_ARG,
                MaskedEq,
                CLONE_NAMESPACE_FLAGS,
                Some(0),
            )],
        ),
        syscall_rule(&["clone3"], Errno, Some(ENOSYS)),
        // Several conditions on one argument are alternatives: any listed value passes.
        with_args(
            syscall_rule(&["personality"], Allow, None),
            SAFE_PERSONALITIES
                .iter()
                .map(|p| arg(0, Eq, *p, None))
                .collect(),
        ),
        with_args(
            syscall_rule(&["socket"], Allow, None),
            SOCKET_FAMILIES
                .iter()
                .map(|f| arg(0, Eq, *f, None))
                .collect(),
        ),
        // A separate rule: its two conditions are on different arguments, so both must hold.
        with_args(
            syscall_rule(&["socket"], Allow, None),
            vec![
                arg(0, Eq, libc::AF_NETLINK as u64, None),
                arg(2, Eq, libc::NETLINK_ROUTE as u64, None),
            ],
        ),
        with_args(
            syscall_rule(&["socketpair"], Allow, None),
            vec![arg(0, Eq, libc::AF_UNIX as u64, None)],
        ),
    ]
}

/// The seccomp allowlist of [`HardenedProfile`], usable on its own.
///
/// Default action: `SCMP_ACT_ERRNO` with EPERM, so anything not allowed fails the way a
/// missing privilege does. The allowed syscalls, grouped in [`ALLOWED_GROUPS`], are what
/// ordinary programs (shells, interpreters, compilers, servers on loopback) use on their own
/// process, files, memory, time and sockets. [`REFUSED`] lists the syscalls left out on
/// purpose and why; a few are allowed only with safe arguments (see `conditional_rules` in the
/// source: `clone` without namespace flags, `clone3` → ENOSYS, safe `personality` values,
/// socket families).
///
/// Architectures: the native one only (the list is empty). A syscall made through another
/// ABI of the same CPU (such as `int 0x80` on x86_64) does not match the filter's
/// architecture and kills the thread: the 32-bit compat layer stays out of reach.
///
/// Syscalls numbered above every syscall this list names fail with ENOSYS, not EPERM, so that
/// libcs fall back to older calls (husk's filter does this for every profile whose default
/// action denies; see `husk_init::security::seccomp`). Older syscalls left out get EPERM.
///
/// Limitations:
/// - Names this libseccomp does not know are skipped by husk, so syscalls newer than the
///   installed libseccomp are refused even when listed (with ENOSYS when they are numbered
///   above everything it knows, as they usually are).
pub fn default_seccomp_profile() -> LinuxSeccomp {
    let allowed: Vec<&str> = ALLOWED_GROUPS
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    let mut syscalls = vec![syscall_rule(
        &allowed,
        LinuxSeccompAction::ScmpActAllow,
        None,
    )];
    syscalls.extend(conditional_rules());

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActErrno);
    seccomp.set_default_errno_ret(Some(EPERM));
    seccomp.set_architectures(None);
    seccomp.set_flags(None);
    seccomp.set_syscalls(Some(syscalls));
    seccomp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// Syscalls in the profile that are newer than some libseccomp releases (Debian 12 has
    /// 2.5.4): those may be skipped by `build_filter`, any other skipped name is a typo.
    const NEWER_THAN_LIBSECCOMP_2_5: &[&str] = &[
        "set_mempolicy_home_node",
        "map_shadow_stack",
        "futex_wake",
        "futex_wait",
        "futex_requeue",
        "fchmodat2",
        "mseal",
        "getxattrat",
        "setxattrat",
        "listxattrat",
        "removexattrat",
    ];

    fn all_allowed() -> Vec<&'static str> {
        ALLOWED_GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .collect()
    }

    #[test]
    fn seccomp_profile_builds_and_libseccomp_knows_every_name() {
        let filter = husk_init::security::build_filter(&default_seccomp_profile())
            .expect("libseccomp accepts the profile");
        let unknown: Vec<&String> = filter
            .skipped_syscalls()
            .iter()
            .filter(|name| !NEWER_THAN_LIBSECCOMP_2_5.contains(&name.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "names libseccomp does not know (typos?): {unknown:?}"
        );
        eprintln!(
            "skipped by this libseccomp (newer syscalls): {:?}",
            filter.skipped_syscalls()
        );
        assert!(!filter.uses_notify());
    }

    #[test]
    fn refused_syscalls_are_not_allowed_and_nothing_is_listed_twice() {
        let allowed = all_allowed();
        let mut seen = BTreeSet::new();
        for name in &allowed {
            assert!(seen.insert(*name), "{name} is allowed twice");
        }
        for (why, names) in REFUSED {
            for name in *names {
                assert!(
                    !seen.contains(name),
                    "{name} is allowed but refused ({why})"
                );
            }
        }
        // libseccomp lets an unconditional allow override a conditional rule of the same
        // syscall, so conditional rules must name only syscalls not allowed outright.
        for rule in conditional_rules() {
            for name in rule.names() {
                assert!(
                    !seen.contains(name.as_str()),
                    "{name} has a conditional rule but is allowed unconditionally"
                );
            }
        }
        let profile = default_seccomp_profile();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(EPERM));
    }

    #[test]
    fn spec_drops_everything_and_validates() {
        let dir = std::env::temp_dir();
        let spec = HardenedProfile::new(&dir, vec!["sh".into()]).spec();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.user().uid(), 65534);
        assert_eq!(process.user().gid(), 65534);
        assert_eq!(process.no_new_privileges(), Some(true));
        let caps = process.capabilities().as_ref().unwrap();
        for set in [
            caps.bounding(),
            caps.effective(),
            caps.permitted(),
            caps.inheritable(),
            caps.ambient(),
        ] {
            assert_eq!(set.as_ref().map(|s| s.len()), Some(0));
        }
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
        assert!(linux.seccomp().is_some());

        let invalid = [
            HardenedProfile::new(&dir, vec![]),
            HardenedProfile::new("/no/such/rootfs", vec!["sh".into()]),
            HardenedProfile::new(&dir, vec!["sh".into()]).pids_limit(0),
            HardenedProfile::new(&dir, vec!["sh".into()]).tmp_size(0),
            HardenedProfile::new(&dir, vec!["sh".into()]).cwd("work"),
            HardenedProfile::new(&dir, vec!["sh".into()]).read_only_bind(&dir, "../x"),
            HardenedProfile::new(&dir, vec!["sh".into()]).read_only_bind("/no/such/src", "/x"),
            HardenedProfile::new(&dir, vec!["sh".into()]).open_files_limit(10, 5),
        ];
        for profile in invalid {
            let err = profile.validate().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{profile:?}: {err:?}");
        }
    }

    /// A raw syscall with up to four integer arguments, errno kept.
    fn sys(nr: libc::c_long, a: u64, b: u64, c: u64, d: u64) -> Result<i64, i32> {
        // SAFETY: used only with syscalls whose arguments are integers, null, or pointers to
        // live buffers of the caller.
        let rc = unsafe { libc::syscall(nr, a, b, c, d, 0u64, 0u64) };
        if rc == -1 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(rc)
        }
    }

    /// What a child checks about one syscall, with and without the filter.
    struct Probe {
        what: &'static str,
        call: fn() -> Result<i64, i32>,
        /// The errno the filter must give; None: the call must succeed under the filter.
        filtered: Option<i32>,
    }

    fn probes() -> Vec<Probe> {
        let mut v = vec![
            Probe {
                what: "getpid",
                call: || sys(libc::SYS_getpid, 0, 0, 0, 0),
                filtered: None,
            },
            Probe {
                what: "unshare(CLONE_NEWNS)",
                call: || sys(libc::SYS_unshare, libc::CLONE_NEWNS as u64, 0, 0, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "mount on a missing directory",
                call: || {
                    let target = c"/nonexistent-husk-profile-test";
                    let fstype = c"tmpfs";
                    sys(
                        libc::SYS_mount,
                        fstype.as_ptr() as u64,
                        target.as_ptr() as u64,
                        fstype.as_ptr() as u64,
                        0,
                    )
                },
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "clone(CLONE_NEWUSER)",
                call: || clone_and_reap(libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "clone (fork)",
                call: || clone_and_reap(libc::SIGCHLD as u64),
                filtered: None,
            },
            Probe {
                what: "clone3",
                call: || {
                    let args = [0u64; 11];
                    sys(
                        libc::SYS_clone3,
                        args.as_ptr() as u64,
                        std::mem::size_of_val(&args) as u64,
                        0,
                        0,
                    )
                    .inspect(|&pid| {
                        if pid == 0 {
                            // SAFETY: in the child of a successful clone3: leave at once.
                            unsafe { libc::_exit(0) }
                        }
                        reap(pid)
                    })
                },
                filtered: Some(libc::ENOSYS),
            },
            Probe {
                what: "personality(query)",
                call: || sys(libc::SYS_personality, 0xffff_ffff, 0, 0, 0),
                filtered: None,
            },
            Probe {
                what: "personality(ADDR_NO_RANDOMIZE)",
                call: || sys(libc::SYS_personality, 0x0040000, 0, 0, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "socket(AF_INET)",
                call: || socket(libc::AF_INET, libc::SOCK_STREAM, 0),
                filtered: None,
            },
            Probe {
                what: "socket(AF_NETLINK, NETLINK_ROUTE)",
                call: || socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
                filtered: None,
            },
            Probe {
                what: "socket(AF_NETLINK, NETLINK_AUDIT)",
                call: || socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "socket(AF_PACKET)",
                call: || socket(libc::AF_PACKET, libc::SOCK_RAW, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "socket(AF_UNIX | 1 << 32)",
                call: || {
                    let domain = libc::AF_UNIX as u64 | 1 << 32;
                    sys(libc::SYS_socket, domain, libc::SOCK_STREAM as u64, 0, 0)
                        .inspect(|&fd| close(fd))
                },
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "socketpair(AF_UNIX)",
                call: || {
                    let mut fds = [0i32; 2];
                    sys(
                        libc::SYS_socketpair,
                        libc::AF_UNIX as u64,
                        libc::SOCK_STREAM as u64,
                        0,
                        fds.as_mut_ptr() as u64,
                    )
                    .inspect(|_| fds.iter().for_each(|fd| close(i64::from(*fd))))
                },
                filtered: None,
            },
            Probe {
                what: "ioctl(FIONREAD)",
                call: || {
                    let mut fds = [0i32; 2];
                    // SAFETY: pipe writes two descriptors into the array.
                    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                        return Err(-1);
                    }
                    let mut n = 0i32;
                    let r = sys(
                        libc::SYS_ioctl,
                        fds[0] as u64,
                        libc::FIONREAD,
                        &mut n as *mut i32 as u64,
                        0,
                    );
                    fds.iter().for_each(|fd| close(i64::from(*fd)));
                    r
                },
                filtered: None,
            },
            Probe {
                what: "keyctl(KEYCTL_GET_KEYRING_ID)",
                call: || sys(libc::SYS_keyctl, 0, (-3i64) as u64, 0, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "bpf(invalid command)",
                call: || sys(libc::SYS_bpf, 1000, 0, 0, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "perf_event_open(null)",
                call: || sys(libc::SYS_perf_event_open, 0, 0, u64::MAX, u64::MAX),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "io_uring_setup(0, null)",
                call: || sys(libc::SYS_io_uring_setup, 0, 0, 0, 0),
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "process_vm_readv(self, nothing)",
                call: || {
                    let pid = std::process::id() as u64;
                    sys(libc::SYS_process_vm_readv, pid, 0, 0, 0)
                },
                filtered: Some(libc::EPERM),
            },
            Probe {
                what: "userfaultfd",
                call: || sys(libc::SYS_userfaultfd, 0, 0, 0, 0).inspect(|&fd| close(fd)),
                filtered: Some(libc::EPERM),
            },
        ];
        v.push(Probe {
            what: "open_by_handle_at(bad fd)",
            call: || sys(libc::SYS_open_by_handle_at, u64::MAX, 0, 0, 0),
            filtered: Some(libc::EPERM),
        });
        v
    }

    fn close(fd: i64) {
        // SAFETY: closes a descriptor this probe just created.
        unsafe { libc::close(fd as i32) };
    }

    fn reap(pid: i64) {
        let mut status = 0;
        // SAFETY: waits for the child this probe just created.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    }

    fn clone_and_reap(flags: u64) -> Result<i64, i32> {
        // With a null stack, clone behaves like fork: the child continues on a copy.
        let pid = sys(libc::SYS_clone, flags, 0, 0, 0)?;
        if pid == 0 {
            // SAFETY: in the child of a successful clone: leave at once.
            unsafe { libc::_exit(0) }
        }
        reap(pid);
        Ok(pid)
    }

    fn socket(domain: i32, typ: i32, protocol: i32) -> Result<i64, i32> {
        sys(
            libc::SYS_socket,
            domain as u64,
            typ as u64,
            protocol as u64,
            0,
        )
        .inspect(|&fd| close(fd))
    }

    /// Runs every probe in a forked child, with the profile loaded (and no_new_privs set, as in
    /// a container) or without it; returns the failures the child reported.
    fn run_probes(with_filter: bool) -> String {
        let filter = husk_init::security::build_filter(&default_seccomp_profile()).unwrap();
        let mut fds = [0i32; 2];
        // SAFETY: pipe writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just created and are owned here only.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child only runs the probes (raw syscalls, small allocations) and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(reader);
            let mut report = String::new();
            if with_filter {
                // SAFETY: prctl with integer arguments.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    report.push_str("PR_SET_NO_NEW_PRIVS failed\n");
                }
                if let Err(e) = filter.load() {
                    report.push_str(&format!("loading the filter: {e}\n"));
                }
                let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                if !status.lines().any(|l| l == "Seccomp:\t2") {
                    report.push_str("Seccomp is not 2 in /proc/self/status\n");
                }
            } else {
                drop(filter);
            }
            for probe in probes() {
                let result = (probe.call)();
                let ok = match (with_filter, probe.filtered) {
                    (true, None) => result.is_ok(),
                    (true, Some(errno)) => result == Err(errno),
                    // The control: without the filter the kernel does not give that errno, so
                    // under the filter it is the filter's.
                    (false, Some(errno)) => result != Err(errno),
                    (false, None) => result.is_ok(),
                };
                if !ok {
                    report.push_str(&format!(
                        "{}: {:?} (filter: {with_filter}, want {:?})\n",
                        probe.what, result, probe.filtered
                    ));
                }
            }
            // SAFETY: write to our pipe, then leave without running the harness's exit path.
            unsafe {
                libc::write(writer.as_raw_fd(), report.as_ptr().cast(), report.len());
                libc::_exit(0);
            }
        }
        drop(writer);
        let mut report = String::new();
        std::fs::File::from(reader)
            .read_to_string(&mut report)
            .unwrap();
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "probe child died (status {status:#x}); report so far:\n{report}"
        );
        report
    }

    #[test]
    fn filter_refuses_and_allows_what_it_says_in_the_kernel() {
        // SAFETY: geteuid cannot fail.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root: without the filter, root must be able to do what the filter refuses"
        );
        let control = run_probes(false);
        assert!(control.is_empty(), "without the filter:\n{control}");
        let filtered = run_probes(true);
        assert!(filtered.is_empty(), "with the filter:\n{filtered}");
    }

    /// A syscall through the 32-bit ABI is from another architecture than the filter's, and
    /// kills the thread instead of reaching the compat layer.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_32_bit_syscall_is_killed() {
        let filter = husk_init::security::build_filter(&default_seccomp_profile()).unwrap();
        // SAFETY: the child loads the filter and makes one syscall, then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: prctl with integer arguments; `int 0x80` with eax = 20 is i386 getpid,
            // which touches no memory.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if filter.load().is_err() {
                    libc::_exit(2);
                }
                let mut eax: u32 = 20;
                std::arch::asm!(
                    "int 0x80",
                    inout("eax") eax,
                    out("r8") _,
                    out("r9") _,
                    out("r10") _,
                    out("r11") _,
                );
                let _ = eax;
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "status {status:#x}: want death by SIGSYS"
        );
    }
}
