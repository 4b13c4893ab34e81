//! Containers whose bundle husk makes itself: from an image of the store, or from an in-memory
//! [`Spec`].
//!
//! Such a container gets a private bundle directory, `<state root>/@bundles/<id>` (`@` cannot
//! appear in a container id, so the name never collides with a container's state directory, and
//! `list` skips it since it holds no state file). It holds:
//! - `config.json`, the spec;
//! - for an image, `rootfs/`: the container's writable layer over the read-only image. Where the
//!   kernel has overlayfs, an overlay mount whose lower directories are the image's layer
//!   directories (shared by every container of the image, never written) and whose upper and
//!   work directories are the container's own (`upper/`, `work/`); without overlayfs, a private
//!   copy of the image (layers applied in order, whiteouts honoured);
//! - optionally `scratch/`, a size-limited tmpfs holding `upper/` and `work/`, so that what the
//!   container writes is bounded and charged to memory rather than to the host's disk
//!   ([`ImageRunOptions::scratch_size`]; `execute` uses it);
//! - `husk-bundle.json`: what to undo at delete (the mounts, the image lease in the store).
//!
//! Everything in it is undone by [`Container::delete`](crate::Container::delete) (and by a failed
//! create): the mounts are detached, the directory removed and the image released in the store,
//! so that `image rm` is allowed again.
//!
//! The image's config (Entrypoint, Cmd, Env, WorkingDir, User) is merged on top of a base spec
//! ([`default_spec`] unless the caller gives one), and the caller's [`ImageRunOptions`] on top of
//! that. A user name is looked up in the image's own `/etc/passwd` and `/etc/group`, read through
//! the container's root filesystem with `RESOLVE_IN_ROOT` (a symlink in the image cannot lead
//! the lookup to a host file), opened non-blocking, required to be regular files and read up to a
//! bound: files of an image are hostile input.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};

/// The directory of the state root that holds private bundles.
pub(crate) const BUNDLES_DIR: &str = "@bundles";
/// What a private bundle's cleanup needs to know.
const META_FILE: &str = "husk-bundle.json";
/// The most husk reads of `/etc/passwd` or `/etc/group` from an image.
const MAX_IMAGE_FILE_BYTES: u64 = 4 << 20;
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The default spec, the one `husk spec` writes, with `process.terminal` off (a library caller
/// has no console socket) and a writable root (the container's own writable layer): a `sh`,
/// the usual kernel filesystems, a few capabilities, and new pid, network, ipc, uts and mount
/// namespaces. `root.path` is `rootfs`, relative to the bundle.
pub fn default_spec() -> Spec {
    let mut spec: Spec = serde_json::from_value(default_spec_json())
        // A constant document, checked by a unit test.
        .expect("the default spec parses");
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(false));
    }
    if let Some(r) = spec.root_mut() {
        r.set_readonly(Some(false));
    }
    spec
}

