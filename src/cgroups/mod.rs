//! Cgroup manager for containers: runc's cgroupfs driver, and its systemd driver
//! ([`CgroupDriver::Systemd`], see [`systemd`]) behind the same [`CgroupManager`].
//!
//! The host's cgroup mode is detected at run time by `statfs` of `/sys/fs/cgroup`: a cgroup2
//! filesystem there is v2 ([`CgroupMode::Unified`]); a tmpfs is v1, [`CgroupMode::Hybrid`] when
//! a cgroup2 hierarchy is also mounted at `/sys/fs/cgroup/unified`, [`CgroupMode::Legacy`] if not.
//! Controller operations use the `cgroups-rs` crate; where it lacks something, or hides errors,
//! the file is written directly and the code says so.
//!
//! On v2, `linux.resources.devices` becomes an eBPF device filter attached to the cgroup
//! ([`attach_v2_device_filter`]); v1-style values are converted as runc documents
//! ([`cpu_shares_to_weight`], [`blkio_weight_to_io_weight`], [`memory_swap_to_v2`]). A field set
//! to a value the host cannot apply is an error naming the field, never skipped silently.
//!
//! # Where the cgroup goes (`linux.cgroupsPath`)
//!
//! Same rules as runc 1.1's cgroupfs driver (checked by running runc 1.1.5 on a v1 hybrid host):
//!
//! * an **absolute** path is taken relative to the root of every hierarchy:
//!   `/a/b` → `/sys/fs/cgroup/memory/a/b`, `/sys/fs/cgroup/cpu/a/b`, ...
//! * a **relative** path is taken relative to the cgroup the runtime itself is in, looked up per
//!   hierarchy in `/proc/self/cgroup` (so it can differ between hierarchies);
//! * **no** path (or an empty one) is the relative path `<container id>`.
//!
//! The path is cleaned lexically first; `..` cannot climb above its start. A path that resolves to
//! a hierarchy root or to the runtime's own cgroup is refused. In hybrid mode the container also
//! joins the matching cgroup in the cgroup2 hierarchy (as runc does, so that the `0::` line of
//! `/proc/<pid>/cgroup` matches), unless that hierarchy is not writable; no resources are set
//! there. Named v1 hierarchies other than `name=systemd` are left alone.
//!
//! # Lifetime
//!
//! [`CgroupManager::create`] makes the directories (remembering which ones it made) and applies
//! the resources; joining a cgroup that already exists is fine. [`CgroupManager::destroy`] removes
//! the container's cgroup (with any sub-cgroups the container made) and the parent directories
//! that `create` made. Like runc, it removes the container's cgroup even when it existed before
//! `create` (joined rather than created): the cgroup belongs to the container from then on.
//! Persist [`CgroupManager::saved`] *after* `create` so that a later `destroy` (from
//! [`CgroupManager::from_saved`]) knows which parents to remove.
//!
//! # Drivers
//!
//! [`CgroupManager::with_driver`] picks the driver; the saved record keeps the choice (its
//! `systemd` field), so later commands use it without being told again, as runc's do. With the
//! systemd driver the cgroup is a transient systemd unit: `create` prepares it, the first
//! [`CgroupManager::add_process`] starts it with that process, `update` and `destroy` go
//! through systemd too, and everything else (freezing, stats, pids, the resource files) works on
//! the delegated cgroup directory exactly as with cgroupfs. The cgroupfs path makes no D-Bus
//! connection and starts no thread.

mod convert;
mod devices_v2;
pub use devices_v2::apply as attach_v2_device_filter;
mod error;
#[cfg(test)]
mod fake_v2_tests;
mod fsio;
mod oom;
mod path;
mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::Controller;
use cgroups_rs::FreezerState;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use convert::{blkio_weight_to_io_weight, cpu_shares_to_weight, memory_swap_to_v2};
pub use error::CgroupError;
pub use oom::{OomWakeup, OomWatch};
pub use path::{clean_path, parse_mountinfo, parse_proc_cgroup, CgroupMount, ProcCgroupEntry};
pub use stats::{
    BlkioEntry, BlkioStats, CgroupStats, CpuStats, CpusetStats, HugetlbStats, MemoryStats,
    MemoryUsage, PidsStats,
};

/// Where the cgroup filesystems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The cgroup2 mount point in hybrid mode.
pub const HYBRID_UNIFIED_ROOT: &str = "/sys/fs/cgroup/unified";

