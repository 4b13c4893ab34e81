//! The image store (issue 12), through the CLI (`husk --store DIR image ...`) and the library:
//! images built in the test from the test root filesystem (an OCI layout of three layers with
//! gzip, plain and zstd compression, whiteouts, an opaque directory, owners, hard links, a
//! device; a `docker save` archive; a rootfs tar), installed, listed, inspected, run as
//! containers (from the flattened tree, and from an overlay of the layer trees), updated while
//! in use, removed and pruned; hostile archives refused with nothing written outside the store;
//! concurrent installs; a killed install.

#![allow(clippy::disallowed_methods)] // test fixtures in the tests' own temp dirs

mod image_support;

use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use husk::image::{ImageStore, InstallOptions};
use husk_testing::{
    mounts_under, run_with_timeout, Bundle, OutputExt, Runtime, TempDir, DEFAULT_TIMEOUT,
};
use image_support::*;
use serde_json::{json, Value};

fn runtime() -> Runtime {
    Runtime::from_env(env!("CARGO_BIN_EXE_husk"))
}

/// `husk --store <store> <args>`.
fn husk<I, S>(rt: &Runtime, store: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = rt.bare_cmd(["--store".as_ref(), store.as_os_str()]);
    cmd.args(args);
    run_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
}

fn husk_ok<I, S>(rt: &Runtime, store: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = husk(rt, store, args);
    assert!(out.status.success(), "husk failed\n{}", out.describe());
    out.stdout_str()
}

/// Fails, with a one-line error on stderr containing `needle`.
fn husk_fails<I, S>(rt: &Runtime, store: &Path, args: I, needle: &str) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = husk(rt, store, args);
    assert!(!out.status.success(), "husk succeeded\n{}", out.describe());
    let err = out.stderr_str();
    assert!(
        err.contains(needle),
        "error does not mention {needle:?}\n{}",
        out.describe()
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "not one line\n{}",
        out.describe()
    );
    err
}

/// A fresh store directory (and a scratch area beside it) for one test.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: TempDir::new("husk-images"),
        }
    }
    fn store(&self) -> PathBuf {
        self.dir.join("store")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// The three-layer test image: busybox (gzip), the feature layer (plain), the whiteout layer
/// (zstd).
fn feature_image() -> (Vec<Layer>, Vec<u8>) {
    let (l2, l3) = feature_layers();
    let layers = vec![
        Layer::gzip(busybox_tar()),
        Layer::plain(l2),
        Layer::zstd(l3),
    ];
    let config = config(&layers, &["GREETING=hello from the image"]);
    (layers, config)
}

/// Runs `script` in a container whose root is `root`, used in place (no copy) and read-only:
/// the store's trees must not be written.
fn run_in(rt: &Runtime, root: &Path, script: &str) -> String {
    let bundle = Bundle::new(rt)
        .set("/root/path", json!(root))
        .set("/root/readonly", json!(true))
        .args(["sh", "-c", script]);
    rt.run_bundle_ok(&bundle)
}

fn check_features(out: &str, how: &str) {
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, FEATURE_EXPECTED, "{how}: the container saw\n{out}");
}

/// An overlay of `layers` (bottom first) with a fresh upper dir, unmounted on drop.
struct Overlay {
    merged: PathBuf,
    _dir: TempDir,
}

