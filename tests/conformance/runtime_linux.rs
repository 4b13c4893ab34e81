//! runtime-linux.md: file descriptors and /dev symbolic links.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use super::support::{bundle, register, run_probe, Ctx, TestResult};

register!("runtime_linux":
    file_descriptors_only_stdio_by_default,
    dev_symlinks_created,
);

/// "By default, only the stdin, stdout and stderr file descriptors are kept open for the application by the
/// runtime."
fn file_descriptors_only_stdio_by_default(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt), &[]);
    assert_eq!(
        report.fds(),
        [0, 1, 2],
        "open descriptors: {}",
        report.at("/fds")
    );
    Ok(())
}

/// "While creating the container (step 2 in the lifecycle), runtimes MUST create the following symlinks if the
/// source file exists after processing mounts": /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr.
fn dev_symlinks_created(ctx: &Ctx) -> TestResult {
    let rt = ctx.runtime();
    let report = run_probe(&rt, bundle(&rt), &[]);
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let entry = report
            .device(link)
            .unwrap_or_else(|| panic!("{link} missing from /dev: {}", report.at("/devices")));
        assert_eq!(entry["type"], "symlink", "{entry}");
        assert_eq!(entry["target"], target, "{entry}");
    }
    Ok(())
}
