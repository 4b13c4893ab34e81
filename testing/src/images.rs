//! Helpers for tests of images: tarballs of the test rootfs, snapshots of what a test may leave behind.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::bundle::default_rootfs;

/// The test root filesystem as a gzip tar: `<rootfs>.tar.gz` next to the tree of [`default_rootfs`]
/// (`rootfs/out/busybox.tar.gz`, which `make rootfs` builds with it). Panics, naming the file, when it is missing.
pub fn rootfs_tarball() -> PathBuf {
    let dir = default_rootfs();
    let name = dir
        .file_name()
        .unwrap_or_else(|| panic!("test rootfs {} has no file name", dir.display()));
    let tarball = dir.with_file_name(format!("{}.tar.gz", name.to_string_lossy()));
    assert!(
        tarball.is_file(),
        "{} is missing: run `make rootfs` (it builds the test rootfs and its tarball)",
        tarball.display()
    );
    tarball
}

/// Size and modification time (seconds) of one file of a [`tree_snapshot`].
pub type FileStamp = (u64, i64);

/// Path -> (size, mtime) of every entry under `dirs` (not following symlinks): compare two snapshots to show that
/// nothing under them was written (an image's layers while containers used them, say).
pub fn tree_snapshot(dirs: &[PathBuf]) -> BTreeMap<PathBuf, FileStamp> {
    let mut out = BTreeMap::new();
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
            out.insert(path.clone(), (meta.size(), meta.mtime()));
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    out
}

/// What containers left in a library state root `state`: every entry but the private-bundle directory `@bundles`,
/// and every private bundle in it (as `@bundles/<name>`). Empty when `state` does not exist.
pub fn state_left(state: &Path) -> Vec<String> {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut left: Vec<String> = names(state)
        .into_iter()
        .filter(|n| n != "@bundles")
        .collect();
    left.extend(
        names(&state.join("@bundles"))
            .into_iter()
            .map(|n| format!("@bundles/{n}")),
    );
    left.sort();
    left
}

/// Pids of the processes whose cgroup path (any hierarchy) contains `name`.
pub fn processes_in_cgroup(name: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(name))
        })
        .collect()
}
