//! The public engine: [`Runtime`] (a state root) and [`Container`] handles.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroups::{CgroupDriver, CgroupManager};
use crate::child::{Child, TakenOrphan};
use crate::config::{ConsoleDest, ContainerConfig, CreateOptions};
use crate::error::{Context, Error, Result};
use crate::image_container::{self, ImageRunOptions, PrivateBundle};
use crate::spawn::{self, kill_all, oci_state, state_json};
use crate::state::{OciState, Record, StateDir, Status};
use crate::stdio::Pipes;

/// The image store's default root (the CLI's `--store`).
pub const DEFAULT_STORE: &str = "/var/lib/husk";

/// Where containers' state lives, which binary serves as their init, and where the image store
/// is. Made by [`Runtime::new`] or, with more settings, [`Runtime::builder`].
///
/// Cloning is cheap; a clone works on the same state root and store.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    init_binary: PathBuf,
    store: PathBuf,
    cgroup_parent: Option<PathBuf>,
    cgroup_driver: CgroupDriver,
}

/// Settings of a [`Runtime`]: state root, image store, cgroup parent, init binary.
///
/// ```no_run
/// let runtime = husk::Runtime::builder()
///     .state_root("/run/my-app")
///     .store("/var/lib/my-app/images")
///     .cgroup_parent("/my-app")
///     .build();
/// # let _ = runtime;
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    runtime: Runtime,
}

impl RuntimeBuilder {
    /// Where containers' state lives (default `/run/husk`, the CLI's `--root`).
    pub fn state_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.runtime.root = root.into();
        self
    }

    /// The image store's root directory (default [`DEFAULT_STORE`]).
    pub fn store(mut self, store: impl Into<PathBuf>) -> Self {
        self.runtime.store = store.into();
        self
    }

    /// The cgroup under which containers made from images or specs, and
    /// [`Runtime::execute`]'s, get their own (`<parent>/<id>`) when their spec names none.
    /// A bundle's config.json keeps its own `cgroupsPath`.
    pub fn cgroup_parent(mut self, parent: impl Into<PathBuf>) -> Self {
        self.runtime.cgroup_parent = Some(parent.into());
        self
    }

    /// Which cgroup manager makes the cgroups of containers created from now on (default
    /// cgroupfs; [`CgroupDriver::Systemd`] is the CLI's `--systemd-cgroup`). Existing containers
    /// keep the driver they were created with.
    pub fn cgroup_driver(mut self, driver: CgroupDriver) -> Self {
        self.runtime.cgroup_driver = driver;
        self
    }

    /// The init binary (see [`Runtime::with_init_binary`]; default `/proc/self/exe`).
    pub fn init_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.runtime.init_binary = binary.into();
        self
    }

    /// The runtime.
    pub fn build(self) -> Runtime {
        self.runtime
    }
}

