//! `husk exec`.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::Args;
use husk::oci_spec::runtime::{Capability, Process};

use super::foreground::{forwarded_signals, wait_forwarding};
use super::tty::Relay;
use super::{runtime, write_pid_file, CmdResult};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A process.json to run as it is (instead of the container's defaults plus flags).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// uid[:gid] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Extra group ids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Capabilities to add.
    #[arg(short = 'c', long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Return once the process runs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// SELinux label for the process.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Sub-cgroup of the container's cgroup for the process.
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Exec even into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn bad(field: &str, reason: impl Into<String>) -> husk::Error {
    husk::Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Fields of `process` that a process.json without them takes from the container's config.
const INHERITED_FROM_CONTAINER: &[&str] = &[
    "capabilities",
    "oomScoreAdj",
    "noNewPrivileges",
    "apparmorProfile",
    "selinuxLabel",
    "rlimits",
];

/// The process to run: process.json as given, or the container's process with the flags on top.
fn build_process(a: &ExecArgs, container: &husk::Container) -> husk::Result<Process> {
    if let Some(path) = &a.process {
        let text = super::read_option_file(path)
            .map_err(|e| bad("--process", format!("{}: {e}", path.display())))?;
        let mut value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| bad("--process", format!("{}: {e}", path.display())))?;
        // runc runs a process.json without `user` as root (Go's zero value), and callers
        // rely on that.
        if let Some(fields) = value.as_object_mut() {
            fields
                .entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
            // What process.json leaves out of the process's confinement comes from the
            // container, as in runc: without this, no `capabilities` would mean every
            // capability of the runtime (the full bounding set).
            let container_process = container.spec()?.process().clone().unwrap_or_default();
            let container_process = serde_json::to_value(container_process)
                .map_err(|e| bad("--process", format!("container's process: {e}")))?;
            for key in INHERITED_FROM_CONTAINER {
                if let (false, Some(inherited)) =
                    (fields.contains_key(*key), container_process.get(*key))
                {
                    fields.insert((*key).to_string(), inherited.clone());
                }
            }
        }
        return serde_path_to_error::deserialize(value).map_err(|e| {
            bad(
                "--process",
                format!("{}: {}: {}", path.display(), e.path(), e.inner()),
            )
        });
    }
    if a.command.is_empty() {
        return Err(bad("exec", "no command given"));
    }
    let mut p = container.spec()?.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    // The container's env, then --env: a variable listed twice keeps its last value, as in runc's
    // exec (the container's own process gets process.env as it is).
    let mut env: Vec<String> = Vec::new();
    for kv in p.env().iter().flatten().chain(&a.env) {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &a.user {
        // `-u uid` alone keeps the container's gid, as in runc (which only replaces what is given).
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user.as_str(), None),
        };
        let parse = |v: &str| {
            let id = v
                .parse::<u32>()
                .map_err(|_| bad("--user", format!("{user:?} is not uid[:gid]")))?;
            husk::config::refuse_no_id("--user", id).map(|()| id)
        };
        let u = p.user_mut();
        u.set_uid(parse(uid)?);
        if let Some(gid) = gid {
            u.set_gid(parse(gid)?);
        }
    }
    for gid in &a.additional_gids {
        husk::config::refuse_no_id("--additional-gids", *gid)?;
    }
    if !a.additional_gids.is_empty() {
        // Added to the container's, as runc's exec does.
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        for gid in &a.additional_gids {
            if !gids.contains(gid) {
                gids.push(*gid);
            }
        }
        p.user_mut().set_additional_gids(Some(gids));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.caps {
            let cap: Capability = serde_json::from_value(serde_json::json!(name))
                .map_err(|_| bad("--cap", format!("unknown capability {name:?}")))?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    Ok(p)
}

pub fn run(root: &Path, a: ExecArgs) -> CmdResult {
    let container = runtime(root).load(&a.id)?;
    if !a.ignore_paused && container.status() == husk::Status::Paused {
        // runc's wording, which tools match on.
        return Err("cannot exec in a paused container (use --ignore-paused to override)".into());
    }
    let mut process = build_process(&a, &container)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() && !a.detach && process.console_size().is_none() {
        // The process may ask for its window size at once: it gets ours from the init, before it
        // runs, not from the relay once it is already running.
        if let Ok((rows, cols)) = husk_init::sys::window_size(std::io::stdin().as_fd()) {
            let size = husk::oci_spec::runtime::BoxBuilder::default()
                .height(rows)
                .width(cols)
                .build()
                .map_err(|e| bad("consoleSize", e.to_string()))?;
            process.set_console_size(Some(size));
        }
    }
    let console = match (&a.console_socket, terminal && !a.detach) {
        (Some(path), _) => Some(husk::ConsoleDest::Socket(path.clone())),
        (None, true) => Some(husk::ConsoleDest::Keep),
        (None, false) => None,
    };
    let opts = husk::ExecOptions {
        preserve_fds: a.preserve_fds,
        console,
        sub_cgroup: a.cgroup.clone(),
        ignore_paused: a.ignore_paused,
        stdio: husk::StdioConfig::inherit(),
    };
    let signals = forwarded_signals();
    if !a.detach {
        signals.thread_block()?;
    }
    let mut proc = container.exec(&process, &opts)?;
    if let Some(path) = &a.pid_file {
        write_pid_file(path, proc.pid())?;
    }
    if a.detach {
        return Ok(0);
    }
    let relay = match proc.take_console() {
        Some(master) => Some(Relay::start(master)?),
        None => None,
    };
    let status = wait_forwarding(proc.pid(), &signals, relay.as_ref())?;
    super::log::debug(&format!(
        "process exited: pid={}, exit code {}",
        proc.pid(),
        status.code()
    ));
    if let Some(r) = relay {
        r.finish();
    }
    Ok(status.code())
}
