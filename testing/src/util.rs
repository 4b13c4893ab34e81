//! Small helpers: privilege check, ids, polling, scripts, namespaces.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Panics with an explanation unless the effective uid is 0.
///
/// Container tests need root (namespaces, mounts, cgroups); failing loudly is better than a test that silently
/// checks nothing.
pub fn require_root() {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test creates real containers and must run as root (euid is {euid}); run it with sudo or as root"
    );
}

/// A container id that is unique on this host for the life of this process: `<prefix>-<pid>-<counter>`.
///
/// The pid keeps concurrent test processes apart (runtimes name cgroups after ids, and cgroups are host-wide).
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `condition` every 10 ms until it returns true (then returns true) or `timeout` passes (then returns false).
pub fn wait_for(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes an executable (0755) shell script: `#!/bin/sh` followed by `body`.
///
/// The interpreter is resolved where the script runs: on the host for most hooks, inside the container for
/// `startContainer` hooks and container processes.
pub fn write_script(path: impl AsRef<Path>, body: &str) {
    let path = path.as_ref();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// The `/proc/<pid>/ns/<file>` name for an OCI namespace type (`"network"` → `"net"`, `"mount"` → `"mnt"`).
fn ns_file(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// Inode of namespace `kind` (OCI name, e.g. `"network"`, or proc name, e.g. `"net"`) of process `pid`.
pub fn namespace_inode(pid: i32, kind: &str) -> u64 {
    let path = format!("/proc/{pid}/ns/{}", ns_file(kind));
    std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("cannot stat {path}: {e}"))
        .ino()
}

/// Inode of the test process's own namespace `kind` (the host's, for a test run on the host).
pub fn host_namespace_inode(kind: &str) -> u64 {
    let path = format!("/proc/self/ns/{}", ns_file(kind));
    std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("cannot stat {path}: {e}"))
        .ino()
}

/// True if process `pid` no longer exists or is a zombie (exited but not yet reaped, which the slow-reaping init of
/// some hosts leaves around for a while).
pub fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state letter follows the parenthesised command name, which may itself contain ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
    }
}

/// Zombie children of the calling process (exited, never reaped by it): what a library that
/// does not reap what it started leaves behind.
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name: state, then the parent's pid.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split_whitespace();
        if fields.next() == Some("Z") && fields.next() == Some(me.as_str()) {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether `pid` is still a process (a zombie included) whose parent is the calling process.
pub fn is_child(pid: i32) -> bool {
    let me = std::process::id().to_string();
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1).map(|p| p == me))
            .unwrap_or(false)
    })
}

/// A host process (util-linux `unshare --fork ... sleep`) that keeps new namespaces alive, so that a container can
/// join them by path. The process is killed on drop.
#[derive(Debug)]
pub struct NamespaceHolder {
    unshare: Child,
    holder_pid: i32,
}

impl NamespaceHolder {
    /// Creates a process in new namespaces of the given OCI kinds (`"pid"`, `"network"`, `"mount"`, `"ipc"`,
    /// `"uts"`, `"cgroup"`, `"user"`, `"time"`). A new user namespace maps root to root (`--map-root-user`).
    pub fn new(kinds: &[&str]) -> NamespaceHolder {
        let mut cmd = Command::new("unshare");
        cmd.arg("--fork");
        for kind in kinds {
            let flag = match *kind {
                "pid" => "--pid",
                "network" => "--net",
                "mount" => "--mount",
                "ipc" => "--ipc",
                "uts" => "--uts",
                "cgroup" => "--cgroup",
                "user" => "--map-root-user",
                "time" => "--time",
                other => panic!("unknown namespace kind {other:?}"),
            };
            cmd.arg(flag);
        }
        cmd.args(["sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut unshare = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare (util-linux) {cmd:?}: {e}"));
        let unshare_pid = unshare.id();
        let children_file = format!("/proc/{unshare_pid}/task/{unshare_pid}/children");
        let mut holder_pid = None;
        let found = wait_for(
            || {
                holder_pid = std::fs::read_to_string(&children_file)
                    .ok()
                    .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()));
                // The forked child becomes `sleep` only after exec; wait for it so its namespaces are final.
                holder_pid.is_some_and(|pid: i32| {
                    std::fs::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "sleep"))
                })
            },
            Duration::from_secs(10),
        );
        if !found {
            let _ = unshare.kill();
            let status = unshare.wait();
            panic!("namespace holder {cmd:?} did not start (status {status:?})");
        }
        NamespaceHolder {
            unshare,
            holder_pid: holder_pid.expect("holder pid"),
        }
    }

    /// Host pid of the process inside the namespaces.
    pub fn pid(&self) -> i32 {
        self.holder_pid
    }

    /// `/proc/<pid>/ns/<file>` of namespace `kind` (OCI name), suitable for `linux.namespaces[].path`.
    pub fn path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{}", self.holder_pid, ns_file(kind)))
    }

    /// Inode of the held namespace `kind`.
    pub fn inode(&self, kind: &str) -> u64 {
        namespace_inode(self.holder_pid, kind)
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        // The holder is unshare's child: while unshare runs, it has not reaped the holder, so the pid is still ours.
        if let Ok(None) = self.unshare.try_wait() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(self.holder_pid, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// The directories that exist for cgroup path `cgroups_path` (as in `linux.cgroupsPath`, e.g. `"/my-ctr"`) in every
/// cgroup hierarchy mounted under `/sys/fs/cgroup`: each v1 controller, the v2 `unified` mount of hybrid hosts, or
/// the v2 root itself on unified hosts. An empty result means the runtime left no cgroup behind.
pub fn existing_cgroups(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let base = Path::new("/sys/fs/cgroup");
    let mut found = Vec::new();
    if base.join("cgroup.controllers").exists() {
        // Pure cgroup v2.
        let dir = base.join(rel);
        if dir.is_dir() {
            found.push(dir);
        }
        return found;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return found;
    };
    for entry in entries.flatten() {
        let dir = entry.path().join(rel);
        if dir.is_dir() {
            found.push(dir);
        }
        // A relative cgroupsPath lands under the runtime's own cgroup, which can differ per
        // hierarchy (e.g. memory under /process_api/<hash>): look there too.
        for own in own_cgroups() {
            let nested = entry.path().join(own.trim_start_matches('/')).join(rel);
            if own != "/" && nested.is_dir() && !found.contains(&nested) {
                found.push(nested);
            }
        }
    }
    found.sort();
    found
}

/// This process's cgroup paths, one per hierarchy (from /proc/self/cgroup).
fn own_cgroups() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut paths: Vec<String> = text
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(str::to_string)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