/// The default config as `husk spec` writes it (a terminal, a read-only root).
pub fn default_spec_json() -> serde_json::Value {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    serde_json::json!({
        "ociVersion": crate::config::OCI_VERSION_MAX,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "husk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// How a container's writable layer over its image is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WritableLayer {
    /// overlayfs when the kernel has it, a copy otherwise (the default).
    #[default]
    Auto,
    /// overlayfs only: an error if it cannot be mounted.
    Overlay,
    /// A private copy of the image (slower to create; for kernels without overlayfs).
    Copy,
}

/// The caller's part of a container made from an image: overrides of the image's config, and
/// how the container's writable layer is made. Everything is optional.
///
/// ```
/// let opts = husk::ImageRunOptions::default()
///     .args(["sh", "-c", "echo hello"])
///     .env("GREETING", "hi")
///     .user("1000:1000");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImageRunOptions {
    /// Replaces the image's `Cmd` (arguments after the entrypoint).
    pub args: Option<Vec<String>>,
    /// Replaces the image's `Entrypoint` (and then its `Cmd` too, as docker does).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries, on top of the image's `Env` (same key: the caller's wins).
    pub env: Vec<String>,
    /// Working directory, instead of the image's `WorkingDir` (absolute).
    pub cwd: Option<PathBuf>,
    /// `user`, `uid`, `user:group`, `uid:gid` (names looked up in the image), instead of the
    /// image's `User`.
    pub user: Option<String>,
    /// The spec the image's config is merged into ([`default_spec`] when `None`). Its
    /// `root.path` is replaced by the container's writable layer.
    pub base_spec: Option<Spec>,
    /// How the writable layer is made.
    pub writable_layer: WritableLayer,
    /// Keeps the writable layer on a private tmpfs of this many bytes (writes beyond it fail
    /// with `ENOSPC`) instead of the state root's filesystem.
    pub scratch_size: Option<u64>,
    /// Labels of the container (kept as annotations; see
    /// [`Runtime::list_labeled`](crate::Runtime::list_labeled)).
    pub labels: std::collections::BTreeMap<String, String>,
}

impl ImageRunOptions {
    /// Sets [`ImageRunOptions::args`].
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets [`ImageRunOptions::entrypoint`].
    pub fn entrypoint<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Adds an environment variable (see [`ImageRunOptions::env`]).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// Sets [`ImageRunOptions::cwd`].
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Sets [`ImageRunOptions::user`].
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// Sets [`ImageRunOptions::base_spec`].
    pub fn base_spec(mut self, spec: Spec) -> Self {
        self.base_spec = Some(spec);
        self
    }

    /// Sets [`ImageRunOptions::writable_layer`].
    pub fn writable_layer(mut self, layer: WritableLayer) -> Self {
        self.writable_layer = layer;
        self
    }

    /// Adds a label (see [`ImageRunOptions::labels`]).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets [`ImageRunOptions::scratch_size`].
    pub fn scratch_size(mut self, bytes: u64) -> Self {
        self.scratch_size = Some(bytes);
        self
    }
}

/// The parts of an image's config that make the container's process.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ImageDefaults {
    pub(crate) fn from_config(config: &oci_spec::image::ImageConfiguration) -> ImageDefaults {
        let Some(c) = config.config() else {
            return ImageDefaults::default();
        };
        ImageDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().filter(|w| !w.is_empty()),
            user: c.user().clone().filter(|u| !u.is_empty()),
        }
    }
}

/// What an image gives a container: its layer directories (bottom first) and config.
#[derive(Debug, Clone)]
pub(crate) struct ImageLower {
    pub layers: Vec<PathBuf>,
    pub defaults: ImageDefaults,
}

/// What the cleanup of a private bundle undoes; written before each step it records.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Meta {
    /// The image store root and the lease token, when an image was acquired.
    store: Option<PathBuf>,
    lease: Option<String>,
    /// Mounted: `rootfs` (the overlay) and `scratch` (the tmpfs).
    rootfs_mounted: bool,
    scratch_mounted: bool,
}

/// A private bundle being made or in use. Dropping it does nothing: [`PrivateBundle::remove`]
/// undoes it.
#[derive(Debug)]
pub(crate) struct PrivateBundle {
    pub dir: PathBuf,
    meta: Meta,
}