/// How long [`CgroupManager::destroy`] retries a busy cgroup while its last tasks exit.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long freezing or thawing may take.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The cgroup layout of the host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CgroupMode {
    /// cgroup v1 only.
    Legacy,
    /// cgroup v1 controllers plus an (almost controller-less) cgroup2 hierarchy.
    Hybrid,
    /// cgroup v2 only.
    Unified,
}

/// Detects the cgroup mode of the host from the filesystem types at [`CGROUP_ROOT`].
pub fn detect_mode() -> Result<CgroupMode, CgroupError> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let fs_type = |path: &str| {
        statfs(path)
            .map(|s| s.filesystem_type())
            .map_err(|errno| CgroupError::Detect {
                path: PathBuf::from(path),
                source: io::Error::from(errno),
            })
    };
    let root = fs_type(CGROUP_ROOT)?;
    if root == CGROUP2_SUPER_MAGIC {
        Ok(CgroupMode::Unified)
    } else if root == TMPFS_MAGIC {
        let hybrid = matches!(fs_type(HYBRID_UNIFIED_ROOT), Ok(t) if t == CGROUP2_SUPER_MAGIC);
        Ok(if hybrid {
            CgroupMode::Hybrid
        } else {
            CgroupMode::Legacy
        })
    } else {
        Err(CgroupError::UnknownFilesystem {
            path: PathBuf::from(CGROUP_ROOT),
            #[allow(clippy::useless_conversion)] // the magic's type differs between libcs
            magic: i64::from(root.0),
        })
    }
}

/// Which cgroup manager makes the container's cgroup (runc's `--systemd-cgroup` picks systemd).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupDriver {
    /// husk writes the cgroup filesystem itself.
    #[default]
    Cgroupfs,
    /// systemd makes the cgroup as a transient unit through its D-Bus API.
    Systemd,
}

/// The container's cgroup in one hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SavedHierarchy {
    /// v1 controllers of the hierarchy (`name=systemd` for the named one); empty for cgroup2.
    pub controllers: Vec<String>,
    /// `true` for the cgroup2 hierarchy.
    pub unified: bool,
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The cgroup's path in the hierarchy, as `/proc/<pid>/cgroup` shows it.
    pub path: PathBuf,
    /// The cgroup's directory.
    pub dir: PathBuf,
    /// Directories that `create` made, outermost first (the cgroup's own last, if it made it).
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// The optional hybrid-mode cgroup2 hierarchy was not writable and is not used.
    #[serde(default)]
    pub skipped: bool,
}

/// What is needed to manage a container's cgroups again later; kept in the container's state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SavedCgroup {
    /// v1, hybrid or v2, as detected at create.
    pub mode: CgroupMode,
    /// See [`CgroupManager::path`].
    pub path: PathBuf,
    /// Each hierarchy's directory, with what `create` made there.
    pub hierarchies: Vec<SavedHierarchy>,
    /// The systemd unit, when the systemd driver made the cgroup (absent with cgroupfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::SystemdUnit>,
}

/// Manages one container's cgroups. Clones share state (which directories were created).
#[derive(Clone, Debug)]
pub struct CgroupManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mode: CgroupMode,
    path: PathBuf,
    /// Only the `created` / `skipped` fields change, under this lock.
    hierarchies: Mutex<Vec<SavedHierarchy>>,
    /// Snapshot of the hierarchies without the mutable fields, for lock-free lookups.
    layout: Vec<SavedHierarchy>,
    /// With the systemd driver: the unit, and how to reach systemd.
    systemd: Option<SystemdState>,
}

/// The systemd driver's side of a manager.
#[derive(Debug)]
struct SystemdState {
    unit: systemd::SystemdUnit,
    /// For the unit's description (empty when restored from a saved record).
    container_id: String,
    /// Connected on first use: the cgroupfs path never gets here.
    bus: std::sync::OnceLock<systemd::Bus>,
    /// Properties from `org.systemd.property.*` annotations, for the start.
    extra: Mutex<Vec<systemd::Property>>,
    /// Set by `create`: the unit to start with the first process added, and the resources to
    /// write to its cgroup then.
    pending: Mutex<Option<PendingStart>>,
}

#[derive(Debug)]
struct PendingStart {
    props: Vec<systemd::Property>,
    resources: Option<LinuxResources>,
}

impl SystemdState {
    fn bus(&self) -> Result<&systemd::Bus, CgroupError> {
        if let Some(bus) = self.bus.get() {
            return Ok(bus);
        }
        let bus = systemd::Bus::connect()?;
        Ok(self.bus.get_or_init(|| bus))
    }
}