impl Runtime {
    /// A runtime keeping state under `root` (husk's CLI default is `/run/husk`), with the image
    /// store at [`DEFAULT_STORE`].
    ///
    /// The init is `/proc/self/exe`: a program embedding husk must call
    /// [`husk::init_if_requested`](crate::init_if_requested) first thing in `main`, or point
    /// [`Runtime::with_init_binary`] at the `husk` binary.
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            init_binary: PathBuf::from("/proc/self/exe"),
            store: PathBuf::from(DEFAULT_STORE),
            cgroup_parent: None,
            cgroup_driver: CgroupDriver::Cgroupfs,
        }
    }

    /// A builder, starting from the defaults of [`Runtime::new`]`("/run/husk")`.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            runtime: Runtime::new("/run/husk"),
        }
    }

    /// Uses `binary` (a husk binary; a path, not looked up in `PATH`) as the container init.
    ///
    /// Whichever binary serves as the init, it runs from a read-only view of the file (or a
    /// sealed copy), never from the file itself: a container process cannot write to it
    /// through `/proc/<pid>/exe` (CVE-2019-5736).
    pub fn with_init_binary(mut self, binary: impl Into<PathBuf>) -> Runtime {
        self.init_binary = binary.into();
        self
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image store's root directory.
    pub fn store_root(&self) -> &Path {
        &self.store
    }

    /// Creates container `id` from the bundle at `bundle`: on return it is `created`, its init
    /// waiting for [`Container::start`].
    pub fn create(&self, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<Container> {
        crate::state::validate_id(id)?;
        let config = ContainerConfig::load(bundle, opts)?;
        Self::check_console(&config, opts)?;
        crate::child::reap_orphans();
        let dir = StateDir::create(&self.root, id)?;
        self.spawn(id, dir, config, opts)
    }

    fn check_console(config: &ContainerConfig, opts: &CreateOptions) -> Result<()> {
        if config.terminal && opts.console.is_none() {
            return Err(Error::config(
                "process.terminal",
                "a terminal needs a console socket (--console-socket) to send it to",
            ));
        }
        Ok(())
    }

    fn spawn(
        &self,
        id: &str,
        dir: StateDir,
        config: ContainerConfig,
        opts: &CreateOptions,
    ) -> Result<Container> {
        let console = opts.console.as_ref().filter(|_| config.terminal);
        let io = spawn::Io {
            console,
            stdio: &opts.stdio,
        };
        let (record, spawned) =
            spawn::create(&self.init_binary, id, dir, config, io, self.cgroup_driver)?;
        Ok(Container {
            dir: self.root.join(id),
            record,
            init: spawned.child,
            init_binary: self.init_binary.clone(),
            console: spawned.console,
            pipes: spawned.pipes,
            creating_elsewhere: false,
        })
    }

    /// Creates container `id` from an in-memory spec. husk writes it to a private bundle
    /// directory under the state root, removed when the container is deleted. `root.path` must
    /// be absolute (there is no bundle for a relative one to be relative to).
    pub fn create_from_spec(
        &self,
        id: &str,
        spec: &Spec,
        opts: &CreateOptions,
    ) -> Result<Container> {
        crate::state::validate_id(id)?;
        let root_path = spec.root().as_ref().map(|r| r.path().clone());
        if !root_path.as_deref().is_some_and(Path::is_absolute) {
            return Err(Error::config(
                "root.path",
                "a spec given without a bundle needs an absolute root path",
            ));
        }
        let mut spec = spec.clone();
        self.default_cgroup(&mut spec, id);
        self.create_private(id, opts, |bundle| {
            bundle.write_spec(&spec)?;
            Ok(())
        })
    }

    /// Creates container `id` from `image` of the store (see [`crate::ImageRunOptions`] for
    /// what the spec is made of). The container gets its own writable layer over the image, in
    /// a private bundle under the state root; deleting the container removes it, and releases
    /// the image: the store refuses to remove an image while a container uses it.
    pub fn create_from_image(
        &self,
        id: &str,
        image: &str,
        image_opts: &ImageRunOptions,
        opts: &CreateOptions,
    ) -> Result<Container> {
        crate::state::validate_id(id)?;
        let store = self.open_store()?;
        // Fails early, before anything is made, for an unknown image.
        store.image(image)?;
        self.create_private(id, opts, |bundle| {
            let lease = bundle.dir.to_string_lossy().into_owned();
            bundle.set_lease(store.root(), &lease)?;
            // The lease ends with the container, which no reboot outlives: no disk sync.
            let image = store.acquire_for_boot(image, &lease)?;
            let lower = image_container::ImageLower {
                layers: if image.layers.is_empty() {
                    vec![image.rootfs.clone()]
                } else {
                    image.layers.clone()
                },
                defaults: image_container::ImageDefaults::from_config(&image.config),
            };
            self.write_layered(id, bundle, &lower, image_opts)
        })
    }

    /// Creates container `id` with a writable layer over the root filesystem directory
    /// `rootfs` (which is never written: overlayfs, or a copy), merged with `image_opts` like
    /// an image without a config. For root filesystems kept outside the image store.
    pub fn create_from_rootfs(
        &self,
        id: &str,
        rootfs: &Path,
        image_opts: &ImageRunOptions,
        opts: &CreateOptions,
    ) -> Result<Container> {
        crate::state::validate_id(id)?;
        let rootfs = std::fs::canonicalize(rootfs)
            .map_err(|e| Error::config("rootfs", format!("{}: {e}", rootfs.display())))?;
        if !rootfs.is_dir() {
            return Err(Error::config(
                "rootfs",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        let lower = image_container::ImageLower {
            layers: vec![rootfs],
            defaults: Default::default(),
        };
        self.create_private(id, opts, |bundle| {
            self.write_layered(id, bundle, &lower, image_opts)
        })
    }

    /// The writable layer and config.json of a container from an image.
    fn write_layered(
        &self,
        id: &str,
        bundle: &mut PrivateBundle,
        lower: &image_container::ImageLower,
        image_opts: &ImageRunOptions,
    ) -> Result<()> {
        bundle.make_writable_layer(lower, image_opts.writable_layer, image_opts.scratch_size)?;
        let base = image_opts
            .base_spec
            .clone()
            .unwrap_or_else(image_container::default_spec);
        let mut spec =
            image_container::merge_spec(base, &lower.defaults, image_opts, &bundle.rootfs())?;
        let mut root = spec.root().clone().unwrap_or_default();
        root.set_path(PathBuf::from("rootfs"));
        spec.set_root(Some(root));
        self.default_cgroup(&mut spec, id);
        if !image_opts.labels.is_empty() {
            let mut annotations = spec.annotations().clone().unwrap_or_default();
            for (k, v) in &image_opts.labels {
                annotations.insert(format!("{LABEL_PREFIX}{k}"), v.clone());
            }
            spec.set_annotations(Some(annotations));
        }
        bundle.write_spec(&spec)
    }

    /// `<cgroup parent>/<id>` for a spec that names no cgroup.
    fn default_cgroup(&self, spec: &mut Spec, id: &str) {
        let Some(parent) = &self.cgroup_parent else {
            return;
        };
        let mut linux = spec.linux().clone().unwrap_or_default();
        if linux.cgroups_path().is_none() {
            linux.set_cgroups_path(Some(parent.join(id)));
            spec.set_linux(Some(linux));
        }
    }

    /// Creates a container whose private bundle `fill` writes; undoes everything on failure.
    fn create_private(
        &self,
        id: &str,
        opts: &CreateOptions,
        fill: impl FnOnce(&mut PrivateBundle) -> Result<()>,
    ) -> Result<Container> {
        crate::child::reap_orphans();
        // The state directory first: its lock makes the id ours for the whole create.
        let dir = StateDir::create(&self.root, id)?;
        image_container::sweep(&self.root);
        let mut bundle = match PrivateBundle::create(&self.root, id) {
            Ok(b) => b,
            Err(e) => {
                let _ = dir.remove();
                return Err(e);
            }
        };
        let config = fill(&mut bundle).and_then(|()| {
            let config = ContainerConfig::load(&bundle.dir, opts)?;
            Self::check_console(&config, opts)?;
            Ok(config)
        });
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                let _ = bundle.remove();
                let _ = dir.remove();
                return Err(e);
            }
        };
        // On failure, spawn::create removes the state directory; the bundle is ours to remove.
        self.spawn(id, dir, config, opts).inspect_err(|_| {
            let _ = bundle.remove();
        })
    }

    fn open_store(&self) -> Result<crate::image::ImageStore> {
        Ok(crate::image::ImageStore::open(&self.store)?)
    }

    /// Installs an image into the store under `name` (see [`crate::image::ImageStore::install`]).
    pub fn install_image(
        &self,
        source: crate::image::ImageSource,
        name: &str,
        opts: &crate::image::InstallOptions,
    ) -> Result<crate::image::Image> {
        Ok(self.open_store()?.install(source, name, opts)?)
    }

    /// Pulls `reference` from its registry into the store (see
    /// [`crate::image::ImageStore::pull`]): `busybox` is `docker.io/library/busybox:latest`.
    #[cfg(feature = "registry")]
    pub fn pull_image(
        &self,
        reference: &str,
        opts: &crate::image::PullOptions,
    ) -> Result<crate::image::Image> {
        Ok(self.open_store()?.pull(reference, opts)?)
    }

    /// Every image in the store.
    pub fn images(&self) -> Result<Vec<crate::image::Image>> {
        Ok(self.open_store()?.images()?)
    }

    /// The image `name` (normalised as docker does: `busybox` is
    /// `docker.io/library/busybox:latest`).
    pub fn image(&self, name: &str) -> Result<crate::image::Image> {
        Ok(self.open_store()?.image(name)?)
    }

    /// Removes image `name` from the store; refused while a container uses it, unless `force`.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<()> {
        Ok(self.open_store()?.remove(name, force)?)
    }

    /// Opens an existing container.
    pub fn load(&self, id: &str) -> Result<Container> {
        let dir = StateDir::open(&self.root, id)?;
        let record = dir.load()?;
        Ok(Container {
            dir: dir.dir.clone(),
            record,
            init: None,
            init_binary: self.init_binary.clone(),
            console: None,
            pipes: Pipes::default(),
            creating_elsewhere: false,
        })
    }

    /// Opens an existing container without waiting for its lock: a snapshot for readers
    /// (`state`, `list`), which must never wait for a `create` or `delete` in progress. The state
    /// file is only ever replaced whole (rename), so the snapshot is consistent; a container
    /// still being created shows as [`Status::Creating`]. Operations on the handle take the lock.
    pub fn peek(&self, id: &str) -> Result<Container> {
        crate::state::validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let dir = self.root.join(id);
        let path = dir.join(crate::state::STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).context(|| format!("read {}", path.display())),
        };
        let record: Record = serde_json::from_slice(&text).map_err(|e| Error::Io {
            context: format!("parse {}", path.display()),
            source: std::io::Error::other(e),
        })?;
        let creating_elsewhere = record.pid.is_none() && !record.init_ready && held_by_writer(&dir);
        Ok(Container {
            dir,
            record,
            init: None,
            init_binary: self.init_binary.clone(),
            console: None,
            pipes: Pipes::default(),
            creating_elsewhere,
        })
    }

    /// The containers under the root whose label `key` is `value` (labels are annotations
    /// named [`LABEL_PREFIX`]`<key>`; see [`crate::ImageRunOptions::label`]), in id order.
    pub fn list_labeled(&self, key: &str, value: &str) -> Result<Vec<Container>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.label(key) == Some(value))
            .collect())
    }

    /// Every container under the root, in id order (snapshots, as [`Runtime::peek`]).
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context(|| format!("read {}", self.root.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(crate::state::STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids.iter().filter_map(|id| self.peek(id).ok()).collect())
    }
}

