//! Host side of the bootstrap: start the init, serve its requests, record the container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use husk_init::hooks::run_hooks;
use husk_init::proto::{Bootstrap, Channel, InitFailure, ToInit, ToParent, INIT_ARG};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use crate::cgroups::{CgroupDriver, CgroupManager};
use crate::child::Child as Reapable;
use crate::config::{host_root, ConsoleDest, ContainerConfig};
use crate::error::{Context, Error, Result};
use crate::exe_guard::GuardedBinary;
use crate::state::{now_rfc3339, process_start_time, OciState, Record, StateDir, Status};

/// Creates the container described by `config` in the (new, locked) state directory `dir`.
/// On failure everything made so far is undone, the directory included.
pub(crate) fn create(
    init_binary: &Path,
    id: &str,
    dir: StateDir,
    config: ContainerConfig,
    io: Io<'_>,
    driver: CgroupDriver,
) -> Result<(Record, Spawned)> {
    let mut record = Record {
        oci_version: config.oci_version.clone(),
        id: id.to_string(),
        pid: None,
        pid_start_time: None,
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: now_rfc3339(),
        annotations: config.annotations.clone(),
        init_ready: false,
        cgroup: None,
        hooks: config.host_hooks.clone(),
        namespaces: config
            .boot
            .namespaces
            .iter()
            .map(|n| n.kind.proc_name().to_string())
            .collect(),
        notify_socket: config.notify_socket.clone(),
    };
    let mut cgroup = None;
    match bootstrap(
        init_binary,
        &dir,
        config,
        &mut record,
        &mut cgroup,
        io,
        driver,
    ) {
        Ok(spawned) => Ok((record, spawned)),
        Err(e) => {
            if let Some(pid) = record.pid.filter(|_| record.init_alive()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            if let Some(cg) = cgroup {
                // A joined cgroup may hold others' processes (issue 16, bug 6).
                if cg.created_leaf() {
                    kill_all(&cg);
                }
                let _ = cg.destroy();
            }
            let _ = dir.remove();
            // Once the container existed, a failed create still ends its lifecycle with the
            // poststop hooks (runtime spec: "continue the lifecycle at step 12").
            if record.pid.is_some() {
                let state = state_json(&record, Status::Stopped);
                husk_init::hooks::run_hooks_warning("poststop", &record.hooks.poststop, &state);
            }
            Err(e)
        }
    }
}

/// SIGKILLs every process left in the container's cgroup.
pub(crate) fn kill_all(cg: &CgroupManager) {
    for pid in cg.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

fn bootstrap(
    init_binary: &Path,
    dir: &StateDir,
    mut config: ContainerConfig,
    record: &mut Record,
    cgroup_out: &mut Option<CgroupManager>,
    io: Io<'_>,
    driver: CgroupDriver,
) -> Result<Spawned> {
    let cgroup = CgroupManager::with_driver(driver, config.cgroups_path.as_deref(), &record.id)?;
    cgroup.set_unit_annotations(&config.annotations)?;
    record.cgroup = Some(cgroup.saved());
    // Saved before anything runs, so that `delete --force` can clean up after a crash.
    dir.save(record)?;
    crate::fault::point("create.state-saved");
    *cgroup_out = Some(cgroup.clone());
    cgroup.create(config.resources.as_ref())?;
    // Again, now with the directories create() made (delete removes exactly those, so they are
    // saved at once: `delete --force` after a crash must know them).
    record.cgroup = Some(cgroup.saved());
    dir.save(record)?;
    crate::fault::point("create.cgroup-made");
    let dirs = cgroup.hierarchies();
    for h in &mut config.boot.cgroup_hierarchies {
        h.container_dir = dirs
            .iter()
            .find(|d| d.mount_point == h.mount_point && !d.skipped)
            .map(|d| d.dir.clone());
    }

    if config.notify_socket.is_some() {
        let notify_dir = dir.notify_dir();
        std::fs::create_dir(&notify_dir).context(|| format!("create {}", notify_dir.display()))?;
        config.boot.mounts.push(husk_init::proto::MountPlan {
            destination: Path::new(crate::config::NOTIFY_SOCKET_IN_CONTAINER)
                .parent()
                .unwrap_or(Path::new("/run"))
                .to_path_buf(),
            source: Some(notify_dir),
            fstype: None,
            kind: husk_init::proto::MountKind::Bind { recursive: false },
            flags: 0,
            clear_flags: 0,
            propagation: Vec::new(),
            data: String::new(),
            recursive_attr_set: 0,
            recursive_attr_clear: 0,
        });
    }
    let fifo_path = dir.fifo_path();
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .context(|| format!("create {}", fifo_path.display()))?;
    let container_root = host_root(&config.uid_mappings);
    let container_root_gid = host_root(&config.gid_mappings);
    if container_root != 0 || container_root_gid != 0 {
        nix::unistd::chown(
            &fifo_path,
            Some(nix::unistd::Uid::from_raw(container_root)),
            Some(nix::unistd::Gid::from_raw(container_root_gid)),
        )
        .context(|| format!("chown {}", fifo_path.display()))?;
    }
    // Read-write: opening never blocks, and the init then holds a reader, so `start`'s
    // non-blocking open for writing succeeds exactly while the init waits.
    let fifo: OwnedFd = crate::hostfs::open(
        &fifo_path,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC),
    )
    .context(|| format!("open {}", fifo_path.display()))?
    .into();
    crate::fault::point("create.fifo-made");

    crate::hostfs::copy(&config.bundle.join("config.json"), &dir.dir.join(SPEC_COPY))
        .context(|| format!("copy config.json to {}", dir.dir.display()))?;
    let mut requests = CreateRequests {
        config: &config,
        dir,
        record,
    };
    let init = GuardedBinary::open(init_binary, &dir.dir)?;
    let spawned = run_init(
        &init,
        &config.boot,
        &config.bundle,
        Some(&cgroup),
        Some(fifo),
        io,
        &mut requests,
    )?;
    Ok(spawned)
}

/// Where the container process's terminal and standard streams go.
#[derive(Clone, Copy)]
pub(crate) struct Io<'a> {
    pub console: Option<&'a ConsoleDest>,
    pub stdio: &'a crate::stdio::StdioConfig,
}