/// Whether `bundle` (a container's recorded bundle) is a private bundle under `root`.
pub(crate) fn is_private_bundle(root: &Path, bundle: &Path) -> bool {
    let Some(parent) = bundle.parent() else {
        return false;
    };
    if parent.file_name() != Some(std::ffi::OsStr::new(BUNDLES_DIR)) {
        return false;
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    match (canonical(&root.join(BUNDLES_DIR)), canonical(parent)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Removes private bundles whose container has no state directory: left by a create that was
/// killed. (A create makes the state directory first, and a failed one removes its bundle
/// itself: removal twice is harmless.)
pub(crate) fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root.join(BUNDLES_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((id, _)) = name.to_str().and_then(|n| n.rsplit_once('@')) else {
            continue;
        };
        if crate::state::validate_id(id).is_ok() && !root.join(id).exists() {
            let _ = remove(&entry.path());
        }
    }
}

impl PrivateBundle {
    /// Makes a new, empty private bundle for container `id`: `<root>/@bundles/<id>@<nonce>`,
    /// a fresh name for every create, so that the cleanup of one create can never remove the
    /// bundle of a later container of the same id.
    pub(crate) fn create(root: &Path, id: &str) -> Result<PrivateBundle> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let parent = root.join(BUNDLES_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&parent)
            .context(|| format!("create {}", parent.display()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let nonce = format!(
            "{:x}{:x}{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(format!("{id}@{nonce}"));
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(&dir)
            .context(|| format!("create {}", dir.display()))?;
        let bundle = PrivateBundle {
            dir,
            meta: Meta::default(),
        };
        bundle.save()?;
        Ok(bundle)
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.meta).map_err(std::io::Error::other);
        let bytes = bytes.context(|| "serialize bundle metadata".into())?;
        let path = self.dir.join(META_FILE);
        crate::hostfs::write_atomic_private(&path, &bytes)
            .context(|| format!("write {}", path.display()))
    }

    /// Records the image lease to give back at delete.
    pub(crate) fn set_lease(&mut self, store: &Path, lease: &str) -> Result<()> {
        self.meta.store = Some(store.to_path_buf());
        self.meta.lease = Some(lease.to_string());
        self.save()
    }

    /// Writes the spec as `config.json`.
    pub(crate) fn write_spec(&self, spec: &Spec) -> Result<()> {
        let json = serde_json::to_vec_pretty(spec).map_err(|e| Error::Bundle {
            path: self.dir.clone(),
            reason: format!("serializing config.json: {e}"),
        })?;
        let path = self.dir.join("config.json");
        crate::hostfs::write_atomic_private(&path, &json)
            .context(|| format!("write {}", path.display()))
    }

    /// The container's root filesystem.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Undoes this bundle (see [`remove`]).
    pub(crate) fn remove(self) -> Result<()> {
        remove(&self.dir)
    }

    /// Makes `rootfs/`: the writable layer over `lower`.
    pub(crate) fn make_writable_layer(
        &mut self,
        lower: &ImageLower,
        how: WritableLayer,
        scratch_size: Option<u64>,
    ) -> Result<()> {
        if lower.layers.is_empty() {
            return Err(Error::config("image", "the image has no layers"));
        }
        let rootfs = self.rootfs();
        mkdir(&rootfs, 0o755)?;
        let base = match scratch_size {
            Some(size) => {
                let scratch = self.dir.join("scratch");
                mkdir(&scratch, 0o700)?;
                self.meta.scratch_mounted = true;
                self.save()?;
                mount_tmpfs(&scratch, size)?;
                scratch
            }
            None => self.dir.clone(),
        };
        let overlay = match how {
            WritableLayer::Copy => false,
            WritableLayer::Overlay => true,
            WritableLayer::Auto => overlay_available(),
        };
        if overlay {
            let upper = base.join("upper");
            let work = base.join("work");
            mkdir(&upper, 0o755)?;
            mkdir(&work, 0o700)?;
            self.meta.rootfs_mounted = true;
            self.save()?;
            mount_overlay(&lower.layers, &upper, &work, &rootfs)
        } else if scratch_size.is_some() {
            // The copy goes on the tmpfs too, mounted onto rootfs/.
            let copy = base.join("rootfs");
            mkdir(&copy, 0o755)?;
            apply_layers(&lower.layers, &copy)?;
            self.meta.rootfs_mounted = true;
            self.save()?;
            bind(&copy, &rootfs)
        } else {
            apply_layers(&lower.layers, &rootfs)
        }
    }
}

/// Undoes the private bundle `dir`, if it is still there: detaches its mounts, removes the
/// directory, releases its image. Every step is tried; the first error is returned.
pub(crate) fn remove(dir: &Path) -> Result<()> {
    let meta_path = dir.join(META_FILE);
    let meta: Meta = match std::fs::read(&meta_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !dir.exists() {
                return Ok(());
            }
            Meta::default()
        }
        Err(e) => return Err(e).context(|| format!("read {}", meta_path.display())),
    };
    let mut first: Option<Error> = None;
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    // Detached even if a process of the container still held it open (it is gone by now).
    if meta.rootfs_mounted {
        keep(unmount(&dir.join("rootfs")));
    }
    if meta.scratch_mounted {
        keep(unmount(&dir.join("scratch")));
    }
    // Never recurse into something still mounted: that would walk the image (or another
    // filesystem) instead of the bundle.
    let dev = std::fs::symlink_metadata(dir).map(|m| m.dev()).ok();
    let still_mounted = ["rootfs", "scratch"]
        .iter()
        .any(|name| std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| Some(m.dev()) != dev));
    if still_mounted {
        keep(Err(Error::Io {
            context: format!("remove {}", dir.display()),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        }));
    } else if dev.is_some() {
        keep(remove_tree(dir));
    }
    if let (Some(store), Some(lease)) = (&meta.store, &meta.lease) {
        keep(release_image(store, lease));
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Removes a tree of the private bundle (files of the copy may be read-only directories).
fn remove_tree(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(|| format!("remove {}", dir.display())),
    }
}

fn release_image(store: &Path, lease: &str) -> Result<()> {
    let store = crate::image::ImageStore::open(store)?;
    store.release(lease)?;
    Ok(())
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .context(|| format!("create {}", path.display()))?;
    // The umask must not narrow it: the container's users need to reach its root.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context(|| format!("chmod {}", path.display()))
}

fn unmount(path: &Path) -> Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (never mounted, or a create that died before the mount).
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).context(|| format!("unmount {}", path.display())),
    }
}

