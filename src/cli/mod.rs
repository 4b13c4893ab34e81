//! Argument parsing (runc's names and flags) and dispatch. Each subcommand lives in its own file.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod foreground;
mod image;
mod kill;
mod list;
mod log;
mod pause;
mod ps;
mod spec;
mod start;
mod state;
mod tty;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use log::Logger;

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    about = "A runc-compatible OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/husk")]
    pub root: PathBuf,
    /// Image store directory (`husk image`, `run --image`).
    #[arg(
        long,
        global = true,
        env = "HUSK_STORE",
        default_value = "/var/lib/husk"
    )]
    pub store: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups: `linux.cgroupsPath` is then `slice:prefix:name` (create
    /// and run; later commands use the driver the container was created with).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Create a container (its process waits for `start`).
    Create(create::CreateArgs),
    /// Create and start a container; in the foreground, wait for it and return its exit code.
    Run(create::RunArgs),
    /// Run a new process in a running container.
    Exec(exec::ExecArgs),
    /// Start a created container.
    Start(start::StartArgs),
    /// Print a container's state as JSON.
    State(state::StateArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(kill::KillArgs),
    /// Delete a container.
    Delete(delete::DeleteArgs),
    /// List containers.
    List(list::ListArgs),
    /// Write a starter config.json.
    Spec(spec::SpecArgs),
    /// Print the features this runtime supports, as JSON.
    Features,
    /// Suspend every process in a container.
    Pause(pause::PauseArgs),
    /// Resume the processes of a paused container.
    Resume(pause::PauseArgs),
    /// Change a container's resource limits.
    Update(update::UpdateArgs),
    /// List a container's processes (`ps` output, or pids as JSON).
    Ps(ps::PsArgs),
    /// Print a container's stats and OOM events as JSON lines.
    Events(events::EventsArgs),
    /// Manage the local image store (install, list, inspect, rm, prune).
    Image(image::ImageArgs),
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    // Like any Unix tool, die quietly when the reader of our output goes away.
    husk_init::sys::default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Shims read the reason from --log, which clap never got to parse.
            let (log, format) = log_flags_from_args();
            Logger::new(log.as_deref(), &format, false).error(&usage_error(&e));
            return 1;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    let logger = Logger::new(cli.log.as_deref(), &cli.log_format, cli.debug).install();
    if let Some(flag) = two_forms_of_one_flag(&std::env::args_os().collect::<Vec<_>>()) {
        logger.error(&format!(
            "cannot use two forms of the same flag: {flag} (give one spelling)"
        ));
        return 1;
    }
    husk::cgroups::set_warning_sink(log::warn);
    log::debug(&format!(
        "husk {}: {:?}",
        env!("CARGO_PKG_VERSION"),
        std::env::args_os().skip(1).collect::<Vec<_>>()
    ));
    if cli.version {
        println!(
            "husk version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            husk::config::OCI_VERSION_MAX
        );
        return 0;
    }
    let Some(command) = cli.command else {
        logger.error("no command given; see husk --help");
        return 1;
    };
    // Only commands that make cgroups need a driver; the others use the container's saved one.
    if cli.systemd_cgroup && matches!(command, Command::Create(_) | Command::Run(_)) {
        if let Some(error) = systemd_driver_error() {
            logger.error(&error);
            return 1;
        }
        SYSTEMD_CGROUP.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // runc's create and run work in the bundle directory: the host hooks they run start there;
    // those of other commands (delete's poststop) in the caller's directory.
    if matches!(command, Command::Create(_) | Command::Run(_)) {
        husk_init::hooks::host_hooks_start_in_bundle();
    }
    // runc's exec reports its own failures as 255, apart from any code the process returns.
    let failure_code = if matches!(command, Command::Exec(_)) {
        255
    } else {
        1
    };
    let result = match command {
        Command::Create(a) => create::create(&cli.root, &cli.store, a),
        Command::Run(a) => create::run(&cli.root, &cli.store, a),
        Command::Start(a) => start::run(&cli.root, a),
        Command::Exec(a) => exec::run(&cli.root, a),
        Command::State(a) => state::run(&cli.root, a),
        Command::Kill(a) => kill::run(&cli.root, a),
        Command::Delete(a) => delete::run(&cli.root, a),
        Command::List(a) => list::run(&cli.root, a),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
        Command::Pause(a) => pause::pause(&cli.root, a),
        Command::Resume(a) => pause::resume(&cli.root, a),
        Command::Update(a) => update::run(&cli.root, a),
        Command::Ps(a) => ps::run(&cli.root, a),
        Command::Events(a) => events::run(&cli.root, a),
        Command::Image(a) => image::run(&cli.store, a),
    };
    match result {
        Ok(code) => {
            log::debug(&format!("done, exit code {code}"));
            code
        }
        Err(e) => {
            logger.error(&e.to_string());
            failure_code
        }
    }
}

/// A flag of the subcommand given both in its short and its long spelling before the first
/// operand (`exec -e A=1 --env B=2 ID`), as `-e/--env`; runc refuses such a command line, and
/// scripts that pass both would otherwise behave differently under husk.
fn two_forms_of_one_flag(args: &[std::ffi::OsString]) -> Option<String> {
    use clap::CommandFactory;
    use std::collections::BTreeSet;
    let cli = Cli::command();
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Skips the flags of `command` at the front of `args`; returns where its operands begin and
    // the ids of the flags given in their short and in their long form.
    fn flags(
        command: &clap::Command,
        args: &[String],
    ) -> (usize, BTreeSet<String>, BTreeSet<String>) {
        let (mut short, mut long) = (BTreeSet::new(), BTreeSet::new());
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                return (i, short, long);
            }
            if let Some(spelled) = arg.strip_prefix("--") {
                let (name, inline) = match spelled.split_once('=') {
                    Some((name, _)) => (name, true),
                    None => (spelled, false),
                };
                if let Some(def) = command.get_arguments().find(|a| a.get_long() == Some(name)) {
                    long.insert(def.get_id().to_string());
                    if !inline && def.get_action().takes_values() {
                        i += 1;
                    }
                }
            } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
                for (at, c) in cluster.char_indices() {
                    let Some(def) = command.get_arguments().find(|a| a.get_short() == Some(c))
                    else {
                        break;
                    };
                    short.insert(def.get_id().to_string());
                    if def.get_action().takes_values() {
                        // The value is the rest of the cluster, or the next argument.
                        if at + c.len_utf8() == cluster.len() {
                            i += 1;
                        }
                        break;
                    }
                }
            } else {
                return (i - 1, short, long);
            }
        }
        (i, short, long)
    }
    let (operands, _, _) = flags(&cli, &args);
    let sub = cli.find_subcommand(args.get(operands)?)?;
    let (_, short, long) = flags(sub, &args[operands + 1..]);
    let both = short.intersection(&long).next()?;
    let def = sub.get_arguments().find(|a| a.get_id() == both.as_str())?;
    Some(format!("-{} and --{}", def.get_short()?, def.get_long()?))
}