/// Where the cgroup code reports what it ignores or finds odd (see [`set_warning_sink`]).
static WARNING_SINK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sends the cgroup code's warnings (ignored deprecated settings, a non-empty cgroup joined at
/// create) to `sink` instead of stderr; the first call wins.
pub fn set_warning_sink(sink: fn(&str)) {
    let _ = WARNING_SINK.set(sink);
}

fn warn(msg: &str) {
    match WARNING_SINK.get() {
        Some(sink) => sink(msg),
        None => eprintln!("husk: warning: {msg}"),
    }
}

fn is_permission_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// Removes an empty cgroup directory, retrying while it is busy (tasks still exiting).
fn remove_cgroup_dir(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

impl CgroupManager {
    /// Resolves `linux.cgroupsPath` (`None` → the container id, relative to the runtime's own
    /// cgroup; see the [module docs](self)) for a container; detects v1 / hybrid / v2 at run time.
    /// Nothing is created yet.
    pub fn new(cgroups_path: Option<&Path>, container_id: &str) -> Result<Self, CgroupError> {
        let mode = detect_mode()?;
        let requested = path::requested_path(cgroups_path, container_id)?;
        let mountinfo = fsio::read(Path::new("/proc/self/mountinfo"))?;
        let own = fsio::read(Path::new("/proc/self/cgroup"))?;
        let hierarchies = path::resolve(
            &requested,
            mode,
            &path::parse_mountinfo(&mountinfo),
            &path::parse_proc_cgroup(&own),
        )?;
        let primary = hierarchies
            .iter()
            .find(|h| h.unified)
            .unwrap_or(&hierarchies[0])
            .path
            .clone();
        Ok(Self::from_saved(&SavedCgroup {
            mode,
            path: primary,
            hierarchies,
            systemd: None,
        }))
    }

    /// Like [`CgroupManager::new`] with the given driver. With [`CgroupDriver::Systemd`],
    /// `cgroups_path` has the `slice:prefix:name` form (see [`systemd`]); the host must run
    /// systemd (`/run/systemd/system`) on cgroup v2.
    pub fn with_driver(
        driver: CgroupDriver,
        cgroups_path: Option<&Path>,
        container_id: &str,
    ) -> Result<Self, CgroupError> {
        if driver == CgroupDriver::Cgroupfs {
            return Self::new(cgroups_path, container_id);
        }
        if !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::Systemd {
                op: "find systemd".into(),
                unit: String::new(),
                reason: "no systemd instance reachable (/run/systemd/system is missing)".into(),
            });
        }
        let (unit, path) = systemd::unit_for_path(cgroups_path, container_id)?;
        let mode = detect_mode()?;
        if mode != CgroupMode::Unified {
            return Err(CgroupError::Unsupported(format!(
                "the systemd cgroup driver of husk needs a cgroup v2 host; this one is {mode:?} \
                 (use the cgroupfs driver)"
            )));
        }
        let mount_point = PathBuf::from(CGROUP_ROOT);
        let dir = mount_point.join(path.strip_prefix("/").unwrap_or(&path));
        let manager = Self::from_saved(&SavedCgroup {
            mode,
            path: path.clone(),
            hierarchies: vec![SavedHierarchy {
                controllers: Vec::new(),
                unified: true,
                mount_point,
                path,
                dir,
                created: Vec::new(),
                skipped: false,
            }],
            systemd: Some(unit),
        });
        let mut manager = manager;
        if let Some(state) = Arc::get_mut(&mut manager.inner).and_then(|i| i.systemd.as_mut()) {
            state.container_id = container_id.to_owned();
        }
        Ok(manager)
    }

    /// The driver that manages this cgroup.
    pub fn driver(&self) -> CgroupDriver {
        if self.inner.systemd.is_some() {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }

    /// With the systemd driver, adds the `org.systemd.property.<Name>` annotations among
    /// `annotations` to the unit's properties (call before `create`); without it, nothing.
    pub fn set_unit_annotations<'a>(
        &self,
        annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<(), CgroupError> {
        if let Some(state) = &self.inner.systemd {
            let props = systemd::annotation_properties(annotations)?;
            *state.extra.lock().unwrap_or_else(|p| p.into_inner()) = props;
        }
        Ok(())
    }

    /// The manager of a cgroup saved earlier with [`CgroupManager::saved`].
    pub fn from_saved(saved: &SavedCgroup) -> Self {
        let layout = saved
            .hierarchies
            .iter()
            .map(|h| SavedHierarchy {
                created: Vec::new(),
                skipped: false,
                ..h.clone()
            })
            .collect();
        CgroupManager {
            inner: Arc::new(Inner {
                mode: saved.mode,
                path: saved.path.clone(),
                hierarchies: Mutex::new(saved.hierarchies.clone()),
                layout,
                systemd: saved.systemd.as_ref().map(|unit| SystemdState {
                    unit: unit.clone(),
                    container_id: String::new(),
                    bus: std::sync::OnceLock::new(),
                    extra: Mutex::new(Vec::new()),
                    pending: Mutex::new(None),
                }),
            }),
        }
    }

    /// What to keep in the container's state to manage its cgroup again later.
    pub fn saved(&self) -> SavedCgroup {
        SavedCgroup {
            mode: self.inner.mode,
            path: self.inner.path.clone(),
            hierarchies: self.lock().clone(),
            systemd: self.inner.systemd.as_ref().map(|s| s.unit.clone()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SavedHierarchy>> {
        // A panic while holding the lock cannot leave the list half-updated in a harmful way.
        self.inner
            .hierarchies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `create` made the container's own cgroup directory in every hierarchy it uses.
    /// Only then is everything in the cgroup the container's: a `cgroupsPath` that already
    /// existed may hold other containers or host services, which are not ours to kill or remove.
    pub fn created_leaf(&self) -> bool {
        // A systemd unit of ours holds only the container's processes.
        if self.inner.systemd.is_some() {
            return true;
        }
        self.lock()
            .iter()
            .filter(|h| !h.skipped)
            .all(|h| h.created.last() == Some(&h.dir))
    }

    /// The host's cgroup mode.
    pub fn mode(&self) -> CgroupMode {
        self.inner.mode
    }

    /// The container's cgroup in each hierarchy (with the state of the last `create`).
    pub fn hierarchies(&self) -> Vec<SavedHierarchy> {
        self.lock().clone()
    }

    /// The cgroup directory of a v1 controller (`"memory"`, `"name=systemd"`, ...) or, on v2,
    /// the one unified directory whatever the controller.
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.inner
            .layout
            .iter()
            .find(|h| {
                if self.inner.mode == CgroupMode::Unified {
                    h.unified
                } else {
                    !h.unified && h.controllers.iter().any(|c| c == controller)
                }
            })
            .map(|h| h.dir.as_path())
    }

    /// The cgroup2 directory: the only one on v2, the controller-less one in hybrid mode.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.inner
            .layout
            .iter()
            .find(|h| h.unified)
            .map(|h| h.dir.as_path())
    }

    /// The path relative to each hierarchy root, as seen by the container in /proc/self/cgroup:
    /// the cgroup2 path on v2 and in hybrid mode, else that of the first v1 hierarchy in mount
    /// order. With a relative `cgroupsPath` the path can differ between hierarchies (when the
    /// runtime itself is in different cgroups); [`CgroupManager::hierarchies`] has each one.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// An existing child cgroup `name` of this one (for `exec --cgroup`). A missing one is an
    /// error, as in runc: creating it would make a directory nobody asked to exist, and a typo
    /// would silently put the process somewhere unlimited. As in runc, `controller[,...]:name`
    /// picks the sub-cgroup in those controllers' hierarchies only (the others keep the
    /// container's cgroup).
    pub fn sub_cgroup(&self, name: &str) -> Result<CgroupManager, CgroupError> {
        let (controllers, name) = match name.split_once(':') {
            Some((controllers, name)) => (Some(controllers.split(',').collect::<Vec<_>>()), name),
            None => (None, name),
        };
        if controllers.is_some() && self.inner.mode == CgroupMode::Unified {
            // One hierarchy holds every controller: a list cannot pick some of them.
            return Err(CgroupError::InvalidPath {
                path: PathBuf::from(name),
                reason: "exec --cgroup's controller:path form needs cgroup v1; on cgroup v2 give \
                         the path alone"
                    .into(),
            });
        }
        let name = Path::new(name.trim_start_matches('/'));
        if name
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(CgroupError::InvalidPath {
                path: name.to_path_buf(),
                reason: "a sub-cgroup must be a plain relative path".into(),
            });
        }
        let mut saved = self.saved();
        let chosen = |h: &SavedHierarchy| {
            controllers
                .as_ref()
                .is_none_or(|wanted| h.controllers.iter().any(|c| wanted.contains(&c.as_str())))
        };
        if let Some(wanted) = &controllers {
            if !saved.hierarchies.iter().any(chosen) {
                return Err(CgroupError::ControllerMissing {
                    field: "exec --cgroup".into(),
                    controller: wanted.join(","),
                });
            }
        } else {
            saved.path = saved.path.join(name);
        }
        for h in &mut saved.hierarchies {
            h.created.clear();
            if !chosen(h) {
                continue;
            }
            h.path = h.path.join(name);
            h.dir = h.dir.join(name);
            if !h.skipped && !h.dir.is_dir() {
                return Err(CgroupError::NoSubCgroup { dir: h.dir.clone() });
            }
        }
        Ok(CgroupManager::from_saved(&saved))
    }

    /// mkdir -p in every hierarchy (remembering which dirs were created here), then applies
    /// `resources`. Joining an existing cgroup is fine.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        if let Some(state) = &self.inner.systemd {
            return self.prepare_unit(state, resources);
        }
        for index in 0..self.inner.layout.len() {
            self.create_in(index)?;
        }
        // Processes put into a frozen cgroup stop at once: the init would never report back.
        if self.is_frozen().unwrap_or(false) {
            return Err(CgroupError::Frozen {
                path: self.inner.path.clone(),
            });
        }
        if !self.created_leaf() {
            match self.pids() {
                Ok(pids) if !pids.is_empty() => warn(&format!(
                    "container's cgroup is not empty: {} process(es) found",
                    pids.len()
                )),
                _ => {}
            }
        }
        if let Some(resources) = resources {
            self.update(&without_kernel_memory(
                resources,
                self.inner.mode == CgroupMode::Unified,
            ))?;
        }
        Ok(())
    }

    /// systemd driver's `create`: reach systemd now (a failure is reported before anything
    /// runs) and work out the unit's properties; the unit starts in `add_process`.
    fn prepare_unit(
        &self,
        state: &SystemdState,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        // The systemd driver runs on v2 only.
        let resources = resources.map(|r| without_kernel_memory(r, true).into_owned());
        let mut props = match &resources {
            Some(r) => systemd::resource_properties(r)?,
            None => Vec::new(),
        };
        props.extend(
            state
                .extra
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.try_clone().map_err(|e| e.to_string())?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| CgroupError::Systemd {
                    op: "copy annotation properties".into(),
                    unit: state.unit.unit.clone(),
                    reason,
                })?,
        );
        state.bus()?;
        *state.pending.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(PendingStart { props, resources });
        Ok(())
    }

    /// Starts the prepared unit with `pid` in it, then writes the resources to its cgroup.
    fn start_unit(
        &self,
        state: &SystemdState,
        pending: PendingStart,
        pid: i32,
    ) -> Result<(), CgroupError> {
        let pid = u32::try_from(pid).map_err(|_| CgroupError::InvalidValue {
            field: "add process".into(),
            reason: format!("{pid} is not a pid"),
        })?;
        let mut props = systemd::base_properties(&state.unit, &state.container_id, pid);
        props.extend(pending.props);
        state.bus()?.start_unit(&state.unit.unit, &props)?;
        let dir = self.inner.layout[0].dir.clone();
        self.lock()[0].created = vec![dir];
        if let Some(resources) = &pending.resources {
            self.update_files(resources)?;
        }
        Ok(())
    }

    fn create_in(&self, index: usize) -> Result<(), CgroupError> {
        let hierarchy = &self.inner.layout[index];
        let mut missing = Vec::new();
        let mut dir = hierarchy.dir.as_path();
        while dir != hierarchy.mount_point && !dir.exists() {
            missing.push(dir.to_path_buf());
            dir = match dir.parent() {
                Some(parent) => parent,
                None => break,
            };
        }
        for dir in missing.iter().rev() {
            match std::fs::create_dir(dir) {
                Ok(()) => self.lock()[index].created.push(dir.clone()),
                // Made by someone else meanwhile: not ours to remove.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e)
                    if hierarchy.unified
                        && self.inner.mode == CgroupMode::Hybrid
                        && is_permission_error(&e) =>
                {
                    // The hybrid cgroup2 hierarchy is optional.
                    self.lock()[index].skipped = true;
                    return Ok(());
                }
                Err(source) => {
                    return Err(CgroupError::Create {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        if hierarchy.unified && self.inner.mode == CgroupMode::Unified {
            enable_v2_controllers(&hierarchy.mount_point, &hierarchy.dir);
        }
        if hierarchy.controllers.iter().any(|c| c == "cpuset") {
            // A new v1 cpuset starts with no CPUs and no memory nodes, and no task can join it.
            // cgroups-rs's create() fills in every empty level from the nearest non-empty parent.
            let cpuset =
                CpuSetController::new(hierarchy.dir.clone(), hierarchy.mount_point.clone(), false);
            cpuset
                .create()
                .map_err(|e| CgroupError::library("cpuset", &hierarchy.dir, e))?;
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let content = fsio::read(&hierarchy.dir.join(file))?;
                if content.trim().is_empty() {
                    return Err(CgroupError::Parse {
                        path: hierarchy.dir.join(file),
                        content: "empty after inheriting from the parent cgroups".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into the container's cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if let Some(state) = &self.inner.systemd {
            let pending = state
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(pending) = pending {
                return self.start_unit(state, pending, pid);
            }
        }
        // Plain write of cgroup.procs (what cgroups-rs's add_task_by_tgid does too) so the error
        // carries the pid.
        let hierarchies = self.lock().clone();
        for hierarchy in hierarchies.iter().filter(|h| !h.skipped) {
            let path = hierarchy.dir.join("cgroup.procs");
            crate::hostfs::write_existing(&path, pid.to_string().as_bytes())
                .map_err(|source| CgroupError::AddProcess { pid, path, source })?;
        }
        Ok(())
    }

    /// The directory whose tree lists the container's processes.
    fn procs_dir(&self) -> Result<&Path, CgroupError> {
        let layout = &self.inner.layout;
        let found = if self.inner.mode == CgroupMode::Unified {
            layout.iter().find(|h| h.unified)
        } else {
            ["freezer", "devices", "pids", "memory", "cpu"]
                .iter()
                .find_map(|c| {
                    layout
                        .iter()
                        .find(|h| !h.unified && h.controllers.iter().any(|x| x == c))
                })
                .or_else(|| layout.iter().find(|h| !h.unified))
        };
        found
            .map(|h| h.dir.as_path())
            .ok_or_else(|| CgroupError::ControllerMissing {
                field: "pids".into(),
                controller: "freezer".into(),
            })
    }

    /// All processes in the container's cgroup, including its sub-cgroups, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = self.procs_dir()?;
        let mut dirs = fsio::subdirs_deepest_first(dir).map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        dirs.push(dir.to_path_buf());
        let root = dir.to_path_buf();
        let mut pids = Vec::new();
        for dir in dirs {
            let path = dir.join("cgroup.procs");
            let content = match fsio::read(&path) {
                Ok(content) => content,
                // A sub-cgroup removed while we walk.
                Err(CgroupError::Read { ref source, .. })
                    if source.kind() == io::ErrorKind::NotFound && dir != root =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            for line in content.lines() {
                let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
                    path: path.clone(),
                    content: line.to_owned(),
                })?;
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Applies `resources` to the existing cgroup (`runc update`). Fields that are `None` are
    /// left as they are; a set field that cannot be applied is an error naming it.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(state) = &self.inner.systemd {
            let props = systemd::resource_properties(resources)?;
            if !props.is_empty() {
                state.bus()?.set_properties(&state.unit.unit, &props)?;
            }
        }
        self.update_files(resources)
    }

    /// The cgroupfs half of `update`: writes `resources` to the cgroup's files.
    fn update_files(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if self.inner.mode == CgroupMode::Unified {
            let dir = self.unified_dir().ok_or_else(|| {
                CgroupError::Unsupported("no cgroup2 hierarchy in unified mode".into())
            })?;
            v2::V2 { dir }.apply(resources)
        } else {
            v1::V1 {
                hierarchies: &self.inner.layout,
            }
            .apply(resources)
        }
    }

    fn freezer_v1(&self) -> Result<(FreezerController, PathBuf), CgroupError> {
        let (dir, mount) = v1::V1 {
            hierarchies: &self.inner.layout,
        }
        .find("freezer")
        .map(|(d, m)| (d.to_path_buf(), m.to_path_buf()))
        .ok_or_else(|| CgroupError::ControllerMissing {
            field: "freeze".into(),
            controller: "freezer".into(),
        })?;
        Ok((FreezerController::new(dir.clone(), mount, false), dir))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let wanted = if frozen { "FROZEN" } else { "THAWED" };
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        let mut delay = Duration::from_micros(100);
        if self.inner.mode == CgroupMode::Unified {
            let dir = self.unified_dir().unwrap_or(Path::new(CGROUP_ROOT));
            let value = if frozen { "1" } else { "0" };
            fsio::write("freeze", dir, "cgroup.freeze", value)?;
            loop {
                if self.is_frozen()? == frozen {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    let seen = fsio::read(&dir.join("cgroup.events"))?;
                    if frozen {
                        let _ = fsio::write("freeze", dir, "cgroup.freeze", "0");
                    }
                    return Err(CgroupError::FreezeTimeout {
                        path: dir.to_path_buf(),
                        wanted,
                        seen,
                    });
                }
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(10));
            }
        }
        let (freezer, dir) = self.freezer_v1()?;
        let file = dir.join("freezer.state");
        loop {
            // Written again on every round: a v1 freeze can stall in FREEZING when a task is
            // busy in the kernel, and another write makes the kernel retry.
            let written = if frozen {
                freezer.freeze()
            } else {
                freezer.thaw()
            };
            written.map_err(|e| CgroupError::library("freeze", &file, e))?;
            let state = freezer
                .state()
                .map_err(|e| CgroupError::library("freeze", &file, e))?;
            let done = matches!(
                (frozen, state),
                (true, FreezerState::Frozen) | (false, FreezerState::Thawed)
            );
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if frozen {
                    let _ = freezer.thaw();
                }
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    wanted,
                    seen: "FREEZING".into(),
                });
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }

    /// Freezes every process of the container and waits until they are frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    /// Thaws the container's processes.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    /// Whether the cgroup is completely frozen (a freeze in progress is not frozen yet).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        if self.inner.mode == CgroupMode::Unified {
            let dir = self.unified_dir().unwrap_or(Path::new(CGROUP_ROOT));
            let events = fsio::read_keyed(&dir.join("cgroup.events"))?;
            return Ok(events.get("frozen") == Some(&1));
        }
        let (freezer, dir) = self.freezer_v1()?;
        let state = freezer
            .state()
            .map_err(|e| CgroupError::library("freeze", dir.join("freezer.state"), e))?;
        Ok(matches!(state, FreezerState::Frozen))
    }

    /// Resource usage of the container's cgroup.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut out = CgroupStats::default();
        if self.inner.mode == CgroupMode::Unified {
            let dir = self.unified_dir().unwrap_or(Path::new(CGROUP_ROOT));
            if fsio::exists(dir, "memory.max") {
                out.memory = Some(stats::memory_v2(dir)?);
            }
            out.cpu = Some(stats::cpu_v2(dir)?);
            if fsio::exists(dir, "pids.max") {
                out.pids = Some(stats::pids(dir)?);
            }
            if fsio::exists(dir, "io.stat") {
                out.blkio = Some(stats::blkio_v2(dir)?);
            }
            out.hugetlb = stats::hugetlb_v2(dir)?;
            if fsio::exists(dir, "cpuset.cpus.effective") {
                out.cpuset = Some(stats::cpuset_v2(dir)?);
            }
            return Ok(out);
        }
        let v1 = v1::V1 {
            hierarchies: &self.inner.layout,
        };
        if let Some((dir, mount)) = v1.find("memory") {
            out.memory = Some(stats::memory_v1(dir, mount)?);
        }
        out.cpu = stats::cpu_v1(v1.find("cpuacct"), v1.find("cpu").map(|(d, _)| d))?;
        if let Some((dir, _)) = v1.find("pids") {
            out.pids = Some(stats::pids(dir)?);
        }
        if let Some((dir, _)) = v1.find("blkio") {
            out.blkio = Some(stats::blkio_v1(dir)?);
        }
        if let Some((dir, _)) = v1.find("hugetlb") {
            out.hugetlb = stats::hugetlb_v1(dir)?;
        }
        if let Some((dir, _)) = v1.find("cpuset") {
            out.cpuset = Some(stats::cpuset_v1(dir)?);
        }
        Ok(out)
    }

    /// Removes the container's cgroup in every hierarchy where `create` made it, with any
    /// sub-cgroups, then the parent directories `create` made (those still used by others stay).
    /// A cgroup that existed before the container (a joined `cgroupsPath`) is left as it is.
    /// Retries briefly while exiting tasks leave (EBUSY); idempotent; works after SIGKILL of the
    /// container. Every hierarchy is tried even when one fails; the first error is returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        if let Some(state) = &self.inner.systemd {
            // systemd removes the unit's cgroup; what it leaves (sub-cgroups it could not
            // remove, say) is removed below, the unit's own directory included.
            if let Err(e) = state.bus().and_then(|bus| bus.stop_unit(&state.unit.unit)) {
                first_error = Some(e);
            }
            let dir = self.inner.layout[0].dir.clone();
            self.lock()[0].created = vec![dir];
        }
        let count = self.inner.layout.len();
        for index in 0..count {
            if let Err(e) = self.destroy_in(index) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn destroy_in(&self, index: usize) -> Result<(), CgroupError> {
        let hierarchy = self.lock()[index].clone();
        if hierarchy.skipped {
            return Ok(());
        }
        let ours = hierarchy.created.last() == Some(&hierarchy.dir);
        if ours && hierarchy.dir.exists() {
            let children = fsio::subdirs_deepest_first(&hierarchy.dir).or_else(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    Ok(Vec::new())
                } else {
                    Err(CgroupError::Read {
                        path: hierarchy.dir.clone(),
                        source,
                    })
                }
            })?;
            for child in children {
                remove_cgroup_dir(&child)?;
            }
            remove_cgroup_dir(&hierarchy.dir)?;
        }
        for parent in hierarchy.created.iter().rev() {
            if parent == &hierarchy.dir {
                continue;
            }
            match std::fs::remove_dir(parent) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Another cgroup lives below it now: it stays.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
                Err(source) => {
                    return Err(CgroupError::Remove {
                        path: parent.clone(),
                        source,
                    })
                }
            }
        }
        self.lock()[index].created.clear();
        Ok(())
    }
}

