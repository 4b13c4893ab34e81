//! `probe`: run inside a container, it reports as JSON what the process sees of its environment, so that tests
//! can compare it with what the container's config.json asked for. Built as a static binary and installed as
//! `/usr/bin/probe` in the busybox test rootfs (see `rootfs/README.md`).

// The probe runs inside test containers and writes only there; the host-write lint guards husk.
#![allow(clippy::disallowed_methods)]

mod hold_exe;
mod mountinfo;
mod rawsyscall;
mod report;
mod sys;
mod syscalls;

use std::io::Write;
use std::process::ExitCode;

use serde_json::{json, Value};

const USAGE: &str = "\
usage:
  probe [report] [--path P]... [--sysctl KEY]... [--cgroup-file CONTROLLER:FILE]...
                 [--syscall NAME[:ARG,...]]... [--dev-dir DIR] [--out FILE]
      the full report: ids, namespaces, id maps, capabilities, no_new_privs, seccomp, rlimits, umask,
      oom_score_adj, cwd, env, hostname, mounts, devices, cgroups, open fds, plus the paths, sysctls,
      cgroup files and system calls asked for (under \"syscalls\", keyed by the spec as given)
  probe syscall NAME [ARG...] [--out FILE]
      tries one system call (harmless default arguments, or the integers given) and reports its errno
  probe fork N [--out FILE]
      forks up to N children that wait, reports how many forks succeeded and the first errno, then reaps them
  probe alloc MIB [--out FILE]
      allocates and touches MIB mebibytes, then reports (a memory limit below that gets the probe killed)
  probe notify LINE... [--out FILE]
      sends the lines as one datagram to $NOTIFY_SOCKET (sd_notify), e.g. probe notify READY=1
  probe hold-exe ARG HELD GO [--out FILE]
      CVE-2019-5736 attacker: waits (60 s at most) for another process whose argv[1] is ARG, opens its
      /proc/PID/exe with O_PATH and reports that in file HELD; once file GO exists, reopens the descriptor
      through /proc/self/fd/N for writing, writes to it, and reports the errno of each step
  probe rawsyscall ABI NR [ARG...] [--out FILE]
      makes system call number NR through ABI x86_64, x32 (NR gets bit 30) or i386 (int 0x80, no arguments)
      with the integers given, and reports its result and errno
  probe help

Results go to stdout, or with --out to FILE (written to FILE.tmp, then renamed). Any command also takes
--save-stdin FILE: first read standard input to its end and save it in FILE (for hooks, which get the
container state on stdin).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(value) => ExitCode::from(value),
        Err(message) => {
            eprintln!("probe: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    let (command, rest) = match args.first().map(String::as_str) {
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return Ok(0);
        }
        Some("syscall" | "fork" | "alloc" | "report" | "notify" | "hold-exe" | "rawsyscall") => {
            (args[0].as_str(), &args[1..])
        }
        _ => ("report", args),
    };
    let mut out_file = None;
    let mut stdin_file = None;
    let mut positional = Vec::new();
    let mut request = report::Request {
        dev_dir: "/dev".to_owned(),
        ..Default::default()
    };
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let mut value = |flag: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "--out" => out_file = Some(value("--out")?),
            "--save-stdin" => stdin_file = Some(value("--save-stdin")?),
            "--path" if command == "report" => request.paths.push(value("--path")?),
            "--sysctl" if command == "report" => request.sysctls.push(value("--sysctl")?),
            "--cgroup-file" if command == "report" => {
                request.cgroup_files.push(value("--cgroup-file")?)
            }
            "--syscall" if command == "report" => {
                let spec = value("--syscall")?;
                let (name, numbers) = syscalls::parse_spec(&spec)?;
                request.syscalls.push((spec, name, numbers));
            }
            "--dev-dir" if command == "report" => request.dev_dir = value("--dev-dir")?,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg.clone()),
        }
    }
    if let Some(path) = &stdin_file {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        write_atomically(path, &input)?;
    }
    let result = match command {
        "report" => {
            if !positional.is_empty() {
                return Err(format!("unexpected arguments {positional:?}"));
            }
            report::build(&request)
        }
        "syscall" => {
            let (name, numbers) = positional
                .split_first()
                .ok_or("syscall needs a system call name")?;
            let numbers = numbers
                .iter()
                .map(|n| syscalls::parse_int(n))
                .collect::<Result<Vec<_>, _>>()?;
            syscalls::try_syscall(name, &numbers)
        }
        "fork" => {
            let count = single_number(&positional, "fork")?;
            fork_children(count)
        }
        "alloc" => {
            let mib = single_number(&positional, "alloc")?;
            allocate(mib)
        }
        "notify" => notify(&positional.join("\n"))?,
        "rawsyscall" => rawsyscall::run(&positional)?,
        "hold-exe" => match positional.as_slice() {
            [arg, held, go] => hold_exe::run(arg, held, go)?,
            _ => return Err("hold-exe needs ARG HELD GO".into()),
        },
        _ => unreachable!(),
    };
    emit(&result, out_file.as_deref())?;
    Ok(0)
}

fn single_number(positional: &[String], command: &str) -> Result<u64, String> {
    match positional {
        [n] => n
            .parse()
            .map_err(|e| format!("{command}: bad number {n:?}: {e}")),
        _ => Err(format!("{command} needs exactly one number")),
    }
}

fn emit(value: &Value, out_file: Option<&str>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
    match out_file {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
        Some(path) => write_atomically(path, text.as_bytes()),
    }
}

/// Writes FILE.tmp, then renames it to FILE, so that a reader polling for FILE never sees it half written.
fn write_atomically(path: &str, data: &[u8]) -> Result<(), String> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, data).map_err(|e| format!("cannot write {tmp}: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename {tmp} to {path}: {e}"))
}

/// Forks up to `count` children that block on a pipe, counting successes; stops at the first failure (e.g. EAGAIN
/// from a pids cgroup limit), then closes the pipe so the children exit, and reaps them.
fn fork_children(count: u64) -> Value {
    let (read_end, write_end) = sys::pipe();
    let mut forked = 0u64;
    let mut first_errno = None;
    for _ in 0..count {
        match sys::fork() {
            Ok(0) => {
                sys::close(write_end);
                sys::child_wait_then_exit(read_end);
            }
            Ok(_) => forked += 1,
            Err(errno) => {
                first_errno = Some(errno);
                break;
            }
        }
    }
    sys::close(write_end);
    sys::close(read_end);
    while sys::wait_any() {}
    json!({
        "requested": count,
        "forked": forked,
        "errno": first_errno,
        "errno_name": first_errno.map(sys::errno_name),
    })
}

/// Allocates `mib` MiB in 1 MiB blocks and writes to every page, so the memory is really charged.
fn allocate(mib: u64) -> Value {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        let mut block = vec![0u8; 1 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        blocks.push(block);
    }
    let touched: u64 = blocks.iter().map(|b| u64::from(b[0])).sum();
    json!({ "allocated_mib": touched })
}

/// `probe notify MESSAGE...`: sends the lines as one datagram to $NOTIFY_SOCKET (sd_notify).
fn notify(message: &str) -> Result<Value, String> {
    let path =
        std::env::var("NOTIFY_SOCKET").map_err(|_| "NOTIFY_SOCKET is not set".to_string())?;
    let socket = std::os::unix::net::UnixDatagram::unbound().map_err(|e| format!("socket: {e}"))?;
    socket
        .send_to(message.as_bytes(), &path)
        .map_err(|e| format!("send to {path}: {e}"))?;
    Ok(serde_json::json!({"notified": path, "message": message}))
}