impl Overlay {
    fn mount(layers: &[PathBuf]) -> Overlay {
        let dir = TempDir::new("husk-images-overlay");
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let out = run_with_timeout(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(dir.join("merged")),
            DEFAULT_TIMEOUT,
        );
        assert!(out.status.success(), "mount overlay\n{}", out.describe());
        Overlay {
            merged: dir.join("merged"),
            _dir: dir,
        }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.merged).status();
    }
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// Everything below `dir` (relative paths), sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn oci_layout_installs_lists_inspects_and_runs_from_rootfs_and_overlay() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    let (layers, config) = feature_image();
    let layout = s.path("layout");
    let manifest = oci_layout(&layout, "test/features:1", &layers, &config);

    let out = husk_ok(
        &rt,
        &store,
        [OsStr::new("image"), "install".as_ref(), layout.as_os_str()],
    );
    assert_eq!(
        out.trim(),
        format!("docker.io/test/features:1 {manifest}"),
        "install prints the name (from the layout's annotation) and the manifest digest"
    );

    // list: table and JSON.
    let table = husk_ok(&rt, &store, ["image", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("docker.io/test/features:1 "))
        .unwrap_or_else(|| panic!("not listed:\n{table}"));
    assert!(
        row.contains(&manifest) && row.contains("2024-01-02T03:04:05Z"),
        "{row}"
    );
    let list: Value =
        serde_json::from_str(&husk_ok(&rt, &store, ["image", "list", "--format", "json"])).unwrap();
    let entry = &list.as_array().unwrap()[0];
    assert_eq!(entry["name"], "docker.io/test/features:1");
    assert_eq!(entry["digest"], manifest.as_str());
    assert!(entry["size"].as_u64().unwrap() > 1_000_000, "{entry}");
    // inspect: the image config.
    let inspect: Value = serde_json::from_str(&husk_ok(
        &rt,
        &store,
        ["image", "inspect", "test/features:1"],
    ))
    .unwrap();
    assert_eq!(inspect["config"]["WorkingDir"], "/data");
    assert!(inspect["config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&json!("GREETING=hello from the image")));

    let image = ImageStore::open(&store)
        .unwrap()
        .image("test/features:1")
        .unwrap();
    assert_eq!(image.layers.len(), 3);
    // Whiteouts and the opaque directory are stored overlayfs's way in the layer trees.
    let wh = std::fs::symlink_metadata(image.layers[2].join("data/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout: {wh:?}"
    );
    assert_eq!(
        lgetxattr(&image.layers[2].join("data/opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        lgetxattr(&image.layers[1].join("data/xattr"), "user.husk").as_deref(),
        Some(&b"hello"[..]),
        "PAX xattr kept"
    );
    let link = image.layers[1].join("data/link");
    assert_eq!(
        lgetxattr(&link, "trusted.husk").as_deref(),
        Some(&b"on the link"[..]),
        "a symlink's trusted.* xattr kept"
    );
    assert_eq!(
        lgetxattr(&link, "user.husk"),
        None,
        "user.* left out on a symlink"
    );
    assert!(image.rootfs.starts_with(store.join("rootfs")), "{image:?}");
    assert!(!image.rootfs.join("data/gone").exists());

    // A container on the flattened tree, and one on an overlay of the layer trees.
    check_features(
        &run_in(&rt, &image.rootfs, FEATURE_CHECKS),
        "flattened rootfs",
    );
    let overlay = Overlay::mount(&image.layers);
    check_features(
        &run_in(&rt, &overlay.merged, FEATURE_CHECKS),
        "overlay of the layers",
    );
    drop(overlay);

    husk_ok(&rt, &store, ["image", "rm", "test/features:1"]);
    assert!(husk_ok(&rt, &store, ["image", "list", "-q"])
        .trim()
        .is_empty());
    assert!(
        !image.rootfs.exists(),
        "the flattened tree goes with the image"
    );
    let pruned = husk_ok(&rt, &store, ["image", "prune"]);
    assert!(pruned.contains("removed 3 layers, 1 configs"), "{pruned}");
    assert!(tree(&store.join("layers")).is_empty());
    assert!(tree(&store.join("tmp")).is_empty());
}

#[test]
fn oci_tar_docker_archive_and_rootfs_tar_install_and_run() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    let (l2, l3) = feature_layers();

    // An OCI layout, as a tar.
    let (layers, config) = feature_image();
    let layout = s.path("layout");
    oci_layout(&layout, "test/oci-tar:1", &layers, &config);
    let layout_tar = s.path("layout.tar");
    std::fs::write(&layout_tar, tar_dir(&layout)).unwrap();
    husk_ok(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--format".as_ref(),
            "oci".as_ref(),
            layout_tar.as_os_str(),
        ],
    );

    // A docker save archive (auto-detected), tagged by RepoTags.
    let archive = s.path("saved.tar");
    std::fs::write(
        &archive,
        docker_archive("test/saved:2", &[busybox_tar(), l2, l3], &[]),
    )
    .unwrap();
    let out = husk_ok(
        &rt,
        &store,
        [OsStr::new("image"), "install".as_ref(), archive.as_os_str()],
    );
    assert!(out.starts_with("docker.io/test/saved:2 sha256:"), "{out}");

    // A rootfs tar.gz needs a name.
    let gz = busybox_tar_gz();
    husk_fails(
        &rt,
        &store,
        [OsStr::new("image"), "install".as_ref(), gz.as_os_str()],
        "give a name",
    );
    husk_ok(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--name".as_ref(),
            "plain".as_ref(),
            gz.as_os_str(),
        ],
    );

    let names = husk_ok(&rt, &store, ["image", "list", "-q"]);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(
        names,
        [
            "docker.io/library/plain:latest",
            "docker.io/test/oci-tar:1",
            "docker.io/test/saved:2"
        ]
    );
    let st = ImageStore::open(&store).unwrap();
    for name in ["test/oci-tar:1", "test/saved:2"] {
        let image = st.image(name).unwrap();
        check_features(&run_in(&rt, &image.rootfs, FEATURE_CHECKS), name);
    }
    // The busybox layer is one tree shared by the three images.
    let plain = st.image("plain").unwrap();
    assert_eq!(plain.layers.len(), 1);
    assert_eq!(
        plain.rootfs, plain.layers[0],
        "one layer without whiteouts: no copy"
    );
    assert_eq!(
        st.image("test/oci-tar:1").unwrap().layers[0],
        plain.layers[0]
    );
    assert_eq!(st.image("test/saved:2").unwrap().layers[0], plain.layers[0]);
    let out = run_in(&rt, &plain.rootfs, "echo hi from $(readlink /bin/sh)");
    assert_eq!(out.trim(), "hi from busybox");
    assert_eq!(
        tree(&store.join("layers"))
            .iter()
            .filter(|p| !p.contains('/'))
            .count(),
        3
    );

    for name in ["plain", "test/oci-tar:1", "test/saved:2"] {
        husk_ok(&rt, &store, ["image", "rm", name]);
    }
    husk_ok(&rt, &store, ["image", "prune"]);
    assert!(tree(&store.join("layers")).is_empty());
    assert!(tree(&store.join("rootfs")).is_empty());
    assert!(tree(&store.join("blobs/sha256")).is_empty());
}

#[test]
fn reinstall_extracts_no_layer_again() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    let (layers, config) = feature_image();
    let layout = s.path("layout");
    oci_layout(&layout, "test/again:1", &layers, &config);
    husk_ok(
        &rt,
        &store,
        [OsStr::new("image"), "install".as_ref(), layout.as_os_str()],
    );
    let st = ImageStore::open(&store).unwrap();
    let before = st.image("test/again:1").unwrap();
    // Identity of each layer tree: the directory's inode and ctime, and a file's inode.
    let ident = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.ino(), m.ctime(), m.ctime_nsec())
    };
    let layer_ids: Vec<_> = before.layers.iter().map(|l| ident(l)).collect();
    // (A file's ctime changes when a flattened tree links it again: its inode tells.)
    let file_ino = |image: &husk::image::Image| {
        std::fs::symlink_metadata(image.layers[1].join("data/keep"))
            .unwrap()
            .ino()
    };
    let file_id = file_ino(&before);

    // Reinstall over the same name (update), and after rm (layers stay until prune).
    husk_ok(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--update".as_ref(),
            layout.as_os_str(),
        ],
    );
    husk_ok(&rt, &store, ["image", "rm", "test/again:1"]);
    husk_ok(
        &rt,
        &store,
        [OsStr::new("image"), "install".as_ref(), layout.as_os_str()],
    );
    // A second image on the same layers, under another name.
    husk_ok(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--name".as_ref(),
            "other".as_ref(),
            layout.as_os_str(),
        ],
    );
    let after = st.image("test/again:1").unwrap();
    assert_eq!(after.layers, before.layers);
    let after_ids: Vec<_> = after.layers.iter().map(|l| ident(l)).collect();
    assert_eq!(after_ids, layer_ids, "a layer tree was made again");
    assert_eq!(file_ino(&after), file_id, "a file was extracted again");
    assert_eq!(st.image("other").unwrap().layers, before.layers);
}

