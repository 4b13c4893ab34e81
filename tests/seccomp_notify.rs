//! SCMP_ACT_NOTIFY: the runtime hands the notify fd and the container's state to the agent at
//! `linux.seccomp.listenerPath`, and the agent answers the container's system calls.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::net::UnixListener;

mod io_support;

use husk_testing::{require_root, Bundle, OutputExt, Runtime, TempDir};
use io_support::seccomp_agent;
use serde_json::json;

#[test]
fn notify_fd_reaches_the_agent_which_answers_syscalls() {
    require_root();
    let rt = Runtime::from_env(env!("CARGO_BIN_EXE_husk"));
    let dir = TempDir::new("husk-test-agent");
    let socket = dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || seccomp_agent(listener, libc::EXDEV));
    let bundle = Bundle::new(&rt)
        .set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "listenerMetadata": "from-the-test",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        )
        .sh("mkdir /tmp/made 2>&1; echo rc=$?");
    let out = rt.run_bundle(&bundle);
    let (state, answered) = agent.join().unwrap();
    let stdout = out.stdout_str();
    assert!(stdout.contains("rc=1"), "{}", out.describe());
    assert!(
        stdout.contains("Invalid cross-device link"),
        "the agent's errno did not arrive: {stdout}"
    );
    assert!(answered >= 1, "no notification reached the agent");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], json!("from-the-test"), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(state["state"]["id"].is_string(), "{state}");
    assert_eq!(state["state"]["bundle"], json!(bundle.path()), "{state}");
}
