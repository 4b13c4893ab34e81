//! config.json → the validated plan the init runs ([`Bootstrap`]) plus what the host keeps.
//!
//! Everything that can be wrong with a bundle is found here, before any process is forked or
//! anything is written. The tables of known options are also what `husk features` reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use husk_init::proto::{
    Bootstrap, CgroupHierarchy, DevicePlan, HookPlan, MountKind, MountPlan, NamespaceKind,
    NamespacePlan, ProcessPlan, RlimitPlan, PROTOCOL_VERSION,
};
use oci_spec::runtime::{
    Hook, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, LinuxResources, PosixRlimitType,
    Spec,
};

use crate::error::{Error, Result};

/// `MS_NOSYMFOLLOW` (Linux 5.10), not in every libc crate version.
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// Mount options that set (`false`) or clear (`true`) an `MS_*` flag.
pub const MOUNT_FLAG_OPTIONS: &[(&str, bool, libc::c_ulong)] = &[
    ("async", true, libc::MS_SYNCHRONOUS),
    ("atime", true, libc::MS_NOATIME),
    ("bind", false, libc::MS_BIND),
    ("defaults", false, 0),
    ("dev", true, libc::MS_NODEV),
    ("diratime", true, libc::MS_NODIRATIME),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("exec", true, libc::MS_NOEXEC),
    ("iversion", false, libc::MS_I_VERSION),
    ("lazytime", false, libc::MS_LAZYTIME),
    ("loud", true, libc::MS_SILENT),
    ("mand", false, libc::MS_MANDLOCK),
    ("noatime", false, libc::MS_NOATIME),
    ("nodev", false, libc::MS_NODEV),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("noexec", false, libc::MS_NOEXEC),
    ("noiversion", true, libc::MS_I_VERSION),
    ("nolazytime", true, libc::MS_LAZYTIME),
    ("nomand", true, libc::MS_MANDLOCK),
    ("norelatime", true, libc::MS_RELATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("nosuid", false, libc::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("remount", false, libc::MS_REMOUNT),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("silent", false, libc::MS_SILENT),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("suid", true, libc::MS_NOSUID),
    ("symfollow", true, MS_NOSYMFOLLOW),
    ("sync", false, libc::MS_SYNCHRONOUS),
];

/// Propagation options, for mounts and for `linux.rootfsPropagation`.
pub const PROPAGATION_OPTIONS: &[(&str, libc::c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Recursive mount options (applied with mount_setattr to the whole tree): name, `MOUNT_ATTR_*`
/// to set, to clear.
pub const RECURSIVE_MOUNT_OPTIONS: &[(&str, u64, u64)] = &[
    ("rro", MOUNT_ATTR_RDONLY, 0),
    ("rrw", 0, MOUNT_ATTR_RDONLY),
    ("rnosuid", MOUNT_ATTR_NOSUID, 0),
    ("rsuid", 0, MOUNT_ATTR_NOSUID),
    ("rnodev", MOUNT_ATTR_NODEV, 0),
    ("rdev", 0, MOUNT_ATTR_NODEV),
    ("rnoexec", MOUNT_ATTR_NOEXEC, 0),
    ("rexec", 0, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", MOUNT_ATTR_NODIRATIME, 0),
    ("rdiratime", 0, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", 0, MOUNT_ATTR_ATIME),
    ("rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME),
    ("rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME),
    ("rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Namespaces husk can create or join, by their config.json name.
pub const NAMESPACES: &[(&str, NamespaceKind)] = &[
    ("cgroup", NamespaceKind::Cgroup),
    ("ipc", NamespaceKind::Ipc),
    ("mount", NamespaceKind::Mount),
    ("network", NamespaceKind::Network),
    ("pid", NamespaceKind::Pid),
    ("user", NamespaceKind::User),
    ("uts", NamespaceKind::Uts),
    ("time", NamespaceKind::Time),
];

/// Hook kinds husk runs.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The runtime-spec versions this build understands.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The newest runtime-spec version this build understands.
pub const OCI_VERSION_MAX: &str = "1.2.1";

/// Where a terminal's pty master goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConsoleDest {
    /// Sent over this unix socket (runc's `--console-socket` protocol).
    Socket(PathBuf),
    /// Handed back to the caller (a foreground `run`/`exec` relays it).
    Keep,
}

/// Options chosen on the command line that shape the container.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--no-pivot`: move the rootfs and chroot instead of `pivot_root` (for a ramfs root).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: the caller's fds 3..3+N stay open in the container.
    pub preserve_fds: u32,
    /// Where the pty master goes when `process.terminal` is set (required then).
    pub console: Option<ConsoleDest>,
    /// The caller's `NOTIFY_SOCKET`: the container gets a socket of its own, and `start`
    /// passes its READY=1 on to this one.
    pub notify_socket: Option<PathBuf>,
    /// Socket activation: the caller's fds 3..3+N (before the preserved ones) go to the
    /// container, which sees `LISTEN_FDS=N` and `LISTEN_PID=1`.
    pub listen_fds: u32,
    /// The init's (and so the container process's) stdin, stdout and stderr.
    pub stdio: crate::stdio::StdioConfig,
}

/// Where the container finds its notify socket (a bind of the state directory's `notify/`).
pub const NOTIFY_SOCKET_IN_CONTAINER: &str = "/run/notify/notify.sock";

/// Hooks run by the host side.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HostHooks {
    /// `hooks.prestart` (deprecated by the spec, still run by runc).
    pub prestart: Vec<HookPlan>,
    /// `hooks.createRuntime`.
    pub create_runtime: Vec<HookPlan>,
    /// `hooks.poststart`.
    pub poststart: Vec<HookPlan>,
    /// `hooks.poststop`.
    pub poststop: Vec<HookPlan>,
}

/// A bundle checked and resolved: ready to spawn.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// What the init needs, resolved.
    pub boot: Bootstrap,
    /// The hooks the host runs.
    pub host_hooks: HostHooks,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// The config's `ociVersion`.
    pub oci_version: String,
    /// The config's annotations.
    pub annotations: HashMap<String, String>,
    /// `linux.uidMappings`, written by the host for a new user namespace.
    pub uid_mappings: Vec<LinuxIdMapping>,
    /// `linux.gidMappings`.
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<PathBuf>,
    /// `linux.resources`.
    pub resources: Option<LinuxResources>,
    /// `process.terminal`.
    pub terminal: bool,
    /// The caller's `NOTIFY_SOCKET` (see [`CreateOptions::notify_socket`]).
    pub notify_socket: Option<PathBuf>,
}

impl ContainerConfig {
    /// Reads `<bundle>/config.json` and validates it.
    pub fn load(bundle: &Path, opts: &CreateOptions) -> Result<ContainerConfig> {
        let bundle = std::fs::canonicalize(bundle).map_err(|e| Error::Bundle {
            path: bundle.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = bundle.join("config.json");
        // Whoever can write the bundle may have put a fifo there: it must not hang `run`, whose
        // signals are already blocked for forwarding.
        let text =
            crate::hostfs::read_regular(&path, crate::hostfs::MAX_CONFIG_BYTES).map_err(|e| {
                Error::Bundle {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
        let spec: Spec = parse_json(&text).map_err(|reason| Error::Bundle {
            path: path.clone(),
            reason,
        })?;
        Self::from_spec(spec, &bundle, opts)
    }

    /// Validates an already parsed spec; relative paths are taken from `bundle`.
    pub fn from_spec(spec: Spec, bundle: &Path, opts: &CreateOptions) -> Result<ContainerConfig> {
        if spec.version().is_empty() {
            return Err(Error::config("ociVersion", "missing"));
        }
        check_oci_version(spec.version())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::config("root", "missing"))?;
        let rootfs = lexically_clean(&bundle.join(root.path()));
        let resolved = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::config("root.path", format!("{}: {e}", rootfs.display())))?;
        // Whoever can write the bundle (or a directory on the way) could aim a symlink at
        // another tree before the next start: refused, as runc does.
        if resolved != rootfs {
            return Err(Error::config(
                "root.path",
                format!(
                    "{} is or passes through a symlink (it resolves to {})",
                    rootfs.display(),
                    resolved.display()
                ),
            ));
        }
        let rootfs = resolved;
        if !rootfs.is_dir() {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        let linux = spec.linux().clone().unwrap_or_default();
        let namespaces = namespaces(&linux)?;
        let has = |k: NamespaceKind| namespaces.iter().any(|n| n.kind == k);
        if !has(NamespaceKind::Mount) {
            refuse_without_mount_namespace(&spec, &linux, root.readonly().unwrap_or(false))?;
        }
        let new_userns = namespaces
            .iter()
            .any(|n| n.kind == NamespaceKind::User && n.path.is_none());
        let uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
        let gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
        if new_userns && (uid_mappings.is_empty() || gid_mappings.is_empty()) {
            return Err(Error::config(
                "linux.uidMappings",
                "a new user namespace needs uid and gid mappings",
            ));
        }
        if !has(NamespaceKind::User) && (!uid_mappings.is_empty() || !gid_mappings.is_empty()) {
            return Err(Error::config(
                "linux.uidMappings",
                "id mappings need a user namespace",
            ));
        }
        for (field, value) in [
            ("hostname", spec.hostname()),
            ("domainname", spec.domainname()),
        ] {
            if value.as_deref().is_some_and(|v| !v.is_empty()) && !has(NamespaceKind::Uts) {
                return Err(Error::config(field, "setting it needs a uts namespace"));
            }
        }

        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "missing"))?;
        let mut process_plan = process_plan(process, &uid_mappings, &gid_mappings)?;
        if opts.listen_fds > 0 {
            set_env(
                &mut process_plan.env,
                "LISTEN_FDS",
                &opts.listen_fds.to_string(),
            );
            set_env(&mut process_plan.env, "LISTEN_PID", "1");
        }
        if opts.notify_socket.is_some() {
            set_env(
                &mut process_plan.env,
                "NOTIFY_SOCKET",
                NOTIFY_SOCKET_IN_CONTAINER,
            );
        }
        let terminal = process.terminal().unwrap_or(false);
        process_plan.personality = linux.personality().as_ref().map(personality).transpose()?;

        let time_offsets = time_offsets(&linux, has(NamespaceKind::Time))?;
        let mounts = spec
            .mounts()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, m)| mount_plan(i, m, bundle, new_userns))
            .collect::<Result<Vec<_>>>()?;
        let cgroup_hierarchies = if mounts.iter().any(|m| m.kind == MountKind::Cgroup) {
            host_cgroup_hierarchies()
        } else {
            Vec::new()
        };
        let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") => libc::MS_SLAVE | libc::MS_REC,
            Some(name) => PROPAGATION_OPTIONS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    Error::config("linux.rootfsPropagation", format!("unknown value {name:?}"))
                })?,
        };
        let sysctl = sysctl(&linux, &has)?;
        let devices = devices(&linux)?;
        let abs_paths = |field: &str, v: &Option<Vec<String>>| -> Result<Vec<PathBuf>> {
            v.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    if p.starts_with('/') {
                        Ok(PathBuf::from(p))
                    } else {
                        Err(Error::config(field, format!("{p:?} is not absolute")))
                    }
                })
                .collect()
        };
        let mount_label = lsm_setting(
            "linux.mountLabel",
            linux.mount_label(),
            selinux_enabled(),
            "SELinux",
        )?;
        let mut mounts = mounts;
        if let Some(label) = mount_label {
            for m in mounts.iter_mut().filter(|m| {
                m.kind == MountKind::Filesystem
                    && !matches!(m.fstype.as_deref(), Some("proc" | "sysfs"))
            }) {
                let context = format!("context=\"{label}\"");
                m.data = if m.data.is_empty() {
                    context
                } else {
                    format!("{},{context}", m.data)
                };
            }
        }
        let masked_paths = abs_paths("linux.maskedPaths", linux.masked_paths())?;
        let readonly_paths = abs_paths("linux.readonlyPaths", linux.readonly_paths())?;

        let hooks = spec.hooks().clone().unwrap_or_default();
        let plans = |field: &str, h: &Option<Vec<Hook>>| -> Result<Vec<HookPlan>> {
            h.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|h| hook_plan(field, h))
                .collect()
        };
        let host_hooks = HostHooks {
            prestart: plans("hooks.prestart", hooks.prestart())?,
            create_runtime: plans("hooks.createRuntime", hooks.create_runtime())?,
            poststart: plans("hooks.poststart", hooks.poststart())?,
            poststop: plans("hooks.poststop", hooks.poststop())?,
        };
        if let Some(seccomp) = linux.seccomp() {
            // SCMP_ACT_NOTIFY where the init itself would wait for an answer forever.
            husk_init::security::refuse_notify_deadlocks(seccomp)
                .map_err(|refusal| Error::config(refusal.field, refusal.reason))?;
            let notify = |a: oci_spec::runtime::LinuxSeccompAction| {
                a == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify
            };
            let uses_notify = notify(seccomp.default_action())
                || seccomp
                    .syscalls()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|s| notify(s.action()));
            let takes_errno = |a| {
                matches!(
                    a,
                    oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
                        | oci_spec::runtime::LinuxSeccompAction::ScmpActTrace
                )
            };
            if seccomp.default_errno_ret().is_some() && !takes_errno(seccomp.default_action()) {
                return Err(Error::config(
                    "linux.seccomp.defaultErrnoRet",
                    "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
                ));
            }
            for (i, rule) in seccomp
                .syscalls()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if rule.errno_ret().is_some() && !takes_errno(rule.action()) {
                    return Err(Error::config(
                        format!("linux.seccomp.syscalls[{i}].errnoRet"),
                        "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
                    ));
                }
            }
            if uses_notify && seccomp.listener_path().is_none() {
                return Err(Error::config(
                    "linux.seccomp.listenerPath",
                    "SCMP_ACT_NOTIFY needs a listener path",
                ));
            }
        }
        let boot = Bootstrap {
            version: PROTOCOL_VERSION,
            namespaces,
            time_offsets,
            rootfs: rootfs.clone(),
            rootfs_identity: std::fs::metadata(&rootfs).ok().map(|m| {
                (
                    std::os::unix::fs::MetadataExt::dev(&m),
                    std::os::unix::fs::MetadataExt::ino(&m),
                )
            }),
            rootfs_readonly: root.readonly().unwrap_or(false),
            rootfs_propagation,
            rootfs_propagation_explicit: linux
                .rootfs_propagation()
                .as_deref()
                .is_some_and(|p| !p.is_empty()),
            mounts,
            no_pivot: opts.no_pivot,
            devices,
            masked_paths,
            readonly_paths,
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
            sysctl,
            process: process_plan,
            seccomp: seccomp_filter(&linux)?,
            seccomp_listener: seccomp_listener(&linux),
            new_session_keyring: !opts.no_new_keyring,
            create_container_hooks: plans("hooks.createContainer", hooks.create_container())?,
            start_container_hooks: plans("hooks.startContainer", hooks.start_container())?,
            has_runtime_hooks: !(host_hooks.prestart.is_empty()
                && host_hooks.create_runtime.is_empty()),
            preserve_fds: opts.listen_fds + opts.preserve_fds,
            cgroup_hierarchies,
            exec: false,
            terminal,
            console_size: console_size(process),
        };
        Ok(ContainerConfig {
            boot,
            host_hooks,
            bundle: bundle.to_path_buf(),
            rootfs,
            oci_version: spec.version().clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            uid_mappings,
            gid_mappings,
            cgroups_path: linux.cgroups_path().clone(),
            resources: Some(with_default_device_rules(zero_means_unset(
                linux.resources().clone().unwrap_or_default(),
            ))),
            terminal,
            notify_socket: opts.notify_socket.clone(),
        })
    }
}