/// The copy of config.json kept in the state directory (exec reads the process defaults from it).
pub(crate) const SPEC_COPY: &str = "config.json";

/// What the init may ask of the parent beyond the common messages.
trait Requests {
    fn id_maps(&mut self, _stage1_pid: i32) -> Result<()> {
        Err(unexpected("id maps"))
    }
    fn container_pid(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }
    /// Runs prestart and createRuntime hooks; returns the state JSON for the init's hooks.
    fn runtime_hooks(&mut self) -> Result<String> {
        Err(unexpected("runtime hooks"))
    }
    /// Whether `Ready` ends the exchange (create) or the init execs next (exec).
    fn ready(&mut self) -> Result<bool> {
        Ok(false)
    }
    /// The container state handed to the seccomp agent with a notify fd.
    fn container_state(&self) -> OciState;
    /// Whether the process's exit status outlives its handle (a container's init: a later
    /// handle may wait for it).
    fn keeps_status(&self) -> bool {
        false
    }
    /// The command this exchange belongs to, as fault points name it (`create`, `exec`).
    fn command(&self) -> &'static str;
}

fn unexpected(what: &str) -> Error {
    Error::Init(InitFailure {
        step: "bootstrap".into(),
        errno: None,
        detail: Some(format!("unexpected request for {what}")),
    })
}

struct CreateRequests<'a> {
    config: &'a ContainerConfig,
    dir: &'a StateDir,
    record: &'a mut Record,
}

impl Requests for CreateRequests<'_> {
    fn id_maps(&mut self, stage1_pid: i32) -> Result<()> {
        write_id_maps(
            stage1_pid,
            &self.config.uid_mappings,
            &self.config.gid_mappings,
        )
    }
    fn container_pid(&mut self, pid: i32) -> Result<()> {
        self.record.pid = Some(pid);
        self.record.pid_start_time = process_start_time(pid);
        self.dir.save(self.record)?;
        crate::fault::point("create.pid-saved");
        Ok(())
    }
    fn runtime_hooks(&mut self) -> Result<String> {
        // The init waits for the answer here, so a stop lands before it can report ready.
        if let Some(pid) = self.record.pid {
            crate::fault::stop_init_point("create.hooks-asked", pid);
        }
        let state = state_json(self.record, Status::Creating);
        run_hooks(&self.config.host_hooks.prestart, &state)?;
        run_hooks(&self.config.host_hooks.create_runtime, &state)?;
        Ok(state)
    }
    fn ready(&mut self) -> Result<bool> {
        self.record.init_ready = true;
        self.dir.save(self.record)?;
        crate::fault::point("create.ready-saved");
        Ok(true)
    }
    fn container_state(&self) -> OciState {
        oci_state(self.record, Status::Creating)
    }
    fn keeps_status(&self) -> bool {
        true
    }
    fn command(&self) -> &'static str {
        "create"
    }
}

struct ExecRequests<'a> {
    record: &'a Record,
}

