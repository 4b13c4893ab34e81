//! Containers' state on disk: `<root>/<id>/{state.json, exec.fifo, lock}`.
//!
//! The status is never stored: it is derived from the live process (pid plus its start time,
//! so a recycled pid is not mistaken for the container), whether init reported ready, and
//! whether the exec fifo is still there.

use nix::fcntl::Flock;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::SavedCgroup;
use crate::config::HostHooks;
use crate::error::{Context, Error, Result};

/// The record of a container in its state directory ([`Record`] as JSON).
pub const STATE_FILE: &str = "state.json";
/// The fifo the init blocks on until `start` (present while the container is `created`).
pub const EXEC_FIFO: &str = "exec.fifo";
pub(crate) const LOCK_FILE: &str = "lock";
const MAX_ID_LEN: usize = 1024;
/// The state root and each container's directory: only root may enter (runc's mode for its
/// root). What they hold includes the config, whose env may carry secrets.
const PRIVATE_DIR_MODE: u32 = 0o700;

/// The lifecycle status, with the names the runtime spec and runc use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// `create` is running: the init is setting the container up.
    Creating,
    /// The init waits for `start`.
    Created,
    /// The container's process runs.
    Running,
    /// Its cgroup is frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What husk keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The bundle's `ociVersion`.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid in husk's pid namespace, once known.
    pub pid: Option<i32>,
    /// Start time of `pid` in clock ticks after boot (field 22 of `/proc/<pid>/stat`).
    pub pid_start_time: Option<u64>,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    /// The config's annotations.
    pub annotations: HashMap<String, String>,
    /// Init finished its setup and waits on the exec fifo (or has exec'd).
    pub init_ready: bool,
    /// The container's cgroup, with the directories `create` made.
    pub cgroup: Option<SavedCgroup>,
    /// The hooks that run on the host after `create` (poststart, poststop).
    pub hooks: HostHooks,
    /// Namespaces created or joined, as `/proc/<pid>/ns` names; exec joins them.
    pub namespaces: Vec<String>,
    /// The creator's NOTIFY_SOCKET, which `start` tells when the container is ready.
    #[serde(default)]
    pub notify_socket: Option<PathBuf>,
}

/// The OCI state, as `husk state` prints it (the runtime-spec fields plus runc's extras).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciState {
    /// The bundle's `ociVersion`.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid (0 once stopped).
    pub pid: i32,
    /// The lifecycle status.
    pub status: Status,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem (runc's extra).
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 (runc's extra).
    pub created: String,
    /// The config's annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
    /// The owner (runc's extra; always empty).
    pub owner: String,
}

/// Checks a container id: non-empty, not too long, a plain file name.
pub fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_ID_LEN {
        "it is longer than 1024 bytes"
    } else if id == "." || id == ".." || id.contains("..") {
        "it contains \"..\""
    } else if id.contains('/') {
        "it contains \"/\""
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        "only letters, digits and _ + - . are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        id: id.chars().take(64).collect(),
        reason,
    })
}

/// A container's state directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct StateDir {
    /// `<root>/<id>`.
    pub dir: PathBuf,
    _lock: Flock<File>,
}

