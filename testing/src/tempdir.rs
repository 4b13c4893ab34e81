//! Temporary directories that are never deleted through a mount point.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A uniquely named directory under the system temp dir, removed (recursively) on drop.
///
/// If anything is still mounted below it when it is dropped, nothing is deleted: removing files through a leftover
/// mount could destroy host data. The leftover mounts are printed on stderr instead, and tests can check for them
/// beforehand with [`mounts_under`].
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<counter>` (mode 0755). Panics on failure.
    pub fn new(prefix: &str) -> TempDir {
        Self::new_in(std::env::temp_dir(), prefix)
    }

    /// Creates a fresh directory under `parent` (e.g. on another filesystem than /tmp).
    pub fn new_in(parent: impl AsRef<std::path::Path>, prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = parent.as_ref().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let mounts = mounts_under(&self.path);
        if !mounts.is_empty() {
            eprintln!(
                "husk-testing: NOT removing {} because these mounts are still below it: {mounts:?}",
                self.path.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("husk-testing: cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Mount points in the calling process's mount namespace that are at or below `dir` (from `/proc/self/mountinfo`).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    husk_init::mountinfo::MountEntry::all(&mountinfo)
        .map(|m| m.mount_point)
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("husk-testing-selftest");
        let path = dir.path().to_path_buf();
        std::fs::write(dir.join("f"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}

/// A mount made on the host for a test; unmounted on drop.
#[derive(Debug)]
pub struct HostMount(PathBuf);

impl HostMount {
    /// Mounts a 1 MiB tmpfs on `target`.
    pub fn tmpfs(target: &Path) -> HostMount {
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "size=1m",
                "husk-test",
                target.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount tmpfs on {}",
            target.display()
        );
        HostMount(target.to_path_buf())
    }
}

impl HostMount {
    /// Bind-mounts `dir` onto itself and makes it a shared mount (a propagation source for containers).
    pub fn shared_bind(dir: &Path) -> HostMount {
        let dir_str = dir.to_str().unwrap();
        let status = std::process::Command::new("mount")
            .args(["--bind", dir_str, dir_str])
            .status()
            .unwrap();
        assert!(status.success(), "cannot bind-mount {dir_str}");
        let guard = HostMount(dir.to_path_buf());
        let status = std::process::Command::new("mount")
            .args(["--make-shared", dir_str])
            .status()
            .unwrap();
        assert!(status.success(), "cannot make {dir_str} shared");
        guard
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