/// Whether the kernel has overlayfs (loaded, or as a module it can load on first mount).
fn overlay_available() -> bool {
    let listed = std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|t| t.lines().any(|l| l.trim_end().ends_with("\toverlay")));
    listed || Path::new("/sys/module/overlay").exists() || module_present("overlay")
}

fn module_present(name: &str) -> bool {
    let Ok(release) = nix::sys::utsname::uname() else {
        return false;
    };
    let dir = Path::new("/lib/modules").join(release.release());
    std::fs::read_to_string(dir.join("modules.dep"))
        .is_ok_and(|deps| deps.lines().any(|l| l.contains(&format!("/{name}.ko"))))
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open {}", path.display()))?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Mounts an overlay of `layers` (bottom first) with `upper` and `work` onto `target`, through
/// the new mount API: each lower directory is passed on its own (`lowerdir+`, Linux 6.8), so
/// no path needs the `:`/`,` escaping of the one-string form, which is the fallback.
fn mount_overlay(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    use husk_init::sys;
    let ctx = |what: &str| format!("mount the overlay on {}: {what}", target.display());
    let fs = sys::fsopen(c"overlay").context(|| ctx("fsopen"))?;
    let set = |key: &std::ffi::CStr, value: &Path| {
        let value = value
            .to_str()
            .ok_or_else(|| Error::config("image", format!("{} is not UTF-8", value.display())))?;
        sys::fsconfig_set_string(fs.as_fd(), key, value)
            .context(|| ctx(&format!("{}={value}", key.to_string_lossy())))
    };
    // overlayfs lists lower directories top first.
    let top_first: Vec<&PathBuf> = layers.iter().rev().collect();
    let mut each = Ok(());
    for layer in &top_first {
        each = set(c"lowerdir+", layer);
        if each.is_err() {
            break;
        }
    }
    if each.is_err() {
        // Before Linux 6.8: one string, top first, `:`-separated.
        let mut joined = String::new();
        for layer in &top_first {
            let text = layer.to_str().unwrap_or_default();
            if text.is_empty() || text.contains([':', ',', '\\']) {
                return Err(Error::config(
                    "image",
                    format!(
                        "layer directory {} cannot be named to overlayfs",
                        layer.display()
                    ),
                ));
            }
            if !joined.is_empty() {
                joined.push(':');
            }
            joined.push_str(text);
        }
        set(c"lowerdir", Path::new(&joined))?;
    }
    set(c"upperdir", upper)?;
    set(c"workdir", work)?;
    // The upper directory is thrown away with the container, so nothing in it needs to reach
    // the disk: `volatile` (Linux 5.10) skips the sync of the upper filesystem that an
    // overlay's unmount otherwise does, which took 100 ms and more of a `run --image` when
    // other work had dirtied that filesystem (strace -T: umount2 of the rootfs). Older
    // kernels refuse the flag: the mount goes without it.
    let _ = sys::fsconfig_set_flag(fs.as_fd(), c"volatile");
    sys::fsconfig_create(fs.as_fd()).context(|| ctx("create"))?;
    let mnt = sys::fsmount(fs.as_fd(), 0).context(|| ctx("fsmount"))?;
    let to = open_dir(target)?;
    sys::move_mount_fd(mnt.as_fd(), to.as_fd()).context(|| ctx("move_mount"))
}

/// Mounts a tmpfs of `size` bytes (nosuid, nodev) on `target`.
fn mount_tmpfs(target: &Path, size: u64) -> Result<()> {
    use nix::mount::MsFlags;
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("size={},mode=700", size.max(4096)).as_str()),
    )
    .context(|| format!("mount a tmpfs on {}", target.display()))
}