#[test]
fn update_is_atomic_and_the_old_version_stays_while_a_container_uses_it() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    let (layers, config) = feature_image();
    oci_layout(&s.path("v1"), "test/app:1", &layers, &config);
    // v2: another config (so another digest) on the same layers.
    let config2 = image_support::config(&layers, &["VERSION=2"]);
    oci_layout(&s.path("v2"), "test/app:1", &layers, &config2);

    let st = ImageStore::open(&store).unwrap();
    let v1 = st
        .install(
            husk::image::ImageSource::OciLayout(s.path("v1")),
            "test/app:1",
            &InstallOptions::default(),
        )
        .unwrap();
    let held = st.acquire("test/app:1", "container-1").unwrap();
    assert_eq!(held.digest, v1.digest);

    // Installing over the name without update fails; rm is refused while in use.
    let err = husk_fails(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            s.path("v2").as_os_str(),
        ],
        "already installed",
    );
    assert!(err.contains("docker.io/test/app:1"), "{err}");
    let err = husk_fails(&rt, &store, ["image", "rm", "test/app:1"], "in use");
    assert!(err.contains("container-1"), "{err}");

    // The update swaps the name; v1's tree stays for its user.
    husk_ok(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--update".as_ref(),
            s.path("v2").as_os_str(),
        ],
    );
    let v2 = st.image("test/app:1").unwrap();
    assert_ne!(v2.digest, v1.digest);
    assert!(v2
        .config
        .config()
        .as_ref()
        .unwrap()
        .env()
        .as_ref()
        .unwrap()
        .contains(&"VERSION=2".to_string()));
    assert!(v1.rootfs.join("bin/sh").exists(), "v1 removed while in use");
    check_features(
        &run_in(&rt, &v1.rootfs, FEATURE_CHECKS),
        "old version in use",
    );
    // Releasing the last user removes the old version.
    st.release("container-1").unwrap();
    assert!(!v1.rootfs.exists(), "v1 stays after its last user left");
    assert!(v2.rootfs.join("bin/sh").exists());

    // rm --force while in use: the name goes now, the files with the last user.
    st.acquire("test/app:1", "container-2").unwrap();
    husk_ok(&rt, &store, ["image", "rm", "--force", "test/app:1"]);
    husk_fails(
        &rt,
        &store,
        ["image", "inspect", "test/app:1"],
        "image not found: docker.io/test/app:1",
    );
    assert!(v2.rootfs.join("bin/sh").exists());
    st.release("container-2").unwrap();
    assert!(!v2.rootfs.exists());
}

