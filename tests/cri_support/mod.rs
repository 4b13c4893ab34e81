//! A private containerd for the CRI test: its own config, root, state and socket under a temp dir, the CRI plugin
//! on, and one runtime handler, `husk`, that is containerd's runc shim (`io.containerd.runc.v2`) with `BinaryName`
//! set to the runtime under test — what a Kubernetes RuntimeClass with `handler: husk` selects on a node.
//!
//! Everything containerd and its shims write is under the temp dir, except the shims' sockets, which containerd 1.6
//! always puts in `/run/containerd/s/` (the test checks that they go away). On drop the daemon is stopped, and
//! whatever a failed test left (shims, containers in the runtime's state root, mounts under the temp dir) is removed
//! so the host stays clean; the test's own checks for leftovers run before that, so a leak still fails it.

pub mod image;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use husk_testing::{mounts_under, run_with_timeout, wait_for, OutputExt, TempDir};

/// containerd's namespace for everything the CRI plugin makes (kubelet's images and pods live there).
pub const K8S_NAMESPACE: &str = "k8s.io";
/// The runtime handler the pod asks for (RunPodSandboxRequest.runtime_handler, a RuntimeClass's `handler`).
pub const HANDLER: &str = "husk";

/// Generous: the machine may be loaded, and the VM lane runs under emulation.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// How the CRI plugin places pods' cgroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupDriver {
    /// cgroupfs: pod cgroup parents are paths such as `/husk-cri-123`.
    Cgroupfs,
    /// systemd (`SystemdCgroup = true`): parents are slices, containers transient scopes in them.
    Systemd,
}

/// The binaries a run needs, each found on PATH or failing the test with what is missing.
pub fn require_tools() {
    for tool in ["containerd", "ctr", "containerd-shim-runc-v2"] {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "the CRI test needs {tool} on PATH (Debian's containerd package: apt-get install containerd); \
             it starts its own containerd with a private config"
        );
    }
}

/// A containerd started for one test.
pub struct Containerd {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    runtime: PathBuf,
    runtime_root: PathBuf,
    // Last: dropped after the daemon and its leftovers are gone (it refuses to delete through a mount).
    dir: TempDir,
}

impl Containerd {
    /// Writes the config and starts containerd, waiting until it answers on its socket. `sandbox_image` is the pause
    /// image's name (it must be imported before a pod starts); `runtime` the runtime binary for the `husk` handler.
    pub fn start(runtime: &Path, sandbox_image: &str, driver: &CgroupDriver) -> Containerd {
        let dir = TempDir::new("husk-cri");
        let d = dir.path().to_path_buf();
        let socket = d.join("containerd.sock");
        let runtime_root = d.join("runtime-root");
        for sub in ["cni-bin", "cni-conf", "opt"] {
            fs::create_dir(d.join(sub)).unwrap();
        }
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
# Snapshotters and exporters the test does not use (the v1 runtime stays: containerd 1.6's task service needs it).
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
# No debug or metrics listener (empty addresses are off).
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # The streaming server (exec/attach/port-forward URLs) cannot be turned off: loopback, any free port.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Kubelet's sandboxes ask for oom_score_adj -998, which only CAP_SYS_RESOURCE may set; where the test runs
  # without it (a container, as on the development host), containerd clamps scores to its own instead, which is
  # what this setting is for.
  restrict_oom_score_adj = {restrict_oom}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc-root"
        SystemdCgroup = {systemd}
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}.options]
        BinaryName = "{runtime}"
        Root = "{runtime_root}"
        SystemdCgroup = {systemd}
  # Pods here use the host's network (NamespaceMode NODE): no CNI plugin or config is needed. Empty private
  # directories keep the plugin away from the host's.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni-conf"