fn bind(from: &Path, to: &Path) -> Result<()> {
    nix::mount::mount(
        Some(from),
        to,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .context(|| format!("bind {} on {}", from.display(), to.display()))
}

/// Applies `layers` (bottom first, whiteouts stored the overlayfs way: a 0/0 character device
/// removes what is below, an opaque directory hides what is below it) into `dst`: the copy
/// made instead of an overlay. Ownership, modes, times, hard links and xattrs are kept.
fn apply_layers(layers: &[PathBuf], dst: &Path) -> Result<()> {
    for layer in layers {
        let mut links = HashMap::new();
        copy_dir(layer, dst, &mut links)?;
    }
    Ok(())
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr_get(path, "trusted.overlay.opaque").is_some_and(|v| v == b"y")
}

/// Copies the directory `src`'s entries into the existing directory `dst`, merging.
fn copy_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(src).context(|| format!("read {}", src.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("read {}", src.display()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta =
            std::fs::symlink_metadata(&from).context(|| format!("stat {}", from.display()))?;
        let existing = std::fs::symlink_metadata(&to).ok();
        if is_whiteout(&meta) {
            if existing.is_some() {
                remove_any(&to)?;
            }
            continue;
        }
        if meta.is_dir() {
            match existing {
                Some(e) if e.is_dir() => {
                    if is_opaque(&from) {
                        remove_tree(&to)?;
                        mkdir(&to, 0o700)?;
                    }
                }
                Some(_) => {
                    remove_any(&to)?;
                    mkdir(&to, 0o700)?;
                }
                None => mkdir(&to, 0o700)?,
            }
            copy_dir(&from, &to, links)?;
            copy_metadata(&from, &to, &meta)?;
            continue;
        }
        if existing.is_some() {
            remove_any(&to)?;
        }
        copy_node(&from, &to, &meta, links)?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).context(|| format!("stat {}", path.display()))?;
    if meta.is_dir() {
        remove_tree(path)
    } else {
        std::fs::remove_file(path).context(|| format!("remove {}", path.display()))
    }
}

/// Copies one non-directory (a hard link of one copied before stays a hard link).
fn copy_node(
    from: &Path,
    to: &Path,
    meta: &std::fs::Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if meta.nlink() > 1 && !ft.is_symlink() {
        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            return std::fs::hard_link(first, to)
                .context(|| format!("link {} to {}", to.display(), first.display()));
        }
        links.insert((meta.dev(), meta.ino()), to.to_path_buf());
    }
    if ft.is_symlink() {
        let target = std::fs::read_link(from).context(|| format!("readlink {}", from.display()))?;
        std::os::unix::fs::symlink(&target, to).context(|| format!("symlink {}", to.display()))?;
    } else if ft.is_file() {
        let mut src = std::fs::File::open(from).context(|| format!("open {}", from.display()))?;
        let mut dst = crate::hostfs::open(
            to,
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC),
        )
        .context(|| format!("create {}", to.display()))?;
        std::io::copy(&mut src, &mut dst).context(|| format!("copy to {}", to.display()))?;
    } else {
        let kind = if ft.is_char_device() {
            nix::sys::stat::SFlag::S_IFCHR
        } else if ft.is_block_device() {
            nix::sys::stat::SFlag::S_IFBLK
        } else if ft.is_fifo() {
            nix::sys::stat::SFlag::S_IFIFO
        } else {
            nix::sys::stat::SFlag::S_IFSOCK
        };
        nix::sys::stat::mknod(
            to,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            meta.rdev(),
        )
        .context(|| format!("mknod {}", to.display()))?;
    }
    copy_metadata(from, to, meta)
}