impl Requests for ExecRequests<'_> {
    fn container_state(&self) -> OciState {
        oci_state(self.record, Status::Running)
    }
    fn command(&self) -> &'static str {
        "exec"
    }
}

/// A process started in a container by [`exec`].
pub(crate) struct Spawned {
    pub pid: i32,
    /// The process, held for reaping (it is our child).
    pub child: Option<Reapable>,
    pub console: Option<OwnedFd>,
    pub pipes: crate::stdio::Pipes,
}

/// Starts `boot` (an exec plan) in the container whose state directory is `state_dir`;
/// returns once the process has exec'd.
pub(crate) fn exec(
    init_binary: &Path,
    state_dir: &Path,
    record: &Record,
    boot: &Bootstrap,
    cwd: &Path,
    cgroup: Option<&CgroupManager>,
    io: Io<'_>,
) -> Result<Spawned> {
    run_init(
        &GuardedBinary::open(init_binary, state_dir)?,
        boot,
        cwd,
        cgroup,
        None,
        io,
        &mut ExecRequests { record },
    )
}

/// How long the host waits for the init's next message before it gives up on a wedged init
/// (a mount that hangs, a stopped process): `HUSK_BOOTSTRAP_TIMEOUT` seconds, 60 by default,
/// 0 for no limit.
const BOOTSTRAP_TIMEOUT_VARIABLE: &str = "HUSK_BOOTSTRAP_TIMEOUT";
const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest silence allowed from the init during `boot`'s exchange, or `None` for no limit.
/// The createContainer hooks run in the init before it reports ready, so their timeouts are
/// added; a hook without a timeout may run forever (as the spec lets it), and then so may the
/// wait.
fn silence_limit(boot: &Bootstrap) -> Option<Duration> {
    let base = match std::env::var(BOOTSTRAP_TIMEOUT_VARIABLE) {
        Ok(secs) => Duration::from_secs(
            secs.trim()
                .parse()
                .unwrap_or(DEFAULT_BOOTSTRAP_TIMEOUT.as_secs()),
        ),
        Err(_) => DEFAULT_BOOTSTRAP_TIMEOUT,
    };
    if base.is_zero() {
        return None;
    }
    let mut hooks = Duration::ZERO;
    for hook in &boot.create_container_hooks {
        hooks += Duration::from_secs(hook.timeout_secs?);
    }
    Some(base + hooks)
}

/// Starts the init from `init` (see [`spawn_init`]), hands it the bootstrap and serves it
/// until it is ready (create) or has exec'd (exec). On failure the init is killed.
fn run_init(
    init: &GuardedBinary,
    boot: &Bootstrap,
    cwd: &Path,
    cgroup: Option<&CgroupManager>,
    fifo: Option<OwnedFd>,
    io: Io<'_>,
    requests: &mut dyn Requests,
) -> Result<Spawned> {
    let (parent_end, child_end) = Channel::pair().context(|| "create bootstrap socket".into())?;
    let mut stage1 = spawn_init(init, boot.preserve_fds, cwd, child_end, io.stdio)?;
    let pipes = crate::stdio::Pipes::from_child(&mut stage1);
    let mut session = Session {
        channel: &parent_end,
        stage1: &mut stage1,
        pid: None,
        console: io.console,
        master: None,
    };
    let result = session.run(boot, cgroup, fifo, requests);
    let pid = session.pid;
    match result {
        Ok(()) => Ok(Spawned {
            pid: pid.unwrap_or(0),
            // Our child, not yet reaped: its pid cannot have been reused.
            child: pid.and_then(|pid| Reapable::adopt(pid, requests.keeps_status()).ok()),
            console: session.master.take(),
            pipes,
        }),
        Err(e) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            }
            let _ = stage1.kill();
            let _ = stage1.wait();
            Err(e)
        }
    }
}

struct Session<'a> {
    channel: &'a Channel,
    stage1: &'a mut Child,
    pid: Option<i32>,
    console: Option<&'a ConsoleDest>,
    master: Option<OwnedFd>,
}