#[test]
fn two_concurrent_installs_of_one_name_one_wins() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    let (layers, config) = feature_image();
    oci_layout(&s.path("a"), "test/race:1", &layers, &config);
    let gz = busybox_tar_gz();
    for round in 0..3 {
        let name = format!("race{round}");
        let mut a = rt.bare_cmd([
            OsStr::new("--store"),
            store.as_os_str(),
            "image".as_ref(),
            "install".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            s.path("a").as_os_str(),
        ]);
        let mut b = rt.bare_cmd([
            OsStr::new("--store"),
            store.as_os_str(),
            "image".as_ref(),
            "install".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            "--format".as_ref(),
            "rootfs".as_ref(),
            gz.as_os_str(),
        ]);
        let (a, b) = (
            husk_testing::Spawned::start(&mut a),
            husk_testing::Spawned::start(&mut b),
        );
        let (a, b) = (a.wait(DEFAULT_TIMEOUT), b.wait(DEFAULT_TIMEOUT));
        let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(
            wins,
            1,
            "round {round}: exactly one install wins\n{}\n{}",
            a.describe(),
            b.describe()
        );
        let loser = if a.status.success() { &b } else { &a };
        assert!(
            loser.stderr_str().contains("already installed"),
            "{}",
            loser.describe()
        );
        let winner_digest = if a.status.success() {
            a.stdout_str()
        } else {
            b.stdout_str()
        };
        let image = ImageStore::open(&store).unwrap().image(&name).unwrap();
        assert!(
            winner_digest.contains(&image.digest),
            "the name points to the winner's image"
        );
        assert!(image.rootfs.join("bin/sh").exists());
    }
    assert!(
        tree(&store.join("tmp")).is_empty(),
        "{:?}",
        tree(&store.join("tmp"))
    );
}

