//! Running one case against one runtime: fixtures, the command sequence, host checks and cleanup.
//!
//! Both runtimes see the same case directory path and container id (the runs are sequential and each is cleaned up
//! before the next), so outputs compare without rewriting paths.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use husk_testing::{existing_cgroups, mounts_under, NamespaceHolder};
use serde_json::Value;

use crate::catalogue::{Case, Fixture, Step, END_MARKER};
use crate::normalise::{self, NsContext, Observations};

/// Longest any single runtime command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Runtime {
    pub binary: PathBuf,
    /// The `--root` state directory, private to this tool run.
    pub root: PathBuf,
}

pub struct Env {
    /// Scratch directory of this tool run; each case uses `<work>/case`.
    pub work: PathBuf,
    /// The busybox rootfs, the overlay's read-only lower layer.
    pub rootfs: PathBuf,
    /// `runc spec` output.
    pub base: Value,
    pub host_ns: BTreeMap<String, u64>,
}

impl Env {
    pub fn case_dir(&self) -> PathBuf {
        self.work.join("case")
    }
}

/// The container id of a case: the same for both runtimes.
pub fn container_id(case: &Case) -> String {
    format!("hd-{:08x}", case.seed & 0xffff_ffff)
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the case against `rt` and returns what was observed. Everything it creates is removed before it returns.
pub fn run_case(env: &Env, rt: &Runtime, case: &Case) -> Observations {
    let mut obs = Observations::new();
    let case_dir = env.case_dir();
    remove_case_dir(&case_dir);
    let bundle = case_dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for dir in [&rootfs, &case_dir.join("upper"), &case_dir.join("ovwork")] {
        std::fs::create_dir_all(dir).expect("create case dirs");
    }
    let overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        env.rootfs.display(),
        case_dir.join("upper").display(),
        case_dir.join("ovwork").display()
    );
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &overlay])
        .arg(&rootfs)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // No overlayfs (e.g. /tmp itself on overlayfs): a private copy of the image instead.
        let copied = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", env.rootfs.display()))
            .arg(&rootfs)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            copied,
            "cannot mount or copy the rootfs at {}",
            rootfs.display()
        );
    }

    let id = container_id(case);
    let case_str = case_dir.to_string_lossy().into_owned();
    make_fixtures(case, &case_dir, &rootfs, &|text: &str| {
        text.replace("@CASE@", &case_str).replace("@ID@", &id)
    });
    let kinds = case.holder_kinds();
    let holder = (!kinds.is_empty()).then(|| NamespaceHolder::new(&kinds));
    let ns = NsContext {
        host: env.host_ns.clone(),
        holder: holder
            .as_ref()
            .map(|h| normalise::namespace_inodes(&h.pid().to_string()))
            .unwrap_or_default(),
    };
    let fill = |text: &str| {
        let text = text.replace("@CASE@", &case_str).replace("@ID@", &id);
        match &holder {
            Some(h) => text.replace("@HOLDER@", &h.pid().to_string()),
            None => text,
        }
    };
    let config = fill(&serde_json::to_string_pretty(&case.config(&env.base)).expect("json"));
    std::fs::write(bundle.join("config.json"), config).expect("write config.json");

    let mounts_before = host_mount_points();
    let main_out = case_dir.join("main.out");
    let bundle_str = bundle.to_string_lossy().into_owned();
    let mut ctx = StepContext {
        rt,
        last_signal: None,
        global_flags: case.global_flags().iter().map(|f| fill(f)).collect(),
        create_flags: case.create_flags().iter().map(|f| fill(f)).collect(),
        id: &id,
        bundle: &bundle_str,
        case_dir: &case_dir,
        main_out: &main_out,
        ns: &ns,
        obs: &mut obs,
    };
    for (i, step) in case.steps.iter().enumerate() {
        if crate::stop_requested() {
            break;
        }
        ctx.step(i, step);
    }

    // Cleanup, then what the runtime left on the host.
    let _ = run(rt, &["delete", "--force", &id], None);
    if let Ok(log) = std::fs::read_to_string(case_dir.join("runtime.log")) {
        obs.insert("log".into(), normalise::log_file(&log));
    } else if case.global_flags().iter().any(|f| f == "--log") {
        obs.insert("log".into(), "missing".into());
    }
    let rootfs_str = rootfs.to_string_lossy().into_owned();
    let mut left_processes = Vec::new();
    husk_testing::wait_for(
        || {
            left_processes = processes_in(&rootfs_str);
            left_processes.is_empty()
        },
        Duration::from_millis(500),
    );
    obs.insert("host.processes".into(), left_processes.len().to_string());
    for pid in &left_processes {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    if let Ok(log) = std::fs::read_to_string(case_dir.join("hooks.log")) {
        obs.insert("hooks".into(), log.trim_end().replace('\n', " | "));
    }
    let cgroups_path = case
        .config(&env.base)
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .map(fill)
        .unwrap_or_else(|| format!("/{id}"));
    // A runtime may remove its cgroups a moment after delete returns (an init still exiting).
    let mut left_cgroups = Vec::new();
    husk_testing::wait_for(
        || {
            left_cgroups = existing_cgroups(&cgroups_path);
            left_cgroups.is_empty()
        },
        Duration::from_millis(500),
    );
    obs.insert(
        "host.cgroups".into(),
        left_cgroups
            .iter()
            .map(|p| p.to_string_lossy().replace(&id, "@ID@"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    // Only mounts that can be this case's: other programs on the host mount and unmount meanwhile.
    let scratch = env.work.to_string_lossy().into_owned();
    let new_mounts: Vec<String> = host_mount_points()
        .into_iter()
        .filter(|m| !mounts_before.contains(m))
        .filter(|m| m.starts_with(&scratch) || m.contains(&id))
        .collect();
    obs.insert(
        "host.mounts".into(),
        new_mounts
            .iter()
            .map(|m| m.replace(&case_str, "@CASE@"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let state_entries: Vec<String> = std::fs::read_dir(&rt.root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    obs.insert("host.state".into(), state_entries.join(" "));

    // Remove whatever was left, so that the next run starts clean.
    for m in new_mounts.iter().rev() {
        if let Some((point, _)) = m.rsplit_once(':') {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
    }
    for dir in left_cgroups.iter().rev() {
        remove_cgroup(dir);
    }
    for entry in state_entries {
        let _ = std::fs::remove_dir_all(rt.root.join(entry));
    }
    drop(holder);
    remove_case_dir(&case_dir);
    obs
}

struct StepContext<'a> {
    rt: &'a Runtime,
    last_signal: Option<String>,
    global_flags: Vec<String>,
    create_flags: Vec<String>,
    id: &'a str,
    bundle: &'a str,
    case_dir: &'a Path,
    main_out: &'a Path,
    ns: &'a NsContext,
    obs: &'a mut Observations,
}

impl StepContext<'_> {
    fn record(&mut self, key: &str, outcome: &Outcome) {
        self.obs
            .insert(format!("{key}.exit"), outcome.code.to_string());
        self.obs.insert(
            format!("{key}.err"),
            normalise::error_class(&outcome.stderr),
        );
        // Not compared (keys starting with `~`): the text, for the failure report.
        let first_line = outcome.stderr.lines().find(|l| !l.trim().is_empty());
        if let Some(line) = first_line {
            self.obs.insert(format!("~{key}.stderr"), line.to_string());
        }
    }

    fn step(&mut self, i: usize, step: &Step) {
        let key = format!("{i:02}.{}", step.verb());
        let id = self.id.to_string();
        match step {
            Step::Run { detach } => {
                let mut args: Vec<&str> = self.global_flags.iter().map(String::as_str).collect();
                args.push("run");
                if *detach {
                    args.push("-d");
                }
                args.extend(self.create_flags.iter().map(String::as_str));
                args.extend(["--bundle", self.bundle, &id]);
                let out = run(self.rt, &args, Some(self.main_out));
                self.record(&key, &out);
                if !detach {
                    self.report(&format!("{i:02}.main"), &out.stdout);
                }
            }
            Step::Create { pid_file } => {
                let pid_path = self.case_dir.join("pid");
                let pid_str = pid_path.to_string_lossy().into_owned();
                let mut args: Vec<&str> = self.global_flags.iter().map(String::as_str).collect();
                args.push("create");
                args.extend(self.create_flags.iter().map(String::as_str));
                args.extend(["--bundle", self.bundle]);
                if *pid_file {
                    args.extend(["--pid-file", &pid_str]);
                }
                args.push(&id);
                let out = run(self.rt, &args, Some(self.main_out));
                self.record(&key, &out);
                if *pid_file {
                    let text = std::fs::read_to_string(&pid_path).unwrap_or_default();
                    let digits = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit());
                    self.obs
                        .insert(format!("{key}.pidfile"), format!("digits={digits}"));
                }
            }
            Step::Start => {
                let out = run(self.rt, &["start", &id], None);
                self.record(&key, &out);
            }
            Step::WaitReport => {
                let main_out = self.main_out.to_path_buf();
                let rt = self.rt;
                let mut text = String::new();
                // The file is cheap to read; `state` is a process (and for runc some CPU): ask it every 100 ms.
                let mut polls = 0u32;
                husk_testing::wait_for(
                    || {
                        polls += 1;
                        text = std::fs::read_to_string(&main_out).unwrap_or_default();
                        text.contains(END_MARKER)
                            || (polls.is_multiple_of(10) && !is_running(rt, &id))
                    },
                    Duration::from_secs(10),
                );
                text = std::fs::read_to_string(&main_out).unwrap_or_default();
                self.report(&format!("{i:02}.main"), &text);
            }
            Step::State => {
                let out = run(self.rt, &["state", &id], None);
                self.record(&key, &out);
                self.obs.insert(
                    format!("{key}.out"),
                    normalise::state(&out.stdout, &id, self.bundle),
                );
            }
            Step::List => {
                let out = run(self.rt, &["list", "--format", "json"], None);
                self.record(&key, &out);
                self.obs
                    .insert(format!("{key}.out"), normalise::list(&out.stdout));
            }
            Step::Exec {
                flags,
                args,
                process,
            } => {
                let process_path = self.case_dir.join(format!("process-{i}.json"));
                if let Some(process) = process {
                    std::fs::write(&process_path, process.to_string()).expect("write process.json");
                }
                let process_str = process_path.to_string_lossy().into_owned();
                let mut argv: Vec<&str> = vec!["exec"];
                argv.extend(flags.iter().map(|f| {
                    if f == "@PROCESS@" {
                        process_str.as_str()
                    } else {
                        f.as_str()
                    }
                }));
                argv.push(&id);
                argv.extend(args.iter().map(String::as_str));
                let out = run(self.rt, &argv, None);
                self.record(&key, &out);
                // A refused exec may print usage text instead: its exit code and error class
                // already say what happened.
                let probed = args.first().is_some_and(|a| a == "probe") || process.is_some();
                if probed && out.code == 0 {
                    self.report(&format!("{key}.in"), &out.stdout);
                }
            }
            Step::Kill { signal, all } => {
                self.last_signal = Some(signal.clone());
                let mut args = vec!["kill"];
                if *all {
                    args.push("--all");
                }
                args.extend([id.as_str(), signal.as_str()]);
                let out = run(self.rt, &args, None);
                self.record(&key, &out);
            }
            Step::Pause | Step::Resume => {
                let out = run(self.rt, &[step.verb(), &id], None);
                self.record(&key, &out);
            }
            Step::Update { flags, resources } => {
                let path = self.case_dir.join(format!("resources-{i}.json"));
                if let Some(resources) = resources {
                    std::fs::write(&path, resources.to_string()).expect("write resources");
                }
                let path_str = path.to_string_lossy().into_owned();
                let mut args = vec!["update"];
                args.extend(flags.iter().map(|f| {
                    if f == "@RESOURCES@" {
                        path_str.as_str()
                    } else {
                        f.as_str()
                    }
                }));
                args.push(&id);
                let out = run(self.rt, &args, None);
                self.record(&key, &out);
            }
            Step::Events => {
                let out = run(self.rt, &["events", "--stats", &id], None);
                self.record(&key, &out);
                self.obs
                    .insert(format!("{key}.out"), normalise::events(&out.stdout));
            }
            Step::Ps { json } => {
                let args: Vec<&str> = if *json {
                    vec!["ps", "--format", "json", &id]
                } else {
                    vec!["ps", &id]
                };
                let out = run(self.rt, &args, None);
                self.record(&key, &out);
                self.obs
                    .insert(format!("{key}.out"), normalise::ps(&out.stdout, *json));
            }
            Step::Delete { force } => {
                let args: Vec<&str> = if *force {
                    vec!["delete", "--force", &id]
                } else {
                    vec!["delete", &id]
                };
                let out = run(self.rt, &args, None);
                self.record(&key, &out);
            }
            Step::WaitStopped => {
                let rt = self.rt;
                // Long enough for a fatal signal (the main process checks for SIGTERM every 0.2 s); short for one
                // that may leave the container running, such as 0 or USR1 to a PID 1.
                const FATAL: [&str; 5] = ["TERM", "15", "KILL", "SIGKILL", "9"];
                let fatal = self
                    .last_signal
                    .as_deref()
                    .is_some_and(|s| FATAL.contains(&s));
                let wait = if fatal { 3000 } else { 400 };
                let deadline = Instant::now() + Duration::from_millis(wait);
                while is_running(rt, &id) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let out = run(self.rt, &["state", &id], None);
                self.obs.insert(
                    format!("{key}.out"),
                    normalise::state(&out.stdout, &id, self.bundle),
                );
            }
        }
    }

    fn report(&mut self, prefix: &str, text: &str) {
        for line in text.lines() {
            if let Some((name, mask)) = line.split_once(':') {
                if name == "SigIgn" || name == "SigBlk" {
                    self.obs
                        .insert(format!("{prefix}.{name}"), mask.trim().to_string());
                }
            }
        }
        match normalise::parse_report(text) {
            Some(report) => normalise::report(prefix, &report, self.ns, self.obs),
            None => {
                let kind = if text.trim().is_empty() {
                    "none"
                } else {
                    "unparsable"
                };
                self.obs.insert(format!("{prefix}.report"), kind.into());
            }
        }
    }
}

/// True while `state` says the container is running, paused or created (i.e. its process exists).
fn is_running(rt: &Runtime, id: &str) -> bool {
    let out = run(rt, &["state", id], None);
    serde_json::from_str::<Value>(&out.stdout)
        .ok()
        .is_some_and(|s| s["status"] != "stopped")
}

/// What a careless caller leaks into the runtime: SIGUSR2 ignored, SIGUSR1 blocked. A runtime must give the
/// container's process default dispositions and an empty mask (the main process prints its SigIgn and SigBlk).
trait LeakSignals {
    fn pre_exec_leak(&mut self) -> &mut Self;
}

impl LeakSignals for Command {
    fn pre_exec_leak(&mut self) -> &mut Self {
        // SAFETY: between fork and exec only async-signal-safe calls are made (signal, sigemptyset, sigaddset,
        // sigprocmask), on the child's own copy of its state.
        unsafe {
            self.pre_exec(|| {
                libc::signal(libc::SIGUSR2, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            })
        }
    }
}

/// Runs the runtime with `--root` and `args`. Stdout goes to `stdout_file` when given (a detached container keeps
/// writing there), stdin is /dev/null. The command runs in its own process group, so that a Ctrl-C aimed at this
/// tool does not interrupt a runtime half-way; this tool cleans up and stops instead.
fn run(rt: &Runtime, args: &[&str], stdout_file: Option<&Path>) -> Outcome {
    let scratch = rt.root.parent().unwrap_or(&rt.root);
    let out_path = match stdout_file {
        Some(p) => p.to_path_buf(),
        None => scratch.join("stdout"),
    };
    let err_path = scratch.join("stderr");
    let stdout = File::create(&out_path).expect("create stdout capture");
    let stderr = File::create(&err_path).expect("create stderr capture");
    let mut child = match Command::new(&rt.binary)
        .arg("--root")
        .arg(&rt.root)
        .args(args)
        // A fixed environment: hooks that inherit the runtime's show it, and runs do not depend on the caller's.
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("DIFFERENTIAL", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .pre_exec_leak()
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return Outcome {
                code: -1,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", rt.binary.display()),
            }
        }
    };
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut poll = Duration::from_micros(500);
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            break status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -2;
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(10));
    };
    let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if code == -2 {
        stderr.push_str("\ntimed out");
    }
    Outcome {
        code,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr,
    }
}

fn make_fixtures(case: &Case, case_dir: &Path, rootfs: &Path, fill: &dyn Fn(&str) -> String) {
    for fixture in case.features.iter().flat_map(|f| &f.fixtures) {
        match fixture {
            Fixture::Dir(name) => {
                let dir = case_dir.join(name);
                std::fs::create_dir_all(&dir).expect("fixture dir");
                std::fs::write(dir.join("f"), "data\n").expect("fixture file");
            }
            Fixture::File(name) if name == "hook.sh" => {
                let body = HOOK_SCRIPT.replace("@CASE@", &case_dir.to_string_lossy());
                husk_testing::write_script(case_dir.join(name), &body);
            }
            Fixture::File(name) => {
                std::fs::write(case_dir.join(name), "file\n").expect("fixture file");
            }
            Fixture::RootfsDir(rel, mode, uid) => {
                let dir = rootfs.join(rel.trim_start_matches('/'));
                std::fs::create_dir_all(&dir).expect("rootfs dir");
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(*mode))
                    .expect("chmod rootfs dir");
                std::os::unix::fs::chown(&dir, Some(*uid), Some(*uid)).expect("chown rootfs dir");
            }
            Fixture::RootfsSymlink(rel, target) => {
                // Through the overlay: the lower (shared) rootfs is never touched.
                let path = rootfs.join(rel.trim_start_matches('/'));
                let _ = std::fs::remove_dir(&path);
                std::os::unix::fs::symlink(target, &path).expect("rootfs symlink");
            }
            Fixture::FrozenCgroup(path) => {
                let dir =
                    Path::new("/sys/fs/cgroup/freezer").join(fill(path).trim_start_matches('/'));
                std::fs::create_dir_all(&dir).expect("create frozen cgroup");
                std::fs::write(dir.join("freezer.state"), "FROZEN").expect("freeze cgroup");
            }
        }
    }
}

/// A host hook: logs its kind, the state's status, where it runs and its environment, then fails if asked to.
const HOOK_SCRIPT: &str = r#"state=$(cat)
status=$(echo "$state" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
case "$(pwd)" in
  @CASE@/bundle/rootfs) where=rootfs ;;
  @CASE@/bundle) where=bundle ;;
  *) where=other ;;
