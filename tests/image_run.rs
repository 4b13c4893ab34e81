//! Containers from images: each gets its own writable layer over the read-only image
//! (overlayfs, or a copy), a spec merged from the image's config and the caller's overrides,
//! and a private bundle removed on delete; through the library and `husk run --image`.

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use husk::{ExitStatus, ImageRunOptions, Stdio, StdioConfig, WritableLayer};
use husk_testing::images::{rootfs_tarball, state_left, tree_snapshot, FileStamp};
use husk_testing::{default_rootfs, mounts_under, require_root, unique_id, OutputExt, TempDir};
use serde_json::json;

const HUSK: &str = env!("CARGO_BIN_EXE_husk");

/// A state root and an image store private to one test, with the test rootfs installed as
/// `busybox`.
struct Env {
    scratch: TempDir,
    rt: husk::Runtime,
    image: husk::image::Image,
}

impl Env {
    fn new() -> Env {
        require_root();
        let scratch = TempDir::new("husk-image-run");
        let rt = husk::Runtime::builder()
            .state_root(scratch.path().join("state"))
            .store(scratch.path().join("store"))
            .init_binary(HUSK)
            .build();
        let image = rt
            .install_image(
                husk::image::ImageSource::RootfsTar(rootfs_tarball()),
                "busybox",
                &Default::default(),
            )
            .expect("install the test rootfs");
        Env { scratch, rt, image }
    }

    fn state(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    fn store(&self) -> PathBuf {
        self.scratch.path().join("store")
    }

    /// The image's directories, and their files' sizes and mtimes.
    fn image_snapshot(&self) -> BTreeMap<PathBuf, FileStamp> {
        let mut dirs = self.image.layers.clone();
        dirs.push(self.image.rootfs.clone());
        tree_snapshot(&dirs)
    }

    /// `husk --root <state> --store <store> args...`.
    fn husk(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(HUSK);
        cmd.arg("--root").arg(self.state());
        cmd.arg("--store").arg(self.store());
        cmd.args(args);
        husk_testing::run_with_timeout(&mut cmd, Duration::from_secs(60))
    }

    /// Nothing of any container is left: no state, private bundle or mount.
    fn assert_nothing_left(&self) {
        let mounts = mounts_under(&self.state());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let left = state_left(&self.state());
        assert!(left.is_empty(), "state or private bundles left: {left:?}");
    }
}

/// Runs a container from `image` to its end; its status and output (stdout then stderr).
fn run(
    rt: &husk::Runtime,
    image: &str,
    opts: &ImageRunOptions,
) -> husk::Result<(ExitStatus, String)> {
    let create = husk::CreateOptions {
        stdio: StdioConfig {
            stdin: Stdio::Null,
            stdout: Stdio::Piped,
            stderr: Stdio::Piped,
        },
        ..Default::default()
    };
    let mut c = rt
        .create_from_image(&unique_id("img"), image, opts, &create)?
        .guard();
    let pipes = std::mem::take(c.pipes());
    c.start()?;
    let status = c.wait()?;
    let mut out = String::new();
    for mut pipe in [pipes.stdout, pipes.stderr].into_iter().flatten() {
        pipe.read_to_string(&mut out).unwrap();
    }
    c.delete()?;
    Ok((status, out))
}

fn sh(script: &str) -> ImageRunOptions {
    ImageRunOptions::default().args(["sh", "-c", script])
}

fn writes_stay_in_the_containers_own_layer(layer: WritableLayer) {
    let env = Env::new();
    let before = env.image_snapshot();
    let (status, out) = run(
        &env.rt,
        "busybox",
        &sh("echo mine > /etc/written && rm /etc/group && cat /etc/written; ls /etc")
            .writable_layer(layer),
    )
    .expect("first container");
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    assert!(out.starts_with("mine\n"), "{out}");
    assert!(!out.contains("group"), "{out}");
    // Another container of the same image sees the image as installed.
    let (status, out) = run(
        &env.rt,
        "busybox",
        &sh("ls /etc/written 2>&1; cat /etc/group | head -1").writable_layer(layer),
    )
    .expect("second container");
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    assert!(out.contains("No such file"), "{out}");
    assert!(out.contains("root:x:0:"), "{out}");
    assert!(before == env.image_snapshot(), "the image's files changed");
    env.assert_nothing_left();
}

#[test]
fn writes_stay_in_the_containers_own_overlay_layer() {
    writes_stay_in_the_containers_own_layer(WritableLayer::Overlay);
}

#[test]
fn writes_stay_in_the_containers_own_copy_layer() {
    writes_stay_in_the_containers_own_layer(WritableLayer::Copy);
}

/// An OCI image layout with the test rootfs as its one layer and `config` as the image's
/// config (Entrypoint, Cmd...), its digests made by `sha256sum`.
fn oci_layout(dir: &Path, config: serde_json::Value) -> PathBuf {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let sha = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", out.stderr_str());
        out.stdout_str()[..64].to_string()
    };
    let tarball = rootfs_tarball();
    let layer = sha(&format!("sha256sum {}", tarball.display()));
    let diff_id = sha(&format!("gunzip -c {} | sha256sum", tarball.display()));
    std::fs::copy(&tarball, blobs.join(&layer)).unwrap();
    let put = |value: serde_json::Value| {
        let bytes = serde_json::to_vec(&value).unwrap();
        let tmp = blobs.join("tmp");
        std::fs::write(&tmp, &bytes).unwrap();
        let digest = sha(&format!("sha256sum {}", tmp.display()));
        std::fs::rename(&tmp, blobs.join(&digest)).unwrap();
        (digest, bytes.len())
    };
    let (config_digest, config_size) = put(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]}
    }));
    let layer_size = std::fs::metadata(&tarball).unwrap().len();
    let (manifest_digest, manifest_size) = put(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_digest}"), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": format!("sha256:{layer}"), "size": layer_size}]
    }));
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": format!("sha256:{manifest_digest}"), "size": manifest_size}]
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