#[test]
fn a_killed_install_leaves_nothing_and_the_next_command_cleans_up() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    // A layer big enough that the install is still extracting when it is killed.
    let mut entries = vec![Entry::dir("big")];
    let blob = vec![7u8; 64 << 10];
    for i in 0..3000 {
        entries.push(Entry::raw_file(format!("big/f{i}").as_bytes(), &blob));
    }
    let big = s.path("big.tar");
    std::fs::write(&big, tar(&entries)).unwrap();
    ImageStore::open(&store).unwrap();

    let mut cmd = rt.bare_cmd([
        OsStr::new("--store"),
        store.as_os_str(),
        "image".as_ref(),
        "install".as_ref(),
        "--name".as_ref(),
        "big".as_ref(),
        big.as_os_str(),
    ]);
    let child = husk_testing::Spawned::start(&mut cmd);
    let tmp = store.join("tmp");
    let started = husk_testing::wait_for(
        || {
            tree(&tmp)
                .iter()
                .any(|p| p.starts_with("layer-") && p.contains("/fs/big/f"))
        },
        Duration::from_secs(60),
    );
    child.signal(libc::SIGKILL);
    let out = child.wait(DEFAULT_TIMEOUT);
    assert!(
        started,
        "the install never started extracting\n{}",
        out.describe()
    );
    assert_eq!(out.exit_code(), 128 + libc::SIGKILL, "{}", out.describe());
    assert!(
        !tree(&tmp).is_empty(),
        "the killed install left its temporary directory"
    );
    assert!(
        tree(&store.join("layers")).is_empty(),
        "a partial layer was placed"
    );

    // The next command cleans up; nothing is listed.
    assert!(husk_ok(&rt, &store, ["image", "list", "-q"])
        .trim()
        .is_empty());
    assert!(tree(&tmp).is_empty(), "left: {:?}", tree(&tmp));
    // A temporary directory in use (locked) is not touched by a cleaner.
    let inuse = tmp.join("layer-in-use");
    std::fs::create_dir(&inuse).unwrap();
    let f = std::fs::File::open(&inuse).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we hold.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    husk_ok(&rt, &store, ["image", "list"]);
    assert!(inuse.exists(), "a locked temporary directory was removed");
    drop(f);
    husk_ok(&rt, &store, ["image", "list"]);
    assert!(!inuse.exists());
}

