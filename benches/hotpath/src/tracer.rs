//! Runs a command under ptrace, single-stepping every process and thread of its tree, and
//! records each instruction of the target binary the first time any of them executes it.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::unistd::{fork, ForkResult, Pid};

use crate::maps::{TargetBinary, TextRange};

/// What a traced run executed.
pub struct Trace {
    /// Single steps taken, over all processes and all code.
    pub steps: u64,
    /// Link-time addresses of the target's instructions, in order of first execution.
    pub addresses: Vec<u64>,
    /// Processes and threads traced.
    pub tasks: u64,
    /// Exec'd program images that mapped the target binary.
    pub target_images: u64,
    /// How the command itself (the first process) ended: its exit code, or 128 + signal.
    pub exit_code: i32,
}

/// A traced process or thread.
struct Tracee {
    /// Where the target's code is mapped in it (empty when it runs something else).
    text: Vec<TextRange>,
    /// Auto-attached tracees start with a SIGSTOP that is ours, not the program's.
    awaiting_initial_stop: bool,
}

struct Recorder<'a> {
    target: &'a TargetBinary,
    tracees: HashMap<i32, Tracee>,
    seen: HashSet<u64>,
    trace: Trace,
}

/// Runs `command` (program and arguments; the program is looked up in PATH) with every
/// process of its tree single-stepped.
pub fn trace(command: &[OsString], target: &TargetBinary) -> Result<Trace, String> {
    let (program_name, _) = command.split_first().ok_or("no command given")?;
    let program = find_program(program_name)?;
    let to_cstring =
        |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte"));
    let program = to_cstring(program.as_os_str())?;
    let args = command
        .iter()
        .map(|a| to_cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Built before fork: the child may only make async-signal-safe calls.
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    // SAFETY: the tracer has started no threads, and the child only makes async-signal-safe
    // calls (personality, ptrace, raise, execv, write, _exit) on memory prepared before.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => exec_traced(&program, &argv),
        ForkResult::Parent { child } => child,
    };

    // The child stops itself (SIGSTOP) before exec, so the options are set in time.
    let (pid, status) = wait_any().map_err(|e| format!("waiting for the first stop: {e}"))?;
    if pid != child.as_raw() || !libc::WIFSTOPPED(status) {
        return Err(format!(
            "the command's process did not stop for tracing (wait status {status:#x})"
        ));
    }
    ptrace::setoptions(
        child,
        Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_EXITKILL,
    )
    .map_err(|e| format!("PTRACE_SETOPTIONS: {e}"))?;

    let mut recorder = Recorder {
        target,
        tracees: HashMap::new(),
        seen: HashSet::new(),
        trace: Trace {
            steps: 0,
            addresses: Vec::new(),
            tasks: 1,
            target_images: 0,
            exit_code: -1,
        },
    };
    // Until it execs, the child runs this tracer's code: no target text yet.
    recorder.tracees.insert(
        child.as_raw(),
        Tracee {
            text: Vec::new(),
            awaiting_initial_stop: false,
        },
    );
    resume(child.as_raw(), 0);
    let mut root_exec_seen = false;
    loop {
        let (pid, status) = match wait_any() {
            Ok(stop) => stop,
            Err(Errno::ECHILD) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("waitpid: {e}")),
        };
        if pid == child.as_raw() && status >> 16 == libc::PTRACE_EVENT_EXEC {
            root_exec_seen = true;
        }
        recorder.handle(pid, status, child.as_raw())?;
    }
    if !root_exec_seen {
        return Err(format!(
            "{program:?} was not executed (exit code {})",
            recorder.trace.exit_code
        ));
    }
    Ok(recorder.trace)
}

impl Recorder<'_> {
    fn handle(&mut self, pid: i32, status: c_int, root: i32) -> Result<(), String> {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.tracees.remove(&pid);
            if pid == root {
                self.trace.exit_code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
            }
            return Ok(());
        }
        if !libc::WIFSTOPPED(status) {
            return Ok(());
        }
        if !self.tracees.contains_key(&pid) {
            // A new child whose first stop came before its parent's fork event.
            self.add_tracee(pid)?;
        }
        let signal = libc::WSTOPSIG(status);
        let event = status >> 16;
        let mut deliver = 0;
        match event {
            0 => deliver = self.signal_stop(pid, signal),
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(Pid::from_raw(pid)) {
                    let new = new as i32;
                    if !self.tracees.contains_key(&new) {
                        self.add_tracee(new)?;
                    }
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                // A non-leader thread that execs takes over the leader's id.
                if let Ok(former) = ptrace::getevent(Pid::from_raw(pid)) {
                    if former as i32 != pid {
                        self.tracees.remove(&(former as i32));
                    }
                }
                let text = self.target.text_ranges(pid)?;
                if !text.is_empty() {
                    self.trace.target_images += 1;
                }
                if let Some(tracee) = self.tracees.get_mut(&pid) {
                    tracee.text = text;
                }
            }
            _ => {}
        }
        self.record(pid);
        resume(pid, deliver);
        Ok(())
    }

    fn add_tracee(&mut self, pid: i32) -> Result<(), String> {
        let text = self.target.text_ranges(pid)?;
        self.tracees.insert(
            pid,
            Tracee {
                text,
                awaiting_initial_stop: true,
            },
        );
        self.trace.tasks += 1;
        Ok(())
    }

    /// A stop for a signal (no ptrace event); returns the signal to deliver on resuming.
    fn signal_stop(&mut self, pid: i32, signal: c_int) -> c_int {
        let tracee = self.tracees.get_mut(&pid).expect("added before");
        if signal == libc::SIGSTOP && tracee.awaiting_initial_stop {
            tracee.awaiting_initial_stop = false;
            return 0;
        }
        match ptrace::getsiginfo(Pid::from_raw(pid)) {
            Ok(info) if signal == libc::SIGTRAP && is_step_trap(info.si_code) => {
                self.trace.steps += 1;
                0
            }
            // A stop signal was delivered and the tracee is in group-stop. Resuming it is
            // all a TRACEME tracer can do (PTRACE_LISTEN needs PTRACE_SEIZE); keeping it
            // stopped would hang the run.
            Err(Errno::EINVAL) => 0,
            // A real signal (SIGTRAP from kill included): the program gets it.
            Ok(_) => signal,
            // Killed meanwhile: its exit comes next.
            Err(_) => 0,
        }
    }

    /// Records the instruction that `pid` is about to execute, if it is the target's.
    fn record(&mut self, pid: i32) {
        let Some(tracee) = self.tracees.get(&pid) else {
            return;
        };
        if tracee.text.is_empty() {
            return;
        }
        let Ok(ip) = instruction_pointer(pid) else {
            return;
        };
        if let Some(address) = tracee.text.iter().find_map(|r| r.link_address(ip)) {
            if self.seen.insert(address) {
                self.trace.addresses.push(address);
            }
        }
    }
}

