//! Regression tests for classes of container escape that runtimes have had to fix. Each test
//! performs the attack from inside a container and checks that it fails.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use husk_testing::{require_root, wait_for, Bundle, Runtime, TempDir};

fn runtime_binary() -> std::path::PathBuf {
    require_root();
    Runtime::from_env(env!("CARGO_BIN_EXE_husk")).binary().to_path_buf()
}

/// CVE-2019-5736: a container process grabs /proc/1/exe while PID 1 is still the runtime's
/// init, waits until the runtime is gone, then writes through it to the runtime binary on the
/// host. The runtime under test is a private copy, so no other test keeps it busy (ETXTBSY
/// would hide the hole).
#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    let dir = TempDir::new("husk-test-exe");
    let copy = dir.join("runtime-copy");
    std::fs::copy(runtime_binary(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let rt = Runtime::with_binary(&copy);

    let bundle = Bundle::new(&rt).with_shared_dir().args(["sleep", "100"]);
    let c = rt.create(&bundle);
    // The attacker, started while the init (PID 1) still runs the runtime's code.
    // Detached, so that no runtime process waits for it (and keeps the binary busy).
    rt.run_ok([
        "exec",
        "-d",
        c.id(),
        "sh",
        "-c",
        "exec 3</proc/1/exe; echo held > /shared/held; \
         while [ ! -e /shared/go ]; do sleep 0.05; done; \
         (echo pwned >> /proc/self/fd/3) 2> /shared/error && echo WROTE > /shared/wrote; echo done > /shared/done",
    ]);
    assert!(wait_for(|| bundle.read_shared("held").is_some(), Duration::from_secs(10)));
    c.start();
    // The init has exec'd `sleep`: no runtime process is left running the binary.
    std::fs::write(bundle.shared_dir().join("go"), "").unwrap();
    assert!(wait_for(|| bundle.read_shared("done").is_some(), Duration::from_secs(10)));
    assert_eq!(bundle.read_shared("wrote"), None, "wrote through /proc/1/exe");
    assert!(std::fs::read(&copy).unwrap() == before, "the runtime binary changed");
    eprintln!("attack refused: {}", bundle.read_shared("error").unwrap_or_default().trim());
}