/// Without a mount namespace the container runs in the caller's, chrooted into its rootfs (the
/// spec: an unlisted namespace is inherited). Whatever would mount there would change the
/// caller's mounts, and outlive the container: refused, naming the field.
fn refuse_without_mount_namespace(
    spec: &Spec,
    linux: &oci_spec::runtime::Linux,
    readonly_root: bool,
) -> Result<()> {
    let needs = "needs a mount namespace (without one it would change the caller's mounts)";
    let listed = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::config("mounts", needs));
    }
    if listed(linux.masked_paths()) {
        return Err(Error::config("linux.maskedPaths", needs));
    }
    if listed(linux.readonly_paths()) {
        return Err(Error::config("linux.readonlyPaths", needs));
    }
    if readonly_root {
        return Err(Error::config("root.readonly", needs));
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::config("linux.devices", needs));
    }
    if linux
        .rootfs_propagation()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(Error::config("linux.rootfsPropagation", needs));
    }
    let bounding = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone());
    refuse_escape_capabilities_without_mount_namespace(
        "process.capabilities.bounding",
        bounding.as_ref(),
    )
}

/// Without a mount namespace the container is only chrooted: CAP_SYS_CHROOT takes it out of the
/// chroot to the caller's root (chroot into a subdirectory, then `..` past the old root), and
/// CAP_SYS_ADMIN mounts over the caller's files. Neither may be within reach: in the bounding
/// set, root regains it at the next execve.
fn refuse_escape_capabilities_without_mount_namespace(
    field: &str,
    bounding: Option<&oci_spec::runtime::Capabilities>,
) -> Result<()> {
    use oci_spec::runtime::Capability;
    for cap in [Capability::SysChroot, Capability::SysAdmin] {
        if bounding.is_some_and(|set| set.contains(&cap)) {
            return Err(Error::config(
                field,
                format!(
                    "CAP_{cap} without a mount namespace would let the container leave its chroot \
                     for the caller's filesystem: drop it or add a mount namespace"
                ),
            ));
        }
    }
    Ok(())
}

