//! OCI image tarballs for `ctr images import`: an image layout (`oci-layout`, `index.json`, `blobs/sha256/`) packed
//! in one tar, with one uncompressed layer, a config and a manifest, named through the `io.containerd.image.name`
//! annotation that ctr reads. Built here rather than pulled, so the CRI test needs no registry.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What goes into an image's only layer.
pub enum Layer<'a> {
    /// Every file below this directory (symlinks kept as symlinks, owners and modes as they are).
    Tree(&'a Path),
    /// One executable file, placed at the given path (relative, e.g. `"pause"`) with mode 0755.
    File { source: &'a Path, at: &'a str },
}

/// Writes an image named `name` (e.g. `localhost/husk-pause:cri-test`) to the tarball `out`. `config` is the image
/// config's `config` object (Entrypoint, Cmd, Env...). Panics on any I/O error, naming the file.
pub fn write_image_tar(out: &Path, name: &str, layer: Layer<'_>, config: Value) {
    let layer = layer_tar(layer);
    let layer_digest = sha256(&layer);
    let config_blob = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        // Uncompressed layer: its diff id is the digest of the blob itself.
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config_blob),
            "size": config_blob.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let tag = name.rsplit_once(':').map_or("latest", |(_, tag)| tag);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .unwrap();

    let file = std::fs::File::create(out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let mut tar = tar::Builder::new(file);
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append_bytes(&mut tar, "index.json", &index);
    for blob in [&layer, &config_blob, &manifest] {
        let digest = sha256(blob);
        let hex = digest.trim_start_matches("sha256:");
        append_bytes(&mut tar, &format!("blobs/sha256/{hex}"), blob);
    }
    tar.into_inner()
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn layer_tar(layer: Layer<'_>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    match layer {
        Layer::Tree(dir) => {
            tar.follow_symlinks(false);
            tar.append_dir_all(".", dir)
                .unwrap_or_else(|e| panic!("cannot pack {}: {e}", dir.display()));
        }
        Layer::File { source, at } => {
            let bytes = std::fs::read(source)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, at, bytes.as_slice())
                .expect("append to an in-memory tar");
        }
    }
    tar.into_inner().expect("finish an in-memory tar")
}

fn append_bytes(tar: &mut tar::Builder<std::fs::File>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .unwrap_or_else(|e| panic!("cannot add {path} to the image tarball: {e}"));
}

/// `sha256:<hex>` of `bytes`, as OCI descriptors write digests.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
