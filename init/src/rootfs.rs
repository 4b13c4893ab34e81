//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Every destination inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)` and mounted
//! through `/proc/self/fd/N` of the resolved descriptor, so a symlink in the rootfs (even one
//! swapped in during setup) cannot redirect a mount onto the host.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};

use crate::mountinfo::MountEntry;
use crate::procfs::{Procfs, PROC_MOUNT_ALLOWED};
use crate::proto::{Bootstrap, DevicePlan, InitFailure, MountKind, MountPlan, NamespaceKind};
use crate::sys::open_in_root;
use crate::{failure, Step};

const NONE: Option<&str> = None;

fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The rootfs opened as a directory, for resolving paths inside it.
pub(crate) struct Root {
    fd: OwnedFd,
    host_path: PathBuf,
}

impl Root {
    fn open_path(&self, path: &Path) -> std::io::Result<OwnedFd> {
        open_in_root(self.fd.as_fd(), path, libc::O_PATH)
    }

    /// Creates every missing directory of `path` inside the root and returns the last one.
    fn mkdir_all(&self, path: &Path) -> Result<OwnedFd, InitFailure> {
        let mut current = PathBuf::from("/");
        let mut dir = self
            .open_path(&current)
            .step(|| format!("open {}", self.host_path.display()))?;
        for comp in path.components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            current.push(name);
            match self.open_path(&current) {
                Ok(fd) => dir = fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(e).step(|| format!("mkdir {} in rootfs", current.display()))
                        }
                    }
                    dir = self
                        .open_path(&current)
                        .step(|| format!("open {} in rootfs", current.display()))?;
                }
                Err(e) => return Err(e).step(|| format!("open {} in rootfs", current.display())),
            }
        }
        Ok(dir)
    }

    /// Makes sure `path` exists as a directory (or, with `file`, a regular file) and opens it.
    fn ensure(&self, path: &Path, file: bool) -> Result<OwnedFd, InitFailure> {
        if !file {
            return self.mkdir_all(path);
        }
        if let Ok(fd) = self.open_path(path) {
            return Ok(fd);
        }
        let (parent, name) = split(path)?;
        let parent_fd = self.mkdir_all(parent)?;
        let created = nix::fcntl::openat(
            Some(parent_fd.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        );
        match created {
            Ok(fd) => drop(nix::unistd::close(fd)),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("create {} in rootfs", path.display())),
        }
        self.open_path(path)
            .step(|| format!("open {} in rootfs", path.display()))
    }
}

fn split(path: &Path) -> Result<(&Path, &OsStr), InitFailure> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(failure(
            format!("resolve {}", path.display()),
            "not a file path",
        )),
    }
}

/// The mount flags a remount must keep (the kernel refuses to drop locked ones).
fn current_flags(fd: BorrowedFd<'_>) -> MsFlags {
    let Ok(stat) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = stat.flags();
    let pairs = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| f.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms)
}

/// What [`prepare`] leaves for [`enter`]: the rootfs and a verified null device, both opened
/// before anything of the container's could stand in their way.
pub(crate) struct Prepared {
    root: Root,
    dev_null: OwnedFd,
}

impl Prepared {
    /// Changes directory to the rootfs's own mount, by descriptor.
    pub(crate) fn chdir_to_root(&self) -> nix::Result<()> {
        nix::unistd::fchdir(self.root.fd.as_raw_fd())
    }
}

/// Bind-mount sources taken as detached copies (`open_tree`) by stage 1, before it enters a
/// new user namespace, one per entry of `Bootstrap::mounts` (None where not taken). Once the
/// init is the container's root, a source behind a directory the host's root alone may enter
/// (the 0700 state root that holds the notify socket, a private home) is out of its reach.
#[derive(Default)]
pub(crate) struct BindSources(Vec<Option<OwnedFd>>);

impl BindSources {
    /// Copies every bind source of `boot`. Call it in the host's mount namespace.
    pub(crate) fn take(boot: &Bootstrap) -> Result<BindSources, InitFailure> {
        let here = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .step(|| "open the working directory".into())?;
        // SAFETY: open returned a new descriptor that we own.
        let here = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(here) };
        boot.mounts
            .iter()
            .map(|m| match (&m.kind, &m.source) {
                (MountKind::Bind { recursive }, Some(source)) => {
                    crate::sys::open_tree_clone(here.as_fd(), source, *recursive)
                        .map(Some)
                        .step(|| format!("open bind source {}", source.display()))
                }
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()
            .map(BindSources)
    }

    fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.0
            .get(index)
            .and_then(|fd| fd.as_ref())
            .map(|fd| fd.as_fd())
    }
}