/// One hostile archive: installing it must fail naming `needles`, with nothing appearing
/// outside the store (the sentinel directory unchanged, its file with one link and its
/// content) nor staying inside it. Returns what went wrong (so that one run shows every case
/// that fails, e.g. with a protection removed), and resets the store and sentinel.
fn refuse(
    rt: &Runtime,
    s: &Scratch,
    what: &str,
    source: &Path,
    format: &str,
    needles: &[&str],
) -> Vec<String> {
    let store = s.store();
    let sentinel = s.path("sentinel");
    let before = tree(&sentinel);
    let mut problems = Vec::new();
    let out = husk(
        rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--name".as_ref(),
            "hostile".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            source.as_os_str(),
        ],
    );
    let err = out.stderr_str();
    eprintln!("{what} ({format}): {}", err.trim());
    if out.status.success() {
        problems.push(format!("{what} ({format}): installed"));
    } else {
        for n in needles {
            if !err.contains(n) {
                problems.push(format!(
                    "{what} ({format}): the error does not say {n:?}: {err}"
                ));
            }
        }
        if err.trim().lines().count() != 1 {
            problems.push(format!("{what} ({format}): not a one-line error: {err}"));
        }
    }
    let after = tree(&sentinel);
    if after != before {
        problems.push(format!(
            "{what} ({format}): written outside the store: {after:?}"
        ));
    }
    let target = sentinel.join("target");
    if std::fs::metadata(&target).map(|m| m.nlink()).unwrap_or(0) != 1 {
        problems.push(format!(
            "{what} ({format}): a hard link to a file outside the store was made"
        ));
    }
    if std::fs::read(&target).unwrap_or_default() != b"host file\n" {
        problems.push(format!("{what} ({format}): the host file was changed"));
    }
    for p in [s.path("pwned"), PathBuf::from("/pwned")] {
        if p.exists() {
            problems.push(format!("{what} ({format}): {} exists", p.display()));
        }
    }
    for dir in ["layers", "tmp", "rootfs"] {
        let left = tree(&store.join(dir));
        if !left.is_empty() {
            problems.push(format!("{what} ({format}): left in {dir}: {left:?}"));
        }
    }
    // Reset for the next case.
    let _ = husk(rt, &store, ["image", "rm", "--force", "hostile"]);
    let _ = husk(rt, &store, ["image", "prune"]);
    for name in tree(&sentinel) {
        if name != "target" {
            let p = sentinel.join(name);
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
    let _ = std::fs::remove_file(&target);
    std::fs::write(&target, "host file\n").unwrap();
    let _ = std::fs::remove_file(s.path("pwned"));
    problems
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside_the_store() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    ImageStore::open(&store).unwrap();
    // A host directory next to the store, and a file in it.
    let sentinel = s.path("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    std::fs::write(sentinel.join("target"), "host file\n").unwrap();
    let abs = sentinel.display().to_string();
    // From a layer tree (<store>/tmp/layer-X/fs), this many `..` reach the scratch dir.
    let up = "../../../../sentinel";

    // (what, the archive, the entry the error must name, and why).
    let cases: Vec<(&str, Vec<Entry>, String, &str)> = vec![
        (
            "dot-dot",
            vec![Entry::file(&format!("{up}/pwned"), "x")],
            format!("{up}/pwned"),
            "`..`",
        ),
        (
            "dot-dot inside",
            vec![Entry::dir("a"), Entry::file("a/../../pwned", "x")],
            "a/../../pwned".into(),
            "`..`",
        ),
        (
            "absolute path",
            vec![Entry::file(&format!("{abs}/pwned"), "x")],
            format!("{abs}/pwned"),
            "absolute path",
        ),
        (
            "symlink escape (absolute)",
            vec![Entry::symlink("esc", &abs), Entry::file("esc/pwned", "x")],
            "esc/pwned".into(),
            "its parent esc is a symlink",
        ),
        (
            "symlink escape (relative)",
            vec![Entry::symlink("esc", up), Entry::file("esc/pwned", "x")],
            "esc/pwned".into(),
            "its parent esc is a symlink",
        ),
        (
            "symlinked parent, deeper",
            vec![
                Entry::dir("dir"),
                Entry::symlink("dir/up", &format!("../{up}")),
                Entry::file("dir/up/newdir/pwned", "x"),
            ],
            "dir/up/newdir/pwned".into(),
            "its parent dir/up is a symlink",
        ),
        (
            "symlinked parent inside the archive",
            vec![
                Entry::dir("real"),
                Entry::symlink("alias", "real"),
                Entry::file("alias/file", "x"),
            ],
            "alias/file".into(),
            "its parent alias is a symlink",
        ),
        (
            "symlink then hard link through it",
            vec![
                Entry::symlink("esc", &abs),
                Entry::hard_link("hl", "esc/target"),
            ],
            "hl".into(),
            "hard link target: its parent esc is a symlink",
        ),
        (
            "hard link escape (dot-dot)",
            vec![Entry::hard_link("hl", &format!("{up}/target"))],
            "hl".into(),
            "hard link target: `..`",
        ),
        (
            "hard link escape (absolute)",
            vec![Entry::hard_link("hl", &format!("{abs}/target"))],
            "hl".into(),
            "hard link target: absolute path",
        ),
        (
            "whiteout of dot-dot",
            vec![Entry::file(".wh...", "")],
            ".wh...".into(),
            "whiteout of no name",
        ),
    ];
    let mut problems = Vec::new();
    for (what, entries, needle, reason) in cases {
        let path = s.path("hostile.tar");
        std::fs::write(&path, tar(&entries)).unwrap();
        let needle = format!("tar entry \\\"{needle}\\\"");
        let needles = [needle.as_str(), reason];
        problems.extend(refuse(&rt, &s, what, &path, "rootfs", &needles));
        // The same inside an OCI layout (a layer of a layout tar).
        let layout = s.path("hostile-layout");
        let _ = std::fs::remove_dir_all(&layout);
        let layers = vec![Layer::gzip(tar(&entries))];
        let cfg = config(&layers, &[]);
        oci_layout(&layout, "test/hostile:1", &layers, &cfg);
        problems.extend(refuse(&rt, &s, what, &layout, "oci", &needles));
    }

    // The archive an image comes in is checked the same way.
    let archive = s.path("hostile-archive.tar");
    std::fs::write(
        &archive,
        tar(&[
            Entry::file("oci-layout", "{}"),
            Entry::file("index.json", "{}"),
            Entry::file("../../../sentinel/pwned", "x"),
        ]),
    )
    .unwrap();
    // (It is unpacked in <store>/tmp/archive-X: three `..` reach the scratch dir.)
    problems.extend(refuse(
        &rt,
        &s,
        "layout tar with dot-dot",
        &archive,
        "oci",
        &["tar entry \\\"../../../sentinel/pwned\\\"", "`..`"],
    ));

    // Wrong digests: a layer blob replaced, and a config blob replaced.
    let (layers, cfg) = feature_image();
    let layout = s.path("tampered");
    oci_layout(&layout, "test/tampered:1", &layers, &cfg);
    let victim = layers[1].digest();
    let blob = layout.join("blobs/sha256").join(&victim["sha256:".len()..]);
    // A file's content changed (the tar stays well-formed: only the digest can tell).
    let mut bytes = std::fs::read(&blob).unwrap();
    let pos = bytes
        .windows(5)
        .position(|w| w == b"keep\n")
        .expect("data/keep in the layer");
    bytes[pos..pos + 4].copy_from_slice(b"KEEP");
    std::fs::write(&blob, bytes).unwrap();
    problems.extend(refuse(
        &rt,
        &s,
        "tampered layer",
        &layout,
        "oci",
        &[&format!("blob {victim}"), "content has digest"],
    ));
    let cfg_digest = digest(&cfg);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(&cfg_digest["sha256:".len()..]),
        b"{}",
    )
    .unwrap();
    problems.extend(refuse(
        &rt,
        &s,
        "tampered config",
        &layout,
        "oci",
        &[&format!("blob {cfg_digest}"), "content has digest"],
    ));
    // A layer whose content does not match the config's diff id (docker archive: no descriptor).
    let mut saved = docker_archive("test/lie:1", &[busybox_tar()], &[]);
    let needle = digest(&busybox_tar());
    let pos = saved
        .windows(10)
        .position(|w| w == b"root:x:0:0")
        .expect("etc/passwd in the archive");
    saved[pos..pos + 4].copy_from_slice(b"ROOT");
    let path = s.path("lie.tar");
    std::fs::write(&path, saved).unwrap();
    problems.extend(refuse(
        &rt,
        &s,
        "layer not matching its diff id",
        &path,
        "docker",
        &[
            &format!("blob {needle}"),
            &format!("the image config says {needle}"),
        ],
    ));
    assert_eq!(mounts_under(s.dir.path()), Vec::<PathBuf>::new());
    assert!(
        problems.is_empty(),
        "{} hostile archives not refused cleanly:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn bad_names_and_missing_images_are_one_line_errors() {
    let rt = runtime();
    let s = Scratch::new();
    let store = s.store();
    husk_fails(
        &rt,
        &store,
        ["image", "inspect", "BusyBox"],
        "must be lowercase",
    );
    husk_fails(
        &rt,
        &store,
        ["image", "inspect", "busybox@sha256:abc"],
        "busybox@sha256:abc",
    );
    husk_fails(
        &rt,
        &store,
        ["image", "rm", "nosuch"],
        "image not found: docker.io/library/nosuch:latest",
    );
    husk_fails(
        &rt,
        &store,
        ["image", "install", "--name", "x", "/nonexistent/image.tar"],
        "/nonexistent/image.tar",
    );
    let gz = busybox_tar_gz();
    husk_fails(
        &rt,
        &store,
        [
            OsStr::new("image"),
            "install".as_ref(),
            "--name".as_ref(),
            "Bad Name".as_ref(),
            gz.as_os_str(),
        ],
        "invalid image reference \\\"Bad Name\\\"",
    );
    // HUSK_STORE picks the store like --store.
    let out = run_with_timeout(
        rt.bare_cmd([
            OsStr::new("image"),
            "install".as_ref(),
            "--name".as_ref(),
            "viaenv".as_ref(),
            gz.as_os_str(),
        ])
        .env("HUSK_STORE", &store),
        DEFAULT_TIMEOUT,
    );
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        husk_ok(&rt, &store, ["image", "list", "-q"]).trim(),
        "docker.io/library/viaenv:latest"
    );
}
