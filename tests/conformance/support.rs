//! What the conformance tests share: the test type and registry, skips, the probe and its report, host-side
//! helpers (mounts, cgroups, hook scripts).
//!
//! A test is a plain function `fn(&Ctx) -> TestResult`. It fails by panicking (the husk-testing helpers and
//! `assert!` do that, with the runtime's output in the message), is skipped by returning `Err(Skip(reason))` when
//! the host lacks what it needs, and passes by returning `Ok(())`.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use husk_testing::{default_rootfs, wait_for, Bundle, ContainerGuard, OutputExt, Runtime};
use serde_json::Value;

/// Why a test did not run. Always says what the host or kernel lacks.
#[derive(Debug)]
pub struct Skip(pub String);

/// The result of a test that did not fail.
pub type TestResult = Result<(), Skip>;

/// Returns a skip with `reason` unless `condition` holds.
pub fn require(condition: bool, reason: impl Into<String>) -> TestResult {
    if condition {
        Ok(())
    } else {
        Err(Skip(reason.into()))
    }
}

/// One registered test.
pub struct Test {
    /// `module::function`, the module named after the spec file the requirement comes from.
    pub name: String,
    /// The test body.
    pub run: fn(&Ctx) -> TestResult,
}

/// `register!("module": f, g, ...)` defines `pub fn tests() -> Vec<Test>` naming each test `module::f`.
macro_rules! register {
    ($module:literal : $($test:ident),* $(,)?) => {
        pub fn tests() -> Vec<$crate::suite::support::Test> {
            vec![$($crate::suite::support::Test {
                name: format!("{}::{}", $module, stringify!($test)),
                run: $test,
            }),*]
        }
    };
}
pub(crate) use register;

/// What every test gets: the runtime under test.
pub struct Ctx {
    /// The runtime binary.
    pub runtime_binary: PathBuf,
    /// The first line of `<runtime> --version`.
    pub runtime_version: String,
}

impl Ctx {
    /// Checks what every test needs (root, the runtime binary, a rootfs with the probe) and fails with an
    /// explanation otherwise.
    pub fn new(runtime_binary: PathBuf) -> Result<Ctx, String> {
        // SAFETY: geteuid(2) cannot fail and has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(
                "the conformance suite creates real containers and must run as root".into(),
            );
        }
        if !runtime_binary.is_file() {
            return Err(format!(
                "runtime binary {} does not exist (set HUSK_TEST_RUNTIME or pass --runtime)",
                runtime_binary.display()
            ));
        }
        let rootfs = default_rootfs();
        if !rootfs.join("bin/sh").exists() {
            return Err(format!(
                "no busybox rootfs at {} (run `make rootfs`, or set HUSK_ROOTFS)",
                rootfs.display()
            ));
        }
        if !rootfs.join(PROBE.trim_start_matches('/')).is_file() {
            return Err(format!(
                "the rootfs at {} has no {PROBE}: run `make rootfs` (it builds the probe first)",
                rootfs.display()
            ));
        }
        let version = Command::new(&runtime_binary)
            .arg("--version")
            .output()
            .map(|o| o.stdout_str().lines().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| format!("--version failed: {e}"));
        Ok(Ctx {
            runtime_binary,
            runtime_version: version,
        })
    }

    /// The runtime with a fresh private state root.
    pub fn runtime(&self) -> Runtime {
        Runtime::with_binary(&self.runtime_binary)
    }
}

/// Where the probe lives in the test rootfs.
pub const PROBE: &str = "/usr/bin/probe";

/// A bundle from the busybox rootfs (with the probe) and the runtime's own default config, without a terminal.
pub fn bundle(rt: &Runtime) -> Bundle {
    Bundle::new(rt)
}

/// `process.args` that run the probe's report with `extra` arguments.
pub fn probe_args(extra: &[&str]) -> Vec<String> {
    std::iter::once(PROBE)
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect()
}

