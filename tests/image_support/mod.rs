//! Builders for the image tests: layer tars (including hostile ones, whose names the `tar`
//! crate's checked setters would refuse), OCI image layouts and `docker save` archives, all
//! made in the test from the test root filesystem.

#![allow(dead_code)] // each test binary uses a part
#![allow(clippy::disallowed_methods)] // test fixtures in the tests' own temp dirs

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub use husk_testing::images::rootfs_tarball as busybox_tar_gz;

/// The uncompressed busybox tar.
pub fn busybox_tar() -> Vec<u8> {
    let gz = std::fs::read(busybox_tar_gz()).expect("read busybox.tar.gz");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .expect("gunzip busybox.tar.gz");
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// What a tar entry is.
#[derive(Clone, Debug)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    Char(u32, u32),
    Fifo,
}

/// One entry, with raw name bytes (may be hostile: `..`, absolute).
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn new(name: &[u8], kind: Kind, mode: u32) -> Entry {
        Entry {
            name: name.to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            xattrs: Vec::new(),
        }
    }
    pub fn dir(name: &str) -> Entry {
        Entry::new(name.as_bytes(), Kind::Dir, 0o755)
    }
    pub fn file(name: &str, data: &str) -> Entry {
        Entry::new(name.as_bytes(), Kind::File(data.as_bytes().to_vec()), 0o644)
    }
    pub fn raw_file(name: &[u8], data: &[u8]) -> Entry {
        Entry::new(name, Kind::File(data.to_vec()), 0o644)
    }
    pub fn symlink(name: &str, target: &str) -> Entry {
        Entry::new(
            name.as_bytes(),
            Kind::Symlink(target.as_bytes().to_vec()),
            0o777,
        )
    }
    pub fn hard_link(name: &str, target: &str) -> Entry {
        Entry::new(
            name.as_bytes(),
            Kind::HardLink(target.as_bytes().to_vec()),
            0o644,
        )
    }
    pub fn char_dev(name: &str, major: u32, minor: u32) -> Entry {
        Entry::new(name.as_bytes(), Kind::Char(major, minor), 0o666)
    }
    pub fn fifo(name: &str) -> Entry {
        Entry::new(name.as_bytes(), Kind::Fifo, 0o600)
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }
    pub fn xattr(mut self, name: &str, value: &[u8]) -> Entry {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }
}