/// The annotation key prefix under which [`crate::ImageRunOptions::label`] keeps labels.
pub const LABEL_PREFIX: &str = "org.husk.label.";

/// Whether another process holds the lock of the container directory `dir` (a non-blocking
/// probe: readers never wait for it).
fn held_by_writer(dir: &Path) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let path = dir.join(crate::state::LOCK_FILE);
    let Ok(file) = crate::hostfs::open(&path, std::fs::OpenOptions::new().read(true)) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockSharedNonblock),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal (this number) ended it.
    Signaled(i32),
    /// The process was not our child, so its status could not be collected.
    Unknown,
}

impl ExitStatus {
    /// The shell convention: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => 255,
        }
    }

    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

/// `exit code 3`, `signal 9 (SIGKILL)`, `unknown status`: in the words of
/// `std::process::ExitStatus`.
impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled(n) => match Signal::try_from(n) {
                Ok(signal) => write!(f, "signal {n} ({})", signal.as_str()),
                Err(_) => write!(f, "signal {n}"),
            },
            ExitStatus::Unknown => f.write_str("unknown status (not a child of this process)"),
        }
    }
}

/// A handle on one container. It holds no lock: every operation locks, re-reads and acts.
///
/// Dropping a `Container` leaves the container as it is (the `husk create` command relies on
/// that): wrap it in a [`ContainerGuard`] ([`Container::guard`]) to have it force-deleted when
/// the guard is dropped. Either way, an init this handle started is reaped once it exits (see
/// [`Container::wait`]), never left a zombie of this program.
#[derive(Debug)]
pub struct Container {
    pub(crate) dir: PathBuf,
    pub(crate) record: Record,
    /// The init, when this handle created the container (it is then our child, reaped by
    /// [`Container::wait`] or [`Container::delete`], or after the handle is dropped by a later
    /// call; see `crate::child`).
    init: Option<Child>,
    init_binary: PathBuf,
    /// The pty master of a terminal container created with [`ConsoleDest::Keep`].
    console: Option<OwnedFd>,
    /// The caller's ends of the init's piped streams (see [`CreateOptions::stdio`]).
    pipes: Pipes,
    /// Seen by [`Runtime::peek`] before its init's pid was known, with the lock held by another
    /// process: a `create` in progress. (With the lock free, that create died: stopped.)
    creating_elsewhere: bool,
}