#[test]
fn env_cwd_user_and_command_come_from_the_image_config() {
    let env = Env::new();
    let layout = oci_layout(
        env.scratch.path(),
        json!({
            "Entrypoint": ["sh", "-c"],
            "Cmd": ["echo \"$FROM_IMAGE $PATH\"; pwd; id -u; id -g; id -G"],
            "Env": ["PATH=/bin:/usr/bin", "FROM_IMAGE=yes"],
            "WorkingDir": "/etc",
            "User": "user"
        }),
    );
    env.rt
        .install_image(
            husk::image::ImageSource::OciLayout(layout),
            "configured:1",
            &Default::default(),
        )
        .expect("install the layout");
    let (status, out) = run(&env.rt, "configured:1", &ImageRunOptions::default()).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    // "user" is 1000:1000 in the image's /etc/passwd.
    assert_eq!(out, "yes /bin:/usr/bin\n/etc\n1000\n1000\n1000\n");

    // The caller's overrides win: Cmd (the Entrypoint stays), env, cwd, user by name with a
    // group by name.
    let opts = ImageRunOptions::default()
        .args(["echo \"$FROM_IMAGE\"; pwd; id -u; id -g"])
        .env("FROM_IMAGE", "overridden")
        .cwd("/tmp")
        .user("user:extra2");
    let (status, out) = run(&env.rt, "configured:1", &opts).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    assert_eq!(out, "overridden\n/tmp\n1000\n1002\n");

    // A numeric user the image does not know keeps its ids.
    let (_, out) = run(
        &env.rt,
        "configured:1",
        &ImageRunOptions::default()
            .args(["id -u; id -g"])
            .user("4321:8765"),
    )
    .unwrap();
    assert_eq!(out, "4321\n8765\n");

    // A name the image does not know is an error naming it, and leaves nothing.
    let err = run(
        &env.rt,
        "configured:1",
        &ImageRunOptions::default().user("mallory"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("mallory"), "{err}");
    env.assert_nothing_left();
}

/// The image's /etc/passwd is a symlink to a host file: looking a user name up must not follow
/// it out of the container's root. (Without RESOLVE_IN_ROOT, "escapee" resolves to the host
/// file's uid 4242.)
#[test]
fn a_user_name_is_never_looked_up_through_a_symlink_out_of_the_image() {
    let env = Env::new();
    let host_file = env.scratch.path().join("host-passwd");
    std::fs::write(&host_file, "escapee:x:4242:4242::/:/bin/sh\n").unwrap();
    let rootfs = env.scratch.path().join("hostile-rootfs");
    let out = Command::new("cp")
        .arg("-a")
        .arg(default_rootfs())
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out.stderr_str());
    std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(&host_file, rootfs.join("etc/passwd")).unwrap();
    let opts = ImageRunOptions::default()
        .args(["id", "-u"])
        .user("escapee");
    let err =
        match env
            .rt
            .create_from_rootfs(&unique_id("hostile"), &rootfs, &opts, &Default::default())
        {
            Ok(c) => {
                let uid = c.spec().unwrap().process().as_ref().unwrap().user().uid();
                c.delete(true).unwrap();
                panic!("the host's passwd was used: uid {uid}");
            }
            Err(e) => e,
        };
    assert!(err.to_string().contains("escapee"), "{err}");

    // A FIFO in place of /etc/group must not hang the lookup: refused at once.
    std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    std::fs::copy(
        default_rootfs().join("etc/passwd"),
        rootfs.join("etc/passwd"),
    )
    .unwrap();
    std::fs::remove_file(rootfs.join("etc/group")).unwrap();
    nix::unistd::mkfifo(&rootfs.join("etc/group"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = match env.rt.create_from_rootfs(
        &unique_id("hostile"),
        &rootfs,
        &opts.clone().user("user"),
        &Default::default(),
    ) {
        Ok(c) => {
            c.delete(true).unwrap();
            panic!("a FIFO was read as /etc/group");
        }
        Err(e) => e,
    };
    assert!(err.to_string().contains("not a regular file"), "{err}");
    env.assert_nothing_left();
}

#[test]
fn delete_removes_the_bundle_the_overlay_mount_and_the_upper_dir() {
    let env = Env::new();
    let id = unique_id("img");
    let c = env
        .rt
        .create_from_image(&id, "busybox", &sh("sleep 60"), &Default::default())
        .expect("create");
    let bundle = c.bundle().to_path_buf();
    assert!(
        bundle.starts_with(env.state().join("@bundles")),
        "{bundle:?}"
    );
    assert!(bundle.join("config.json").is_file());
    assert!(bundle.join("upper").is_dir());
    let mounts = mounts_under(&bundle);
    assert_eq!(mounts, vec![bundle.join("rootfs")]);
    // The image is in use: removing it is refused, and a forced removal is not asked for here.
    let err = env.rt.remove_image("busybox", false).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    drop(c);

    // `husk delete` (another process) undoes it all.
    let out = env.husk(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(!bundle.exists(), "{} left", bundle.display());
    env.assert_nothing_left();
    // Released: the image can go now.
    env.rt
        .remove_image("busybox", false)
        .expect("remove after delete");
}

#[test]
fn husk_run_image_makes_and_removes_its_bundle() {
    let env = Env::new();
    let before = env.image_snapshot();
    let id = unique_id("cli");
    let out = env.husk(&[
        "run",
        "--image",
        "busybox",
        "-e",
        "GREETING=hi",
        "--user",
        "user",
        &id,
        "--",
        "sh",
        "-c",
        "echo $GREETING; id -u; touch /made-here; exit 7",
    ]);
    assert_eq!(out.exit_code(), 7, "{}", out.describe());
    assert_eq!(out.stdout_str(), "hi\n1000\n");
    env.assert_nothing_left();
    assert!(before == env.image_snapshot(), "the image's files changed");

    // create --image, then `image rm` is refused until the container is deleted.
    let out = env.husk(&["create", "--image", "busybox", &id, "--", "true"]);
    assert!(out.status.success(), "{}", out.describe());
    let out = env.husk(&["image", "rm", "busybox"]);
    assert_ne!(
        out.exit_code(),
        0,
        "image rm of an image in use: {}",
        out.describe()
    );
    assert!(out.stderr_str().contains("in use"), "{}", out.describe());
    let out = env.husk(&["start", &id]);
    assert!(out.status.success(), "{}", out.describe());
    let out = env.husk(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", out.describe());
    env.assert_nothing_left();
    let out = env.husk(&["image", "rm", "busybox"]);
    assert!(out.status.success(), "{}", out.describe());

    // Bad input: one line naming what is wrong, nothing left.
    let out = env.husk(&["run", "--image", "no-such-image", &id]);
    assert_ne!(out.exit_code(), 0);
    assert!(
        out.stderr_str().contains("no-such-image"),
        "{}",
        out.describe()
    );
    assert_eq!(
        out.stderr_str().trim().lines().count(),
        1,
        "{}",
        out.describe()
    );
    env.assert_nothing_left();
}

#[test]
fn a_failed_create_leaves_nothing_and_releases_the_image() {
    let env = Env::new();
    let err = run(
        &env.rt,
        "busybox",
        &ImageRunOptions::default().args(["/no/such/program"]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/no/such/program"), "{err}");
    env.assert_nothing_left();
    env.rt
        .remove_image("busybox", false)
        .expect("the failed create still holds the image");
}

#[test]
fn a_container_from_an_in_memory_spec_has_a_private_bundle() {
    let env = Env::new();
    let mut spec = husk::default_spec();
    let mut root = spec.root().clone().unwrap();
    root.set_path(std::fs::canonicalize(default_rootfs()).unwrap());
    root.set_readonly(Some(true));
    spec.set_root(Some(root));
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec!["true".into()]));
    spec.set_process(Some(process));
    let id = unique_id("spec");
    let mut c = env
        .rt
        .create_from_spec(&id, &spec, &Default::default())
        .expect("create");
    let bundle = c.bundle().to_path_buf();
    assert!(bundle.join("config.json").is_file());
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete(false).unwrap();
    assert!(!bundle.exists());
    env.assert_nothing_left();

    // A relative root has nothing to be relative to.
    let mut relative = spec.clone();
    let mut root = relative.root().clone().unwrap();
    root.set_path(PathBuf::from("rootfs"));
    relative.set_root(Some(root));
    let err = env
        .rt
        .create_from_spec(&id, &relative, &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("root.path"), "{err}");
    env.assert_nothing_left();
}

#[test]
fn files_stream_in_and_out_through_the_containers_own_view() {
    let env = Env::new();
    // A host directory the container must not be able to make copy_in write to: the
    // container points /drop at its path (a symlink it controls).
    let sentinel = env.scratch.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    // The same path exists inside the container (made by it), so the symlink resolves there.
    let script = format!(
        "mkdir -p {0}; ln -s {0} /drop; mkdir -p /srv; echo from-inside > /srv/made; \
         echo ready; while [ ! -e /srv/in/hello ]; do sleep 0.05; done; cat /srv/in/hello; \
         ls {0}; sleep 60",
        sentinel.display()
    );
    let create = husk::CreateOptions {
        stdio: StdioConfig {
            stdout: Stdio::Piped,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = env
        .rt
        .create_from_image(
            &unique_id("copy"),
            "busybox",
            &sh(&script).label("role", "copier"),
            &create,
        )
        .unwrap()
        .guard();
    let mut stdout = c.pipes().stdout.take().unwrap();
    c.start().unwrap();
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");

    let tarball = |name: &str, body: &[u8]| {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        // Readable by all: the container's root has no CAP_DAC_OVERRIDE.
        h.set_mode(0o644);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_000_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
        b.into_inner().unwrap()
    };
    // Through the planted symlink: lands in the container's tree, not in the host sentinel.
    c.copy_in(Path::new("/drop"), &tarball("planted", b"x")[..])
        .unwrap();
    assert_eq!(
        std::fs::read_dir(&sentinel).unwrap().count(),
        0,
        "copy_in followed the container's symlink to the host"
    );
    c.copy_in(
        Path::new("/srv/in"),
        &tarball("hello", b"streamed in\n")[..],
    )
    .unwrap();
    let mut line = [0u8; 20];
    stdout.read_exact(&mut line).unwrap();
    // The planted file is in the container's own directory of that name.
    assert_eq!(&line, b"streamed in\nplanted\n");

    let mut out = Vec::new();
    c.copy_out(Path::new("/srv"), &mut out).unwrap();
    let mut archive = tar::Archive::new(&out[..]);
    let mut found = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let (uid, mode) = (
            entry.header().uid().unwrap(),
            entry.header().mode().unwrap(),
        );
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        found.insert(path, (body, uid, mode & 0o777));
    }
    assert_eq!(
        found.get(Path::new("srv/made")),
        Some(&("from-inside\n".to_string(), 0, 0o644)),
        "{found:?}"
    );
    assert_eq!(
        found.get(Path::new("srv/in/hello")),
        Some(&("streamed in\n".to_string(), 1000, 0o644)),
        "{found:?}"
    );

    // Labels, and listing by label.
    assert_eq!(c.label("role"), Some("copier"));
    let listed = env.rt.list_labeled("role", "copier").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id(), c.id());
    assert!(env.rt.list_labeled("role", "other").unwrap().is_empty());

    // stop: the shell is pid 1 of its namespace without a TERM handler, so SIGTERM does not
    // end it; after the grace, SIGKILL does.
    let started = std::time::Instant::now();
    let status = c.stop(Duration::from_millis(500)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500), "{status}");
    assert_eq!(status, ExitStatus::Signaled(9));
    c.delete().unwrap();
    env.assert_nothing_left();
}

#[test]
fn stop_returns_at_once_when_the_init_heeds_sigterm() {
    let env = Env::new();
    let c = env
        .rt
        .create_from_image(
            &unique_id("stop"),
            "busybox",
            &sh("trap 'exit 5' TERM; while :; do sleep 0.05; done"),
            &Default::default(),
        )
        .unwrap();
    let mut c = c.guard();
    c.start().unwrap();
    // The trap must be set before the signal: wait until the shell runs its loop.
    assert!(husk_testing::wait_for(
        || c.pids().map(|p| p.len() > 1).unwrap_or(false),
        Duration::from_secs(10)
    ));
    let status = c.stop(Duration::from_secs(60)).unwrap();
    assert_eq!(status, ExitStatus::Exited(5));
    c.delete().unwrap();
    env.assert_nothing_left();
}

#[test]
fn an_image_is_found_by_its_digest_and_a_unique_prefix_of_it() {
    let env = Env::new();
    let digest = env.image.digest.clone();
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let by_name = env.husk(&["image", "inspect", "busybox"]);
    assert!(by_name.status.success(), "{}", by_name.describe());
    let short = format!("sha256:{}", &hex[..12]);
    for name in [&digest, &short, &hex[..12], &hex[..30]] {
        let out = env.husk(&["image", "inspect", name]);
        assert!(out.status.success(), "inspect {name}: {}", out.describe());
        assert_eq!(out.stdout_str(), by_name.stdout_str(), "inspect {name}");
        let image = env.rt.image(name).expect("the library finds it too");
        assert_eq!(
            (image.name.as_str(), image.digest.as_str()),
            ("docker.io/library/busybox:latest", digest.as_str())
        );
    }

    // husk run --image by a short digest: a container of that image.
    let id = unique_id("digest");
    let out = env.husk(&[
        "run",
        "--image",
        &hex[..12],
        &id,
        "--",
        "sh",
        "-c",
        "echo run by digest; readlink /bin/sh",
    ]);
    assert_eq!(out.exit_code(), 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "run by digest\nbusybox\n");
    env.assert_nothing_left();

    // Too short, and a prefix no image has: one-line errors naming what was given.
    let too_short = format!("sha256:{}", &hex[..11]);
    let out = env.husk(&["image", "inspect", &too_short]);
    assert_ne!(out.exit_code(), 0);
    assert!(
        out.stderr_str().contains(&too_short) && out.stderr_str().contains("12 to 64"),
        "{}",
        out.describe()
    );
    let flipped = if hex.starts_with('0') { '1' } else { '0' };
    let nothing = format!("{flipped}{}", &hex[1..12]);
    let out = env.husk(&["image", "inspect", &nothing]);
    assert_ne!(out.exit_code(), 0);
    assert_eq!(
        out.stderr_str().trim().lines().count(),
        1,
        "{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("image not found"),
        "{}",
        out.describe()
    );

    // A second name for the same image: rm by digest would remove both, so only with force.
    let second = env
        .rt
        .install_image(
            husk::image::ImageSource::RootfsTar(rootfs_tarball()),
            "second",
            &Default::default(),
        )
        .expect("install a second name");
    assert_eq!(second.digest, digest, "the same rootfs tar, the same image");
    let out = env.husk(&["image", "rm", &short]);
    assert_ne!(out.exit_code(), 0);
    assert!(
        out.stderr_str().contains("ambiguous") && out.stderr_str().contains("second"),
        "{}",
        out.describe()
    );
    assert_eq!(
        env.rt.images().unwrap().len(),
        2,
        "a refused rm removed a name"
    );
    let out = env.husk(&["image", "rm", "--force", &short]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(env.rt.images().unwrap().is_empty());
}