/// Owner, mode, xattrs and times of `from` onto `to` (never following a symlink).
fn copy_metadata(from: &Path, to: &Path, meta: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .context(|| format!("chown {}", to.display()))?;
    if !meta.file_type().is_symlink() {
        // After chown, which clears the setuid bits.
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .context(|| format!("chmod {}", to.display()))?;
    }
    for name in xattr_list(from) {
        if name == "trusted.overlay.opaque" {
            continue;
        }
        if let Some(value) = xattr_get(from, &name) {
            xattr_set(to, &name, &value)?;
        }
    }
    let times = [
        nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
        nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        None,
        to,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .context(|| format!("set times of {}", to.display()))
}

fn cpath(path: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()
}

/// The names of `path`'s xattrs (not following a symlink); none on any error.
fn xattr_list(path: &Path) -> Vec<String> {
    let Some(p) = cpath(path) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; 4096];
    // SAFETY: `p` is a valid C string and `buf` is writable for its length.
    let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf.truncate(n as usize);
    buf.split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| String::from_utf8(n.to_vec()).ok())
        .collect()
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = cpath(path)?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: both strings are valid C strings; `buf` is writable for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let (Some(p), Ok(n)) = (cpath(path), std::ffi::CString::new(name)) else {
        return Ok(());
    };
    // SAFETY: both strings are valid C strings; `value` is readable for its length.
    let ret = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    // A filesystem without that namespace (e.g. no security.* on the copy's target) keeps
    // the copy usable; anything else is an error.
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return Ok(());
    }
    Err(e).context(|| format!("set xattr {name} on {}", path.display()))
}

/// Merges the image's config and the caller's overrides into `base`; the user is looked up in
/// the root filesystem at `rootfs` (already made) when given by name.
pub(crate) fn merge_spec(
    mut base: Spec,
    image: &ImageDefaults,
    opts: &ImageRunOptions,
    rootfs: &Path,
) -> Result<Spec> {
    let mut process = base.process().clone().unwrap_or_default();
    let entrypoint = opts.entrypoint.clone().unwrap_or(image.entrypoint.clone());
    let cmd = match (&opts.args, &opts.entrypoint) {
        (Some(args), _) => args.clone(),
        // docker: a new entrypoint drops the image's Cmd.
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if !args.is_empty() {
        process.set_args(Some(args));
    } else if opts.base_spec.is_none() {
        return Err(Error::config(
            "process.args",
            "the image has no Entrypoint or Cmd, and no command was given",
        ));
    }
    let mut env = process.env().clone().unwrap_or_default();
    for kv in image.env.iter().chain(&opts.env) {
        set_env(&mut env, kv);
    }
    process.set_env(Some(env));
    let cwd = match (&opts.cwd, &image.working_dir) {
        (Some(cwd), _) => Some(cwd.clone()),
        (None, Some(dir)) => Some(PathBuf::from(dir)),
        (None, None) => None,
    };
    if let Some(cwd) = cwd {
        if !cwd.is_absolute() {
            return Err(Error::config(
                "process.cwd",
                format!("{} is not absolute", cwd.display()),
            ));
        }
        process.set_cwd(cwd);
    }
    if let Some(user) = opts.user.as_ref().or(image.user.as_ref()) {
        let resolved = resolve_user(rootfs, user)?;
        let mut u = process.user().clone();
        u.set_uid(resolved.uid);
        u.set_gid(resolved.gid);
        u.set_additional_gids((!resolved.groups.is_empty()).then_some(resolved.groups));
        process.set_user(u);
    }
    base.set_process(Some(process));
    Ok(base)
}

/// Sets `KEY=VALUE` in `env`, replacing an entry of the same key.
fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(kv.to_string());
}