/// Force-deletes its container when dropped: kills it if it runs, reaps its init, removes its
/// cgroup and state. A `?` between create and delete then leaves nothing running.
///
/// ```no_run
/// # fn f(rt: &husk::Runtime, bundle: &std::path::Path) -> husk::Result<()> {
/// let mut c = rt.create("job", bundle, &Default::default())?.guard();
/// c.start()?; // on error, the guard deletes the created container
/// let status = c.wait()?;
/// c.delete()?; // or let the guard go out of scope
/// # let _ = status; Ok(()) }
/// ```
///
/// Errors of the delete on drop are ignored; call [`ContainerGuard::delete`] to see them.
#[derive(Debug)]
pub struct ContainerGuard {
    container: Option<Container>,
}

impl ContainerGuard {
    /// Deletes the container now (forcibly), reporting errors.
    pub fn delete(mut self) -> Result<()> {
        match self.container.take() {
            Some(c) => c.delete(true),
            None => Ok(()),
        }
    }

    /// Gives the container back without deleting it.
    pub fn into_inner(mut self) -> Container {
        self.container
            .take()
            .expect("a guard holds its container until dropped")
    }
}

impl std::ops::Deref for ContainerGuard {
    type Target = Container;
    fn deref(&self) -> &Container {
        self.container
            .as_ref()
            .expect("a guard holds its container until dropped")
    }
}

impl std::ops::DerefMut for ContainerGuard {
    fn deref_mut(&mut self) -> &mut Container {
        self.container
            .as_mut()
            .expect("a guard holds its container until dropped")
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(c) = self.container.take() {
            let _ = c.delete(true);
        }
    }
}

/// Sends one datagram to a notify socket path (`@name` is an abstract address).
fn send_notify(msg: &[u8], host: &Path) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let out = std::os::unix::net::UnixDatagram::unbound()?;
    let text = host.as_os_str().as_encoded_bytes();
    let addr = match text.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
        None => std::os::unix::net::SocketAddr::from_pathname(host)?,
    };
    out.send_to_addr(msg, &addr).map(drop)
}

/// The container's end of the notify socket, at `<state>/notify/notify.sock`.
fn bind_notify_socket(dir: &Path) -> Result<std::os::unix::net::UnixDatagram> {
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = std::os::unix::net::UnixDatagram::bind(&path)
        .context(|| format!("bind {}", path.display()))?;
    // The container's processes may run as any user.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .context(|| format!("chmod {}", path.display()))?;
    Ok(socket)
}

enum ReleaseError {
    NoInit,
    Failed(String),
    Io(std::io::Error),
}

/// Lets the init waiting on the exec fifo go, then waits until the fifo closes: the init
/// exec'd (success) or wrote why it could not before exiting.
fn release_init(fifo: &Path) -> std::result::Result<(), ReleaseError> {
    let open = |write: bool| {
        crate::hostfs::open(
            fifo,
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC),
        )
    };
    // Our read end only watches for the hang-up; it never reads before it.
    let watch = open(false).map_err(ReleaseError::Io)?;
    // Opened after `watch`, so that `watch` sees the hang-up when the last writer goes.
    let mut go = open(true).map_err(ReleaseError::Io)?;
    std::io::Write::write_all(&mut go, b"0").map_err(ReleaseError::Io)?;
    drop(go);
    let _ = std::fs::remove_file(fifo);
    // POLLHUP once no writer is left: the init's read-write descriptor closed.
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&watch),
        events: 0,
        revents: 0,
    };
    loop {
        // SAFETY: pfd is a valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n > 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(ReleaseError::Io(e));
        }
    }
    let mut words = String::new();
    let _ = std::io::Read::read_to_string(&mut &watch, &mut words);
    if words.starts_with('0') {
        // Our byte is still there: no init took it.
        return Err(ReleaseError::NoInit);
    }
    match words.as_str() {
        "" => Ok(()),
        msg => Err(ReleaseError::Failed(msg.to_string())),
    }
}