/// `path` with `.` and `..` components resolved by name, without looking at the filesystem.
fn lexically_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn console_size(process: &oci_spec::runtime::Process) -> Option<(u16, u16)> {
    process.console_size().map(|b| {
        (
            b.height().min(u16::MAX as u64) as u16,
            b.width().min(u16::MAX as u64) as u16,
        )
    })
}

/// The plan for `husk exec`: `process` run in the namespaces of the container whose init is
/// `init_pid` (`namespaces` as `/proc/<pid>/ns` names), with the container's seccomp profile.
pub fn exec_bootstrap(
    process: &oci_spec::runtime::Process,
    spec: &Spec,
    init_pid: i32,
    namespaces: &[String],
    preserve_fds: u32,
) -> Result<Bootstrap> {
    let linux = spec.linux().clone().unwrap_or_default();
    let uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
    let gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
    let namespaces: Vec<NamespacePlan> = namespaces
        .iter()
        .filter_map(|name| NAMESPACES.iter().find(|(_, k)| k.proc_name() == name))
        .map(|(_, kind)| NamespacePlan {
            kind: *kind,
            path: Some(PathBuf::from(format!(
                "/proc/{init_pid}/ns/{}",
                kind.proc_name()
            ))),
        })
        .collect();
    let mut process_plan = process_plan(process, &uid_mappings, &gid_mappings)?;
    process_plan.personality = linux.personality().as_ref().map(personality).transpose()?;
    // A container without a mount namespace of its own is only chrooted: its init's root is
    // where the exec'd process goes (the init chroots there when it joins no mount namespace).
    let rootfs = if namespaces.iter().any(|n| n.kind == NamespaceKind::Mount) {
        PathBuf::from("/")
    } else {
        let bounding = process_plan
            .capabilities
            .as_ref()
            .and_then(|c| c.bounding().clone());
        refuse_escape_capabilities_without_mount_namespace(
            "exec process capabilities (bounding)",
            bounding.as_ref(),
        )?;
        PathBuf::from(format!("/proc/{init_pid}/root"))
    };
    Ok(Bootstrap {
        version: PROTOCOL_VERSION,
        namespaces,
        time_offsets: Vec::new(),
        rootfs,
        rootfs_identity: None,
        rootfs_readonly: false,
        rootfs_propagation: 0,
        rootfs_propagation_explicit: false,
        mounts: Vec::new(),
        no_pivot: false,
        devices: Vec::new(),
        masked_paths: Vec::new(),
        readonly_paths: Vec::new(),
        hostname: None,
        domainname: None,
        sysctl: Vec::new(),
        process: process_plan,
        seccomp: seccomp_filter(&linux)?,
        seccomp_listener: seccomp_listener(&linux),
        new_session_keyring: false,
        create_container_hooks: Vec::new(),
        start_container_hooks: Vec::new(),
        has_runtime_hooks: false,
        preserve_fds,
        cgroup_hierarchies: Vec::new(),
        exec: true,
        terminal: process.terminal().unwrap_or(false),
        console_size: console_size(process),
    })
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    env.retain(|kv| kv.split('=').next() != Some(key));
    env.push(format!("{key}={value}"));
}