"#,
            d = d.display(),
            runtime = runtime.display(),
            runtime_root = runtime_root.display(),
            systemd = *driver == CgroupDriver::Systemd,
            restrict_oom = !has_cap_sys_resource(),
        );
        fs::write(d.join("config.toml"), config).unwrap();
        let log = d.join("containerd.log");
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
        let mut containerd = Containerd {
            child: Some(child),
            socket,
            log,
            runtime: runtime.to_path_buf(),
            runtime_root,
            dir,
        };
        let answered = wait_for(
            || {
                if containerd.exited() {
                    return true;
                }
                containerd.socket.exists() && containerd.ctr(["version"]).status.success()
            },
            TIMEOUT,
        );
        assert!(
            answered && !containerd.exited(),
            "containerd did not come up within {TIMEOUT:?}:\n{}",
            containerd.log_tail()
        );
        containerd
    }

    fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().unwrap().is_some(),
            None => true,
        }
    }

    /// The temp dir holding containerd's config, root, state, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's gRPC socket (the CRI endpoint).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The runtime's state root as the shim passes it (`--root`): the handler's `Root` plus the namespace.
    pub fn runtime_state_root(&self) -> PathBuf {
        self.runtime_root.join(K8S_NAMESPACE)
    }

    /// Runs `ctr` against this containerd in the `k8s.io` namespace.
    pub fn ctr<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", K8S_NAMESPACE])
            .args(args);
        run_with_timeout(&mut cmd, TIMEOUT)
    }

    /// Imports an image tarball (`ctr images import`, unpacked for the overlayfs snapshotter the CRI plugin uses).
    pub fn import(&self, tarball: &Path) {
        let out = self.ctr([
            "images".as_ref(),
            "import".as_ref(),
            "--snapshotter".as_ref(),
            "overlayfs".as_ref(),
            tarball.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "ctr images import {}: {}",
            tarball.display(),
            out.stderr_str()
        );
    }

    /// The ids of the containers in the runtime's state root, as the runtime itself lists them (`list -q`).
    pub fn runtime_containers(&self) -> Vec<String> {
        let root = self.runtime_state_root();
        if !root.exists() {
            return Vec::new();
        }
        let out = run_with_timeout(
            Command::new(&self.runtime)
                .arg("--root")
                .arg(&root)
                .args(["list", "-q"]),
            TIMEOUT,
        );
        assert!(
            out.status.success(),
            "{} --root {} list -q: {}",
            self.runtime.display(),
            root.display(),
            out.stderr_str()
        );
        out.stdout_str().lines().map(str::to_owned).collect()
    }

    /// The last 40 lines of containerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- containerd log ({}), last lines:\n{}",
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// Stops containerd (SIGTERM, then SIGKILL after the timeout) and waits for it. Shims are separate processes that
    /// outlive it by design; they end when their containers are deleted.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let stopped = wait_for(|| child.try_wait().unwrap().is_some(), TIMEOUT);
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
        assert!(
            stopped,
            "containerd did not stop on SIGTERM within {TIMEOUT:?}"
        );
    }

    /// Processes other than containerd whose command line names its temp dir: its shims (`-address <dir>/...`).
    pub fn processes_left(&self) -> Vec<(i32, String)> {
        let daemon = self.child.as_ref().map(|c| c.id() as i32);
        processes_mentioning(self.dir())
            .into_iter()
            .filter(|(pid, _)| Some(*pid) != daemon)
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        // Containers a failed test left: removed through the runtime, as the shim would have.
        let root = self.runtime_state_root();
        if root.exists() {
            for id in self.runtime_containers_quiet() {
                let _ = run_with_timeout(
                    Command::new(&self.runtime)
                        .arg("--root")
                        .arg(&root)
                        .args(["delete", "--force", &id]),
                    TIMEOUT,
                );
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (pid, _) in self.processes_left() {
            // SAFETY: kill(2) has no memory-safety preconditions. These are shims this test's containerd started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut mounts = mounts_under(self.dir());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for mount in mounts {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}

impl Containerd {
    fn runtime_containers_quiet(&self) -> Vec<String> {
        let root = self.runtime_state_root();
        fs::read_dir(root)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// True when this process has CAP_SYS_RESOURCE in its effective set.
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapEff in /proc/self/status");
    // CAP_SYS_RESOURCE is capability 24 (linux/capability.h).
    effective & (1 << 24) != 0
}

/// Processes (pid and command line) whose command line contains `path`, other than this one.
pub fn processes_mentioning(path: &Path) -> Vec<(i32, String)> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push((pid, cmdline.trim_end().to_owned()));
        }
    }
    found
}

/// The shim's socket path of a task, from the `address` file containerd 1.6 keeps in the task's bundle
/// (`unix:///run/containerd/s/<hash>`).
pub fn shim_socket(containerd: &Containerd, id: &str) -> Option<PathBuf> {
    let address = containerd
        .dir()
        .join("state/io.containerd.runtime.v2.task")
        .join(K8S_NAMESPACE)
        .join(id)
        .join("address");
    let text = fs::read_to_string(address).ok()?;
    Some(PathBuf::from(text.trim().trim_start_matches("unix://")))
}

/// True when `path` exists as a socket.
pub fn is_socket(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}