/// Whether a SIGTRAP is the tracer's own: a single-step trap (TRAP_TRACE, or TRAP_BRKPT after
/// stepping over a system call) or the notice of entering a signal handler while stepping
/// (si_code SIGTRAP). Signals sent by a process have si_code <= 0; `int3` has SI_KERNEL.
fn is_step_trap(si_code: c_int) -> bool {
    si_code > 0 && si_code != libc::SI_KERNEL
}

#[cfg(target_arch = "x86_64")]
fn instruction_pointer(pid: i32) -> nix::Result<u64> {
    ptrace::getregs(Pid::from_raw(pid)).map(|regs| regs.rip)
}

/// Only x86_64's register layout is read; elsewhere the trace fails at its first step, so that the
/// workspace still builds there.
#[cfg(not(target_arch = "x86_64"))]
fn instruction_pointer(_pid: i32) -> nix::Result<u64> {
    Err(nix::errno::Errno::ENOTSUP)
}

/// Single-steps `pid`, delivering `signal` (0 = none). Raw ptrace: nix's `Signal` cannot hold
/// real-time signals, which must be forwarded too.
fn resume(pid: i32, signal: c_int) {
    // The result is not checked: the only failure is ESRCH, a tracee killed (SIGKILL) while
    // stopped, whose exit is reported next.
    // SAFETY: PTRACE_SINGLESTEP takes no pointers; `data` is the signal number.
    unsafe {
        libc::ptrace(
            libc::PTRACE_SINGLESTEP,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            signal as libc::c_long,
        )
    };
}

/// Waits for any child or tracee (threads included). Raw waitpid: nix cannot decode stops for
/// real-time signals.
fn wait_any() -> Result<(i32, c_int), Errno> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the call.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid < 0 {
        return Err(Errno::last());
    }
    Ok((pid, status))
}

/// The child side: ASLR off (so addresses repeat from run to run), traced by the parent,
/// stopped until the parent has set the ptrace options, then the command.
fn exec_traced(program: &CString, argv: &[*const libc::c_char]) -> ! {
    fn fail(message: &[u8]) -> ! {
        // SAFETY: write and _exit are async-signal-safe; `message` is a valid buffer.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(127)
        }
    }
    // SAFETY: async-signal-safe calls only; `program` and `argv` (NULL-terminated) were built
    // before fork and stay alive.
    unsafe {
        let persona = libc::personality(0xffff_ffff);
        if persona == -1
            || libc::personality((persona | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) == -1
        {
            fail(b"husk-hotpath: personality(ADDR_NO_RANDOMIZE) failed\n");
        }
        let none = std::ptr::null_mut::<libc::c_void>();
        if libc::ptrace(libc::PTRACE_TRACEME, 0, none, none) == -1 {
            fail(b"husk-hotpath: PTRACE_TRACEME failed\n");
        }
        libc::raise(libc::SIGSTOP);
        libc::execv(program.as_ptr(), argv.as_ptr());
    }
    fail(b"husk-hotpath: exec of the command failed\n")
}

/// `name` itself when it holds a slash, else the first executable `name` in PATH.
fn find_program(name: &OsStr) -> Result<PathBuf, String> {
    let is_executable = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            // SAFETY: a valid NUL-terminated path.
            .map(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
            .unwrap_or(false)
            && path.is_file()
    };
    if name.as_bytes().contains(&b'/') {
        let path = PathBuf::from(name);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!("{name:?} is not an executable file"))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
        .ok_or_else(|| format!("{name:?} not found in PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kernel_step_traps_are_swallowed() {
        assert!(is_step_trap(libc::TRAP_TRACE));
        assert!(is_step_trap(libc::TRAP_BRKPT));
        assert!(is_step_trap(libc::SIGTRAP));
        assert!(!is_step_trap(libc::SI_USER));
        assert!(!is_step_trap(libc::SI_TKILL));
        assert!(!is_step_trap(libc::SI_QUEUE));
        assert!(!is_step_trap(libc::SI_KERNEL));
    }

    #[test]
    fn programs_are_found_in_path() {
        assert!(find_program(OsStr::new("sh")).unwrap().is_absolute());
        assert!(find_program(OsStr::new("no-such-program-here")).is_err());
        assert!(find_program(OsStr::new("/no/such/program")).is_err());
        assert!(find_program(OsStr::new("/etc/passwd")).is_err());
    }
}