fn namespace_kind(t: LinuxNamespaceType) -> NamespaceKind {
    match t {
        LinuxNamespaceType::Mount => NamespaceKind::Mount,
        LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
        LinuxNamespaceType::Uts => NamespaceKind::Uts,
        LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
        LinuxNamespaceType::User => NamespaceKind::User,
        LinuxNamespaceType::Pid => NamespaceKind::Pid,
        LinuxNamespaceType::Network => NamespaceKind::Network,
        LinuxNamespaceType::Time => NamespaceKind::Time,
    }
}

fn namespaces(linux: &oci_spec::runtime::Linux) -> Result<Vec<NamespacePlan>> {
    let mut out: Vec<NamespacePlan> = Vec::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let kind = namespace_kind(ns.typ());
        if out.iter().any(|n| n.kind == kind) {
            return Err(Error::config(
                "linux.namespaces",
                format!("{} namespace listed twice", kind.proc_name()),
            ));
        }
        let path = ns.path().clone().filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = &path {
            if !p.exists() {
                return Err(Error::config(
                    "linux.namespaces",
                    format!(
                        "{} namespace path {} does not exist",
                        kind.proc_name(),
                        p.display()
                    ),
                ));
            }
        }
        if kind == NamespaceKind::Time && !Path::new("/proc/self/ns/time").exists() {
            return Err(Error::config(
                "linux.namespaces",
                "time namespaces are not supported by this kernel",
            ));
        }
        out.push(NamespacePlan { kind, path });
    }
    Ok(out)
}

