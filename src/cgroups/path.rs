//! Where a container's cgroup lives: mount discovery and `linux.cgroupsPath` resolution.
//!
//! Everything here is pure (parses strings handed in) so it can be unit-tested without a kernel.

use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupMode, SavedHierarchy};

/// v1 controllers the manager knows how to join. Named hierarchies other than `name=systemd`
/// are left alone, as runc does.
const KNOWN_V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "pids",
    "hugetlb",
    "rdma",
    "misc",
    "name=systemd",
];

/// One mounted cgroup hierarchy, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is shown at `mount_point` (`/` unless bind-mounted).
    pub root: PathBuf,
    /// `true` for a cgroup2 mount.
    pub unified: bool,
    /// v1 controllers bound to the hierarchy (`name=...` for named ones); empty for cgroup2.
    pub controllers: Vec<String>,
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupEntry {
    /// The hierarchy's id (0 for cgroup2).
    pub hierarchy_id: u32,
    /// Controllers of the hierarchy; empty for the cgroup2 line `0::`.
    pub controllers: Vec<String>,
    /// The process's cgroup in that hierarchy, from its root.
    pub path: PathBuf,
}

use husk_init::mountinfo::MountEntry;

/// Parses `/proc/self/mountinfo` and returns its cgroup and cgroup2 mounts, keeping only the
/// first mount of each hierarchy (later ones are bind mounts of the same thing).
pub fn parse_mountinfo(content: &str) -> Vec<CgroupMount> {
    let mut mounts: Vec<CgroupMount> = Vec::new();
    for entry in MountEntry::all(content) {
        let unified = match entry.fs_type {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers: Vec<String> = if unified {
            Vec::new()
        } else {
            entry
                .super_options
                .split(',')
                .filter(|opt| KNOWN_V1_CONTROLLERS.contains(opt) || opt.starts_with("name="))
                .map(str::to_owned)
                .collect()
        };
        if !unified && controllers.is_empty() {
            continue;
        }
        let mount = CgroupMount {
            root: entry.root(),
            mount_point: entry.mount_point,
            unified,
            controllers,
        };
        let duplicate = mounts
            .iter()
            .any(|m| m.unified == mount.unified && m.controllers == mount.controllers);
        if !duplicate {
            mounts.push(mount);
        }
    }
    mounts
}

/// Parses `/proc/<pid>/cgroup`. Paths may contain `:`, so only the first two are separators.
pub fn parse_proc_cgroup(content: &str) -> Vec<ProcCgroupEntry> {
    content
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy_id = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroupEntry {
                hierarchy_id,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// Lexically cleans a cgroup path: drops `.` and empty parts and resolves `..` without ever
/// climbing above the start (so a relative `../../x` cannot escape its parent; the same rule
/// runc applies). Keeps the path absolute or relative as given.
pub fn clean_path(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut cleaned = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    cleaned.extend(parts);
    cleaned
}

/// The path the container's cgroup is asked to have, before it is placed in each hierarchy:
/// the cleaned `linux.cgroupsPath`, or the container id when it is absent or empty.
pub fn requested_path(
    cgroups_path: Option<&Path>,
    container_id: &str,
) -> Result<PathBuf, CgroupError> {
    let given = cgroups_path.filter(|p| !p.as_os_str().is_empty());
    let requested = match given {
        Some(path) => clean_path(path),
        None => {
            if container_id.is_empty()
                || container_id.contains('/')
                || container_id == "."
                || container_id == ".."
            {
                return Err(CgroupError::InvalidPath {
                    path: PathBuf::from(container_id),
                    reason: "the container id cannot be used as a cgroup name".into(),
                });
            }
            PathBuf::from(container_id)
        }
    };
    if requested.as_os_str().is_empty() || requested == Path::new("/") {
        return Err(CgroupError::InvalidPath {
            path: given.map(Path::to_path_buf).unwrap_or_default(),
            reason: "resolves to a hierarchy root or to the runtime's own cgroup, which a \
                     container must not take over"
                .into(),
        });
    }
    Ok(requested)
}

/// `a` joined with the relative form of `b` (`Path::join` would replace `a` by an absolute `b`).
fn join_relative(a: &Path, b: &Path) -> PathBuf {
    let relative = b.strip_prefix("/").unwrap_or(b);
    if relative.as_os_str().is_empty() {
        a.to_path_buf()
    } else {
        a.join(relative)
    }
}

fn hierarchy_name(mount: &CgroupMount) -> String {
    if mount.unified {
        "cgroup2".to_owned()
    } else {
        mount.controllers.join(",")
    }
}

/// The runtime's own cgroup in `mount`'s hierarchy.
fn own_cgroup<'a>(mount: &CgroupMount, own: &'a [ProcCgroupEntry]) -> Option<&'a Path> {
    own.iter()
        .find(|entry| {
            if mount.unified {
                entry.hierarchy_id == 0 && entry.controllers.is_empty()
            } else {
                entry.hierarchy_id != 0
                    && mount
                        .controllers
                        .iter()
                        .any(|c| entry.controllers.contains(c))
            }
        })
        .map(|entry| entry.path.as_path())
}

/// Places the requested cgroup in every hierarchy the `mode` uses.
///
/// * absolute path: taken relative to each hierarchy's root;
/// * relative path (including the default, the container id): taken relative to the cgroup the
///   runtime itself is in, looked up per hierarchy in `/proc/self/cgroup`; on a pure v2 host,
///   relative to that cgroup's parent.
///
/// This is what runc 1.1's cgroupfs driver does (checked against runc 1.1.5 on a v1 hybrid host:
/// with no `cgroupsPath` the container landed in `/<id>` in every hierarchy where runc sat at the
/// root, and in `/<runc's memory cgroup>/<id>` for memory, where it did not).
pub fn resolve(
    requested: &Path,
    mode: CgroupMode,
    mounts: &[CgroupMount],
    own: &[ProcCgroupEntry],
) -> Result<Vec<SavedHierarchy>, CgroupError> {
    let wanted = mounts.iter().filter(|m| match mode {
        CgroupMode::Unified => m.unified,
        CgroupMode::Legacy => !m.unified,
        // In hybrid mode the cgroup2 hierarchy is joined too so that the `0::` line matches.
        CgroupMode::Hybrid => true,
    });
    let mut hierarchies = Vec::new();
    for mount in wanted {
        if !mount.unified
            && !mount
                .controllers
                .iter()
                .all(|c| KNOWN_V1_CONTROLLERS.contains(&c.as_str()))
        {
            continue;
        }
        let path = if requested.is_absolute() {
            join_relative(&mount.root, requested)
        } else {
            let own_path =
                own_cgroup(mount, own).ok_or_else(|| CgroupError::OwnCgroupNotFound {
                    what: format!("relative cgroupsPath {requested:?}"),
                    hierarchy: hierarchy_name(mount),
                })?;
            // On a pure v2 host the runtime's own cgroup nearly always holds processes (its
            // session scope or service), and the no-internal-process rule leaves a child of such a
            // cgroup without domain controllers. As runc does there, start from its parent.
            let base = if mode == CgroupMode::Unified {
                own_path.parent().unwrap_or(own_path)
            } else {
                own_path
            };
            join_relative(base, requested)
        };
        let below_root = path
            .strip_prefix(&mount.root)
            .map_err(|_| CgroupError::InvalidPath {
                path: path.clone(),
                reason: format!(
                    "not below {} (the part of the {} hierarchy mounted at {})",
                    mount.root.display(),
                    hierarchy_name(mount),
                    mount.mount_point.display()
                ),
            })?;
        hierarchies.push(SavedHierarchy {
            controllers: mount.controllers.clone(),
            unified: mount.unified,
            mount_point: mount.mount_point.clone(),
            dir: join_relative(&mount.mount_point, below_root),
            path,
            created: Vec::new(),
            skipped: false,
        });
    }
    if hierarchies.is_empty() {
        return Err(CgroupError::Unsupported(format!(
            "no cgroup hierarchy for {mode:?} mode is mounted (see /proc/self/mountinfo)"
        )));
    }
    Ok(hierarchies)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:30 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:32 / /sys/fs/cgroup/odd rw,relatime - cgroup cgroup rw,name=odd
38 25 0:29 / /mnt/memory\\040copy rw,relatime - cgroup cgroup rw,memory
";

    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:name=odd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn mountinfo_keeps_first_mount_of_each_hierarchy() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO);
        let names: Vec<String> = mounts.iter().map(hierarchy_name).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpuacct",
                "memory",
                "name=systemd",
                "cgroup2",
                "name=odd"
            ]
        );
        assert_eq!(mounts[2].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert!(mounts[4].unified);
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        let line = "38 25 0:29 /a\\040b /mnt/x\\040y rw - cgroup cgroup rw,pids\n";
        let mounts = parse_mountinfo(line);
        assert_eq!(mounts[0].mount_point, Path::new("/mnt/x y"));
        assert_eq!(mounts[0].root, Path::new("/a b"));
    }

    #[test]
    fn proc_cgroup_keeps_colons_in_paths() {
        let entries = parse_proc_cgroup("3:cpu,cpuacct:/a:b:c\n0::/x\n");
        assert_eq!(entries[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(entries[0].path, Path::new("/a:b:c"));
        assert_eq!(entries[1].hierarchy_id, 0);
        assert!(entries[1].controllers.is_empty());
    }

    #[test]
    fn clean_path_never_climbs_above_start() {
        assert_eq!(clean_path(Path::new("../../x/./y/")), Path::new("x/y"));
        assert_eq!(clean_path(Path::new("/a/../../b")), Path::new("/b"));
        assert_eq!(clean_path(Path::new("a//b/../c")), Path::new("a/c"));
    }

    #[test]
    fn requested_path_defaults_to_container_id() {
        assert_eq!(requested_path(None, "abc").unwrap(), Path::new("abc"));
        assert_eq!(
            requested_path(Some(Path::new("")), "abc").unwrap(),
            Path::new("abc")
        );
        assert_eq!(
            requested_path(Some(Path::new("/x/../y")), "abc").unwrap(),
            Path::new("/y")
        );
    }

    #[test]
    fn requested_path_rejects_roots_and_bad_ids() {
        for bad in ["/", "/..", "..", "."] {
            assert!(
                matches!(
                    requested_path(Some(Path::new(bad)), "id"),
                    Err(CgroupError::InvalidPath { .. })
                ),
                "{bad}"
            );
        }
        for bad_id in ["", "a/b", ".."] {
            assert!(requested_path(None, bad_id).is_err(), "{bad_id}");
        }
    }

    fn resolve_hybrid(requested: &str) -> Vec<SavedHierarchy> {
        resolve(
            Path::new(requested),
            CgroupMode::Hybrid,
            &parse_mountinfo(HYBRID_MOUNTINFO),
            &parse_proc_cgroup(HYBRID_SELF),
        )
        .unwrap()
    }

    #[test]
    fn absolute_path_is_relative_to_each_hierarchy_root() {
        let hierarchies = resolve_hybrid("/husk/c1");
        // cpu, cpuacct, memory, name=systemd, cgroup2; never the foreign named hierarchy.
        assert_eq!(hierarchies.len(), 5);
        for h in &hierarchies {
            assert_eq!(h.path, Path::new("/husk/c1"));
            assert_eq!(h.dir, h.mount_point.join("husk/c1"));
        }
    }

    #[test]
    fn relative_path_is_relative_to_own_cgroup_per_hierarchy() {
        let hierarchies = resolve_hybrid("c1");
        let memory = hierarchies
            .iter()
            .find(|h| h.controllers == ["memory"])
            .unwrap();
        assert_eq!(memory.path, Path::new("/process_api/abc/c1"));
        assert_eq!(
            memory.dir,
            Path::new("/sys/fs/cgroup/memory/process_api/abc/c1")
        );
        let cpu = hierarchies
            .iter()
            .find(|h| h.controllers == ["cpu"])
            .unwrap();
        assert_eq!(cpu.path, Path::new("/c1"));
        let unified = hierarchies.iter().find(|h| h.unified).unwrap();
        assert_eq!(unified.dir, Path::new("/sys/fs/cgroup/unified/c1"));
    }

    #[test]
    fn legacy_and_unified_modes_pick_their_hierarchies() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO);
        let own = parse_proc_cgroup(HYBRID_SELF);
        let legacy = resolve(Path::new("/x"), CgroupMode::Legacy, &mounts, &own).unwrap();
        assert!(legacy.iter().all(|h| !h.unified));
        let unified = resolve(Path::new("/x"), CgroupMode::Unified, &mounts, &own).unwrap();
        assert_eq!(unified.len(), 1);
        assert!(unified[0].unified);
    }

    #[test]
    fn unified_relative_path_starts_from_the_parent_of_own_cgroup() {
        let mounts = parse_mountinfo(
            "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let own = parse_proc_cgroup("0::/system.slice/lane.service\n");
        let h = resolve(Path::new("c1"), CgroupMode::Unified, &mounts, &own).unwrap();
        assert_eq!(h[0].path, Path::new("/system.slice/c1"));
        let at_root = parse_proc_cgroup("0::/\n");
        let h = resolve(Path::new("c1"), CgroupMode::Unified, &mounts, &at_root).unwrap();
        assert_eq!(h[0].path, Path::new("/c1"));
    }

    #[test]
    fn bind_mounted_subtree_maps_paths_below_its_root() {
        let mounts =
            parse_mountinfo("40 31 0:27 /outer /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        let own = parse_proc_cgroup("5:pids:/outer/me\n");
        let h = resolve(Path::new("c"), CgroupMode::Legacy, &mounts, &own).unwrap();
        assert_eq!(h[0].path, Path::new("/outer/me/c"));
        assert_eq!(h[0].dir, Path::new("/sys/fs/cgroup/pids/me/c"));
        let escaped = parse_proc_cgroup("5:pids:/elsewhere\n");
        assert!(matches!(
            resolve(Path::new("c"), CgroupMode::Legacy, &mounts, &escaped),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn missing_own_cgroup_is_an_error() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO);
        assert!(matches!(
            resolve(Path::new("c"), CgroupMode::Legacy, &mounts, &[]),
            Err(CgroupError::OwnCgroupNotFound { .. })
        ));
    }
}