esac
echo "$1 status=$status cwd=$where env=$(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' -e '^OLDPWD=' | sort | tr '\n' ' ')" >> @CASE@/hooks.log
[ "$2" = fail ] && exit 1
exit 0"#;

/// Processes whose root directory is `rootfs` (a container's processes, seen from the host).
fn processes_in(rootfs: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| !husk_testing::is_gone(*pid))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/root"))
                .is_ok_and(|root| root.to_string_lossy().starts_with(rootfs))
        })
        .collect()
}

/// Mount points (with their filesystem) in this process's mount namespace.
fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = fields.get(4)?;
            let fstype = line.split(" - ").nth(1)?.split(' ').next()?;
            Some(format!("{point}:{fstype}"))
        })
        .collect()
}

/// Kills what is left in a cgroup directory (thawing it first) and removes it, children first.
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    husk_testing::wait_for(
        || std::fs::remove_dir(dir).is_ok() || !dir.exists(),
        Duration::from_secs(2),
    );
}

/// Removes the (empty) parent cgroups that cases' `cgroupsPath`s created in every hierarchy.
pub fn remove_parent_cgroups() {
    let mut bases = vec![PathBuf::from("/")];
    if let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") {
        bases.extend(
            own.lines()
                .filter_map(|l| l.splitn(3, ':').nth(2))
                .map(PathBuf::from),
        );
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        for base in &bases {
            for parent in crate::catalogue::CGROUP_PARENTS {
                let dir = hierarchy
                    .path()
                    .join(base.strip_prefix("/").unwrap_or(base))
                    .join(parent);
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Removes the case directory after unmounting anything below it (the overlay, leftovers).
pub fn remove_case_dir(case_dir: &Path) {
    if !case_dir.exists() {
        return;
    }
    let mut mounts = mounts_under(case_dir);
    mounts.sort();
    for m in mounts.iter().rev() {
        let ok = Command::new("umount")
            .arg(m)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
    if mounts_under(case_dir).is_empty() {
        let _ = std::fs::remove_dir_all(case_dir);
    } else {
        eprintln!(
            "differential: not removing {}: still mounted below it",
            case_dir.display()
        );
    }
}