fn time_offsets(linux: &oci_spec::runtime::Linux, has_timens: bool) -> Result<Vec<String>> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(Vec::new());
    };
    if !offsets.is_empty() && !has_timens {
        return Err(Error::config(
            "linux.timeOffsets",
            "time offsets need a time namespace",
        ));
    }
    offsets
        .iter()
        .map(|(clock, off)| match clock.as_str() {
            "monotonic" | "boottime" => Ok(format!(
                "{clock} {} {}",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            )),
            other => Err(Error::config(
                "linux.timeOffsets",
                format!("unknown clock {other:?}"),
            )),
        })
        .collect()
}

fn host_id(mappings: &[LinuxIdMapping], id: u32) -> Option<u32> {
    mappings.iter().find_map(|m| {
        (id >= m.container_id() && id - m.container_id() < m.size())
            .then(|| m.host_id() + (id - m.container_id()))
    })
}

/// The host uid that the container's root maps to (0 without a user namespace).
pub fn host_root(mappings: &[LinuxIdMapping]) -> u32 {
    if mappings.is_empty() {
        0
    } else {
        host_id(mappings, 0).unwrap_or(u32::MAX)
    }
}

fn rlimit_resource(t: PosixRlimitType) -> i32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// Refuses `(uid_t)-1` / `(gid_t)-1` as a process's id: to setresuid, setresgid and chown it
/// means "leave unchanged", so the process would keep the init's ids and run as root.
pub fn refuse_no_id(field: &str, id: u32) -> Result<()> {
    if id == u32::MAX {
        return Err(Error::config(
            field,
            format!("{id} is not a valid id (it is -1, which the kernel takes as \"no change\")"),
        ));
    }
    Ok(())
}

fn process_plan(
    process: &oci_spec::runtime::Process,
    uid_mappings: &[LinuxIdMapping],
    gid_mappings: &[LinuxIdMapping],
) -> Result<ProcessPlan> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::config("process.args", "must not be empty"));
    }
    let cwd = process.cwd().clone();
    if !cwd.is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("{} is not absolute", cwd.display()),
        ));
    }
    let user = process.user();
    refuse_no_id("process.user.uid", user.uid())?;
    refuse_no_id("process.user.gid", user.gid())?;
    // The kernel's NGROUPS_MAX: setgroups refuses more (and the bootstrap message would not fit).
    const NGROUPS_MAX: usize = 65536;
    let groups = user.additional_gids().as_ref().map_or(0, Vec::len);
    if groups > NGROUPS_MAX {
        return Err(Error::config(
            "process.user.additionalGids",
            format!("{groups} entries, more than the kernel allows (NGROUPS_MAX, {NGROUPS_MAX})"),
        ));
    }
    for (i, gid) in user.additional_gids().iter().flatten().enumerate() {
        refuse_no_id(&format!("process.user.additionalGids[{i}]"), *gid)?;
    }
    if !uid_mappings.is_empty() && host_id(uid_mappings, user.uid()).is_none() {
        return Err(Error::config(
            "process.user.uid",
            format!("{} is not mapped in linux.uidMappings", user.uid()),
        ));
    }
    if !gid_mappings.is_empty() && host_id(gid_mappings, user.gid()).is_none() {
        return Err(Error::config(
            "process.user.gid",
            format!("{} is not mapped in linux.gidMappings", user.gid()),
        ));
    }
    let mut rlimits = Vec::new();
    for r in process.rlimits().as_deref().unwrap_or_default() {
        if r.soft() > r.hard() {
            return Err(Error::config(
                "process.rlimits",
                format!(
                    "{:?}: soft limit {} above hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        let resource = rlimit_resource(r.typ());
        if rlimits.iter().any(|p: &RlimitPlan| p.resource == resource) {
            return Err(Error::config(
                "process.rlimits",
                format!("{:?} listed twice", r.typ()),
            ));
        }
        rlimits.push(RlimitPlan {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(Error::config(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    for kv in process.env().as_deref().unwrap_or_default() {
        if kv.contains('\0') {
            return Err(Error::config("process.env", format!("{kv:?} contains NUL")));
        }
    }
    Ok(ProcessPlan {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        oom_score_adj: process.oom_score_adj(),
        capabilities: process.capabilities().clone(),
        apparmor_profile: lsm_setting(
            "process.apparmorProfile",
            process.apparmor_profile(),
            apparmor_enabled(),
            "AppArmor",
        )?,
        selinux_label: lsm_setting(
            "process.selinuxLabel",
            process.selinux_label(),
            selinux_enabled(),
            "SELinux",
        )?,
        personality: None,
        io_priority: process
            .io_priority()
            .as_ref()
            .map(io_priority)
            .transpose()?,
        scheduler: process.scheduler().as_ref().map(scheduler).transpose()?,
        cpu_affinity_initial: affinity(
            "process.execCPUAffinity.initial",
            process
                .exec_cpu_affinity()
                .as_ref()
                .and_then(|a| a.initial().clone()),
        )?,
        cpu_affinity_final: affinity(
            "process.execCPUAffinity.final",
            process
                .exec_cpu_affinity()
                .as_ref()
                .and_then(|a| a.cpu_affinity_final().clone()),
        )?,
    })
}

fn personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<u64> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::config(
            "linux.personality.flags",
            "no personality flags are defined by the spec; none can be applied",
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 8,
    })
}

fn io_priority(p: &oci_spec::runtime::LinuxIOPriority) -> Result<i32> {
    use oci_spec::runtime::IOPriorityClass;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("{} is outside 0..7", p.priority()),
        ));
    }
    Ok((class << 13) | p.priority() as i32)
}

fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<husk_init::proto::SchedulerPlan> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let flags = s
        .flags()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .fold(0u64, |acc, f| {
            acc | match f {
                F::SchedResetOnFork => 0x01,
                F::SchedFlagReclaim => 0x02,
                F::SchedFlagDLOverrun => 0x04,
                F::SchedFlagKeepPolicy => 0x08,
                F::SchedFlagKeepParams => 0x10,
                F::SchedFlagUtilClampMin => 0x20,
                F::SchedFlagUtilClampMax => 0x40,
            }
        });
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::config(
            "process.scheduler.nice",
            format!("{nice} is outside -20..19"),
        ));
    }
    Ok(husk_init::proto::SchedulerPlan {
        policy,
        flags,
        nice,
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// Parses a CPU list such as `0-3,7`.
fn affinity(field: &str, list: Option<String>) -> Result<Option<Vec<usize>>> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let bad = || Error::config(field, format!("{list:?} is not a CPU list like 0-3,7"));
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (usize, usize) = (
            lo.trim().parse().map_err(|_| bad())?,
            hi.trim().parse().map_err(|_| bad())?,
        );
        if lo > hi || hi >= 1024 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(Some(cpus))
}

/// Whether the host runs AppArmor (profiles can be applied).
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

/// Whether the host runs SELinux.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// An LSM setting from the spec: kept when the LSM is there, an error when it is asked for
/// and absent (silently running unconfined would be worse).
fn lsm_setting(
    field: &str,
    value: &Option<String>,
    enabled: bool,
    lsm: &str,
) -> Result<Option<String>> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) if enabled => Ok(Some(v.to_string())),
        Some(v) => Err(Error::config(
            field,
            format!("{v:?} asked for, but {lsm} is not enabled on this host"),
        )),
    }
}