/// Options for [`Container::exec`].
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// Fds 3..3+N of the caller stay open in the process.
    pub preserve_fds: u32,
    /// Where the pty master goes when the process has a terminal (required then).
    pub console: Option<ConsoleDest>,
    /// A sub-cgroup of the container's cgroup to put the process in.
    pub sub_cgroup: Option<String>,
    /// Exec even if the container is paused.
    pub ignore_paused: bool,
    /// The process's stdin, stdout and stderr (ignored for a terminal process).
    pub stdio: crate::stdio::StdioConfig,
}

/// A process started in a container (its init, or one added by [`Container::exec`]).
#[derive(Debug)]
pub struct Process {
    pid: i32,
    /// Our child, held through a pidfd until reaped.
    child: Option<Child>,
    console: Option<OwnedFd>,
    pipes: Pipes,
}

impl Process {
    /// Its pid in husk's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master, when it has a terminal kept by the caller.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// The caller's ends of its piped streams.
    pub fn pipes(&mut self) -> &mut Pipes {
        &mut self.pipes
    }

    /// The pty master, left in place (so that [`Process::resize`] keeps working).
    pub fn console(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.console.as_ref().map(|fd| fd.as_fd())
    }

    /// Sets the window size of its terminal (the process gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let master = self.console.as_ref().ok_or_else(|| {
            Error::config("resize", "the process has no terminal kept by the caller")
        })?;
        husk_init::sys::set_window_size(master.as_fd(), rows, cols)
            .context(|| "set the terminal's window size".into())
    }

    /// Sends `signal` to it.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        nix::sys::signal::kill(Pid::from_raw(self.pid), signal)
            .context(|| format!("signal {signal} to {}", self.pid))
    }

    /// Waits for it to end; its status (the process that started it is its parent).
    ///
    /// While waiting, other processes that this program started through husk and whose
    /// handles were dropped are reaped: one of them may be what keeps this one alive.
    pub fn wait(&self) -> Result<ExitStatus> {
        match &self.child {
            Some(child) => child.wait().context(|| format!("wait for {}", self.pid)),
            None => wait_pid(self.pid, None),
        }
    }

    /// Its status if it has ended (then it is reaped), `None` while it runs; never blocks.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        match &self.child {
            Some(child) => child
                .try_wait()
                .context(|| format!("wait for {}", self.pid)),
            None => Ok(Some(ExitStatus::Unknown)),
        }
    }

    /// Waits at most `timeout` for it to end: `Ok(None)` when it is still running then.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        match &self.child {
            Some(child) => child
                .wait_timeout(Some(timeout))
                .context(|| format!("wait for {}", self.pid)),
            None => Ok(Some(ExitStatus::Unknown)),
        }
    }

    /// A pidfd of the process (readable once it has ended), to wait on many processes with
    /// `poll`/`epoll` without a thread each; then call [`Process::try_wait`] to reap it.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.child.as_ref().map(Child::pidfd)
    }
}

/// Dropping a `Process` neither kills nor waits for it. If it is still running, husk keeps its
/// pidfd and reaps it once it ends, at the next wait, create, exec or delete through the
/// library, so that it never stays a zombie of this program.
impl Drop for Process {
    fn drop(&mut self) {
        // The pidfd moves to husk's list of children to reap (see `crate::child`).
        drop(self.child.take());
    }
}

/// Waits for `pid`: its status when it is our child, else until it is gone (`start_time` tells
/// a recycled pid apart).
fn wait_pid(pid: i32, start_time: Option<u64>) -> Result<ExitStatus> {
    // A container this program created through another handle, since dropped.
    let child = match crate::child::take_orphan(pid, start_time) {
        Some(TakenOrphan::Ended(status)) => return Ok(status),
        Some(TakenOrphan::Running(child)) => Some(child),
        None => Child::watch(pid, start_time),
    };
    match child {
        Some(child) => child.wait().context(|| format!("wait for {pid}")),
        None => Ok(ExitStatus::Unknown),
    }
}

impl Container {
    /// This container, force-deleted when the returned guard is dropped.
    pub fn guard(self) -> ContainerGuard {
        ContainerGuard {
            container: Some(self),
        }
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The init's pid (in husk's pid namespace), while it lives.
    pub fn pid(&self) -> Option<i32> {
        self.record.pid
    }

    /// The bundle it was created from.
    pub fn bundle(&self) -> &Path {
        &self.record.bundle
    }

    /// When it was created, RFC 3339.
    pub fn created(&self) -> &str {
        &self.record.created
    }

    pub(crate) fn cgroup(&self) -> Option<CgroupManager> {
        self.record.cgroup.as_ref().map(CgroupManager::from_saved)
    }

