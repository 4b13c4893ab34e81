//! seccomp done completely, checked from inside real containers: syscalls newer than the profile fail with ENOSYS
//! on every ABI in the filter (so that libcs fall back, the clone3 lesson), startContainer hooks run with the
//! container's filter in force (as in runc), and SCMP_ACT_NOTIFY where the runtime's own syscalls would wait for an
//! agent that cannot answer yet is refused at create.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::net::UnixListener;

mod io_support;

use husk::oci_spec::runtime::{Arch, LinuxSeccomp};
use husk_testing::{require_root, unique_id, Bundle, HookKind, OutputExt, Runtime, TempDir};
use io_support::seccomp_agent;
use serde_json::{json, Value};

fn runtime() -> Runtime {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// x32's syscalls are x86_64's entry with this bit set in the number.
const X32_SYSCALL_BIT: u64 = 0x4000_0000;
/// getpriority(2) on x86_64 and x32 (same number, x32 with the bit), and on i386.
const GETPRIORITY_X86_64: u64 = 140;
const GETPRIORITY_I386: u64 = 96;

/// husk's hardened allowlist (default action ERRNO(EPERM)), a profile of the kind docker ships, without
/// `getpriority` (an old syscall it then leaves out on purpose) and with the three x86 ABIs.
fn allowlist_without_getpriority() -> Value {
    let mut profile = serde_json::to_value(husk::profile::default_seccomp_profile()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{profile}");
    let mut removed = false;
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        let names = rule["names"].as_array_mut().unwrap();
        let before = names.len();
        names.retain(|n| n != "getpriority");
        removed |= names.len() != before;
    }
    assert!(
        removed,
        "the hardened allowlist no longer allows getpriority: pick another old syscall"
    );
    profile["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    profile
}

/// The highest x86_64 syscall number `profile` names (as this libseccomp resolves names, like husk's filter).
fn highest_named_x86_64(profile: &Value) -> u64 {
    let seccomp: LinuxSeccomp = serde_json::from_value(profile.clone()).unwrap();
    let filter = husk_init::security::build_filter(&seccomp).unwrap();
    u64::from(
        filter
            .newer_than_profile_above(Arch::ScmpArchX86_64)
            .expect("a denying profile naming x86_64 syscalls has a bound"),
    )
}

/// The JSON a `probe ... --out /shared/NAME` left in the shared directory.
fn shared_json(bundle: &Bundle, name: &str) -> Value {
    let text = bundle
        .read_shared(name)
        .unwrap_or_else(|| panic!("no /shared/{name}: the probe did not run"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/shared/{name}: {e}: {text}"))
}

/// A syscall that no name in the profile covers, because it is newer than all of them, fails with ENOSYS on each
/// ABI of the filter; an older one the profile leaves out gets the profile's EPERM.
#[test]
fn syscalls_newer_than_the_profile_fail_with_enosys_on_every_abi() {
    let rt = runtime();
    let profile = allowlist_without_getpriority();
    let highest = highest_named_x86_64(&profile);
    assert!(highest + 1 < 1000, "bound {highest}");
    // (file under /shared, probe arguments, errno the container must see)
    let calls: Vec<(String, String, &str)> = vec![
        (
            "x86_64-1000".into(),
            "rawsyscall x86_64 1000".into(),
            "ENOSYS",
        ),
        (
            "x86_64-next".into(),
            format!("rawsyscall x86_64 {}", highest + 1),
            "ENOSYS",
        ),
        (
            "x86_64-old".into(),
            format!("rawsyscall x86_64 {GETPRIORITY_X86_64} 0 0"),
            "EPERM",
        ),
        ("i386-1000".into(), "rawsyscall i386 1000".into(), "ENOSYS"),
        (
            "i386-old".into(),
            format!("rawsyscall i386 {GETPRIORITY_I386}"),
            "EPERM",
        ),
        ("x32-1000".into(), "rawsyscall x32 1000".into(), "ENOSYS"),
        (
            "x32-old".into(),
            format!("rawsyscall x32 {GETPRIORITY_X86_64} 0 0"),
            "EPERM",
        ),
    ];
    let script: String = calls
        .iter()
        .map(|(file, args, _)| format!("probe {args} --out /shared/{file}\n"))
        .collect();
    let bundle = Bundle::new(&rt)
        .with_shared_dir()
        .set("/linux/seccomp", profile)
        .sh(&format!("{script}echo done"));
    let out = rt.run_bundle(&bundle);
    assert!(
        out.status.success() && out.stdout_str().contains("done"),
        "{}",
        out.describe()
    );
    let mut wrong = Vec::new();
    for (file, args, want) in &calls {
        let result = shared_json(&bundle, file);
        if result["errno_name"] != *want {
            wrong.push(format!("probe {args}: {result}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The rule is about numbers the profile does not name: x32's getpriority was refused as x32's (EPERM above),
    // and the x32 bit on a number above x32's bound is ENOSYS, not x86_64's verdict.
    assert_eq!(
        shared_json(&bundle, "x32-1000")["nr"],
        json!(X32_SYSCALL_BIT | 1000)
    );
}

/// A startContainer hook (run in the container by its init) sees the container's seccomp filter, whether the
/// filter is loaded early (without no_new_privs, while the init still holds CAP_SYS_ADMIN) or late (with it), and
/// under a deny-by-default allowlist the init still starts the hook and then the process.
#[test]
fn start_container_hooks_run_under_the_containers_filter() {
    let rt = runtime();
    let errno_rule = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV }]
    });
    let cases = [
        (
            "errno rule, no_new_privs",
            errno_rule.clone(),
            true,
            "EXDEV",
        ),
        (
            "errno rule, without no_new_privs",
            errno_rule,
            false,
            "EXDEV",
        ),
        (
            "deny-by-default allowlist, no_new_privs",
            allowlist_without_getpriority(),
            true,
            "EPERM",
        ),
    ];
    let mut wrong = Vec::new();
    for (case, profile, no_new_privs, want) in cases {
        let bundle = Bundle::new(&rt)
            .with_shared_dir()
            .set("/linux/seccomp", profile)
            .no_new_privileges(no_new_privs)
            .args([
                "probe",
                "syscall",
                "getpriority",
                "--out",
                "/shared/process",
            ]);
        let bundle = bundle.add_hook(
            HookKind::StartContainer,
            "/usr/bin/probe",
            &[
                "probe",
                "syscall",
                "getpriority",
                "--save-stdin",
                "/shared/hook-state",
                "--out",
                "/shared/hook",
            ],
            &[],
            None,
        );
        let out = rt.run_bundle(&bundle);
        if !out.status.success() {
            wrong.push(format!("{case}: run failed\n{}", out.describe()));
            continue;
        }
        let state: Value =
            serde_json::from_str(&bundle.read_shared("hook-state").unwrap_or_default())
                .unwrap_or(Value::Null);
        if state["status"] != "created" {
            wrong.push(format!("{case}: the hook got state {state}"));
        }
        for who in ["hook", "process"] {
            let result = shared_json(&bundle, who);
            if result["errno_name"] != want {
                wrong.push(format!(
                    "{case}: getpriority in the {who}: {result}, want {want}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// SCMP_ACT_NOTIFY on a syscall the init makes before the agent has the listener (sendmsg carries the listener to
/// husk; write reports failures, and runc refuses it too), or as the default action, would leave `create` waiting
/// forever. It is refused before anything is created, with one line naming the field.
#[test]
fn notify_on_the_runtimes_own_syscalls_is_refused_at_create() {
    /// Far longer than a refusal takes, even on a loaded machine.
    const HANG: std::time::Duration = std::time::Duration::from_secs(30);
    let rt = runtime();
    let dir = TempDir::new("husk-test-notify-refused");
    let listener_path = dir.join("agent.sock");
    // Something listens there (and never answers), so that nothing but the refusal can fail `create`.
    let _listener = UnixListener::bind(&listener_path).unwrap();
    let notify = |names: &[&str]| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": listener_path,
            "syscalls": [
                { "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" },
                { "names": names, "action": "SCMP_ACT_NOTIFY" }
            ]
        })
    };
    let mut cases = vec![
        (
            "write",
            notify(&["getcwd", "write"]),
            "linux.seccomp.syscalls[1]",
        ),
        (
            "default",
            json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": listener_path }),
            "linux.seccomp.defaultAction",
        ),
    ];
    // runc hands its listener over differently (the parent takes it with pidfd_getfd), so only husk refuses sendmsg.
    if !rt.is_runc() {
        cases.push(("sendmsg", notify(&["sendmsg"]), "linux.seccomp.syscalls[1]"));
    }
    let mut wrong = Vec::new();
    for (case, seccomp, field) in cases {
        let bundle = Bundle::new(&rt).set("/linux/seccomp", seccomp).sh("true");
        let id = unique_id("notify-refused");
        let guard = rt.guard(&id);
        let create = rt.spawn([
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            id.as_ref(),
        ]);
        let out = match create.wait_or_kill(HANG) {
            Ok(out) => out,
            Err(_) => {
                wrong.push(format!("{case}: create hung for {HANG:?} and was killed"));
                continue;
            }
        };
        let stderr = out.stderr_str();
        if out.status.success() {
            wrong.push(format!("{case}: create succeeded"));
        } else if rt.is_runc() {
            // runc names the syscall or the default action in its own words.
            if !stderr.contains("SCMP_ACT_NOTIFY") {
                wrong.push(format!("{case}: {stderr}"));
            }
        } else if stderr.trim().lines().count() != 1 || !stderr.contains(field) {
            wrong.push(format!("{case}: not one line naming {field}: {stderr}"));
        }
        drop(guard);
        if !rt.list_ids().is_empty() || !rt.state_dir_entries().is_empty() {
            wrong.push(format!(
                "{case}: left behind: {:?} {:?}",
                rt.list_ids(),
                rt.state_dir_entries()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Without no_new_privs the filter is loaded early (before capabilities are dropped) and its listener is handed
/// over at once: the agent answers the container's notified syscalls, and the init's own later work goes on.
#[test]
fn notify_filter_loaded_early_reaches_the_agent() {
    let rt = runtime();
    let dir = TempDir::new("husk-test-agent-early");
    let socket = dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || seccomp_agent(listener, libc::EXDEV).1);
    let bundle = Bundle::new(&rt)
        .no_new_privileges(false)
        .set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
            }),
        )
        .sh("mkdir /tmp/made 2>&1; echo rc=$?");
    let out = rt.run_bundle(&bundle);
    let answered = agent.join().unwrap();
    let stdout = out.stdout_str();
    assert!(
        stdout.contains("rc=1") && stdout.contains("Invalid cross-device link"),
        "the agent's errno did not arrive\n{}",
        out.describe()
    );
    assert!(answered >= 1, "no notification reached the agent");
}