/// The r, w and m letters of a device rule's `access` (the spec's default "rwm" when it is
/// missing or empty). Other letters are ignored, as runc does: tools write e.g. "rwa".
pub(crate) fn device_access(access: Option<&str>) -> String {
    match access {
        None | Some("") => "rwm".into(),
        Some(access) => access.chars().filter(|c| "rwm".contains(*c)).collect(),
    }
}

/// `resources` without `memory.kernel`, with a warning if it was set: the spec deprecates it,
/// kernels since 5.16 take the write but no longer enforce it, and runc ignores it at create.
/// `memory.kernelTCP` stays on v1, which still enforces `memory.kmem.tcp.limit_in_bytes` (runc 1.1
/// drops it too, a difference listed in tests/conformance/runc-differences.txt); on v2
/// (`unified`), which has no such limit, it goes the same way, as runc ignores it there.
/// `update` takes both, see `v1`.
fn without_kernel_memory(
    resources: &LinuxResources,
    unified: bool,
) -> std::borrow::Cow<'_, LinuxResources> {
    let Some(memory) = resources
        .memory()
        .as_ref()
        .filter(|m| m.kernel().is_some() || (unified && m.kernel_tcp().is_some()))
    else {
        return std::borrow::Cow::Borrowed(resources);
    };
    warn("Kernel memory settings are ignored and will be removed");
    let mut memory = *memory;
    memory.set_kernel(None);
    if unified {
        memory.set_kernel_tcp(None);
    }
    let mut resources = resources.clone();
    resources.set_memory(Some(memory));
    std::borrow::Cow::Owned(resources)
}