/// Runs the bundle in the foreground with the probe as the process and returns its report. Panics (with the
/// runtime's output) if the container does not exit 0 or prints no report.
pub fn run_probe(rt: &Runtime, bundle: Bundle, extra: &[&str]) -> Report {
    let bundle = bundle.args(probe_args(extra));
    let out = rt.run_bundle(&bundle);
    assert!(
        out.status.success(),
        "{} run of the probe failed ({}): {}\nstdout: {}\nconfig: {}",
        rt.name(),
        out.status,
        out.stderr_str().trim(),
        out.stdout_str().trim(),
        bundle.config()
    );
    Report::parse(&out.stdout_str())
}

/// Reads `name` from the bundle's shared directory once it exists (the probe writes it atomically with `--out`).
pub fn wait_shared(bundle: &Bundle, name: &str, timeout: Duration) -> Option<String> {
    let mut found = None;
    wait_for(
        || {
            found = bundle.read_shared(name);
            found.is_some()
        },
        timeout,
    );
    found
}

/// Creates and starts a container (made with [`probe_then_sleep`] args and a shared dir), waits for the probe's
/// report in /shared/report.json and returns the guard and the report; the container keeps running.
pub fn start_probe<'rt>(rt: &'rt Runtime, bundle: &Bundle) -> (ContainerGuard<'rt>, Report) {
    assert!(
        bundle.shared_dir().is_dir(),
        "start_probe needs a bundle made with .with_shared_dir()"
    );
    let guard = rt.create(bundle);
    guard.start();
    let text = wait_shared(bundle, "report.json", Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "the probe wrote no report within 20 s; state: {:?}",
            rt.try_state(guard.id())
        )
    });
    (guard, Report::parse(&text))
}

/// A shell script for `process.args` that runs the probe into /shared/report.json and then keeps the container
/// running.
pub fn probe_then_sleep(extra: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = extra.iter().map(|a| shell_quote(a)).collect();
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "{PROBE} {} --out /shared/report.json; exec sleep 600",
            quoted.join(" ")
        ),
    ]
}

/// Single-quotes `text` for /bin/sh.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The probe's JSON report, with accessors that fail with the report in the message.
pub struct Report {
    /// The whole report.
    pub json: Value,
}

impl Report {
    /// Parses the probe's output.
    pub fn parse(text: &str) -> Report {
        let json = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the probe's output is not JSON ({e}):\n{text}"));
        Report { json }
    }

    /// The value at a JSON pointer; panics if absent.
    pub fn at(&self, pointer: &str) -> &Value {
        self.json
            .pointer(pointer)
            .unwrap_or_else(|| panic!("probe report has no {pointer}"))
    }

    /// Inode of namespace `kind` as named in /proc/self/ns (`net`, `mnt`, ...).
    pub fn ns(&self, kind: &str) -> u64 {
        self.at(&format!("/namespaces/{kind}"))
            .as_u64()
            .unwrap_or_else(|| panic!("namespace {kind} unknown to the probe"))
    }

    /// A capability set (`bounding`, `effective`, `permitted`, `inheritable`, `ambient`) as names.
    pub fn caps(&self, set: &str) -> BTreeSet<String> {
        string_set(self.at(&format!("/capabilities/{set}")))
    }