impl Session<'_> {
    fn run(
        &mut self,
        boot: &Bootstrap,
        cgroup: Option<&CgroupManager>,
        fifo: Option<OwnedFd>,
        requests: &mut dyn Requests,
    ) -> Result<()> {
        // Stage 1 must be in the cgroup before it creates the cgroup namespace.
        if let Some(cg) = cgroup {
            cg.add_process(self.stage1.id() as i32)?;
        }
        let fds: Vec<i32> = fifo.iter().map(|f| f.as_raw_fd()).collect();
        // Stage 1 waits for the bootstrap, so a stop here keeps it from ever reporting its pid.
        crate::fault::stop_init_point(
            format_args!("{}.bootstrap-sending", requests.command()),
            self.stage1.id() as i32,
        );
        if let Err(e) = self
            .channel
            .send(&ToInit::Bootstrap(Box::new(boot.clone())), &fds)
        {
            // An init that failed at once said why before it closed its end: report that.
            if let Ok((ToParent::Failed(failure), _)) = self.channel.recv::<ToParent>() {
                return Err(Error::Init(failure));
            }
            return Err(e).context(|| "send bootstrap to init".into());
        }
        drop(fifo);
        let limit = silence_limit(boot);
        if let Some(limit) = limit {
            let timeout = nix::sys::time::TimeVal::new(limit.as_secs() as libc::time_t, 0);
            nix::sys::socket::setsockopt(
                self.channel,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &timeout,
            )
            .map_err(std::io::Error::from)
            .context(|| "set the bootstrap socket's receive timeout".into())?;
        }
        crate::fault::point(format_args!("{}.bootstrap-sent", requests.command()));
        let mut ready = false;
        loop {
            let (msg, mut fds) = match self.channel.recv::<ToParent>() {
                Ok(m) => m,
                // After `Ready` of an exec, the socket closing on execve is the success.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && ready => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(self.vanished());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(self.silent(limit.unwrap_or_default(), ready));
                }
                Err(e) => return Err(e).context(|| "read from init".into()),
            };
            // Stage 2 says nothing before stage 1 has reported its pid (husk_init's stage 1
            // holds it back until then): anything else is a protocol error, not a wait.
            let needs_pid = matches!(
                msg,
                ToParent::RunRuntimeHooks | ToParent::Ready | ToParent::SeccompNotify
            );
            if needs_pid && self.pid.is_none() {
                return Err(unexpected(&format!("{msg:?} before the container's pid")));
            }
            match msg {
                ToParent::NeedIdMaps => {
                    requests.id_maps(self.stage1.id() as i32)?;
                    self.answer(ToInit::IdMapsWritten)?;
                }
                ToParent::Stage2Pid(pid) => {
                    self.pid = Some(pid);
                    if pid != self.stage1.id() as i32 {
                        let _ = self.stage1.wait();
                    }
                    requests.container_pid(pid)?;
                }
                ToParent::RunRuntimeHooks => {
                    let state = requests.runtime_hooks()?;
                    self.answer(ToInit::HooksDone { state })?;
                }
                ToParent::Console(name) => {
                    let master = fds
                        .pop()
                        .ok_or_else(|| unexpected("console without a fd"))?;
                    match self.console {
                        Some(ConsoleDest::Socket(path)) => send_console(path, &name, &master)?,
                        Some(ConsoleDest::Keep) => self.master = Some(master),
                        None => return Err(unexpected("console")),
                    }
                }
                ToParent::SeccompNotify => {
                    let fd = fds
                        .pop()
                        .ok_or_else(|| unexpected("seccomp notify without a fd"))?;
                    let pid = self.pid.unwrap_or(0);
                    send_to_seccomp_agent(boot, pid, &requests.container_state(), &fd)?;
                }
                ToParent::Ready => {
                    if requests.ready()? {
                        return Ok(());
                    }
                    ready = true;
                }
                ToParent::Failed(failure) => return Err(Error::Init(failure)),
            }
        }
    }

    fn answer(&self, msg: ToInit) -> Result<()> {
        self.channel
            .send(&msg, &[])
            .context(|| "answer init".into())
    }

    /// The init said nothing for `limit`: name the step it was expected to finish.
    fn silent(&self, limit: Duration, ready: bool) -> Error {
        let step = match (self.pid, ready) {
            (None, _) => "reporting the container's pid".to_string(),
            (Some(pid), false) => format!("setting up the container (init pid {pid})"),
            (Some(pid), true) => format!("starting the process (pid {pid})"),
        };
        Error::Init(InitFailure {
            step: "bootstrap".into(),
            errno: Some(libc::ETIMEDOUT),
            detail: Some(format!(
                "the init was silent for {}s while {step} ({BOOTSTRAP_TIMEOUT_VARIABLE} sets the limit)",
                limit.as_secs()
            )),
        })
    }

    /// The init closed the socket without a word: say how it ended.
    fn vanished(&mut self) -> Error {
        let how = match self.stage1.try_wait() {
            Ok(Some(status)) if self.pid.is_none() => format!("init exited ({status})"),
            _ => "init exited unexpectedly".to_string(),
        };
        Error::Init(InitFailure {
            step: "bootstrap".into(),
            errno: None,
            detail: Some(how),
        })
    }
}

