//! Kubernetes' path (issue 15): containerd's CRI plugin with the runtime under test as a runtime handler, driven by a
//! CRI client over containerd's socket the way kubelet drives it.
//!
//! The test starts its own containerd (Debian's containerd 1.6; see `cri_support`) whose handler `husk` is the runc
//! shim (`io.containerd.runc.v2`) with `BinaryName` = the runtime under test, which is what a RuntimeClass with
//! `handler: husk` selects. The pod uses the host's network (NamespaceMode NODE), so no CNI plugin is needed, and
//! shares one pid namespace (`shareProcessNamespace`), so the pause process is its init. Then, as kubelet would:
//! RunPodSandbox (the pause image: `husk-pause`, imported locally), CreateContainer and StartContainer (a busybox
//! image made from the test rootfs), ExecSync, ContainerStats, the container's log file, StopContainer,
//! StopPodSandbox, RemoveContainer and RemovePodSandbox. Each step's effect is checked on the host or from inside, and
//! at the end no process, mount, cgroup, systemd unit or runtime state may be left.
//!
//! Environment: `HUSK_TEST_RUNTIME` (the runtime; `/usr/sbin/runc` for the reference run), `HUSK_ROOTFS` (the busybox
//! rootfs), `HUSK_PAUSE` (the pause binary, default: `husk-pause` built beside this test binary),
//! `HUSK_CRI_CGROUP_DRIVER` (`cgroupfs` or `systemd`; default systemd when systemd is PID 1, as kubelet's nodes set
//! `SystemdCgroup = true` there). Needs root and Debian's containerd package; fails, saying so, without them.

// Test fixtures (containerd's config, image tarballs) live in the test's own temp dir; the host-write lint guards husk.
#![allow(clippy::disallowed_methods)]

mod cri_support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use husk_testing::cgroups::dirs_named;
use husk_testing::{default_rootfs, is_gone, mounts_under, require_root, wait_for};
use k8s_cri::v1 as cri;
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint, Uri};

use cri::image_service_client::ImageServiceClient;
use cri::runtime_service_client::RuntimeServiceClient;
use cri_support::image::{write_image_tar, Layer};
use cri_support::{
    is_socket, processes_mentioning, require_tools, shim_socket, CgroupDriver, Containerd, HANDLER,
    TIMEOUT,
};

const PAUSE_IMAGE: &str = "localhost/husk-pause:cri-test";
const BUSYBOX_IMAGE: &str = "localhost/husk-busybox:cri-test";
const MEMORY_LIMIT: i64 = 64 << 20;
const GREETING: &str = "hello from a CRI container";
/// The container's process: two lines of output, one per stream, then it waits; SIGTERM ends it with status 7.
const CONTAINER_SCRIPT: &str = r#"echo "$GREETING"; echo "to stderr" >&2
trap 'echo "got TERM"; exit 7' TERM
while :; do sleep 0.1; done"#;

/// The runtime under test: `HUSK_TEST_RUNTIME`, else the husk binary cargo built.
fn runtime_binary() -> PathBuf {
    let binary = match std::env::var_os("HUSK_TEST_RUNTIME") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_husk")),
    };
    assert!(
        binary.is_file(),
        "runtime {} does not exist (HUSK_TEST_RUNTIME)",
        binary.display()
    );
    binary
}

/// The pause program: `HUSK_PAUSE`, else `husk-pause` from the same cargo build as this test (`cargo test
/// --workspace` and `cargo build --workspace` build it), else `rootfs/out/pause`.
fn pause_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HUSK_PAUSE").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "HUSK_PAUSE={} does not exist",
            path.display()
        );
        return path;
    }
    // This binary is <target>/<profile>/deps/cri-<hash>; cargo puts workspace binaries in <target>/<profile>.
    let exe = std::env::current_exe().unwrap();
    let beside_build = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("husk-pause"));
    let in_rootfs_out = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/out/pause");
    beside_build
        .into_iter()
        .chain([in_rootfs_out])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no pause binary: build it with `cargo build -p husk-pause` (same profile as this test), or set \
                 HUSK_PAUSE to a static pause program"
            )
        })
}

fn cgroup_driver() -> CgroupDriver {
    match std::env::var("HUSK_CRI_CGROUP_DRIVER").as_deref() {
        Ok("systemd") => CgroupDriver::Systemd,
        Ok("cgroupfs") => CgroupDriver::Cgroupfs,
        Ok(other) if !other.is_empty() => {
            panic!("HUSK_CRI_CGROUP_DRIVER must be cgroupfs or systemd, not {other:?}")
        }
        _ if Path::new("/run/systemd/system").is_dir() => CgroupDriver::Systemd,
        _ => CgroupDriver::Cgroupfs,
    }
}