    /// The topmost mount at `mount_point` (the last one listed), if any.
    pub fn mount(&self, mount_point: &str) -> Option<&Value> {
        self.at("/mounts")
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["mount_point"] == mount_point))
    }

    /// Like [`Report::mount`] but panics, listing the mount points, if there is none.
    pub fn mount_at(&self, mount_point: &str) -> &Value {
        self.mount(mount_point).unwrap_or_else(|| {
            panic!(
                "no mount at {mount_point}; mount points: {:?}",
                self.mount_points()
            )
        })
    }

    /// All mount points in table order.
    pub fn mount_points(&self) -> Vec<String> {
        self.at("/mounts")
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m["mount_point"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The check of a path given with `--path`.
    pub fn path(&self, path: &str) -> &Value {
        self.json["paths"]
            .get(path)
            .unwrap_or_else(|| panic!("probe report has no path check for {path}"))
    }

    /// The entry for `path` in the device listing, if present.
    pub fn device(&self, path: &str) -> Option<&Value> {
        self.at("/devices")
            .as_array()
            .and_then(|d| d.iter().find(|d| d["path"] == path))
    }

    /// (soft, hard) of an rlimit by OCI name.
    pub fn rlimit(&self, name: &str) -> (u64, u64) {
        let entry = self.at(&format!("/rlimits/{name}"));
        (
            entry["soft"].as_u64().expect("soft"),
            entry["hard"].as_u64().expect("hard"),
        )
    }

    /// A sysctl value given with `--sysctl`, or the error object's text.
    pub fn sysctl(&self, key: &str) -> Result<String, String> {
        let value = self.json["sysctls"]
            .get(key)
            .unwrap_or_else(|| panic!("probe report has no sysctl {key}"));
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| value.to_string())
    }

    /// A cgroup file given with `--cgroup-file` (`controller:file`), or the error.
    pub fn cgroup_file(&self, spec: &str) -> Result<String, String> {
        let value = self.json["cgroup_files"]
            .get(spec)
            .unwrap_or_else(|| panic!("probe report has no cgroup file {spec}"));
        value["value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| value.to_string())
    }

    /// The result of a system call given with `--syscall`: the errno, or None if it succeeded.
    pub fn syscall_errno(&self, name: &str) -> Option<i32> {
        let value = self.json["syscalls"]
            .get(name)
            .unwrap_or_else(|| panic!("probe report has no syscall {name}"));
        assert!(
            value.get("error").is_none(),
            "the probe could not try {name}: {value}"
        );
        value["errno"].as_i64().map(|e| e as i32)
    }

    /// The cgroup path of the process in the hierarchy that has `controller` (v1), from /proc/self/cgroup.
    pub fn cgroup_path(&self, controller: &str) -> Option<String> {
        self.at("/cgroups").as_array()?.iter().find_map(|c| {
            c["controllers"]
                .as_array()?
                .iter()
                .any(|n| n == controller)
                .then(|| c["path"].as_str().map(str::to_owned))?
        })
    }

    /// Open descriptor numbers.
    pub fn fds(&self) -> Vec<i64> {
        self.at("/fds")
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["fd"].as_i64()).collect())
            .unwrap_or_default()
    }

    /// The environment as `KEY=value` strings.
    pub fn env(&self) -> Vec<String> {
        self.at("/env")
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A JSON array of strings as a set.
pub fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A set of owned strings from string literals.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Whether a mountinfo entry (from the report) lists `option` among its per-mount options.
pub fn has_option(mount: &Value, option: &str) -> bool {
    mount["options"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v == option))
}

/// Whether a mountinfo entry lists `option` among its superblock options.
pub fn has_super_option(mount: &Value, option: &str) -> bool {
    mount["super_options"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v == option))
}

/// The errno of a failed path check (`read_error` or `write_error`).
pub fn path_errno(check: &Value, which: &str) -> Option<i32> {
    check[which]["errno"].as_i64().map(|e| e as i32)
}

/// A mount made on the host for a test, unmounted (lazily, so a busy mount cannot make the test hang) on drop.
pub struct HostMount {
    target: PathBuf,
}

impl HostMount {
    /// Mounts a small tmpfs on `target` (created if missing).
    pub fn tmpfs(target: &Path) -> HostMount {
        std::fs::create_dir_all(target).expect("create mount point");
        run_host(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            &target.to_string_lossy(),
        ]);
        HostMount {
            target: target.to_path_buf(),
        }
    }

    /// Bind-mounts `dir` on itself and makes it a shared mount (a propagation peer group of its own).
    pub fn shared_bind(dir: &Path) -> HostMount {
        let path = dir.to_string_lossy().into_owned();
        run_host(&["mount", "--bind", &path, &path]);
        let mount = HostMount {
            target: dir.to_path_buf(),
        };
        run_host(&["mount", "--make-shared", &path]);
        mount
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.target).status();
    }
}