/// Everything before the runtime hooks: propagation, the rootfs bind, config mounts, devices.
pub(crate) fn prepare(
    boot: &Bootstrap,
    procfs: &Procfs,
    bind_sources: &BindSources,
) -> Result<Prepared, InitFailure> {
    // The source of every masked file. Opened here, before the container's mounts and
    // devices exist: the container's own dev/null may sit in a volume that another process
    // can swap for a link to a host file (CVE-2025-31133).
    let dev_null = open_dev_null()?;
    set_root_propagation(boot, "/")?;
    // pivot_root refuses a new root whose parent mount is shared, whatever propagation the
    // spec asked for (a non-recursive one leaves the bundle's mount as it was).
    make_parent_mount_private(&boot.rootfs)?;
    // The rootfs's own mount, made from the directory create validated and kept by its
    // descriptor: a rename in the bundle after the check (a symlink swapped in) changes nothing.
    let rootfs_dir = open_validated_rootfs(boot)?;
    let tree = crate::sys::open_tree_clone(rootfs_dir.as_fd(), Path::new(""), true)
        .step(|| format!("bind mount rootfs {}", boot.rootfs.display()))?;
    crate::sys::move_mount_fd(tree.as_fd(), rootfs_dir.as_fd())
        .step(|| format!("bind mount rootfs {}", boot.rootfs.display()))?;
    let root = Root {
        fd: tree,
        host_path: boot.rootfs.clone(),
    };
    let new_cgroupns = boot
        .namespaces
        .iter()
        .any(|ns| ns.kind == NamespaceKind::Cgroup);
    let mut read_only_later = Vec::new();
    for (index, m) in boot.mounts.iter().enumerate() {
        let later = mount_one(
            &root,
            procfs,
            m,
            boot,
            new_cgroupns,
            bind_sources.get(index),
        )?;
        read_only_later.extend(later);
    }
    create_devices(&root, &boot.devices)?;
    create_dev_symlinks(&root)?;
    // Like runc: a missing cwd is created, while the root is still writable.
    root.mkdir_all(&boot.process.cwd)?;
    // Read-only tmpfs mounts (a read-only /dev) become so only now: devices, /dev/pts and
    // the mounts below them had to be made in them first.
    for dest in &read_only_later {
        remount_bind(&root, dest, MsFlags::MS_RDONLY, MsFlags::empty())?;
    }
    Ok(Prepared { root, dev_null })
}

/// The host's null device, opened without following a symlink and checked to be the 1:3
/// character device.
fn open_dev_null() -> Result<OwnedFd, InitFailure> {
    let step = || "open /dev/null as the source of masked paths".to_string();
    let fd = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(step)?;
    // SAFETY: open returned a new descriptor that we own.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).step(step)?;
    let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(st.st_rdev) == 1
        && libc::minor(st.st_rdev) == 3;
    if !is_null {
        return Err(failure(step(), "it is not the character device 1:3"));
    }
    Ok(fd)
}

/// Places under /sys where other filesystems belong (see [`PROC_MOUNT_ALLOWED`] for /proc).
/// Any other destination that really is on procfs or sysfs, however the path reached it, is
/// refused.
const SYS_MOUNT_ALLOWED: &[&str] = &[
    "/sys/fs/cgroup",
    "/sys/fs/bpf",
    "/sys/fs/fuse/connections",
    "/sys/kernel/security",
    "/sys/kernel/debug",
    "/sys/kernel/tracing",
];

/// Refuses a mount onto `target` (the resolved destination `dest`) when it really lies on
/// procfs or sysfs outside the allowlists (CVE-2025-52881: a volume on /proc/sys/net through a
/// symlinked destination would redirect the runtime's sysctl writes). The check is made on the
/// descriptor the mount then uses, so the answer cannot change in between.
fn check_destination(
    root: &Root,
    procfs: &Procfs,
    dest: &Path,
    target: BorrowedFd<'_>,
) -> Result<(), InitFailure> {
    let step = || format!("check mount destination {}", dest.display());
    let magic = fstatfs(target).step(step)?.filesystem_type();
    if magic != PROC_SUPER_MAGIC && magic != SYSFS_MAGIC {
        return Ok(());
    }
    let real = procfs.fd_target(target).step(step)?;
    let inside = real
        .strip_prefix(&root.host_path)
        .map(|p| Path::new("/").join(p))
        .map_err(|_| failure(step(), format!("it resolves to {}", real.display())))?;
    let allowed = if magic == PROC_SUPER_MAGIC {
        PROC_MOUNT_ALLOWED.iter().any(|p| inside == Path::new(p))
    } else {
        SYS_MOUNT_ALLOWED.iter().any(|p| inside.starts_with(p))
    };
    if allowed {
        return Ok(());
    }
    let fs = if magic == PROC_SUPER_MAGIC {
        "procfs"
    } else {
        "sysfs"
    };
    Err(failure(
        step(),
        format!(
            "it resolves to {} on {fs}, where nothing may be mounted",
            inside.display()
        ),
    ))
}