/// A blocking CRI client: kubelet's two services over containerd's socket, on a single-threaded tokio runtime.
struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// One CRI call, with the test's timeout; panics naming the call on an error status.
macro_rules! call {
    ($cri:expr, $service:ident . $method:ident ( $request:expr )) => {{
        let cri: &mut Cri = &mut $cri;
        let request = $request;
        let response = cri.$service.$method(request);
        // The timer must be made inside the runtime.
        match cri
            .rt
            .block_on(async move { tokio::time::timeout(TIMEOUT, response).await })
        {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => panic!("CRI {} failed: {status}", stringify!($method)),
            Err(_) => panic!(
                "CRI {} did not answer within {TIMEOUT:?}",
                stringify!($method)
            ),
        }
    }};
}

impl Cri {
    fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = socket.to_path_buf();
        // gRPC over a Unix socket: the URI is a placeholder, the connector dials the socket.
        let channel = rt
            .block_on(
                Endpoint::from_static("http://localhost").connect_with_connector(
                    tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(socket).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }),
                ),
            )
            .unwrap_or_else(|e| panic!("cannot connect to containerd's CRI socket: {e}"));
        Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    /// Waits until the CRI plugin knows `image` (it learns of `ctr images import` through containerd's events).
    fn wait_for_image(&mut self, image: &str) {
        let start = Instant::now();
        loop {
            let status = call!(
                *self,
                images.image_status(cri::ImageStatusRequest {
                    image: Some(image_spec(image)),
                    verbose: false,
                })
            );
            if status.image.is_some() {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "the CRI plugin does not see the imported image {image}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn sandbox_status(&mut self, id: &str) -> (cri::PodSandboxStatus, Value) {
        let response = call!(
            *self,
            runtime.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_owned(),
                verbose: true,
            })
        );
        (response.status.unwrap(), verbose_info(&response.info))
    }

    fn container_status(&mut self, id: &str) -> (cri::ContainerStatus, Value) {
        let response = call!(
            *self,
            runtime.container_status(cri::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: true,
            })
        );
        (response.status.unwrap(), verbose_info(&response.info))
    }

    fn exec_sync(&mut self, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
        call!(
            *self,
            runtime.exec_sync(cri::ExecSyncRequest {
                container_id: id.to_owned(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: TIMEOUT.as_secs() as i64,
            })
        )
    }
}

fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}

/// containerd's verbose status: a JSON document under the key `info`.
fn verbose_info(info: &HashMap<String, String>) -> Value {
    let text = info
        .get("info")
        .unwrap_or_else(|| panic!("verbose status without 'info': {info:?}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("verbose info is not JSON ({e}): {text}"))
}

fn pid_of(info: &Value) -> i32 {
    info["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("verbose info without a pid: {info}")) as i32
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim_end()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The children of `pid` (zombies included: they stay listed until reaped).
fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One line of a CRI log file: `<RFC 3339 time> <stdout|stderr> <F|P> <content>`.
#[derive(Debug)]
struct LogLine {
    stream: String,
    tag: String,
    content: String,
}

fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(time), Some(stream), Some(tag), Some(content)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                panic!("CRI log line without four fields: {line:?}")
            };
            assert!(
                looks_like_rfc3339(time),
                "CRI log line whose time is not RFC 3339: {line:?}"
            );
            assert!(
                stream == "stdout" || stream == "stderr",
                "CRI log line with stream {stream:?}: {line:?}"
            );
            assert!(
                tag == "F" || tag == "P",
                "CRI log line with tag {tag:?}: {line:?}"
            );
            LogLine {
                stream: stream.to_owned(),
                tag: tag.to_owned(),
                content: content.to_owned(),
            }
        })
        .collect()
}

/// `2006-01-02T15:04:05.999999999Z07:00` and its variants (fraction optional, `Z` or an offset).
fn looks_like_rfc3339(time: &str) -> bool {
    let b = time.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !digits(0..4) || !digits(5..7) || !digits(8..10) || !digits(11..13) {
        return false;
    }
    if (b[4], b[7], b[10], b[13], b[16]) != (b'-', b'-', b'T', b':', b':')
        || !digits(14..16)
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &time[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':')
}

