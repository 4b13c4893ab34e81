//! Interim cgroup manager (cgroupfs v1/v2 directories only); replaced by the full manager.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedCgroup {
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CgroupManager {
    path: PathBuf,
}

fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or_default()))
        })
        .collect()
}

impl CgroupManager {
    pub fn new(cgroups_path: Option<&Path>, container_id: &str) -> Result<Self, CgroupError> {
        let path = match cgroups_path {
            Some(p) if !p.as_os_str().is_empty() => Path::new("/").join(p),
            _ => Path::new("/").join(container_id),
        };
        Ok(CgroupManager { path })
    }
    pub fn from_saved(saved: &SavedCgroup) -> Self {
        CgroupManager {
            path: saved.path.clone(),
        }
    }
    pub fn saved(&self) -> SavedCgroup {
        SavedCgroup {
            path: self.path.clone(),
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    fn dirs(&self) -> Vec<PathBuf> {
        let rel = self.path.strip_prefix("/").unwrap_or(&self.path);
        hierarchies().into_iter().map(|h| h.join(rel)).collect()
    }
    pub fn create(
        &self,
        _resources: Option<&oci_spec::runtime::LinuxResources>,
    ) -> Result<(), CgroupError> {
        for d in self.dirs() {
            std::fs::create_dir_all(&d).map_err(|source| CgroupError::Io {
                path: d.clone(),
                source,
            })?;
            // A new v1 cpuset starts empty and refuses tasks: inherit the parent's sets.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let (Ok(v), Some(parent)) = (
                    std::fs::read_to_string(d.parent().unwrap().join(f)),
                    d.parent(),
                ) {
                    let _ = parent;
                    if std::fs::read_to_string(d.join(f)).is_ok_and(|c| c.trim().is_empty()) {
                        let _ = std::fs::write(d.join(f), v.trim());
                    }
                }
            }
        }
        Ok(())
    }
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for d in self.dirs() {
            let p = d.join("cgroup.procs");
            std::fs::write(&p, pid.to_string())
                .map_err(|source| CgroupError::Io { path: p, source })?;
        }
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(d) = self
            .dirs()
            .into_iter()
            .find(|d| d.join("cgroup.procs").exists())
        else {
            return Ok(Vec::new());
        };
        let p = d.join("cgroup.procs");
        let text =
            std::fs::read_to_string(&p).map_err(|source| CgroupError::Io { path: p, source })?;
        Ok(text.lines().filter_map(|l| l.parse().ok()).collect())
    }
    /// A child cgroup (for `exec --cgroup`), created if missing.
    pub fn sub_cgroup(&self, name: &str) -> Result<CgroupManager, CgroupError> {
        let sub = CgroupManager {
            path: self.path.join(name.trim_start_matches('/')),
        };
        sub.create(None)?;
        Ok(sub)
    }
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }
    pub fn destroy(&self) -> Result<(), CgroupError> {
        for d in self.dirs() {
            for _ in 0..50 {
                match std::fs::remove_dir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        }
        Ok(())
    }
}