    /// The container's label `key` (the annotation [`LABEL_PREFIX`]`<key>`).
    pub fn label(&self, key: &str) -> Option<&str> {
        self.record
            .annotations
            .get(&format!("{LABEL_PREFIX}{key}"))
            .map(String::as_str)
    }

    /// All the container's labels, by key.
    pub fn labels(&self) -> std::collections::BTreeMap<&str, &str> {
        self.record
            .annotations
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(LABEL_PREFIX)?, v.as_str())))
            .collect()
    }

    /// The current status, derived from the live process.
    pub fn status(&self) -> Status {
        if self.creating_elsewhere {
            return Status::Creating;
        }
        let cg = self.cgroup();
        self.record
            .status(&self.dir.join(crate::state::EXEC_FIFO), || {
                cg.is_some_and(|c| c.is_frozen().unwrap_or(false))
            })
    }

    /// The OCI state (plus runc's `rootfs`, `created`, `owner`).
    pub fn state(&self) -> OciState {
        oci_state(&self.record, self.status())
    }

    pub(crate) fn lock(&self) -> Result<StateDir> {
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        StateDir::open(root, &self.record.id)
    }

    /// Releases the init waiting on the exec fifo: it execs the container process.
    pub fn start(&mut self) -> Result<()> {
        let dir = self.lock()?;
        self.record = dir.load()?;
        let status = self.status();
        if status != Status::Created {
            return Err(self.wrong_state("start", status));
        }
        // Bound before the process runs, so that no READY=1 can be missed.
        let notify = match &self.record.notify_socket {
            Some(_) => Some(bind_notify_socket(&dir.notify_dir())?),
            None => None,
        };
        crate::fault::point("start.locked");
        let fifo = dir.fifo_path();
        release_init(&fifo).map_err(|e| match e {
            ReleaseError::NoInit => self.wrong_state("start", Status::Stopped),
            ReleaseError::Failed(msg) => Error::StartFailed(msg),
            ReleaseError::Io(e) => Error::Io {
                context: format!("start through {}", fifo.display()),
                source: e,
            },
        })?;
        crate::fault::point("start.released");
        if let (Some(socket), Some(host)) = (notify, &self.record.notify_socket) {
            self.forward_ready(&socket, host)?;
        }
        let state = state_json(&self.record, Status::Running);
        husk_init::hooks::run_hooks_warning("poststart", &self.record.hooks.poststart, &state);
        Ok(())
    }

    /// Waits for the container's READY=1 (while its init lives) and passes it to `host`.
    fn forward_ready(&self, socket: &std::os::unix::net::UnixDatagram, host: &Path) -> Result<()> {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .context(|| "notify socket timeout".into())?;
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let msg = &buf[..n];
                    if msg.split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                        return send_notify(msg, host)
                            .context(|| format!("notify {}", host.display()));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !self.record.init_alive() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e).context(|| "read notify socket".into()),
            }
        }
    }

    pub(crate) fn wrong_state(&self, op: &'static str, status: Status) -> Error {
        Error::WrongState {
            id: self.record.id.clone(),
            op,
            status: status.to_string(),
        }
    }

    /// Sends `signal` to the init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        let _dir = self.lock()?;
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.wrong_state("kill", status));
        }
        let pids = match (all, self.cgroup()) {
            (true, Some(cg)) => cg.pids()?,
            _ => self.record.pid.into_iter().collect(),
        };
        for pid in pids {
            match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).context(|| format!("signal {signal} to {pid}")),
            }
        }
        // Frozen processes cannot die: let a SIGKILL land (other signals wait for resume).
        if let Some(cg) = self.cgroup().filter(|_| status == Status::Paused) {
            if signal == Signal::SIGKILL {
                cg.thaw()?;
            }
        }
        Ok(())
    }

    /// Stops the container: SIGTERM to its init, and once `grace` has passed with the init
    /// still running, SIGKILL to every process of the container. Returns how the init ended
    /// (known to the process that created the container; see [`Container::wait`]). The container
    /// stays, stopped, until [`Container::delete`].
    pub fn stop(&self, grace: Duration) -> Result<ExitStatus> {
        if self.status() == Status::Stopped {
            return self.wait();
        }
        match self.kill(Signal::SIGTERM, false) {
            Ok(()) => {}
            // Ended in between.
            Err(Error::WrongState { .. }) => return self.wait(),
            Err(e) => return Err(e),
        }
        if let Some(status) = self.wait_timeout(grace)? {
            return Ok(status);
        }
        match self.kill(Signal::SIGKILL, true) {
            Ok(()) | Err(Error::WrongState { .. }) => {}
            Err(e) => return Err(e),
        }
        self.wait()
    }

    /// Unpacks the tar stream `archive` into the directory `dest` (absolute, created if
    /// missing) of the container's file system, as the container sees it (its mounts included).
    /// Owners and modes are kept.
    ///
    /// The work is done by a thread of this process that has joined the container's mount
    /// namespace (and nothing else): every path of the archive, and every symlink the container
    /// may have planted or swaps meanwhile, resolves in the container's root, never on the
    /// host. The container must be created or running.
    pub fn copy_in(&self, dest: &Path, archive: impl std::io::Read + Send) -> Result<()> {
        let dest = container_path("copy_in", dest)?;
        self.in_mount_namespace("copy into", move || {
            let mut archive = tar::Archive::new(archive);
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.set_overwrite(true);
            std::fs::DirBuilder::new().recursive(true).create(&dest)?;
            archive.unpack(&dest)
        })
    }

    /// Writes the file or directory `src` (absolute) of the container's file system, as the
    /// container sees it, to `out` as a tar stream (a directory with everything below it,
    /// named by its last component; symlinks are archived as links, never followed). Done like
    /// [`Container::copy_in`], from inside the container's mount namespace.
    pub fn copy_out(&self, src: &Path, out: impl std::io::Write + Send) -> Result<()> {
        let src = container_path("copy_out", src)?;
        self.in_mount_namespace("copy out of", move || {
            let name = src
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let mut builder = tar::Builder::new(out);
            builder.follow_symlinks(false);
            let meta = std::fs::symlink_metadata(&src)?;
            if meta.is_dir() {
                builder.append_dir_all(&name, &src)?;
            } else {
                builder.append_path_with_name(&src, &name)?;
            }
            builder.into_inner()?.flush()
        })
    }

    /// Runs `work` on a new thread that has joined the container's mount namespace.
    fn in_mount_namespace(
        &self,
        what: &str,
        work: impl FnOnce() -> std::io::Result<()> + Send,
    ) -> Result<()> {
        let status = self.status();
        let Some(pid) = self.record.pid.filter(|_| status != Status::Stopped) else {
            return Err(self.wrong_state("copy files of", Status::Stopped));
        };
        let ns_path = format!("/proc/{pid}/ns/mnt");
        let ns = std::fs::File::open(&ns_path).context(|| format!("open {ns_path}"))?;
        // The pid could have been reused between reading the record and the open.
        if !self.record.init_alive() {
            return Err(self.wrong_state("copy files of", Status::Stopped));
        }
        let context = format!("{what} container {}", self.record.id);
        std::thread::scope(|scope| {
            scope
                .spawn(move || -> std::io::Result<()> {
                    // A thread may enter another mount namespace once it no longer shares its
                    // root and working directory with the rest of the process; it ends after.
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)?;
                    nix::unistd::chdir("/")?;
                    work()
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the copying thread panicked")))
        })
        .context(|| context)
    }

    /// Pids of every process in the container.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match self.cgroup() {
            Some(cg) => Ok(cg.pids()?),
            None => Ok(self.record.pid.into_iter().collect()),
        }
    }

    /// Waits for the init to exit. Its status is known only to its parent (the process that
    /// created the container); others get [`ExitStatus::Unknown`].
    pub fn wait(&self) -> Result<ExitStatus> {
        match (&self.init, self.record.pid) {
            (Some(init), _) => init.wait().context(|| format!("wait for {}", init.pid())),
            (None, Some(pid)) => wait_pid(pid, self.record.pid_start_time),
            (None, None) => Ok(ExitStatus::Unknown),
        }
    }

    /// Waits at most `timeout` for the init to exit: `Ok(None)` if it still runs then. Like
    /// [`Container::wait`], only the creator learns the status.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let watched;
        let init = match (&self.init, self.record.pid) {
            (Some(init), _) => init,
            (None, Some(pid)) => match crate::child::take_orphan(pid, self.record.pid_start_time) {
                Some(TakenOrphan::Ended(status)) => return Ok(Some(status)),
                Some(TakenOrphan::Running(child)) => {
                    watched = child;
                    &watched
                }
                None => match Child::watch(pid, self.record.pid_start_time) {
                    Some(child) => {
                        watched = child;
                        &watched
                    }
                    None => return Ok(Some(ExitStatus::Unknown)),
                },
            },
            (None, None) => return Ok(Some(ExitStatus::Unknown)),
        };
        init.wait_timeout(Some(timeout))
            .context(|| format!("wait for {}", init.pid()))
    }

    /// The init's status if it has exited (reaping it), `None` while it runs; never blocks.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        self.wait_timeout(Duration::ZERO)
    }

    /// A pidfd of the init when this handle created the container (readable once it exits).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.init.as_ref().map(Child::pidfd)
    }

    /// The pty master of a terminal container created with [`ConsoleDest::Keep`].
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// The caller's ends of the init's piped streams (see [`CreateOptions::stdio`]).
    pub fn pipes(&mut self) -> &mut Pipes {
        &mut self.pipes
    }

    /// The container's config.json as it was at create time.
    pub fn spec(&self) -> Result<Spec> {
        let path = self.dir.join(crate::spawn::SPEC_COPY);
        let text = std::fs::read(&path).context(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| Error::Bundle {
            path,
            reason: e.to_string(),
        })
    }

    /// Runs `process` inside the running container: its namespaces, its cgroup, its seccomp
    /// profile; returns once the process has exec'd.
    pub fn exec(
        &self,
        process: &oci_spec::runtime::Process,
        opts: &ExecOptions,
    ) -> Result<Process> {
        let status = self.status();
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            _ => return Err(self.wrong_state("exec in", status)),
        }
        crate::child::reap_orphans();
        let terminal = process.terminal().unwrap_or(false);
        if terminal && opts.console.is_none() {
            return Err(Error::config(
                "process.terminal",
                "a terminal needs a console socket (--console-socket) to send it to",
            ));
        }
        let pid = self.record.pid.unwrap_or(0);
        let spec = self.spec()?;
        let boot = crate::config::exec_bootstrap(
            process,
            &spec,
            pid,
            &self.record.namespaces,
            opts.preserve_fds,
        )?;
        let cgroup = match (self.cgroup(), &opts.sub_cgroup) {
            (Some(cg), Some(sub)) => Some(cg.sub_cgroup(sub)?),
            (cg, None) => cg,
            (None, Some(_)) => None,
        };
        let spawned = spawn::exec(
            &self.init_binary,
            &self.dir,
            &self.record,
            &boot,
            // exec does not need the bundle, which may be gone by now.
            Path::new("/"),
            cgroup.as_ref(),
            spawn::Io {
                console: opts.console.as_ref().filter(|_| terminal),
                stdio: &opts.stdio,
            },
        )?;
        Ok(Process {
            pid: spawned.pid,
            child: spawned.child,
            console: spawned.console,
            pipes: spawned.pipes,
        })
    }

    /// Deletes the container. Without `force` it must be stopped or created; with `force`
    /// a running container is killed first.
    pub fn delete(mut self, force: bool) -> Result<()> {
        let dir = self.lock()?;
        let status = self.status();
        match status {
            Status::Stopped | Status::Created | Status::Creating => {}
            Status::Running | Status::Paused if force => {}
            _ => return Err(self.wrong_state("delete", status)),
        }
        if status != Status::Stopped {
            if let Some(pid) = self.record.pid {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        // Reaped here when this program created it: it must not stay our zombie.
        let init = self.take_init();
        if let Some(cg) = self.cgroup() {
            // Everything in the cgroup is ours only if husk made it; in a joined one, others
            // (a host service, another container) may live. Without a pid namespace of its own,
            // the container's processes are not bound to its init, so they are found by cgroup.
            let whole_cgroup =
                cg.created_leaf() || !self.record.namespaces.iter().any(|n| n == "pid");
            if whole_cgroup {
                kill_all(&cg);
            } else if status != Status::Stopped {
                kill_descendants(self.record.pid);
            }
            // A frozen process cannot die: thaw after the SIGKILLs so they land.
            if status == Status::Paused {
                cg.thaw()?;
            }
            reap_killed(init.as_ref());
            self.wait_gone(whole_cgroup.then_some(&cg));
            crate::fault::point("delete.killed");
            cg.destroy()?;
            crate::fault::point("delete.cgroup-removed");
        }
        reap_killed(init.as_ref());
        if let Some(init) = init {
            init.discard();
        }
        let state = state_json(&self.record, Status::Stopped);
        let poststop = self.record.hooks.poststop.clone();
        // A bundle husk made (from an image or a spec) goes with the container: its mounts, its
        // writable layer, its lease on the image.
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        let bundle = image_container::is_private_bundle(root, &self.record.bundle)
            .then(|| image_container::remove(&self.record.bundle));
        dir.remove()?;
        husk_init::hooks::run_hooks_warning("poststop", &poststop, &state);
        bundle.unwrap_or(Ok(()))
    }

    /// The init, when this program created it and has not reaped it yet: from this handle, or
    /// from one dropped earlier.
    fn take_init(&mut self) -> Option<Child> {
        if let Some(init) = self.init.take() {
            return Some(init);
        }
        match crate::child::take_orphan(self.record.pid?, self.record.pid_start_time)? {
            TakenOrphan::Running(child) => Some(child),
            TakenOrphan::Ended(_) => None,
        }
    }

    /// Waits (briefly) until the init, and the cgroup's processes if given, are gone.
    fn wait_gone(&self, cg: Option<&CgroupManager>) {
        for _ in 0..500 {
            let init_gone = !self.record.init_alive();
            if init_gone && cg.is_none_or(|cg| cg.pids().map(|p| p.is_empty()).unwrap_or(true)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A path inside the container for `op`: absolute, made of normal components.
fn container_path(op: &str, path: &Path) -> Result<PathBuf> {
    if !path.is_absolute() {
        return Err(Error::config(
            op,
            format!("{} is not absolute", path.display()),
        ));
    }
    Ok(path.to_path_buf())
}

/// Reaps a SIGKILLed init of ours. Not forever: a frozen one dies only once thawed (it is
/// reaped later then, see `crate::child`).
fn reap_killed(init: Option<&Child>) {
    if let Some(init) = init {
        let _ = init.wait_timeout(Some(Duration::from_secs(5)));
    }
}

/// SIGKILLs the init and every process descended from it (found through /proc by parent pid):
/// the container's processes when its cgroup may also hold others'.
fn kill_descendants(init: Option<i32>) {
    let Some(init) = init else { return };
    let mut parents = std::collections::HashMap::<i32, Vec<i32>>::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Field 4, after the command name, which may itself hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.entry(ppid).or_default().push(pid);
        }
    }
    let mut pending = vec![init];
    while let Some(pid) = pending.pop() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        pending.extend(parents.remove(&pid).unwrap_or_default());
    }
}

use std::os::unix::fs::OpenOptionsExt;
