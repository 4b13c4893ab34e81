//! The runtime under test, driven only through its runc-compatible command line.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::bundle::Bundle;
use crate::process::{run_with_timeout, OutputExt, Spawned};
use crate::tempdir::TempDir;
use crate::util::{require_root, unique_id};

/// How long any single runtime command may take before the harness kills it and fails the test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A runtime binary plus a private state directory passed as `--root` to every command.
///
/// Each `Runtime` value owns its own state directory, so tests running in parallel (or other tools on the host) never
/// see each other's containers. On drop, any container still listed there is force-deleted and the directory is
/// removed.
#[derive(Debug)]
pub struct Runtime {
    binary: PathBuf,
    // The state root is `<scratch>/root`, one level down, so that a runtime that wrongly accepts an id such as `..`
    // can only ever touch this process's own scratch directory.
    scratch: TempDir,
    root: PathBuf,
}

impl Runtime {
    /// Picks the runtime binary from `HUSK_TEST_RUNTIME`, falling back to `default_binary` (typically
    /// `env!("CARGO_BIN_EXE_husk")`), and creates a fresh private state root.
    ///
    /// Panics when not running as root or when the binary does not exist.
    pub fn from_env(default_binary: impl AsRef<Path>) -> Runtime {
        require_root();
        let binary = match std::env::var_os("HUSK_TEST_RUNTIME") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => default_binary.as_ref().to_path_buf(),
        };
        Runtime::with_binary(binary)
    }

    /// Uses `binary` as the runtime, with a fresh private state root. Panics if the binary does not exist.
    pub fn with_binary(binary: impl Into<PathBuf>) -> Runtime {
        let binary = binary.into();
        assert!(
            binary.is_file(),
            "runtime binary {} does not exist (set HUSK_TEST_RUNTIME to a runc-compatible runtime)",
            binary.display()
        );
        let scratch = TempDir::new("husk-test-state");
        let root = scratch.join("root");
        std::fs::create_dir(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        Runtime {
            binary,
            scratch,
            root,
        }
    }

    /// Path of the runtime binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The private state directory passed as `--root`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory owned by this runtime value (the parent of [`Runtime::root`]), removed on drop.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The binary's file name (`"husk"`, `"runc"`, `"crun"`, ...), for the few tests whose expectations differ
    /// between runtimes. Every such difference should be documented where it is used.
    pub fn name(&self) -> &str {
        self.binary
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or_default()
    }

    /// True when the runtime under test is runc (by file name).
    pub fn is_runc(&self) -> bool {
        self.name() == "runc"
    }

    /// A command for the runtime with `--root <private state dir>` placed before `args`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd
    }

    /// A command for the runtime without the global `--root` (for `spec`, `--version`, `features`, or tests that
    /// place global options themselves).
    pub fn bare_cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        cmd
    }

    /// Runs the runtime with `args` (after `--root`) and returns its output, whatever the exit status.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_with_timeout(&mut self.cmd(args), DEFAULT_TIMEOUT)
    }

    /// Like [`Runtime::run`] but panics, showing stdout and stderr, unless the runtime exits with status 0.
    pub fn run_ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "{} {:?} failed\n{}",
            self.name(),
            args,
            out.describe()
        );
        out
    }

    /// Like [`Runtime::run`] but panics unless the runtime exits with a non-zero status.
    pub fn run_fail<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args);
        assert!(
            !out.status.success(),
            "{} {:?} succeeded but was expected to fail\n{}",
            self.name(),
            args,
            out.describe()
        );
        out
    }

    /// Starts the runtime with `args` in the background (stdio captured to files), e.g. to signal it.
    pub fn spawn<I, S>(&self, args: I) -> Spawned
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Spawned::start(&mut self.cmd(args))
    }

    /// `state <id>` parsed as JSON. Panics if the command fails or prints something that is not JSON.
    pub fn state(&self, id: &str) -> Value {
        let out = self.run_ok(["state", id]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id} is not JSON: {e}\n{}", out.describe()))
    }

    /// `state <id>` parsed as JSON, or `None` if the runtime reports an error (e.g. no such container).
    pub fn try_state(&self, id: &str) -> Option<Value> {
        let out = self.run(["state", id]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self, id: &str) -> String {
        let state = self.state(id);
        state["status"]
            .as_str()
            .unwrap_or_else(|| panic!("state of {id} has no string status: {state}"))
            .to_owned()
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self, id: &str) -> i32 {
        let state = self.state(id);
        state["pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("state of {id} has no pid: {state}"))
    }

    /// Container ids printed by `list -q`.
    pub fn list_ids(&self) -> Vec<String> {
        let out = self.run_ok(["list", "-q"]);
        out.stdout_str()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Names of the entries in the private state directory (what the runtime has left on disk).
    pub fn state_dir_entries(&self) -> Vec<String> {
        match std::fs::read_dir(self.root()) {
            Ok(entries) => entries
                .map(|e| {
                    e.expect("read state dir")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.root().display()),
        }
    }

    /// A guard that force-deletes container `id` when dropped.
    pub fn guard(&self, id: impl Into<String>) -> ContainerGuard<'_> {
        ContainerGuard {
            runtime: self,
            id: id.into(),
        }
    }

    /// `create --bundle <bundle> <new unique id>`, panicking on failure; returns the guard of the new container.
    ///
    /// The container's stdout and stderr go to anonymous files that are not read back: write results into
    /// [`Bundle::shared_dir`] instead.
    pub fn create(&self, bundle: &Bundle) -> ContainerGuard<'_> {
        let guard = self.guard(unique_id("c"));
        self.run_ok(
            ["create", "--bundle"]
                .map(OsStr::new)
                .into_iter()
                .chain([bundle.path().as_os_str(), OsStr::new(guard.id())]),
        );
        guard
    }

    /// `run --bundle <bundle> <unique id>` in the foreground, returning the runtime's output (which carries the
    /// container process's stdout/stderr and exit code) whatever the exit status. The container is force-deleted
    /// afterwards.
    pub fn run_bundle(&self, bundle: &Bundle) -> Output {
        let guard = self.guard(unique_id("run"));
        let out = self.run(
            ["run", "--bundle"]
                .map(OsStr::new)
                .into_iter()
                .chain([bundle.path().as_os_str(), OsStr::new(guard.id())]),
        );
        drop(guard);
        out
    }

    /// Like [`Runtime::run_bundle`] but panics unless the container exits with 0; returns its stdout.
    pub fn run_bundle_ok(&self, bundle: &Bundle) -> String {
        let out = self.run_bundle(bundle);
        assert!(
            out.status.success(),
            "container run failed\nconfig: {}\n{}",
            bundle.config(),
            out.describe()
        );
        out.stdout_str()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Best effort: whatever a test left behind in our private root must not outlive it.
        let Ok(out) = Spawned::start(&mut self.cmd(["list", "-q"])).wait_or_kill(DEFAULT_TIMEOUT)
        else {
            return;
        };
        for id in out
            .stdout_str()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let _ = Spawned::start(&mut self.cmd(["delete", "--force", id]))
                .wait_or_kill(DEFAULT_TIMEOUT);
        }
    }
}