/// Parses one `mounts[]` entry; `index` names it in errors.
fn mount_plan(
    index: usize,
    m: &oci_spec::runtime::Mount,
    bundle: &Path,
    new_userns: bool,
) -> Result<MountPlan> {
    let field = format!("mounts[{index}] ({})", m.destination().display());
    let dest = m.destination();
    if dest.as_os_str().is_empty() {
        return Err(Error::config(field, "empty destination"));
    }
    // Relative destinations are taken from the container's root, as runc does.
    let destination = Path::new("/").join(dest);
    if destination
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(Error::config(field, "destination must not contain \"..\""));
    }
    let mut flags: u64 = 0;
    let mut clear_flags: u64 = 0;
    let mut propagation = Vec::new();
    let mut data = Vec::new();
    let (mut attr_set, mut attr_clear) = (0u64, 0u64);
    let mut bind = None;
    for opt in m.options().as_deref().unwrap_or_default() {
        if let Some((_, clear, flag)) = MOUNT_FLAG_OPTIONS.iter().find(|(n, _, _)| n == opt) {
            if *flag & libc::MS_BIND != 0 {
                bind = Some(*flag & libc::MS_REC != 0);
            } else if *clear {
                clear_flags |= *flag;
                flags &= !*flag;
            } else {
                flags |= *flag;
                clear_flags &= !*flag;
            }
        } else if let Some((_, flag)) = PROPAGATION_OPTIONS.iter().find(|(n, _)| n == opt) {
            propagation.push(*flag);
        } else if let Some((_, set, clear)) =
            RECURSIVE_MOUNT_OPTIONS.iter().find(|(n, _, _)| n == opt)
        {
            attr_set = (attr_set & !clear) | set;
            attr_clear = (attr_clear & !set) | clear;
        } else {
            data.push(opt.as_str());
        }
    }
    let fstype = m.typ().clone().filter(|t| !t.is_empty());
    let kind = match (fstype.as_deref(), bind) {
        (_, Some(_)) | (Some("bind"), None) => MountKind::Bind {
            recursive: bind.unwrap_or(false),
        },
        (Some("cgroup") | Some("cgroup2"), None) => MountKind::Cgroup,
        (Some(_), None) => MountKind::Filesystem,
        (None, None) => {
            return Err(Error::config(field, "no type and not a bind mount"));
        }
    };
    check_kernel_fs_mount(
        &field,
        &destination,
        &kind,
        m.source().as_deref(),
        bundle,
        new_userns,
    )?;
    let source = match (&kind, m.source()) {
        (MountKind::Bind { .. }, None) => {
            return Err(Error::config(field, "bind mount without a source"));
        }
        (MountKind::Bind { .. }, Some(src)) => {
            let abs = bundle.join(src);
            if !abs.exists() {
                return Err(Error::config(
                    field,
                    format!("bind source {} does not exist", abs.display()),
                ));
            }
            Some(abs)
        }
        (_, src) => src.clone(),
    };
    // The host's sysfs (see check_kernel_fs_mount) is read-only down the whole tree: an rbind
    // brings the host's cgroup hierarchies along, and "ro" alone covers only the top mount.
    if matches!(kind, MountKind::Bind { .. })
        && source.as_deref().is_some_and(is_sysfs)
        && destination == Path::new("/sys")
    {
        attr_set |= MOUNT_ATTR_RDONLY;
        attr_clear &= !MOUNT_ATTR_RDONLY;
    }
    Ok(MountPlan {
        destination,
        source,
        fstype,
        kind,
        flags,
        clear_flags,
        propagation,
        data: data.join(","),
        recursive_attr_set: attr_set,
        recursive_attr_clear: attr_clear,
    })
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