/// Runs a host command, panicking with its output unless it succeeds.
pub fn run_host(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed\n{}", out.describe());
    out
}

/// A cgroup path unique to this test run, for `linux.cgroupsPath`; every directory it leaves behind in any
/// hierarchy is removed on drop (the runtime should have removed them; tests that check that do so first).
pub struct CgroupPath {
    path: String,
}

impl CgroupPath {
    /// A fresh absolute path `/husk-conformance-<pid>-<n>`.
    pub fn new() -> CgroupPath {
        CgroupPath {
            path: format!("/{}", husk_testing::unique_id("husk-conformance")),
        }
    }

    /// The path as given in config.json.
    pub fn as_str(&self) -> &str {
        &self.path
    }
}

impl Drop for CgroupPath {
    fn drop(&mut self) {
        for dir in husk_testing::existing_cgroups(&self.path) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// Whether the host uses cgroup v1 controllers (a hybrid or legacy layout), which the resource tests read.
pub fn cgroup_v1_controller(controller: &str) -> TestResult {
    require(
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("cgroup.procs")
            .exists(),
        format!("host has no cgroup v1 {controller} hierarchy at /sys/fs/cgroup/{controller}"),
    )
}

/// Reads the host's own /proc/self/status field (e.g. to know the host's bounding set).
pub fn host_status_field(key: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// Arguments for `create --bundle <bundle> <id>`.
pub fn create_args(bundle: &Bundle, id: &str) -> Vec<std::ffi::OsString> {
    vec![
        "create".into(),
        "--bundle".into(),
        bundle.path().as_os_str().to_owned(),
        id.into(),
    ]
}

/// A listening unix socket for `--console-socket`: the runtime connects and sends the pty master of a container
/// whose `process.terminal` is true (SCM_RIGHTS).
pub struct ConsoleSocket {
    _dir: husk_testing::TempDir,
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ConsoleSocket {
    /// Binds a socket in a fresh temporary directory.
    pub fn new() -> ConsoleSocket {
        let dir = husk_testing::TempDir::new("conformance-console");
        let path = dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    /// The socket's path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the runtime to connect and returns the descriptor it sent.
    pub fn receive(&self, timeout: Duration) -> std::os::fd::OwnedFd {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        use std::os::fd::{AsRawFd, FromRawFd};
        let mut stream = None;
        wait_for(
            || {
                stream = self.listener.accept().ok().map(|(s, _)| s);
                stream.is_some()
            },
            timeout,
        );
        let stream = stream.expect("the runtime did not connect to the console socket");
        stream.set_nonblocking(false).expect("blocking stream");
        stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on the console socket");
        for cmsg in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(&fd) = fds.first() {
                    // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                    return unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                }
            }
        }
        panic!("the runtime sent no descriptor over the console socket");
    }
}

/// Creates (with `--console-socket`) and starts a container whose process, on a terminal, runs the probe into
/// /shared/report.json; the bundle must have a shared dir and `process.terminal` true. Returns the report and the
/// pty master (keep it open while the container runs: closing it hangs the terminal up).
pub fn terminal_probe(rt: &Runtime, bundle: &Bundle) -> (Report, std::os::fd::OwnedFd) {
    let socket = ConsoleSocket::new();
    let guard = rt.guard(husk_testing::unique_id("tty"));
    let mut args = create_args(bundle, guard.id());
    args.extend([
        "--console-socket".into(),
        socket.path().as_os_str().to_owned(),
    ]);
    let create = rt.spawn(args);
    let master = socket.receive(Duration::from_secs(30));
    let out = create.wait(husk_testing::DEFAULT_TIMEOUT);
    assert!(
        out.status.success(),
        "create with a terminal failed\n{}",
        out.describe()
    );
    guard.start();
    let text = wait_shared(bundle, "report.json", Duration::from_secs(20))
        .expect("the probe on the terminal wrote no report");
    (Report::parse(&text), master)
}