impl StateDir {
    /// Creates the directory for a new container; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(root)
            .context(|| format!("create state root {}", root.display()))?;
        tighten_root(root)?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new()
            .mode(PRIVATE_DIR_MODE)
            .create(&dir)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(e).context(|| format!("create {}", dir.display())),
        }
        let lock = lock(&dir, true)?;
        Ok(StateDir { dir, _lock: lock })
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let dir = root.join(id);
        if !dir.join(STATE_FILE).exists() && !dir.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        use std::os::unix::fs::MetadataExt;
        // Never creates the lock file: recreated in a directory that `delete` is removing, it
        // would make that removal fail and leave the directory behind.
        let lock = lock(&dir, false)?;
        let unlinked = lock.metadata().is_ok_and(|m| m.nlink() == 0);
        if unlinked || !dir.is_dir() {
            // Deleted while we waited for the lock.
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(StateDir { dir, _lock: lock })
    }

    /// The exec fifo's path.
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// The directory bound into the container for its notify socket.
    pub fn notify_dir(&self) -> PathBuf {
        self.dir.join("notify")
    }

    /// Reads the container's record.
    pub fn load(&self) -> Result<Record> {
        let path = self.dir.join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            // We hold the lock, so no `create` is in progress: its caller died before the first
            // save (issue 13, fault point `state.temp-written`), when nothing existed yet but
            // this directory. It is removed, and the container never existed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = self
                    .dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let _ = std::fs::remove_dir_all(&self.dir);
                return Err(Error::NotFound(id));
            }
            Err(e) => return Err(e).context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&text).map_err(|e| Error::Io {
            context: format!("parse {}", path.display()),
            source: std::io::Error::other(e),
        })
    }

    /// Writes the record atomically: a temp file in the same directory, then rename.
    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(std::io::Error::other);
        let bytes = bytes.context(|| "serialize state".into())?;
        let path = self.dir.join(STATE_FILE);
        crate::hostfs::write_atomic_private(&path, &bytes)
            .context(|| format!("write {}", path.display()))
    }

    /// Removes the directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context(|| format!("remove {}", self.dir.display())),
        }
    }
}

/// Takes away group and other access from a state root that already existed (made by an older
/// husk with mode 0711, or by hand), but only from a directory that is ours and holds nothing
/// but containers' state: `--root` naming a shared directory by mistake (`/run`, `/tmp`) must
/// not lock every other user out of it. Files inside are private either way.
fn tighten_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(root).context(|| format!("stat {}", root.display()))?;
    let loose = meta.mode() & 0o077 != 0;
    if !loose || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o1000 != 0 {
        return Ok(());
    }
    let entries = std::fs::read_dir(root).context(|| format!("read {}", root.display()))?;
    let only_state = entries.filter_map(|e| e.ok()).all(|e| {
        let dir = e.path();
        dir.join(STATE_FILE).is_file() || dir.join(LOCK_FILE).is_file()
    });
    if !only_state {
        return Ok(());
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
        .context(|| format!("chmod {}", root.display()))
}

fn lock(dir: &Path, create: bool) -> Result<Flock<File>> {
    let path = dir.join(LOCK_FILE);
    let file = crate::hostfs::open(
        &path,
        std::fs::OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .mode(0o600),
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(dir.file_name().unwrap_or_default().to_string_lossy().into())
        } else {
            Error::Io {
                context: format!("open {}", path.display()),
                source: e,
            }
        }
    })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context(|| format!("lock {}", path.display()))
}

/// Writes `bytes` to `path` through a temp file and rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::hostfs::write_atomic(path, bytes).context(|| format!("write {}", path.display()))
}

/// Start time of a live, non-zombie process, or None.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); start time is field 22.
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Record {
    /// Whether the recorded init process is still the same live process.
    pub fn init_alive(&self) -> bool {
        match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            _ => false,
        }
    }

    /// Derives the status; `fifo` is the exec fifo's path, `frozen` whether the cgroup is frozen.
    pub fn status(&self, fifo: &Path, frozen: impl FnOnce() -> bool) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.init_ready {
            return Status::Creating;
        }
        // Frozen first: a created container can be paused too (and resumes to created).
        if frozen() {
            Status::Paused
        } else if fifo.exists() {
            Status::Created
        } else {
            Status::Running
        }
    }
}

/// Now, as RFC 3339 UTC with nanoseconds (the form runc prints for `created`).
pub fn now_rfc3339() -> String {
    rfc3339(true)
}

/// Now, as RFC 3339 UTC in whole seconds (the form of runc's log lines).
pub fn now_rfc3339_seconds() -> String {
    rfc3339(false)
}

fn rfc3339(nanos: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if nanos {
        format!(".{:09}", now.subsec_nanos())
    } else {
        String::new()
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", "a/b", "..", "a..b", "sp ace", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn own_start_time_is_read() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-11-26T16:34:02.123456789Z".len(), "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