/// `--log` and `--log-format` picked out of raw arguments (for errors in parsing the rest).
/// Arguments are taken as bytes: any of them may be invalid UTF-8 (a path may legitimately be).
fn log_flags_from_args() -> (Option<PathBuf>, String) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let args: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let value = |name: &str| {
        let name = name.as_bytes();
        args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
                .map(<[u8]>::to_vec)
                .or_else(|| (a == name).then(|| args.get(i + 1).cloned()).flatten())
        })
    };
    (
        value("--log").map(|v| PathBuf::from(std::ffi::OsStr::from_bytes(&v))),
        value("--log-format")
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|| "text".into()),
    )
}

/// clap's one-line error, or for an argument that is not UTF-8 one naming it (clap only says
/// that some argument is not).
fn usage_error(e: &clap::Error) -> String {
    if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
        let bad: Vec<String> = std::env::args_os()
            .skip(1)
            .filter(|a| a.to_str().is_none())
            .map(|a| format!("{a:?}")) // non-UTF-8 bytes shown as \xNN
            .collect();
        return format!(
            "invalid UTF-8 in argument {}: container ids, commands and option values other \
             than paths must be UTF-8",
            bad.join(", ")
        );
    }
    e.to_string()
        .lines()
        .next()
        .unwrap_or("bad arguments")
        .to_string()
}

/// Why `--systemd-cgroup` cannot work here, if it cannot: on a host without a running systemd
/// there is nothing to drive (checked again, with the same words, by the cgroup manager).
fn systemd_driver_error() -> Option<String> {
    (!std::path::Path::new("/run/systemd/system").exists())
        .then(|| "systemd cgroup driver: no systemd instance reachable".into())
}

/// `--systemd-cgroup` was given to create or run.
static SYSTEMD_CGROUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The cgroup driver for containers this command creates.
fn cgroup_driver() -> husk::cgroups::CgroupDriver {
    if SYSTEMD_CGROUP.load(std::sync::atomic::Ordering::Relaxed) {
        husk::cgroups::CgroupDriver::Systemd
    } else {
        husk::cgroups::CgroupDriver::Cgroupfs
    }
}

/// What a subcommand returns: its exit code, or an error to log.
pub type CmdResult = Result<i32, Box<dyn std::error::Error>>;

/// The runtime for a command's `--root`.
fn runtime(root: &std::path::Path) -> husk::Runtime {
    husk::Runtime::builder()
        .state_root(root)
        .cgroup_driver(cgroup_driver())
        .build()
}

/// Writes a pid file atomically (temp file + rename), as runc does.
fn write_pid_file(path: &std::path::Path, pid: i32) -> husk::Result<()> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    husk::state::write_atomic(&path, pid.to_string().as_bytes())
}

/// Reads a JSON file named by an option (`exec --process`, `update -r`), at most
/// [`husk::hostfs::MAX_CONFIG_BYTES`]. The caller chose the path, so a pipe is fine here
/// (`--process <(...)`); a command waiting on it can still be interrupted.
fn read_option_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    read_bounded(std::fs::File::open(path)?)
}

/// Everything `reader` gives, refusing more than [`husk::hostfs::MAX_CONFIG_BYTES`].
fn read_bounded(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let max = husk::hostfs::MAX_CONFIG_BYTES;
    let mut bytes = Vec::new();
    reader.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}
