//! Cgroup helpers for tests that check v1 semantics on a v1 host and v2 semantics on a v2 host.
//!
//! A test asks [`mode`] which layout the host has and checks the files of that layout: on v1 (legacy
//! or hybrid) one directory per controller under `/sys/fs/cgroup/<controller>`, on v2 the single
//! hierarchy at `/sys/fs/cgroup`. A test that needs one layout calls [`require_mode`], which fails
//! loudly elsewhere (never a silent skip). [`dirs_named`] lists cgroup directories left behind in
//! every hierarchy, and [`Cleanup`] / [`TagCleanup`] remove those a test made.

use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted on the host.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup layout of the host, as a test sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupMode {
    /// v1 controllers, each in its own hierarchy at `/sys/fs/cgroup/<controller>` (legacy, or
    /// hybrid with an extra, controller-less cgroup2 hierarchy).
    V1,
    /// One cgroup2 hierarchy at `/sys/fs/cgroup` with every controller (pure v2).
    V2,
}

/// The host's cgroup layout. Panics on a host with neither layout (no cgroups mounted).
pub fn mode() -> CgroupMode {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        CgroupMode::V2
    } else if root.join("memory").is_dir() {
        CgroupMode::V1
    } else {
        panic!(
            "no cgroup hierarchy found at {CGROUP_ROOT} (neither cgroup2 nor a v1 memory \
             hierarchy is mounted)"
        )
    }
}

/// True on a pure cgroup v2 host.
pub fn is_v2() -> bool {
    mode() == CgroupMode::V2
}

/// Panics unless the host has `wanted`, naming `why` the test needs it (a test that cannot run
/// here fails loudly instead of passing without checking).
pub fn require_mode(wanted: CgroupMode, why: &str) {
    let found = mode();
    assert!(
        found == wanted,
        "this test needs a cgroup {wanted:?} host ({why}), but this host is cgroup {found:?}"
    );
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The v1 controllers of the hierarchy (`name=systemd` for a named one); empty for cgroup2.
    pub controllers: Vec<String>,
    /// The cgroup's path in that hierarchy, as the reader's cgroup namespace shows it.
    pub path: String,
}

/// The lines of `/proc/<pid>/cgroup` (`pid` may be `"self"`).
pub fn proc_cgroups(pid: &str) -> Vec<ProcCgroup> {
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(ProcCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The cgroup of `pid` (or `"self"`) that governs `controller`: on v1 the path in that
/// controller's hierarchy, on v2 the path in the one hierarchy (the `0::` line) whatever the
/// controller.
pub fn cgroup_of(pid: &str, controller: &str) -> String {
    let lines = proc_cgroups(pid);
    let found = match mode() {
        CgroupMode::V2 => lines.iter().find(|l| l.controllers.is_empty()),
        CgroupMode::V1 => lines
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller)),
    };
    found
        .unwrap_or_else(|| panic!("pid {pid} has no {controller} cgroup in {lines:?}"))
        .path
        .clone()
}

/// The host directory of the hierarchy that holds `controller`: `/sys/fs/cgroup/<controller>`
/// on v1, `/sys/fs/cgroup` on v2.
pub fn hierarchy_root(controller: &str) -> PathBuf {
    match mode() {
        CgroupMode::V2 => PathBuf::from(CGROUP_ROOT),
        CgroupMode::V1 => Path::new(CGROUP_ROOT).join(controller),
    }
}

/// The host directory of `pid`'s cgroup for `controller` (see [`cgroup_of`]).
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let path = cgroup_of(&pid.to_string(), controller);
    hierarchy_root(controller).join(path.trim_start_matches('/'))
}

/// Reads a file of `pid`'s cgroup for `controller` on the host, trimmed (`file` is the name the
/// host's layout uses, e.g. `memory.limit_in_bytes` on v1, `memory.max` on v2).
pub fn read_cgroup_file(pid: i32, controller: &str, file: &str) -> String {
    read_trimmed(&cgroup_dir(pid, controller).join(file))
}

/// Reads a file, trimmed, panicking with its path on error.
pub fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The `key value` lines of a flat-keyed cgroup file (`memory.events`, `cpu.stat`, ...) as a map.
pub fn read_keyed(path: &Path) -> std::collections::BTreeMap<String, u64> {
    read_trimmed(path)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Every directory below every hierarchy at `/sys/fs/cgroup` whose name contains `tag` (the
/// host-wide leak check; named v1 hierarchies and the hybrid cgroup2 one included).
pub fn dirs_named(tag: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, tag: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().contains(tag) {
                out.push(path.clone());
            }
            if depth < 8 {
                walk(&path, tag, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(CGROUP_ROOT), tag, 0, &mut out);
    out.sort();
    out
}

/// Removes the listed cgroup directories when dropped, deepest first (errors ignored: it runs
/// after the test's own checks, to leave the host clean).
#[derive(Debug, Default)]
pub struct Cleanup(pub Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut dirs = std::mem::take(&mut self.0);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes, when dropped, every cgroup directory whose name contains the tag, in every
/// hierarchy, deepest first.
#[derive(Debug)]
pub struct TagCleanup(pub String);

impl Drop for TagCleanup {
    fn drop(&mut self) {
        drop(Cleanup(dirs_named(&self.0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_found_for_the_host_layout() {
        let memory = cgroup_of("self", "memory");
        assert!(memory.starts_with('/'), "{memory}");
        assert!(cgroup_dir(std::process::id() as i32, "memory").is_dir());
    }
}