/// A tar of `entries`, written header by header so that any name can be given.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.xattrs.is_empty() {
            let keys: Vec<(String, Vec<u8>)> = e
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
                .collect();
            b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        let (etype, data, link): (tar::EntryType, &[u8], &[u8]) = match &e.kind {
            Kind::Dir => (tar::EntryType::Directory, b"", b""),
            Kind::File(d) => (tar::EntryType::Regular, d, b""),
            Kind::Symlink(t) => (tar::EntryType::Symlink, b"", t),
            Kind::HardLink(t) => (tar::EntryType::Link, b"", t),
            Kind::Char(..) => (tar::EntryType::Char, b"", b""),
            Kind::Fifo => (tar::EntryType::Fifo, b"", b""),
        };
        h.set_entry_type(etype);
        h.set_size(data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        if let Kind::Char(major, minor) = e.kind {
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
        }
        {
            let u = h.as_ustar_mut().unwrap();
            assert!(
                e.name.len() < 100 && link.len() < 100,
                "names up to 99 bytes"
            );
            u.name = [0; 100];
            u.name[..e.name.len()].copy_from_slice(&e.name);
            u.linkname = [0; 100];
            u.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A layer blob and the digests that describe it.
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub diff_id: String,
}

impl Layer {
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: digest(&tar),
            blob: tar,
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
    pub fn gzip(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: digest(&tar),
            blob: gzip(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
    pub fn zstd(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: digest(&tar),
            blob: zstd(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
    pub fn digest(&self) -> String {
        digest(&self.blob)
    }
}

/// The image config for `layers`.
pub fn config(layers: &[Layer], env: &[&str]) -> Vec<u8> {
    let mut env: Vec<String> = env.iter().map(|s| s.to_string()).collect();
    env.insert(0, "PATH=/usr/sbin:/usr/bin:/sbin:/bin".into());
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Env": env, "Cmd": ["/bin/sh"], "WorkingDir": "/data"},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let path = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    d
}

/// Writes an OCI image layout of one image into `dir`, named `name` by annotation; returns
/// the manifest's digest.
pub fn oci_layout(dir: &Path, name: &str, layers: &[Layer], config: &[u8]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config_digest = write_blob(dir, config);
    let descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let d = write_blob(dir, &l.blob);
            json!({"mediaType": l.media_type, "digest": d, "size": l.blob.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let manifest_digest = write_blob(dir, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "1"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    manifest_digest
}

/// A tar of the directory `dir` (its entries relative to it).
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// A `docker save` archive of one image tagged `tag`: the config as `<hex>.json`, the first
/// layer the old way (`<id>/layer.tar`), the others the new way (`blobs/sha256/<hex>`). Layers
/// are uncompressed, as docker writes them.
pub fn docker_archive(tag: &str, layer_tars: &[Vec<u8>], env: &[&str]) -> Vec<u8> {
    let layers: Vec<Layer> = layer_tars.iter().cloned().map(Layer::plain).collect();
    let config = config(&layers, env);
    let config_name = format!("{}.json", &digest(&config)["sha256:".len()..]);
    let mut files: Vec<(String, Vec<u8>)> = vec![(config_name.clone(), config)];
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = if i == 0 {
            format!("{}/layer.tar", "0".repeat(63) + "1")
        } else {
            format!("blobs/sha256/{}", &l.diff_id["sha256:".len()..])
        };
        files.push((name.clone(), l.blob.clone()));
        names.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// The second and third layers of the test image, over busybox: whiteouts (of a file of the
/// same image and of busybox's `bin/vi`), an opaque directory, owners, modes, a setuid file,
/// an xattr, hard links (within the layer and to a lower layer), a symlink, a device and a fifo.
pub fn feature_layers() -> (Vec<u8>, Vec<u8>) {
    let l2 = tar(&[
        Entry::dir("data"),
        Entry::file("data/keep", "keep\n"),
        Entry::file("data/gone", "gone\n"),
        Entry::dir("data/opq"),
        Entry::file("data/opq/old1", "old\n"),
        Entry::file("data/opq/old2", "old\n"),
        Entry::file("data/owned", "owned\n")
            .owner(1234, 5678)
            .mode(0o640)
            .mtime(1_000_000_000),
        Entry::file("data/setuid", "#!/bin/sh\n").mode(0o4755),
        Entry::file("data/xattr", "x\n").xattr("user.husk", b"hello"),
        Entry::hard_link("data/hard", "data/keep"),
        // The kernel takes trusted.* and security.* xattrs on a symlink, not user.* ones.
        Entry::symlink("data/link", "/data/keep")
            .xattr("trusted.husk", b"on the link")
            .xattr("user.husk", b"refused on a link"),
        Entry::char_dev("data/null", 1, 3),
        Entry::fifo("data/fifo"),
    ]);
    let l3 = tar(&[
        Entry::dir("bin"),
        Entry::file("bin/.wh.vi", ""),
        Entry::dir("data"),
        Entry::file("data/.wh.gone", ""),
        Entry::dir("data/opq"),
        Entry::file("data/opq/.wh..wh..opq", ""),
        Entry::file("data/opq/new", "new\n"),
        Entry::hard_link("data/cross", "data/owned"),
    ]);
    (l2, l3)
}

/// A shell script that checks, inside a container, what [`feature_layers`] made; it prints
/// one line per check and `ALL-OK` at the end.
pub const FEATURE_CHECKS: &str = r#"
set -e
echo "keep=$(cat /data/keep)"
[ ! -e /data/gone ] && echo gone-ok
echo "opq=$(ls -A /data/opq | tr '\n' ' ')"
echo "owned=$(stat -c '%u:%g:%a:%Y' /data/owned)"
echo "setuid=$(stat -c '%a' /data/setuid)"
[ "$(stat -c %i /data/hard)" = "$(stat -c %i /data/keep)" ] && echo hard-ok
[ "$(stat -c %i /data/cross)" = "$(stat -c %i /data/owned)" ] && echo cross-ok
echo "link=$(readlink /data/link)"
echo "null=$(stat -c '%F %t:%T' /data/null)"
[ -p /data/fifo ] && echo fifo-ok
[ ! -e /bin/vi ] && [ ! -L /bin/vi ] && echo vi-gone
[ -x /bin/sh ] && echo sh-ok
echo ALL-OK
"#;

/// What [`FEATURE_CHECKS`] prints when everything is right.
pub const FEATURE_EXPECTED: &[&str] = &[
    "keep=keep",
    "gone-ok",
    "opq=new",
    "owned=1234:5678:640:1000000000",
    "setuid=4755",
    "hard-ok",
    "cross-ok",
    "link=/data/keep",
    "null=character special file 1:3",
    "fifo-ok",
    "vi-gone",
    "sh-ok",
    "ALL-OK",
];