/// The rootfs directory, reached through no symlink and checked to be the one `create`
/// validated (device and inode), so that a bundle writer cannot swap it in between.
pub(crate) fn open_validated_rootfs(boot: &Bootstrap) -> Result<OwnedFd, InitFailure> {
    let step = || format!("open rootfs {}", boot.rootfs.display());
    // SAFETY: AT_FDCWD is a valid dirfd argument for the *at calls (the path is absolute).
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let fd = crate::sys::openat2_resolve(
        cwd,
        &boot.rootfs,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        crate::sys::RESOLVE_NO_SYMLINKS,
    )
    .step(step)?;
    if let Some((dev, ino)) = boot.rootfs_identity {
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).step(step)?;
        if (st.st_dev, st.st_ino) != (dev, ino) {
            return Err(failure(
                step(),
                "it is no longer the directory create validated (replaced meanwhile)",
            ));
        }
    }
    Ok(fd)
}

/// pivot_root needs the new root's mount and its parent mount not to be shared: the mount the
/// rootfs directory is on (the rootfs's own when it is a mount point, as an image's overlay is;
/// the rootfs bind is cloned from it, with its propagation) is made private.
fn make_parent_mount_private(rootfs: &Path) -> Result<(), InitFailure> {
    let parent = rootfs;
    let info = std::fs::read_to_string("/proc/self/mountinfo").step(|| "read mountinfo".into())?;
    let mount_point = MountEntry::all(&info)
        .map(|m| m.mount_point)
        .filter(|mp| parent.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"));
    mount(NONE, &mount_point, NONE, MsFlags::MS_PRIVATE, NONE)
        .step(|| format!("make {} private", mount_point.display()))
}

fn mount_one(
    root: &Root,
    procfs: &Procfs,
    m: &MountPlan,
    boot: &Bootstrap,
    new_cgroupns: bool,
    taken_source: Option<BorrowedFd<'_>>,
) -> Result<Option<PathBuf>, InitFailure> {
    let dest = &m.destination;
    let mut read_only_later = None;
    let describe = |what: &str| {
        format!(
            "mount {} on {}{}",
            m.source
                .as_deref()
                .map(|s| s.display().to_string())
                .or_else(|| m.fstype.clone())
                .unwrap_or_else(|| "none".into()),
            dest.display(),
            what
        )
    };
    let flags = MsFlags::from_bits_retain(m.flags as _);
    match &m.kind {
        MountKind::Bind { recursive } => {
            let source = m
                .source
                .as_deref()
                .ok_or_else(|| failure(describe(""), "bind mount without a source"))?;
            let is_file = match taken_source {
                Some(fd) => {
                    let st =
                        nix::sys::stat::fstat(fd.as_raw_fd()).step(|| describe(": stat source"))?;
                    st.st_mode & libc::S_IFMT != libc::S_IFDIR
                }
                None => !std::fs::metadata(source)
                    .step(|| describe(": stat source"))?
                    .is_dir(),
            };
            let target = root.ensure(dest, is_file)?;
            check_destination(root, procfs, dest, target.as_fd())?;
            if let Some(tree) = taken_source {
                crate::sys::move_mount_fd(tree, target.as_fd()).step(|| describe(""))?;
            } else {
                let mut bind = MsFlags::MS_BIND;
                if *recursive {
                    bind |= MsFlags::MS_REC;
                }
                mount(Some(source), &fd_path(target.as_fd()), NONE, bind, NONE)
                    .step(|| describe(""))?;
            }
            let extra = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
            if !extra.is_empty() || m.clear_flags != 0 {
                remount_bind(
                    root,
                    dest,
                    extra,
                    MsFlags::from_bits_retain(m.clear_flags as _),
                )
                .map_err(|e| InitFailure {
                    step: describe(" (remount)"),
                    ..e
                })?;
            }
        }
        MountKind::Filesystem => {
            let kernel_fs = matches!(m.fstype.as_deref(), Some("proc" | "sysfs"));
            if kernel_fs {
                refuse_symlinked_destination(root, dest, m.fstype.as_deref().unwrap_or(""))?;
            }
            // runc keeps the mode of a mount point the image has, not of one it makes.
            // Only a tmpfs asks: one lookup less for every other mount on the start-up path.
            let dest_existed = m.fstype.as_deref() == Some("tmpfs") && root.open_path(dest).is_ok();
            let mut target = root.ensure(dest, false)?;
            if kernel_fs {
                // A procfs or sysfs goes on a real directory, never through a symlink the
                // image planted (which could aim it at a path the container should not shadow).
                target = crate::sys::open_in_root_no_symlinks(root.fd.as_fd(), dest, libc::O_PATH)
                    .step(|| describe(": destination must not be a symlink"))?;
            }
            check_destination(root, procfs, dest, target.as_fd())?;
            let is_tmpfs = m.fstype.as_deref() == Some("tmpfs");
            let mut options: Vec<&str> = m.data.split(',').filter(|o| !o.is_empty()).collect();
            let copy_up = is_tmpfs && options.contains(&"tmpcopyup");
            options.retain(|o| *o != "tmpcopyup");
            let keep_mode =
                is_tmpfs && dest_existed && !options.iter().any(|o| o.starts_with("mode="));
            let data = options.join(",");
            let data = (!data.is_empty()).then_some(data.as_str());
            // What was there before the tmpfs hides it: its mode, and with tmpcopyup its files.
            // Both are read from the destination's descriptor, never looked up again by path.
            let old_mode = if keep_mode {
                Some(nix::sys::stat::fstat(target.as_raw_fd()).step(|| describe(": stat"))?)
            } else {
                None
            };
            let old_dir = if copy_up {
                Some(
                    nix::fcntl::openat(
                        Some(target.as_raw_fd()),
                        ".",
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map(|fd| {
                        // SAFETY: openat returned a new descriptor that we own.
                        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
                    })
                    .step(|| describe(": open for tmpcopyup"))?,
                )
            } else {
                None
            };
            let mut mount_flags = flags;
            if is_tmpfs && flags.contains(MsFlags::MS_RDONLY) {
                mount_flags.remove(MsFlags::MS_RDONLY);
                read_only_later = Some(dest.clone());
            }
            if old_mode.is_some() || old_dir.is_some() {
                let attrs = tmpfs_mount_attrs(mount_flags).ok_or_else(|| {
                    failure(
                        describe(""),
                        "a mount flag the new mount API cannot express, with tmpcopyup or a \
                         tmpfs that keeps its mount point's mode",
                    )
                })?;
                // Made detached, filled through its own descriptor, then moved onto the
                // destination's: a rename racing in a shared volume cannot send the mode or
                // the copy anywhere else.
                let mode = old_mode.map(|st| st.st_mode & 0o7777);
                let tmpfs = detached_tmpfs(&options, mode, attrs).step(|| describe(""))?;
                if let Some(old_dir) = old_dir {
                    copy_tree(old_dir, tmpfs.as_fd(), 0).step(|| describe(": tmpcopyup"))?;
                }
                crate::sys::move_mount_fd(tmpfs.as_fd(), target.as_fd())
                    .step(|| describe(": move the tmpfs into place"))?;
            } else {
                let source = m
                    .source
                    .clone()
                    .or_else(|| m.fstype.clone().map(PathBuf::from));
                mount(
                    source.as_deref(),
                    &fd_path(target.as_fd()),
                    m.fstype.as_deref(),
                    mount_flags,
                    data,
                )
                .step(|| describe(""))?;
            }
        }
        MountKind::Cgroup => {
            let target = root.ensure(dest, false)?;
            check_destination(root, procfs, dest, target.as_fd())?;
            mount_cgroups(root, m, boot, new_cgroupns, flags)?
        }
    }
    if m.recursive_attr_set != 0 || m.recursive_attr_clear != 0 {
        let target = root.open_path(dest).step(|| describe(": reopen"))?;
        crate::sys::mount_setattr_recursive(
            target.as_fd(),
            m.recursive_attr_set,
            m.recursive_attr_clear,
        )
        .step(|| describe(": set recursive attributes"))?;
    }
    if !m.propagation.is_empty() {
        let target = root.open_path(dest).step(|| describe(": reopen"))?;
        for p in &m.propagation {
            mount(
                NONE,
                &fd_path(target.as_fd()),
                NONE,
                MsFlags::from_bits_retain(*p as _),
                NONE,
            )
            .step(|| describe(": set propagation"))?;
        }
    }
    Ok(read_only_later)
}

/// A procfs or sysfs whose destination in the image is a symlink: refused with runc's words
/// (a symlink could aim the mount at a place the container should not shadow).
fn refuse_symlinked_destination(root: &Root, dest: &Path, fstype: &str) -> Result<(), InitFailure> {
    let (parent, name) = split(dest)?;
    let Ok(parent_fd) = root.open_path(parent) else {
        return Ok(()); // created by ensure, as a directory
    };
    match nix::sys::stat::fstatat(
        Some(parent_fd.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => Err(failure(
            format!("mount {fstype} on {}", dest.display()),
            format!(
                "filesystem {fstype:?} must be mounted on ordinary directory, and {} is a symlink",
                dest.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// The `MOUNT_ATTR_*` equivalent of a tmpfs's mount flags, or None when a flag has none.
fn tmpfs_mount_attrs(flags: MsFlags) -> Option<u64> {
    let known = [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
        (MsFlags::MS_RELATIME, libc::MOUNT_ATTR_RELATIME),
    ];
    let mut rest = flags;
    let mut attrs = 0u64;
    for (flag, attr) in known {
        if flags.contains(flag) {
            rest.remove(flag);
            attrs |= attr;
        }
    }
    // MS_SILENT changes nothing but the kernel's log.
    rest.remove(MsFlags::MS_SILENT);
    rest.is_empty().then_some(attrs)
}

/// A detached tmpfs with the mount's filesystem options; its root directory gets `mode` when given.
fn detached_tmpfs(options: &[&str], mode: Option<u32>, attrs: u64) -> std::io::Result<OwnedFd> {
    use crate::sys::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen};
    let cstring = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let fs = fsopen(c"tmpfs")?;
    for option in options {
        match option.split_once('=') {
            Some((key, value)) => fsconfig_set_string(fs.as_fd(), &cstring(key)?, value)?,
            None => fsconfig_set_flag(fs.as_fd(), &cstring(option)?)?,
        }
    }
    fsconfig_create(fs.as_fd())?;
    // The mount point's mode goes on the tmpfs's root directory, not into its options: as with
    // runc, the mount's options (mountinfo) stay what the config asked for.
    let mounted = fsmount(fs.as_fd(), attrs)?;
    if let Some(mode) = mode {
        let root = nix::fcntl::openat(
            Some(mounted.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: openat returned a new descriptor that we own.
        let root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
        nix::sys::stat::fchmod(root.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    }
    Ok(mounted)
}

/// Copies the tree below `from` into `to` (tmpcopyup): directories, regular files, symlinks and
/// special files, with their modes and owners. Nothing is followed: every entry is opened
/// relative to its directory's descriptor, with O_NOFOLLOW.
fn copy_tree(from: OwnedFd, to: BorrowedFd<'_>, depth: usize) -> std::io::Result<()> {
    // An image could nest directories until the init's stack runs out.
    const MAX_DEPTH: usize = 256;
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other(format!(
            "directories nested deeper than {MAX_DEPTH}"
        )));
    }
    use nix::fcntl::AtFlags;
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(from))?;
    let from_fd = dir.as_raw_fd();
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let st =
            nix::sys::stat::fstatat(Some(from_fd), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let owner = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                mkdirat(Some(to.as_raw_fd()), name.as_c_str(), mode)?;
                let sub_from = nix::fcntl::openat(
                    Some(from_fd),
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let sub_to = nix::fcntl::openat(
                    Some(to.as_raw_fd()),
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                // SAFETY: openat returned new descriptors that we own.
                let (sub_from, sub_to) = unsafe {
                    (
                        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sub_from),
                        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sub_to),
                    )
                };
                copy_tree(sub_from, sub_to.as_fd(), depth + 1)?;
                nix::sys::stat::fchmod(sub_to.as_raw_fd(), mode)?;
                nix::unistd::fchown(sub_to.as_raw_fd(), owner.0, owner.1)?;
            }
            libc::S_IFREG => {
                let src = nix::fcntl::openat(
                    Some(from_fd),
                    name.as_c_str(),
                    // Non-blocking: a file swapped for a FIFO since the fstatat must not hang.
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let dst = nix::fcntl::openat(
                    Some(to.as_raw_fd()),
                    name.as_c_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )?;
                // SAFETY: openat returned new descriptors that we own.
                let (mut src, mut dst) = unsafe {
                    (
                        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(src),
                        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(dst),
                    )
                };
                if !src.metadata()?.is_file() {
                    return Err(std::io::Error::other(format!(
                        "{name:?} changed while being copied"
                    )));
                }
                std::io::copy(&mut src, &mut dst)?;
                nix::sys::stat::fchmod(dst.as_raw_fd(), mode)?;
                nix::unistd::fchown(dst.as_raw_fd(), owner.0, owner.1)?;
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(from_fd), name.as_c_str())?;
                symlinkat(target.as_os_str(), Some(to.as_raw_fd()), name.as_c_str())?;
                fchownat(
                    Some(to.as_raw_fd()),
                    name.as_c_str(),
                    owner.0,
                    owner.1,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
            }
            kind => {
                let kind = SFlag::from_bits_truncate(kind);
                mknodat(
                    Some(to.as_raw_fd()),
                    name.as_c_str(),
                    kind,
                    mode,
                    st.st_rdev,
                )?;
                fchownat(
                    Some(to.as_raw_fd()),
                    name.as_c_str(),
                    owner.0,
                    owner.1,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
            }
        }
    }
    Ok(())
}

/// Applies flags to a bind mount: a bind ignores them at first, so remount, keeping the locked ones.
fn remount_bind(root: &Root, dest: &Path, set: MsFlags, clear: MsFlags) -> Result<(), InitFailure> {
    let target = root
        .open_path(dest)
        .step(|| format!("reopen {}", dest.display()))?;
    let flags = (current_flags(target.as_fd()) | set) & !clear;
    mount(
        NONE,
        &fd_path(target.as_fd()),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        NONE,
    )
    .step(|| format!("remount {}", dest.display()))
}

/// `type: cgroup`: a tmpfs holding one directory per host hierarchy. With a new cgroup namespace
/// each is a fresh cgroup mount (showing the namespace's root); without one, a bind of the
/// container's own cgroup directory.
fn mount_cgroups(
    root: &Root,
    m: &MountPlan,
    boot: &Bootstrap,
    new_cgroupns: bool,
    flags: MsFlags,
) -> Result<(), InitFailure> {
    let dest = &m.destination;
    let keep = flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let unified_only =
        boot.cgroup_hierarchies.len() == 1 && boot.cgroup_hierarchies[0].fstype == "cgroup2";
    if unified_only {
        return mount_hierarchy(root, &boot.cgroup_hierarchies[0], dest, new_cgroupns, flags);
    }
    let target = root.ensure(dest, false)?;
    mount(
        Some("tmpfs"),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        keep,
        Some("mode=755"),
    )
    .step(|| format!("mount tmpfs on {}", dest.display()))?;
    for h in &boot.cgroup_hierarchies {
        let name = h.mount_point.file_name().unwrap_or_default();
        mount_hierarchy(root, h, &dest.join(name), new_cgroupns, flags)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let target = root
            .open_path(dest)
            .step(|| format!("reopen {}", dest.display()))?;
        mount(
            NONE,
            &fd_path(target.as_fd()),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
            Some("mode=755"),
        )
        .step(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

fn mount_hierarchy(
    root: &Root,
    h: &crate::proto::CgroupHierarchy,
    dest: &Path,
    new_cgroupns: bool,
    flags: MsFlags,
) -> Result<(), InitFailure> {
    let target = root.ensure(dest, false)?;
    let what = || format!("mount {} {} on {}", h.fstype, h.options, dest.display());
    let mount_flags = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if new_cgroupns {
        let data = (h.fstype == "cgroup").then_some(h.options.as_str());
        return mount(
            Some("cgroup"),
            &fd_path(target.as_fd()),
            Some(h.fstype.as_str()),
            mount_flags,
            data,
        )
        .step(what);
    }
    let source = h
        .container_dir
        .as_deref()
        .ok_or_else(|| failure(what(), "the container has no cgroup in this hierarchy"))?;
    mount(
        Some(source),
        &fd_path(target.as_fd()),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .step(what)?;
    if !mount_flags.is_empty() {
        remount_bind(root, dest, mount_flags, MsFlags::empty())?;
    }
    Ok(())
}

fn create_devices(root: &Root, devices: &[DevicePlan]) -> Result<(), InitFailure> {
    for dev in devices {
        let (parent, name) = split(&dev.path)?;
        let dir = root.mkdir_all(parent)?;
        let kind = SFlag::from_bits_truncate(dev.file_type as libc::mode_t);
        let mode = Mode::from_bits_truncate(dev.mode as libc::mode_t);
        let devnum = nix::sys::stat::makedev(dev.major, dev.minor);
        // A device node or fifo already there is replaced; anything else is not ours to remove.
        let existing = nix::sys::stat::fstatat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Ok(st) = existing {
            let kind = st.st_mode & libc::S_IFMT;
            if ![libc::S_IFCHR, libc::S_IFBLK, libc::S_IFIFO].contains(&kind) {
                return Err(failure(
                    format!("create device {}", dev.path.display()),
                    "a file that is not a device is already there",
                ));
            }
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        match mknodat(Some(dir.as_raw_fd()), name, kind, mode, devnum) {
            Ok(()) => {
                fchownat(
                    Some(dir.as_raw_fd()),
                    name,
                    Some(Uid::from_raw(dev.uid)),
                    Some(Gid::from_raw(dev.gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .step(|| format!("chown device {}", dev.path.display()))?;
            }
            // In a user namespace mknod is not allowed: bind the host's device instead.
            Err(Errno::EPERM) => {
                let target = root.ensure(&dev.path, true)?;
                mount(
                    Some(&dev.path),
                    &fd_path(target.as_fd()),
                    NONE,
                    MsFlags::MS_BIND,
                    NONE,
                )
                .step(|| format!("bind mount device {}", dev.path.display()))?;
            }
            Err(e) => return Err(e).step(|| format!("mknod {}", dev.path.display())),
        }
    }
    Ok(())
}

fn create_dev_symlinks(root: &Root) -> Result<(), InitFailure> {
    let dev = root.mkdir_all(Path::new("/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("symlink /dev/{name}")),
        }
    }
    // /dev/ptmx must be the devpts instance's multiplexer, whatever the image shipped.
    let _ = nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx").step(|| "symlink /dev/ptmx".into())?;
    Ok(())
}

/// Masks and read-only paths, then switches to the rootfs: pivot_root (or MS_MOVE + chroot
/// with `--no-pivot`).
pub(crate) fn enter(boot: &Bootstrap, prepared: &Prepared) -> Result<(), InitFailure> {
    // Before the switch, while the rootfs is reached through the descriptor opened first:
    // every target is resolved inside it and mounted on by descriptor.
    for path in &boot.masked_paths {
        mask(prepared, path)?;
    }
    for path in &boot.readonly_paths {
        make_readonly(&prepared.root, path)?;
    }
    nix::unistd::fchdir(prepared.root.fd.as_raw_fd())
        .step(|| format!("chdir {}", boot.rootfs.display()))?;
    if boot.no_pivot {
        detach_kernel_filesystems_outside(&boot.rootfs)?;
        mount(Some("."), "/", NONE, MsFlags::MS_MOVE, NONE).step(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").step(|| "chroot".into())?;
    } else {
        let old_root = std::fs::File::open("/").step(|| "open old root".into())?;
        // pivot_root(".", ".") stacks the old root on top of the new one; detach it from there.
        nix::unistd::pivot_root(".", ".").step(|| "pivot_root".into())?;
        // From inside the old root, "." is the old root itself (not the new root below it,
        // whose mounts must keep the propagation the spec gave them).
        nix::unistd::fchdir(old_root.as_raw_fd()).step(|| "enter old root".into())?;
        // Keep the unmount from propagating back to the host's mounts.
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .step(|| "make old root a slave".into())?;
        umount2(".", MntFlags::MNT_DETACH).step(|| "unmount old root".into())?;
    }
    nix::unistd::chdir("/").step(|| "chdir /".into())?;
    if !boot.rootfs_propagation_explicit {
        return Ok(());
    }
    // The new root inherits nothing from the old one's propagation: apply the spec's again.
    set_root_propagation(boot, "the new /")
}

/// Without pivot_root the host's mounts stay in the container's mount namespace, hidden under
/// the rootfs but still counted by the kernel: a fully visible procfs or sysfs among them lets
/// the container mount a fresh, unmasked one. Detach them. Where the kernel refuses (mounts
/// locked by a new user namespace), [`cover_host_kernel_filesystems`] has already made them
/// count as hidden; the cover here only keeps them out of reach.
fn detach_kernel_filesystems_outside(rootfs: &Path) -> Result<(), InitFailure> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").step(|| "read mountinfo".into())?;
    for (mp, _) in kernel_filesystems_outside(&info, rootfs) {
        match umount2(&mp, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(_) => mount(
                Some("tmpfs"),
                &mp,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
            )
            .step(|| format!("cover {} outside the rootfs", mp.display()))?,
        }
    }
    Ok(())
}

/// The mount points (and types) of procfs and sysfs mounts outside `rootfs`, deepest first (so
/// that a cover never hides a mount still to be handled).
fn kernel_filesystems_outside(mountinfo: &str, rootfs: &Path) -> Vec<(PathBuf, String)> {
    let mut kernel_mounts: Vec<(PathBuf, String)> = MountEntry::all(mountinfo)
        .filter(|m| matches!(m.fs_type, "proc" | "sysfs"))
        .map(|m| (m.mount_point, m.fs_type.to_string()))
        .filter(|(mp, _)| !mp.starts_with(rootfs))
        .collect();
    kernel_mounts.sort_by_key(|(mp, _)| std::cmp::Reverse(mp.components().count()));
    kernel_mounts.dedup();
    kernel_mounts
}

/// For `--no-pivot` with a new user namespace, called in stage 1 before that namespace exists.
///
/// The kernel lets a user namespace's root mount procfs or sysfs only while one is fully
/// visible in its mount namespace, and it counts the host's mounts left below a rootfs that was
/// moved over `/` instead of pivoted to. Copied into a namespace owned by the new user namespace
/// those mounts are locked: stage 2 can neither detach them nor hide them with a cover of its
/// own, since only locked child mounts count. So, in an intermediate mount namespace still owned
/// by the host's user namespace, an empty read-only tmpfs goes over one directory of each of
/// them; the copy locks these covers, and the kernel then treats the host's mounts as partly
/// hidden. The mount roots stay usable: stage 2 mounts through /proc/self/fd.
///
/// Only the kinds the config does not mount itself are covered: a container given its own
/// procfs (or sysfs) can mount another one with pivot_root too, and stage 2 needs the host's
/// visible to mount the container's.
pub(crate) fn cover_host_kernel_filesystems(boot: &Bootstrap) -> Result<(), InitFailure> {
    let to_cover: Vec<&str> = ["proc", "sysfs"]
        .into_iter()
        .filter(|fstype| !config_mounts_whole(boot, fstype))
        .collect();
    if to_cover.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .step(|| "create a mount namespace to hide the host's procfs and sysfs".into())?;
    // Nothing of what follows may reach the host's mount namespace.
    mount(NONE, "/", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .step(|| "make / a slave".into())?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").step(|| "read mountinfo".into())?;
    for (mount_point, fstype) in kernel_filesystems_outside(&info, &boot.rootfs) {
        if !to_cover.contains(&fstype.as_str()) {
            continue;
        }
        let Some(dir) = directory_to_cover(&mount_point) else {
            return Err(failure(
                "hide the host's procfs and sysfs for --no-pivot",
                format!("{} has no directory to cover", mount_point.display()),
            ));
        };
        mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=0555"),
        )
        .step(|| format!("cover {}", dir.display()))?;
    }
    Ok(())
}

/// Whether the config gives the container a whole filesystem of `fstype`: mounted by type, or
/// a bind of the host's `/proc` or `/sys` itself.
fn config_mounts_whole(boot: &Bootstrap, fstype: &str) -> bool {
    let host_root = if fstype == "proc" { "/proc" } else { "/sys" };
    boot.mounts.iter().any(|m| match m.kind {
        MountKind::Filesystem => m.fstype.as_deref() == Some(fstype),
        MountKind::Bind { .. } => m.source.as_deref() == Some(Path::new(host_root)),
        MountKind::Cgroup => false,
    })
}

/// A directory of the procfs or sysfs mounted at `mount_point` that neither stage 2 nor the
/// kernel's own child mounts need: `fs` on procfs, `kernel` on sysfs (both always present),
/// else the first non-numeric subdirectory.
fn directory_to_cover(mount_point: &Path) -> Option<PathBuf> {
    for preferred in ["fs", "kernel"] {
        let dir = mount_point.join(preferred);
        if dir.is_dir() {
            return Some(dir);
        }
    }
    std::fs::read_dir(mount_point)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| !name.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Applies `linux.rootfsPropagation` (or its default) to the current `/`.
fn set_root_propagation(boot: &Bootstrap, which: &str) -> Result<(), InitFailure> {
    let flags = MsFlags::from_bits_retain(boot.rootfs_propagation as _);
    mount(NONE, "/", NONE, flags, NONE).step(|| format!("set propagation of {which}"))
}

/// After entering the rootfs: a read-only root.
pub(crate) fn finish(boot: &Bootstrap) -> Result<(), InitFailure> {
    if boot.rootfs_readonly {
        let root = std::fs::File::open("/").step(|| "open /".into())?;
        let flags = current_flags(root.as_fd()) | MsFlags::MS_RDONLY;
        mount(
            NONE,
            "/",
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            NONE,
        )
        .step(|| "remount / read-only".into())?;
    }
    Ok(())
}

/// Hides `path`: a directory under an empty read-only tmpfs, anything else under a read-only
/// bind of the verified null device.
fn mask(prepared: &Prepared, path: &Path) -> Result<(), InitFailure> {
    let step = || format!("mask {}", path.display());
    let target = match prepared.root.open_path(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).step(step),
    };
    let st = nix::sys::stat::fstat(target.as_raw_fd()).step(step)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return mount(
            Some("tmpfs"),
            &fd_path(target.as_fd()),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            NONE,
        )
        .step(step);
    }
    let null =
        crate::sys::open_tree_clone(prepared.dev_null.as_fd(), Path::new(""), false).step(step)?;
    set_readonly(null.as_fd(), false).step(step)?;
    crate::sys::move_mount_fd(null.as_fd(), target.as_fd()).step(step)
}

/// Makes the mount at `fd` (a detached clone) read-only, keeping its other flags.
fn set_readonly(fd: BorrowedFd<'_>, recursive: bool) -> std::io::Result<()> {
    if recursive {
        crate::sys::mount_setattr_recursive(fd, libc::MOUNT_ATTR_RDONLY, 0)
    } else {
        crate::sys::mount_setattr(fd, libc::MOUNT_ATTR_RDONLY, 0)
    }
}

/// Replaces `path` with a read-only recursive bind of itself.
fn make_readonly(root: &Root, path: &Path) -> Result<(), InitFailure> {
    let step = || format!("make {} read-only", path.display());
    let target = match root.open_path(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).step(step),
    };
    let copy = crate::sys::open_tree_clone(target.as_fd(), Path::new(""), true).step(step)?;
    set_readonly(copy.as_fd(), true).step(step)?;
    crate::sys::move_mount_fd(copy.as_fd(), target.as_fd()).step(step)
}

/// Writes `linux.sysctl` through the init's private procfs (see [`crate::procfs`]), never
/// through a path of the container's.
pub(crate) fn apply_sysctl(
    procfs: &Procfs,
    sysctl: &[(String, String)],
) -> Result<(), InitFailure> {
    for (key, value) in sysctl {
        procfs
            .write_sysctl(key, value)
            .step(|| format!("set sysctl {key}"))?;
    }
    Ok(())
}

/// Binds the container's terminal onto /dev/console.
pub(crate) fn mount_console(slave: &Path) -> Result<(), InitFailure> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(console)
            .step(|| "create /dev/console".into())?;
    }
    mount(Some(slave), console, NONE, MsFlags::MS_BIND, NONE)
        .step(|| format!("bind {} on /dev/console", slave.display()))
}