/// Enables every controller the hierarchy offers in `cgroup.subtree_control` of each ancestor of
/// `leaf` (root included), so the leaf gets the controllers' files. Failures are ignored here: a
/// parent may refuse (a controller is threaded-only, say), and the resource that needs the
/// controller then fails with an error naming itself. An ancestor below the root that holds
/// processes is left alone: the kernel would refuse its domain controllers but accept the
/// threaded ones (cpu, cpuset, pids), which would make it a thread root and every new child an
/// invalid domain that cannot take the container's process (EOPNOTSUPP).
fn enable_v2_controllers(mount_point: &Path, leaf: &Path) {
    let Ok(below) = leaf.strip_prefix(mount_point) else {
        return;
    };
    let mut dir = mount_point.to_path_buf();
    let components: Vec<_> = below.components().collect();
    for component in components {
        let holds_processes = dir != mount_point
            && std::fs::read_to_string(dir.join("cgroup.procs"))
                .is_ok_and(|procs| !procs.trim().is_empty());
        if holds_processes {
            dir.push(component);
            continue;
        }
        let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let enabled =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        for controller in available.split_whitespace() {
            if !enabled.split_whitespace().any(|c| c == controller) {
                let _ = fsio::write(
                    "cgroup.subtree_control",
                    &dir,
                    "cgroup.subtree_control",
                    &format!("+{controller}"),
                );
            }
        }
        dir.push(component);
    }
}