/// Cgroup directories left below the pod's cgroup parent, in every hierarchy.
fn cgroups_below(tag: &str) -> Vec<PathBuf> {
    dirs_named(tag)
        .into_iter()
        .flat_map(|parent| {
            fs::read_dir(&parent)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// systemd units (any type, any state) named after one of `ids` or placed in `slice`.
fn units_left(ids: &[&str], slice: &str) -> Vec<String> {
    let out = Command::new("systemctl")
        .args([
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "--no-pager",
        ])
        .output()
        .expect("systemctl list-units");
    let mut left = Vec::new();
    for line in text(&out.stdout).lines() {
        let Some(unit) = line.split_whitespace().next() else {
            continue;
        };
        if unit == slice || ids.iter().any(|id| unit.contains(id)) {
            left.push(line.trim().to_owned());
            continue;
        }
        if unit.ends_with(".scope") {
            let slice_of = Command::new("systemctl")
                .args(["show", "-p", "Slice", "--value", unit])
                .output()
                .map(|o| text(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            if slice_of == slice {
                left.push(line.trim().to_owned());
            }
        }
    }
    left
}

/// Removes the pod's cgroup parent (kubelet owns pod cgroups; runtimes leave parents in place) when dropped.
struct CgroupParentCleanup {
    tag: String,
    slice: Option<String>,
}

impl Drop for CgroupParentCleanup {
    fn drop(&mut self) {
        if let Some(slice) = &self.slice {
            let _ = Command::new("systemctl").args(["stop", slice]).status();
        }
        // Whatever a failed run left below the parent first (empty cgroups only: rmdir), then the parent.
        for dir in cgroups_below(&self.tag) {
            let _ = fs::remove_dir(dir);
        }
        drop(husk_testing::cgroups::TagCleanup(self.tag.clone()));
    }
}

#[test]
fn kubelets_pod_lifecycle_through_containerds_cri_plugin() {
    require_root();
    require_tools();
    let runtime = runtime_binary();
    let pause = pause_binary();
    let rootfs = default_rootfs();
    let driver = cgroup_driver();
    let started = Instant::now();
    eprintln!(
        "cri: runtime {}, pause {}, rootfs {}, cgroup driver {driver:?}",
        runtime.display(),
        pause.display(),
        rootfs.display()
    );

    // Pod cgroups are placed under a parent named after this process, as kubelet places them under kubepods.
    let tag = format!("huskcri{}", std::process::id());
    let (cgroup_parent, slice) = match driver {
        CgroupDriver::Cgroupfs => (format!("/{tag}"), None),
        CgroupDriver::Systemd => (format!("{tag}.slice"), Some(format!("{tag}.slice"))),
    };
    let _cgroup_cleanup = CgroupParentCleanup {
        tag: tag.clone(),
        slice: slice.clone(),
    };

    let mut containerd = Containerd::start(&runtime, PAUSE_IMAGE, &driver);
    let dir = containerd.dir().to_path_buf();
    write_image_tar(
        &dir.join("pause.tar"),
        PAUSE_IMAGE,
        Layer::File {
            source: &pause,
            at: "pause",
        },
        json!({ "Entrypoint": ["/pause"] }),
    );
    write_image_tar(
        &dir.join("busybox.tar"),
        BUSYBOX_IMAGE,
        Layer::Tree(&rootfs),
        json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        }),
    );
    containerd.import(&dir.join("pause.tar"));
    containerd.import(&dir.join("busybox.tar"));

    let mut cri = Cri::connect(containerd.socket());
    let version = call!(cri, runtime.version(cri::VersionRequest::default()));
    assert_eq!(version.runtime_name, "containerd", "{version:?}");
    assert_eq!(version.runtime_api_version, "v1", "{version:?}");
    cri.wait_for_image(PAUSE_IMAGE);
    cri.wait_for_image(BUSYBOX_IMAGE);

    // RunPodSandbox, as kubelet sends it for a hostNetwork pod with shareProcessNamespace.
    let pod_name = "husk-cri";
    let pod_uid = format!("{tag}-uid");
    let log_dir = dir.join(format!("pods/default_{pod_name}_{pod_uid}"));
    fs::create_dir_all(log_dir.join("app")).unwrap();
    let namespaces = cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Pod as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    };
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod_name.to_owned(),
            uid: pod_uid.clone(),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        log_directory: log_dir.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.clone(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod_id = call!(
        cri,
        runtime.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: HANDLER.to_owned(),
        })
    )
    .pod_sandbox_id;
    let (sandbox, info) = cri.sandbox_status(&pod_id);
    assert_eq!(
        sandbox.state,
        cri::PodSandboxState::SandboxReady as i32,
        "{sandbox:?}"
    );
    assert_eq!(info["runtimeHandler"], HANDLER, "{info}");
    let pause_pid = pid_of(&info);
    // runc's start returns before its init has exec'd the process; husk's returns after.
    assert!(
        wait_for(|| cmdline(pause_pid) == "/pause", TIMEOUT),
        "the sandbox's process is not the pause program: {}",
        cmdline(pause_pid)
    );
    let pause_socket = shim_socket(&containerd, &pod_id);

    // CreateContainer and StartContainer: busybox, with a memory limit, a CPU quota and the runtime's default seccomp
    // profile, joining the pod's namespaces.
    let container_config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "app".to_owned(),
            attempt: 0,
        }),
        image: Some(image_spec(BUSYBOX_IMAGE)),
        command: vec!["sh".into(), "-c".into(), CONTAINER_SCRIPT.into()],
        envs: vec![cri::KeyValue {
            key: "GREETING".to_owned(),
            value: GREETING.to_owned(),
        }],
        log_path: "app/0.log".to_owned(),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: MEMORY_LIMIT,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 512,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces.clone()),
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let container_id = call!(
        cri,
        runtime.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container_config),
            sandbox_config: Some(sandbox_config.clone()),
        })
    )
    .container_id;
    call!(
        cri,
        runtime.start_container(cri::StartContainerRequest {
            container_id: container_id.clone(),
        })
    );
    let (status, info) = cri.container_status(&container_id);
    assert_eq!(
        status.state,
        cri::ContainerState::ContainerRunning as i32,
        "{status:?}"
    );
    let container_pid = pid_of(&info);
    let container_socket = shim_socket(&containerd, &container_id);
    // The handler's runtime made both: its own `list` shows them in the shim's state root.
    let listed = containerd.runtime_containers();
    assert!(
        listed.contains(&pod_id) && listed.contains(&container_id),
        "{} list shows {listed:?}, not the sandbox {pod_id} and the container {container_id}",
        runtime.display()
    );

    // ExecSync: both streams and the exit code come back.
    let exec = cri.exec_sync(
        &container_id,
        &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 3"],
    );
    assert_eq!(
        (text(&exec.stdout), text(&exec.stderr), exec.exit_code),
        ("exec-out\n".to_owned(), "exec-err\n".to_owned(), 3)
    );
    // From inside: the memory limit the CRI asked for (v1 file, or v2's at the cgroup namespace root or below).
    let exec = cri.exec_sync(
        &container_id,
        &[
            "sh",
            "-c",
            "p=$(sed -n 's/^0:://p' /proc/self/cgroup); for f in /sys/fs/cgroup/memory/memory.limit_in_bytes \
             /sys/fs/cgroup/memory.max /sys/fs/cgroup$p/memory.max; do [ -r $f ] && exec cat $f; done; exit 1",
        ],
    );
    assert_eq!(
        (text(&exec.stdout).trim(), exec.exit_code),
        (MEMORY_LIMIT.to_string().as_str(), 0),
        "memory limit seen inside; stderr: {}",
        text(&exec.stderr)
    );
    // The pod shares one pid namespace: its init is the pause program.
    let exec = cri.exec_sync(&container_id, &["cat", "/proc/1/cmdline"]);
    assert_eq!(text(&exec.stdout).trim_end_matches('\0'), "/pause");
    // An orphan in the pod's pid namespace is adopted by the pause process, which reaps it when it exits.
    let exec = cri.exec_sync(
        &container_id,
        &["sh", "-c", "sleep 2 </dev/null >/dev/null 2>&1 & exit 0"],
    );
    assert_eq!(exec.exit_code, 0);
    assert!(
        children(pause_pid).iter().any(|&c| cmdline(c) == "sleep 2"),
        "the orphaned sleep is not a child of the pause process ({pause_pid}): children {:?}",
        children(pause_pid)
    );
    assert!(
        wait_for(|| children(pause_pid).is_empty(), TIMEOUT),
        "the pause process did not reap its orphan: children {:?}",
        children(pause_pid)
    );

    // ContainerStats: the cgroup's CPU time and memory, non-zero for a running shell that has been exec'd into.
    let stats = call!(
        cri,
        runtime.container_stats(cri::ContainerStatsRequest {
            container_id: container_id.clone(),
        })
    )
    .stats
    .expect("ContainerStats without stats");
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref());
    let memory = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref());
    assert!(
        cpu.is_some_and(|v| v.value > 0) && memory.is_some_and(|v| v.value > 0),
        "ContainerStats: cpu {cpu:?}, memory working set {memory:?}: {stats:?}"
    );

    // The container's log, in the CRI format, with each stream's line.
    let log_path = log_dir.join("app/0.log");
    let expected = [("stdout", GREETING), ("stderr", "to stderr")];
    let has_lines = |want: &[(&str, &str)]| {
        let lines = parse_log(&fs::read_to_string(&log_path).unwrap_or_default());
        want.iter().all(|(stream, content)| {
            lines
                .iter()
                .any(|l| l.stream == *stream && l.tag == "F" && l.content == *content)
        })
    };
    assert!(
        wait_for(|| has_lines(&expected), TIMEOUT),
        "{} lacks {expected:?}:\n{}",
        log_path.display(),
        fs::read_to_string(&log_path).unwrap_or_default()
    );

    // StopContainer: SIGTERM reaches the shell, whose trap ends it with 7 and logs a line.
    call!(
        cri,
        runtime.stop_container(cri::StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 60,
        })
    );
    let (status, _) = cri.container_status(&container_id);
    assert_eq!(
        (status.state, status.exit_code),
        (cri::ContainerState::ContainerExited as i32, 7),
        "{status:?}"
    );
    assert!(
        wait_for(|| has_lines(&[("stdout", "got TERM")]), TIMEOUT),
        "the log lacks the trap's line:\n{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );

    // StopPodSandbox, RemoveContainer, RemovePodSandbox.
    call!(
        cri,
        runtime.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
    );
    let (sandbox, _) = cri.sandbox_status(&pod_id);
    assert_eq!(
        sandbox.state,
        cri::PodSandboxState::SandboxNotready as i32,
        "{sandbox:?}"
    );
    call!(
        cri,
        runtime.remove_container(cri::RemoveContainerRequest {
            container_id: container_id.clone(),
        })
    );
    call!(
        cri,
        runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
    );
    let pods = call!(
        cri,
        runtime.list_pod_sandbox(cri::ListPodSandboxRequest::default())
    );
    let containers = call!(
        cri,
        runtime.list_containers(cri::ListContainersRequest::default())
    );
    assert!(
        pods.items.is_empty() && containers.containers.is_empty(),
        "left listed: {pods:?} {containers:?}"
    );

    // Nothing left: the pod's processes, the shims, the runtime's state, the shims' sockets...
    for (what, pid) in [("pause", pause_pid), ("container", container_pid)] {
        assert!(
            wait_for(|| is_gone(pid), TIMEOUT),
            "the {what} process {pid} is still there"
        );
    }
    assert!(
        wait_for(|| containerd.processes_left().is_empty(), TIMEOUT),
        "shims still running: {:?}",
        containerd.processes_left()
    );
    assert_eq!(containerd.runtime_containers(), Vec::<String>::new());
    for socket in [pause_socket, container_socket].into_iter().flatten() {
        assert!(
            !is_socket(&socket),
            "the shim's socket {} is still there",
            socket.display()
        );
    }
    // ... then containerd itself, every mount of the pod (rootfs overlays, /dev/shm, ...), its cgroups and units.
    drop(cri);
    containerd.stop();
    assert_eq!(processes_mentioning(&dir), Vec::new());
    assert_eq!(mounts_under(&dir), Vec::<PathBuf>::new());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let stray: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(&pod_id) || l.contains(&container_id))
        .collect();
    assert!(stray.is_empty(), "mounts of the pod left: {stray:?}");
    assert_eq!(
        cgroups_below(&tag),
        Vec::<PathBuf>::new(),
        "cgroups left below the pod's parent {cgroup_parent}"
    );
    if let Some(slice) = &slice {
        let units = units_left(&[&pod_id, &container_id], slice);
        // The parent slice itself may still be loaded (its owner, kubelet here, stops it): only scopes count.
        let scopes: Vec<&String> = units
            .iter()
            .filter(|u| !u.starts_with(slice.as_str()))
            .collect();
        assert!(scopes.is_empty(), "systemd units left: {scopes:?}");
    }
    eprintln!(
        "cri: pod lifecycle with {} passed in {:.1} s",
        runtime.display(),
        started.elapsed().as_secs_f64()
    );
}