fn is_sysfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type().0 == SYSFS_MAGIC)
}

/// Nothing mounted into /proc but a few harmless files, and no bind of the host's procfs or
/// sysfs (which would show everything maskedPaths hides) except a sysfs onto /sys. (That a procfs or sysfs destination
/// is no symlink is checked by the init, where the rootfs is resolved.)
fn check_kernel_fs_mount(
    field: &str,
    dest: &Path,
    kind: &MountKind,
    source: Option<&Path>,
    bundle: &Path,
    new_userns: bool,
) -> Result<()> {
    let allowed_in_proc = husk_init::procfs::PROC_MOUNT_ALLOWED
        .iter()
        .any(|p| dest == Path::new(p));
    if dest.starts_with("/proc") && dest != Path::new("/proc") && !allowed_in_proc {
        return Err(Error::config(
            field,
            "only a few /proc files (e.g. /proc/cpuinfo, /proc/meminfo) may be mounted over",
        ));
    }
    if let (MountKind::Bind { .. }, Some(src)) = (kind, source) {
        let src = bundle.join(src);
        if let Ok(fs) = nix::sys::statfs::statfs(&src) {
            let magic = fs.filesystem_type().0;
            // The host's sysfs bound onto /sys itself is what rootless specs (`runc spec
            // --rootless`, oci-spec's Spec::rootless) use where a user namespace cannot mount
            // a sysfs: maskedPaths under /sys then cover it as they would a fresh one. Only in
            // a new user namespace, though: an rbind brings the host's cgroup hierarchies
            // along, writable by a container root that is the host's (a v1 release_agent).
            let sysfs_on_sys = magic == SYSFS_MAGIC && dest == Path::new("/sys") && new_userns;
            if (magic == PROC_SUPER_MAGIC || magic == SYSFS_MAGIC)
                && !allowed_in_proc
                && !sysfs_on_sys
            {
                return Err(Error::config(
                    field,
                    format!("bind of {} (procfs or sysfs) is not allowed", src.display()),
                ));
            }
        }
    }
    Ok(())
}

/// The host's mounted cgroup hierarchies, read from /proc/self/mountinfo.
fn host_cgroup_hierarchies() -> Vec<CgroupHierarchy> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in husk_init::mountinfo::MountEntry::all(&info) {
        let fstype = entry.fs_type;
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let options = entry
            .super_options
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro" | "relatime" | "nsdelegate" | "memory_recursiveprot"
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        out.push(CgroupHierarchy {
            mount_point: entry.mount_point,
            fstype: fstype.to_string(),
            options,
            container_dir: None,
        });
    }
    out
}

fn sysctl(
    linux: &oci_spec::runtime::Linux,
    has: &dyn Fn(NamespaceKind) -> bool,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in linux.sysctl().clone().unwrap_or_default() {
        let needs = if key.starts_with("net.") {
            NamespaceKind::Network
        } else if key.starts_with("fs.mqueue.")
            || matches!(
                key.as_str(),
                "kernel.msgmax"
                    | "kernel.msgmnb"
                    | "kernel.msgmni"
                    | "kernel.sem"
                    | "kernel.shmall"
                    | "kernel.shmmax"
                    | "kernel.shmmni"
                    | "kernel.shm_rmid_forced"
            )
        {
            NamespaceKind::Ipc
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            NamespaceKind::Uts
        } else {
            return Err(Error::config(
                format!("linux.sysctl {key}"),
                "not in a namespace the container can own",
            ));
        };
        if !has(needs) {
            return Err(Error::config(
                format!("linux.sysctl {key}"),
                format!("needs a {} namespace", needs.proc_name()),
            ));
        }
        if key.contains("..") || key.contains('/') {
            return Err(Error::config(format!("linux.sysctl {key}"), "bad key"));
        }
        out.push((key, value));
    }
    out.sort();
    Ok(out)
}

