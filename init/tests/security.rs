//! The whole security sequence init runs before execve, in the order documented in
//! `husk_init::security`, applied to a real process that then execs a shell as a
//! non-root user. Needs root.

use std::os::unix::process::CommandExt;
use std::process::Command;

use husk_init::security::{
    apply_after_user_change, build_filter, parse_capabilities, prepare_before_user_change,
};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp};

const USER: u32 = 1000;

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[test]
fn caps_then_user_then_seccomp_then_exec() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root: it changes uid, capabilities and seccomp in a child"
    );
    let capabilities: LinuxCapabilities = serde_json::from_value(serde_json::json!({
        "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE"],
        "effective": ["CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    }))
    .unwrap();
    let seccomp: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["mkdir", "mkdirat", "not_a_real_syscall"],
              "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS }
        ]
    }))
    .unwrap();
    // Validated up front, as the host does before forking.
    let parsed = parse_capabilities(&capabilities).unwrap();
    assert_eq!(
        build_filter(&seccomp).unwrap().skipped_syscalls(),
        ["not_a_real_syscall"]
    );

    let mut command = Command::new("/bin/sh");
    command.args([
        "-c",
        "id -u; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; mkdir /husk-security-test-dir",
    ]);
    // SAFETY: the closure runs in the forked child before exec; it only makes syscalls
    // and allocates, which glibc supports after fork.
    unsafe {
        command.pre_exec(move || {
            prepare_before_user_change(&parsed).map_err(io_error)?;
            nix::unistd::setgroups(&[]).map_err(io_error)?;
            nix::unistd::setresgid(USER.into(), USER.into(), USER.into()).map_err(io_error)?;
            nix::unistd::setresuid(USER.into(), USER.into(), USER.into()).map_err(io_error)?;
            apply_after_user_change(&parsed).map_err(io_error)?;
            // Non-root without CAP_SYS_ADMIN: the filter needs no_new_privs.
            nix::sys::prctl::set_no_new_privs().map_err(io_error)?;
            let filter = build_filter(&seccomp).map_err(io_error)?;
            match filter.load().map_err(io_error)? {
                None => Ok(()),
                Some(_) => Err(io_error(
                    "a filter without SCMP_ACT_NOTIFY returned a listener",
                )),
            }
        });
    }
    let output = command.output().expect("running the sequence and /bin/sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    assert!(stdout.starts_with("1000\n"), "{report}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("no {name}: {report}"))
            .trim()
            .to_string()
    };
    let net_bind_service = 1u64 << 10;
    let kill = 1u64 << 5;
    let audit_write = 1u64 << 29;
    let mask = |name: &str| u64::from_str_radix(&field(name), 16).unwrap();
    assert_eq!(mask("CapAmb"), net_bind_service, "{report}");
    assert_eq!(mask("CapEff"), net_bind_service, "{report}");
    // After exec a non-root user's permitted set is its ambient set.
    assert_eq!(mask("CapPrm"), net_bind_service, "{report}");
    assert_eq!(mask("CapInh"), net_bind_service, "{report}");
    assert_eq!(
        mask("CapBnd"),
        net_bind_service | kill | audit_write,
        "{report}"
    );
    assert_eq!(field("NoNewPrivs"), "1", "{report}");
    // mkdir as uid 1000 in / would be EACCES; EROFS can only come from the filter.
    assert!(stderr.contains("Read-only file system"), "{report}");
    assert!(!std::path::Path::new("/husk-security-test-dir").exists());
    assert!(!output.status.success(), "{report}");
}