/// Hands a seccomp notify fd to the agent at `linux.seccomp.listenerPath`: the process state
/// (runtime-spec `ContainerProcessState`) as the payload, the fd as SCM_RIGHTS.
fn send_to_seccomp_agent(boot: &Bootstrap, pid: i32, state: &OciState, fd: &OwnedFd) -> Result<()> {
    let (listener, metadata) = boot
        .seccomp_listener
        .clone()
        .ok_or_else(|| Error::config("linux.seccomp.listenerPath", "needed for SCMP_ACT_NOTIFY"))?;
    let mut message = serde_json::json!({
        "ociVersion": state.oci_version,
        "fds": [oci_spec::runtime::SECCOMP_FD_NAME],
        "pid": pid,
        "state": {
            "ociVersion": state.oci_version,
            "id": state.id,
            "status": state.status,
            "pid": state.pid,
            "bundle": state.bundle,
        },
    });
    if let Some(meta) = metadata {
        message["metadata"] = meta.into();
    }
    if !state.annotations.is_empty() {
        message["state"]["annotations"] = serde_json::json!(state.annotations);
    }
    // runc's wording, which tools match on.
    send_with_fd(&listener, message.to_string().as_bytes(), fd).map_err(|e| match e {
        Error::Io { context, source } if context.starts_with("connect to ") => Error::Io {
            context: format!(
                "failed to connect with seccomp agent at {}",
                listener.display()
            ),
            source,
        },
        e => e,
    })
}

/// Sends the pty master over a unix socket, as runc does: the name as payload, the fd as
/// SCM_RIGHTS.
fn send_console(path: &Path, name: &str, master: &OwnedFd) -> Result<()> {
    send_with_fd(path, name.as_bytes(), master)
}

/// Connects to the unix socket at `path` and sends `payload` with `fd` as SCM_RIGHTS.
fn send_with_fd(path: &Path, payload: &[u8], fd: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(path)
        .context(|| format!("connect to {}", path.display()))?;
    let iov = [std::io::IoSlice::new(payload)];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context(|| format!("send to {}", path.display()))?;
    Ok(())
}

pub(crate) fn state_json(record: &Record, status: Status) -> String {
    serde_json::to_string(&oci_state(record, status)).unwrap_or_default()
}

pub(crate) fn oci_state(record: &Record, status: Status) -> OciState {
    OciState {
        oci_version: record.oci_version.clone(),
        id: record.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            record.pid.unwrap_or(0)
        },
        status,
        bundle: record.bundle.clone(),
        rootfs: record.rootfs.clone(),
        created: record.created.clone(),
        annotations: record.annotations.clone(),
        owner: String::new(),
    }
}

fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let lines = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    // Through a procfs of our own, resolved without symlinks or mount crossings, like every
    // other write into /proc (see husk_init::procfs).
    let procfs =
        husk_init::procfs::Procfs::open().context(|| "open a private procfs".to_string())?;
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        procfs
            .write_process_file(pid, file, lines(maps).as_bytes())
            .context(|| format!("write /proc/{pid}/{file}"))?;
    }
    Ok(())
}

/// Starts `husk init` with the bootstrap socket just above the preserved fds.
///
/// CVE-2019-5736: the init runs from `init` (see [`crate::exe_guard`]), never from the host's
/// file itself, so that neither the init nor anything it runs through `/proc/self/exe` has a
/// writable host binary as its `/proc/<pid>/exe`.
fn spawn_init(
    init: &GuardedBinary,
    preserve_fds: u32,
    cwd: &Path,
    child_end: Channel,
    stdio: &crate::stdio::StdioConfig,
) -> Result<Child> {
    let target = 3 + preserve_fds as i32;
    let fd = child_end.as_raw_fd();
    // Above the socket's target, which the child's dup2 would otherwise close under it.
    let (program_fd, program) = init
        .exec_path(target + 1)
        .context(|| format!("start init {}", init.binary().display()))?;
    let mut cmd = Command::new(program);
    cmd.arg0("husk")
        .args([INIT_ARG, &target.to_string()])
        .env_clear()
        .current_dir(cwd);
    let what = || "set up the container's stdio".to_string();
    cmd.stdin(stdio.stdin.to_std().context(what)?)
        .stdout(stdio.stdout.to_std().context(what)?)
        .stderr(stdio.stderr.to_std().context(what)?);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (dup2, fcntl, sigprocmask) on values captured by copy.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A caller (e.g. `husk run`) may block signals to forward them; the container
            // must not inherit that mask.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context(|| format!("start init {}", init.binary().display()))?;
    drop(program_fd);
    drop(child_end);
    Ok(child)
}