/// The devices every container gets, plus `linux.devices` (which win on the same path).
fn devices(linux: &oci_spec::runtime::Linux) -> Result<Vec<DevicePlan>> {
    let standard = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let mut out: Vec<DevicePlan> = standard
        .iter()
        .map(|(path, major, minor)| DevicePlan {
            path: PathBuf::from(path),
            file_type: libc::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for (i, d) in linux
        .devices()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.devices[{i}] ({})", d.path().display());
        if !d.path().is_absolute()
            || d.path()
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(Error::config(field, "path must be absolute without \"..\""));
        }
        let file_type = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return Err(Error::config(field, "type must be c, b, u or p")),
        };
        if d.major() < 0 || d.minor() < 0 {
            return Err(Error::config(field, "negative major or minor"));
        }
        out.retain(|p| p.path != *d.path());
        out.push(DevicePlan {
            path: d.path().clone(),
            file_type,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Docker and others fill unused resource fields with 0; like runc, a 0 there means "not set"
/// (a zero weight or limit cannot be applied anyway).
pub fn zero_means_unset(mut r: LinuxResources) -> LinuxResources {
    fn nz_i(v: Option<i64>) -> Option<i64> {
        v.filter(|v| *v != 0)
    }
    fn nz_u(v: Option<u64>) -> Option<u64> {
        v.filter(|v| *v != 0)
    }
    if let Some(mut m) = *r.memory() {
        m.set_limit(nz_i(m.limit()));
        m.set_reservation(nz_i(m.reservation()));
        m.set_swap(nz_i(m.swap()));
        m.set_kernel(nz_i(m.kernel()));
        m.set_kernel_tcp(nz_i(m.kernel_tcp()));
        r.set_memory(Some(m));
    }
    if let Some(mut c) = r.cpu().clone() {
        c.set_shares(nz_u(c.shares()));
        c.set_quota(nz_i(c.quota()));
        c.set_period(nz_u(c.period()));
        c.set_realtime_runtime(nz_i(c.realtime_runtime()));
        c.set_realtime_period(nz_u(c.realtime_period()));
        c.set_cpus(c.cpus().clone().filter(|s| !s.is_empty()));
        c.set_mems(c.mems().clone().filter(|s| !s.is_empty()));
        r.set_cpu(Some(c));
    }
    if let Some(b) = r.block_io().clone() {
        let mut b = b;
        b.set_weight(b.weight().filter(|w| *w != 0));
        b.set_leaf_weight(b.leaf_weight().filter(|w| *w != 0));
        r.set_block_io(Some(b));
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    r
}

/// Character devices every container may use (runc 1.1's list): null, zero, full, random,
/// urandom, tty, ptmx, tun and the pty slaves (136:*, whose pty is also /dev/console).
/// `linux.devices` only creates nodes: access to them takes a `resources.devices` rule, or
/// listing a host device such as /dev/kmsg (1:11) would make it writable.
const DEFAULT_ALLOWED_DEVICES: [(i64, Option<i64>); 9] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(2)),
    (10, Some(200)),
    (136, None),
];

/// Device cgroup rules: the spec's, with access to the default devices inserted right after its
/// last blanket deny. A `deny all` then does not lock the container out of /dev/null, while a
/// rule the spec gives after it (about one of those very devices, say) still has the last word.
fn with_default_device_rules(mut resources: LinuxResources) -> LinuxResources {
    use oci_spec::runtime::LinuxDeviceCgroup;
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let spec_rules = resources.devices().clone().unwrap_or_default();
    let mut defaults = Vec::new();
    // mknod of any device is harmless without access to it.
    defaults.push(rule(LinuxDeviceType::C, None, None, "m"));
    defaults.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (major, minor) in DEFAULT_ALLOWED_DEVICES {
        defaults.push(rule(LinuxDeviceType::C, Some(major), minor, "rwm"));
    }
    let blanket_deny = |r: &LinuxDeviceCgroup| {
        !r.allow()
            && matches!(r.typ(), None | Some(LinuxDeviceType::A))
            && r.major().is_none()
            && r.minor().is_none()
    };
    let at = spec_rules
        .iter()
        .rposition(blanket_deny)
        .map_or(0, |i| i + 1);
    let mut rules = spec_rules;
    rules.splice(at..at, defaults);
    resources.set_devices(Some(rules));
    resources
}

fn hook_plan(field: &str, h: &Hook) -> Result<HookPlan> {
    if !h.path().is_absolute() {
        return Err(Error::config(
            field,
            format!("hook path {} is not absolute", h.path().display()),
        ));
    }
    let timeout_secs = match h.timeout() {
        None => None,
        Some(t) if t > 0 => Some(t as u64),
        Some(t) => {
            return Err(Error::config(
                field,
                format!("timeout {t} must be positive"),
            ))
        }
    };
    Ok(HookPlan {
        path: h.path().clone(),
        args: h
            .args()
            .clone()
            .unwrap_or_else(|| vec![h.path().display().to_string()]),
        env: h.env().clone().unwrap_or_default(),
        timeout_secs,
    })
}

/// Parses JSON into `T`; an error names the field where it happened (`process.args: invalid
/// type: ...`), which serde_json's own message leaves out.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &[u8],
) -> std::result::Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| match e.path().to_string() {
        path if path == "." => e.inner().to_string(),
        path => format!("{path}: {}", e.inner()),
    })
}

/// The runtime spec's versions are SemVer: a bundle written for another major version may mean
/// something else by the same fields, so only 1.x is run (any minor: later minors only add
/// optional fields).
fn check_oci_version(version: &str) -> Result<()> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(Error::config(
            "ociVersion",
            format!("{version:?} is not a SemVer version"),
        ));
    }
    if parts[0] != "1" {
        return Err(Error::config(
            "ociVersion",
            format!("unsupported version {version} (husk runs runtime-spec 1.x bundles)"),
        ));
    }
    Ok(())
}

/// `linux.seccomp` built into its program (see [`crate::seccomp_cache`]).
fn seccomp_filter(
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<husk_init::security::SeccompFilter>> {
    linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp_cache::filter)
        .transpose()
}

/// Where a seccomp agent listens, and what it is told, from `linux.seccomp`.
fn seccomp_listener(linux: &oci_spec::runtime::Linux) -> Option<(PathBuf, Option<String>)> {
    let seccomp = linux.seccomp().as_ref()?;
    let path = seccomp.listener_path().clone()?;
    Some((path, seccomp.listener_metadata().clone()))
}
