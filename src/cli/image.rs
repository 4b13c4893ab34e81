//! `husk image ...`: the local image store (install, list, inspect, rm, prune).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use husk::image::{ImageSource, ImageStore, InstallOptions};

use super::CmdResult;

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Install an image from an OCI layout (directory or tar), a docker-save archive, or a root
    /// filesystem tar (.tar, .tar.gz, .tar.zst).
    Install(InstallArgs),
    /// List installed images (name, digest, size, created).
    #[command(alias = "ls")]
    List(ListArgs),
    /// Print an image's config as JSON.
    Inspect(InspectArgs),
    /// Remove images (refused while a container uses one, unless --force).
    Rm(RmArgs),
    /// Remove layers and configs no image needs, and leftovers of killed installs.
    Prune,
    /// Pull an image from a registry and install it.
    #[cfg(feature = "registry")]
    Pull(PullArgs),
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The image's name (default: the one the archive gives; a rootfs tar needs one).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the image installed under the name.
    #[arg(long)]
    pub update: bool,
    /// What PATH is.
    #[arg(long, default_value = "auto", value_parser = ["oci", "docker", "rootfs", "auto"])]
    pub format: String,
    /// The archive or directory.
    pub path: PathBuf,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The image's name, or its digest (sha256:HEX, or a unique prefix of 12+ hex digits).
    pub name: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Remove even if containers use it (its files go when the last one is deleted).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The images' names, or digests (sha256:HEX, or a unique prefix of 12+ hex digits: every
    /// name of that image, several only with --force).
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(store: &Path, a: ImageArgs) -> CmdResult {
    let store = ImageStore::open(store)?;
    match a.command {
        ImageCommand::Install(a) => install(&store, a),
        ImageCommand::List(a) => list(&store, a),
        ImageCommand::Inspect(a) => {
            let image = store.image(&a.name)?;
            println!("{}", serde_json::to_string_pretty(&image.config)?);
            Ok(0)
        }
        ImageCommand::Rm(a) => {
            for name in &a.names {
                store.remove(name, a.force)?;
            }
            Ok(0)
        }
        #[cfg(feature = "registry")]
        ImageCommand::Pull(a) => pull(&store, a),
        ImageCommand::Prune => {
            let r = store.prune()?;
            println!(
                "removed {} layers, {} configs, {} flattened trees, {} leftovers of killed installs",
                r.layers.len(),
                r.blobs,
                r.rootfs,
                r.temp
            );
            Ok(0)
        }
    }
}

#[cfg(feature = "registry")]
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The name to install under (default: the reference, normalised).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the image installed under the name.
    #[arg(long)]
    pub update: bool,
    /// Registry user (default: the docker config.json's entry for the registry, if any).
    #[arg(long)]
    pub username: Option<String>,
    /// Registry password (visible in the process list: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Plain HTTP to the registry (without it: HTTPS, and plain HTTP only for a loopback host
    /// whose port does not speak TLS).
    #[arg(long)]
    pub insecure_http: bool,
    /// Also trust the CA certificates in this PEM file (repeatable); the host's store
    /// (/etc/ssl/certs) is always trusted.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Read the registry's CA certificates from DIR/<host[:port]>/*.crt (repeatable; replaces
    /// the defaults /etc/docker/certs.d and /etc/containers/certs.d).
    #[arg(long = "certs-dir", value_name = "DIR")]
    pub certs_dirs: Vec<PathBuf>,
    /// The image reference: [registry[:port]/]repository[:tag][@digest].
    pub reference: String,
}

#[cfg(feature = "registry")]
fn pull(store: &ImageStore, a: PullArgs) -> CmdResult {
    let mut opts = husk::image::PullOptions::new()
        .update(a.update)
        .insecure_http(a.insecure_http);
    if let Some(name) = a.name {
        opts = opts.name(name);
    }
    for file in a.ca_files {
        opts = opts.ca_file(file);
    }
    if !a.certs_dirs.is_empty() {
        opts = opts.certs_dirs(a.certs_dirs);
    }
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => Some(p),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Some(line.trim_end_matches(['\r', '\n']).to_string())
        }
        (None, false) => None,
    };
    match (a.username, password) {
        (Some(user), Some(password)) => opts = opts.basic_auth(user, password),
        (None, None) => {}
        (Some(_), None) => return Err("--username needs --password or --password-stdin".into()),
        (None, Some(_)) => return Err("a password needs --username".into()),
    }
    let image = store.pull(&a.reference, &opts)?;
    println!("{} {}", image.name, image.digest);
    Ok(0)
}

fn install(store: &ImageStore, a: InstallArgs) -> CmdResult {
    let source = match a.format.as_str() {
        "oci" => ImageSource::OciLayout(a.path),
        "docker" => ImageSource::DockerArchive(a.path),
        "rootfs" => ImageSource::RootfsTar(a.path),
        _ => ImageSource::Auto(a.path),
    };
    let image = store.install(
        source,
        a.name.as_deref().unwrap_or(""),
        &InstallOptions::update(a.update),
    )?;
    println!("{} {}", image.name, image.digest);
    Ok(0)
}

fn list(store: &ImageStore, a: ListArgs) -> CmdResult {
    let images = store.images()?;
    if a.quiet {
        for i in &images {
            println!("{}", i.name);
        }
        return Ok(0);
    }
    if a.format == "json" {
        let list: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "digest": i.digest,
                    "config_digest": i.config_digest,
                    "size": i.size,
                    "created": i.created,
                    "rootfs": i.rootfs,
                    "layers": i.layers,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&list)?);
        return Ok(0);
    }
    let width = images
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:width$}  {:71}  {:>10}  CREATED",
        "NAME", "DIGEST", "SIZE"
    );
    for i in &images {
        println!(
            "{:width$}  {:71}  {:>10}  {}",
            i.name,
            i.digest,
            human_size(i.size),
            i.created.as_deref().unwrap_or("-")
        );
    }
    Ok(0)
}

/// Bytes in the largest unit that keeps a number of at least 1 (`1.2MB`), as docker prints.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