/// A user resolved to ids.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Resolves `user` (`name`, `uid`, with `:group` or `:gid`) against the image at `rootfs`.
pub(crate) fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let root = open_dir(rootfs)?;
    let passwd = read_image_file(root.as_fd(), "etc/passwd")?;
    let group = read_image_file(root.as_fd(), "etc/group")?;
    resolve_user_in(user, passwd.as_deref(), group.as_deref())
}

fn resolve_user_in(user: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ResolvedUser> {
    let field = "process.user";
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(Error::config(field, format!("malformed user {user:?}")));
    }
    // name:x:uid:gid:...
    let users: Vec<Vec<&str>> = passwd
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => users.iter().find(|f| f[0] == u),
    };
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(f)) => f[2]
            .parse()
            .map_err(|_| Error::config(field, format!("bad uid for {u:?} in /etc/passwd")))?,
        (Err(_), None) => {
            return Err(Error::config(
                field,
                format!("no user {u:?} in the image's /etc/passwd"),
            ))
        }
    };
    let groups: Vec<Vec<&str>> = group
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::config(field, format!("no group {g:?} in the image's /etc/group"))
                })?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    // Supplementary groups: those listing the user by name (only without an explicit group,
    // as docker does).
    let mut supplementary = Vec::new();
    if let (None, Some(name)) = (g, entry.map(|f| f[0])) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or_default();
            if members.split(',').any(|m| m == name) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !supplementary.contains(&id) {
                        supplementary.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        groups: supplementary,
    })
}

/// Reads a file of the image (`None` when it does not exist): resolved inside the root,
/// without magic links, opened non-blocking, a regular file, at most
/// [`MAX_IMAGE_FILE_BYTES`].
fn read_image_file(root: BorrowedFd<'_>, path: &str) -> Result<Option<String>> {
    let shown = || format!("read the image's /{path}");
    let fd = match husk_init::sys::open_in_root(
        root,
        Path::new(path),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context(shown),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().context(shown)?;
    if !meta.is_file() {
        return Err(Error::config(
            "process.user",
            format!("the image's /{path} is not a regular file"),
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_IMAGE_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .context(shown)?;
    if data.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(Error::config(
            "process.user",
            format!("the image's /{path} is larger than {MAX_IMAGE_FILE_BYTES} bytes"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice,bob\nalice:x:1001:\nwheel:x:10:alice\n";

    fn resolve(user: &str) -> Result<ResolvedUser> {
        resolve_user_in(user, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn user_forms() {
        let alice = resolve("alice").unwrap();
        assert_eq!((alice.uid, alice.gid), (1000, 1001));
        assert_eq!(alice.groups, vec![50, 10]);
        let r = resolve("1000").unwrap();
        assert_eq!((r.uid, r.gid, r.groups.len()), (1000, 1001, 2));
        let r = resolve("alice:staff").unwrap();
        assert_eq!((r.uid, r.gid, r.groups.len()), (1000, 50, 0));
        let r = resolve("4242:77").unwrap();
        assert_eq!((r.uid, r.gid), (4242, 77));
        // A numeric uid unknown to the image gets gid 0.
        assert_eq!(resolve("4242").unwrap().gid, 0);
        assert!(resolve("mallory")
            .unwrap_err()
            .to_string()
            .contains("mallory"));
        assert!(resolve("alice:nogroup")
            .unwrap_err()
            .to_string()
            .contains("nogroup"));
        assert!(resolve(":1").is_err());
        assert!(resolve("1:").is_err());
    }

    #[test]
    fn env_override_replaces_by_key() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=3");
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn default_spec_parses() {
        let spec = default_spec();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
    }
}