/// Force-deletes a container (`delete --force <id>`, errors ignored) when dropped.
///
/// Hold one for every container a test creates, from before the `create`/`run` command is issued, so that a failing
/// assertion never leaks a container.
#[derive(Debug)]
pub struct ContainerGuard<'rt> {
    runtime: &'rt Runtime,
    id: String,
}

impl ContainerGuard<'_> {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime that owns the container.
    pub fn runtime(&self) -> &Runtime {
        self.runtime
    }

    /// `state <id>` as JSON.
    pub fn state(&self) -> Value {
        self.runtime.state(&self.id)
    }

    /// The container's current status string.
    pub fn status(&self) -> String {
        self.runtime.status(&self.id)
    }

    /// The container's init pid (host view).
    pub fn pid(&self) -> i32 {
        self.runtime.pid(&self.id)
    }

    /// `start <id>`, panicking on failure.
    pub fn start(&self) -> Output {
        self.runtime.run_ok(["start", &self.id])
    }

    /// `kill <id> <signal>`, panicking on failure.
    pub fn kill(&self, signal: &str) -> Output {
        self.runtime.run_ok(["kill", &self.id, signal])
    }

    /// Waits until the container's status is `status`; returns false on timeout.
    pub fn wait_status(&self, status: &str, timeout: Duration) -> bool {
        crate::util::wait_for(
            || {
                self.runtime
                    .try_state(&self.id)
                    .is_some_and(|s| s["status"] == status)
            },
            timeout,
        )
    }
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let delete = Spawned::start(&mut self.runtime.cmd(["delete", "--force", &self.id]));
        let _ = delete.wait_or_kill(DEFAULT_TIMEOUT);
    }
}
