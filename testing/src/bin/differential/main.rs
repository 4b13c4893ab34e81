//! `differential`: runs generated configs and command sequences against husk and a reference runtime (runc) and
//! reports every difference that is not listed as deliberate.
//!
//! ```text
//! differential [--cases N] [--first K] [--seed S] [--husk BIN] [--reference BIN] [--rootfs DIR] [--known FILE]
//!              [--out DIR] [--replay CASE_SEED [--features I,J,..]] [--no-minimize] [--verbose] [--show]
//! ```
//!
//! Each case is drawn from its own seed (derived from `--seed` and its index), so a failing case is replayed alone
//! with `--replay`. A case is run against each runtime in turn in the same scratch directory with the same container
//! id, each runtime with its own `--root`; see `catalogue.rs` for what is drawn and `normalise.rs` for what is
//! compared. Known, deliberate differences are read from `known.txt` beside this file (`--known` to use another).
//! Exit status: 0 when no unlisted divergence was found, 1 otherwise, 2 on bad usage, 130 when interrupted (after
//! cleaning up).

// A test tool: its host writes go to its own scratch directory and cgroups it cleans up.
#![allow(clippy::disallowed_methods)]

mod catalogue;
mod normalise;
mod rng;
mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use catalogue::{Case, Step};
use normalise::Observations;
use runner::{Env, Runtime};

static STOP: AtomicBool = AtomicBool::new(false);

/// Failing cases shrunk per run (each shrink re-runs the case once per feature); the others are written whole.
const MAX_MINIMIZED: usize = 10;

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

struct Options {
    cases: u64,
    /// Index of the first case: `--first 500 --cases 500` runs cases 500..1000 of the seed's sequence (one shard
    /// of a long run; shards of one seed can run side by side).
    first: u64,
    seed: u64,
    husk: PathBuf,
    reference: PathBuf,
    rootfs: PathBuf,
    known: PathBuf,
    out: PathBuf,
    replay: Option<u64>,
    features: Option<Vec<usize>>,
    minimize: bool,
    verbose: bool,
    /// Print every observation of both runtimes (with `--replay`, to see what a case does).
    show: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn parse_number(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("not a number: {text:?}"))
}

fn parse_options() -> Result<Options, String> {
    let env_path = |name: &str, default: PathBuf| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default)
    };
    let mut o = Options {
        cases: 200,
        first: 0,
        seed: 1,
        husk: env_path("HUSK_BINARY", workspace().join("target/release/husk")),
        reference: env_path("HUSK_REFERENCE_RUNTIME", "/usr/sbin/runc".into()),
        rootfs: env_path("HUSK_ROOTFS", workspace().join("rootfs/out/busybox")),
        known: workspace().join("testing/src/bin/differential/known.txt"),
        out: std::env::temp_dir().join("husk-differential"),
        replay: None,
        features: None,
        minimize: true,
        verbose: false,
        show: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--cases" | "-n" => o.cases = parse_number(&value()?)?,
            "--seed" => o.seed = parse_number(&value()?)?,
            "--first" => o.first = parse_number(&value()?)?,
            "--husk" => o.husk = value()?.into(),
            "--reference" => o.reference = value()?.into(),
            "--rootfs" => o.rootfs = value()?.into(),
            "--known" => o.known = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--replay" => o.replay = Some(parse_number(&value()?)?),
            "--features" => {
                let list = value()?;
                let parsed: Result<Vec<usize>, String> = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| parse_number(s).map(|n| n as usize))
                    .collect();
                o.features = Some(parsed?);
            }
            "--no-minimize" => o.minimize = false,
            "--verbose" | "-v" => o.verbose = true,
            "--show" => o.show = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for (what, path) in [("husk", &o.husk), ("reference runtime", &o.reference)] {
        if !path.is_file() {
            return Err(format!("{what} binary {} does not exist", path.display()));
        }
    }
    if !o.rootfs.join("usr/bin/probe").is_file() {
        return Err(format!(
            "rootfs {} has no usr/bin/probe: run `make rootfs` or set HUSK_ROOTFS",
            o.rootfs.display()
        ));
    }
    Ok(o)
}

const USAGE: &str =
    "usage: differential [--cases N] [--first K] [--seed S] [--husk BIN] [--reference BIN] [--rootfs DIR] \
[--known FILE] [--out DIR] [--replay CASE_SEED [--features I,J,..]] [--no-minimize] [--verbose] [--show]";

/// One entry of the known-differences list: a case tag pattern, an observation key pattern, optionally a pattern
/// of husk's value (`KEY-GLOB = VALUE-GLOB`), and the reason.
struct Known {
    tag: String,
    key: String,
    husk_value: Option<String>,
    reason: String,
}

impl Known {
    fn matches(&self, tags: &[String], key: &str, husk: &str) -> bool {
        // `A&B`: the case has a tag matching A and one matching B.
        self.tag
            .split('&')
            .all(|want| want == "*" || tags.iter().any(|t| glob(want, t)))
            && glob(&self.key, key)
            && self.husk_value.as_ref().is_none_or(|v| glob(v, husk))
    }
}

/// Reads lines `TAG-GLOB[&TAG-GLOB..] | KEY-GLOB [= HUSK-VALUE-GLOB] | REASON` (`#` starts a comment line).
/// In a file with a ```` ```differential-known ```` block (e.g. a Markdown document), only that block is read.
fn read_known(path: &Path) -> Result<Vec<Known>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read known differences {}: {e}", path.display()))?;
    let mut known = Vec::new();
    let mut inside = !text.contains("```differential-known");
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```differential-known") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if trimmed.starts_with("```") {
            inside = false;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.splitn(3, " | ").map(str::trim).collect();
        if fields.len() != 3 || fields[2].is_empty() {
            return Err(format!(
                "{}:{}: expected `TAG-GLOB | KEY-GLOB [= HUSK-VALUE-GLOB] | REASON`",
                path.display(),
                n + 1
            ));
        }
        let (key, husk_value) = match fields[1].split_once(" = ") {
            Some((key, value)) => (key.trim(), Some(value.trim().to_string())),
            None => (fields[1], None),
        };
        known.push(Known {
            tag: fields[0].into(),
            key: key.into(),
            husk_value,
            reason: fields[2].into(),
        });
    }
    Ok(known)
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(pos) => rest = &rest[pos + middle.len()..],
            None => return false,
        }
    }
    true
}

struct Divergence {
    key: String,
    husk: String,
    reference: String,
    /// The reason, when the difference is listed.
    listed: Option<String>,
}

fn compare(
    husk: &Observations,
    reference: &Observations,
    tags: &[String],
    known: &[Known],
) -> Vec<Divergence> {
    let absent = String::from("<absent>");
    let mut keys: Vec<&String> = husk.keys().chain(reference.keys()).collect();
    keys.sort();
    keys.dedup();
    // A report only one side produced (the process did not run on the other) is one divergence, not fifty.
    let missing_reports: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_suffix(".report"))
        .map(|prefix| format!("{prefix}."))
        .collect();
    let mut divergences: Vec<Divergence> = keys
        .into_iter()
        .filter(|key| !key.starts_with('~'))
        .filter(|key| {
            key.ends_with(".report") || !missing_reports.iter().any(|p| key.starts_with(p.as_str()))
        })
        .filter_map(|key| {
            let h = husk.get(key).unwrap_or(&absent);
            let r = reference.get(key).unwrap_or(&absent);
            (h != r).then(|| Divergence {
                key: key.clone(),
                husk: h.clone(),
                reference: r.clone(),
                listed: known
                    .iter()
                    .find(|k| k.matches(tags, key, h))
                    .map(|k| k.reason.clone()),
            })
        })
        .collect();
    // Once the runtimes disagreed on a command's outcome for a listed reason (one created the container, the other
    // refused), everything after it follows from that.
    // The cause: the earliest step whose exit code differs (or whose process report is missing on one side); in one
    // step the exit code comes first (`00.main.report` sorts before `00.run.exit`, but follows from it).
    let step_of = |key: &str| key.split('.').next().unwrap_or_default().to_string();
    let cause = divergences
        .iter()
        .enumerate()
        .filter(|(_, d)| d.key.ends_with(".exit") || d.key.ends_with(".report"))
        .min_by_key(|(_, d)| (step_of(&d.key), !d.key.ends_with(".exit")))
        .map(|(i, _)| i);
    if let Some(first) = cause {
        if let Some(reason) = divergences[first].listed.clone() {
            let cause = divergences[first].key.clone();
            // The cause's own step (its error class sorts before its exit code) and everything after it.
            let step = cause.split('.').next().unwrap_or_default().to_string();
            for d in divergences.iter_mut() {
                if d.listed.is_none() && d.key.as_str() >= step.as_str() {
                    d.listed = Some(format!("follows from {cause} ({reason})"));
                }
            }
        }
    }
    divergences
}

/// What each runtime said on stderr in the steps that diverged (observations `~<step>.stderr`).
fn stderr_details(
    husk: &Observations,
    reference: &Observations,
    divergences: &[Divergence],
) -> String {
    let mut steps: Vec<&str> = divergences
        .iter()
        .filter_map(|d| d.key.split_once('.').map(|(step, _)| step))
        .filter(|step| step.chars().all(|c| c.is_ascii_digit()))
        .collect();
    steps.dedup();
    let mut text = String::new();
    for step in steps {
        for (name, obs) in [("husk", husk), ("reference", reference)] {
            for (key, line) in obs.range(format!("~{step}.")..format!("~{step}/")) {
                text.push_str(&format!("  {name} {}: {line}\n", &key[1..]));
            }
        }
    }
    text
}

struct Tool {
    env: Env,
    husk: Runtime,
    reference: Runtime,
    known: Vec<Known>,
    options: Options,
}

impl Tool {
    fn run_both(&self, case: &Case) -> (Vec<Divergence>, String) {
        let t0 = Instant::now();
        let h = runner::run_case(&self.env, &self.husk, case);
        let t1 = Instant::now();
        let r = runner::run_case(&self.env, &self.reference, case);
        if self.options.show {
            for (name, obs) in [("husk", &h), ("reference", &r)] {
                for (key, value) in obs {
                    println!(
                        "  {name} {key} = {}",
                        value.chars().take(400).collect::<String>()
                    );
                }
            }
        }
        if self.options.verbose {
            println!(
                "    time: husk {:.2} s, reference {:.2} s",
                (t1 - t0).as_secs_f64(),
                t1.elapsed().as_secs_f64()
            );
        }
        let divergences = compare(&h, &r, &case.tags(), &self.known);
        let details = stderr_details(&h, &r, &divergences);
        (divergences, details)
    }

    /// Drops features one at a time while the divergence on `key` persists.
    fn minimize(&self, case: &Case, key: &str) -> (Case, Vec<usize>) {
        let mut current = case.clone();
        let mut kept: Vec<usize> = (0..case.features.len()).collect();
        let mut i = current.features.len();
        while i > 0 && !stop_requested() {
            i -= 1;
            let candidate = current.without_feature(i);
            let still = self
                .run_both(&candidate)
                .0
                .iter()
                .any(|d| d.key == key && d.listed.is_none());
            if still {
                current = candidate;
                kept.remove(i);
            }
        }
        (current, kept)
    }

    fn write_failure(
        &self,
        case: &Case,
        kept: &[usize],
        divergences: &[Divergence],
        details: &str,
    ) -> PathBuf {
        let dir = self.options.out.join(format!("{:016x}", case.seed));
        let _ = std::fs::create_dir_all(&dir);
        let id = runner::container_id(case);
        let config = serde_json::to_string_pretty(&case.config(&self.env.base)).expect("json");
        let _ = std::fs::write(dir.join("config.json"), config);
        let mut text = format!(
            "case seed: {:#018x}\nreplay: differential --replay {:#x} --features {}\n\
             container id: {id}\nplaceholders in config.json: @CASE@ = the case directory (bundle at \
             @CASE@/bundle, rootfs: an overlay of the busybox rootfs), @ID@ = the container id, @HOLDER@ = pid of a \
             process holding namespaces to join\n\nfeatures:\n",
            case.seed,
            case.seed,
            kept.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        );
        for f in &case.features {
            text.push_str(&format!("  {}\n", f.tag));
        }
        text.push_str("\nsteps:\n");
        for step in &case.steps {
            text.push_str(&format!("  {}\n", describe_step(step, &id)));
        }
        text.push_str("\ndivergences (key: husk | reference):\n");
        for d in divergences {
            text.push_str(&format!(
                "  {}{}: {} | {}\n",
                d.key,
                if d.listed.is_some() { " (listed)" } else { "" },
                d.husk,
                d.reference
            ));
        }
        text.push_str("\nstderr of the steps that diverged:\n");
        text.push_str(details);
        let _ = std::fs::write(dir.join("case.txt"), text);
        dir
    }
}

fn describe_step(step: &Step, id: &str) -> String {
    match step {
        Step::Run { detach } => format!(
            "run{} --bundle @CASE@/bundle {id}",
            if *detach { " -d" } else { "" }
        ),
        Step::Create { pid_file } => format!(
            "create --bundle @CASE@/bundle{} {id}",
            if *pid_file {
                " --pid-file @CASE@/pid"
            } else {
                ""
            }
        ),
        Step::Exec {
            flags,
            args,
            process,
        } => format!(
            "exec {} {id} {}{}",
            flags.join(" "),
            args.join(" "),
            process
                .as_ref()
                .map(|p| format!("   (process.json: {p})"))
                .unwrap_or_default()
        ),
        Step::Kill { signal, all } => {
            format!("kill{} {id} {signal}", if *all { " --all" } else { "" })
        }
        Step::Update { flags, resources } => format!(
            "update {} {id}{}",
            flags.join(" "),
            resources
                .as_ref()
                .map(|r| format!("   (resources: {r})"))
                .unwrap_or_default()
        ),
        Step::Ps { json } => format!("ps{} {id}", if *json { " --format json" } else { "" }),
        Step::Delete { force } => format!("delete{} {id}", if *force { " --force" } else { "" }),
        Step::WaitReport => "(wait for the main process's report)".into(),
        Step::WaitStopped => {
            "(wait up to 3 s after SIGTERM/SIGKILL, else 0.4 s, for the container to stop; then state)".into()
        }
        Step::List => "list --format json".into(),
        Step::Events => format!("events --stats {id}"),
        other => format!("{} {id}", other.verb()),
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("differential: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    husk_testing::require_root();
    let known = match read_known(&options.known) {
        Ok(k) => k,
        Err(message) => {
            eprintln!("differential: {message}");
            return ExitCode::from(2);
        }
    };
    install_signal_handlers();
    let scratch = husk_testing::TempDir::new("husk-differential");
    let mut roots = Vec::new();
    for name in ["husk", "reference"] {
        let root = scratch.join(name).join("root");
        std::fs::create_dir_all(&root).expect("create state root");
        roots.push(root);
    }
    let specs = base_spec(&options.reference, &scratch.join("spec"), false).and_then(|base| {
        let rootless = base_spec(&options.reference, &scratch.join("spec-rootless"), true)?;
        Ok((base, rootless))
    });
    let base = match specs {
        Ok((base, rootless)) => {
            catalogue::set_rootless_base(rootless);
            base
        }
        Err(message) => {
            eprintln!("differential: {message}");
            return ExitCode::from(2);
        }
    };
    let tool = Tool {
        env: Env {
            work: scratch.path().to_path_buf(),
            rootfs: options.rootfs.clone(),
            base,
            host_ns: normalise::namespace_inodes("self"),
        },
        husk: Runtime {
            binary: options.husk.clone(),
            root: roots[0].clone(),
        },
        reference: Runtime {
            binary: options.reference.clone(),
            root: roots[1].clone(),
        },
        known,
        options,
    };
    let code = tool.main_loop();
    runner::remove_case_dir(&tool.env.case_dir());
    runner::remove_parent_cgroups();
    drop(scratch);
    code
}

/// The reference runtime's `spec` output: the base every case edits.
fn base_spec(reference: &Path, dir: &Path, rootless: bool) -> Result<serde_json::Value, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let status = std::process::Command::new(reference)
        .args(["spec", "--bundle"])
        .arg(dir)
        .args(rootless.then_some("--rootless"))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", reference.display()))?;
    if !status.success() {
        return Err(format!("{} spec failed: {status}", reference.display()));
    }
    let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("spec output is not JSON: {e}"))
}

impl Tool {
    fn main_loop(&self) -> ExitCode {
        let started = Instant::now();
        let o = &self.options;
        let seeds: Vec<u64> = match o.replay {
            Some(seed) => vec![seed],
            None => (o.first..o.first + o.cases)
                .map(|i| rng::case_seed(o.seed, i))
                .collect(),
        };
        let (mut run, mut diverged, mut listed) = (0u64, 0u64, 0u64);
        let mut classes: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut minimized: Vec<String> = Vec::new();
        for (index, &seed) in seeds.iter().enumerate() {
            let index = o.first + index as u64;
            if stop_requested() {
                break;
            }
            let mut case = catalogue::generate(seed);
            if let Some(keep) = &o.features {
                case.features = keep
                    .iter()
                    .filter_map(|&i| case.features.get(i).cloned())
                    .collect();
            }
            let (divergences, details) = self.run_both(&case);
            if stop_requested() {
                break;
            }
            run += 1;
            let unlisted: Vec<&Divergence> =
                divergences.iter().filter(|d| d.listed.is_none()).collect();
            if o.verbose {
                println!(
                    "case {index} seed {seed:#x}: {} divergences ({} unlisted) tags {:?}",
                    divergences.len(),
                    unlisted.len(),
                    case.tags()
                );
                for d in &divergences {
                    println!(
                        "    {}{}: husk={} reference={}",
                        d.key,
                        d.listed
                            .as_ref()
                            .map(|r| format!(" (listed: {r})"))
                            .unwrap_or_default(),
                        d.husk,
                        d.reference
                    );
                }
                print!("{details}");
            }
            if unlisted.is_empty() {
                if !divergences.is_empty() {
                    listed += 1;
                }
                continue;
            }
            for d in &unlisted {
                let class = d
                    .key
                    .split_once('.')
                    .map_or(d.key.as_str(), |(_, rest)| rest);
                let cases = classes.entry(class.to_string()).or_default();
                if cases.last() != Some(&seed) {
                    cases.push(seed);
                }
            }
            diverged += 1;
            let key = unlisted[0].key.clone();
            let (first_husk, first_reference) =
                (unlisted[0].husk.clone(), unlisted[0].reference.clone());
            // Shrinking costs two runs per feature: do it once per kind of divergence (its key without the step
            // number), for at most MAX_MINIMIZED cases a run.
            let kind = key
                .split_once('.')
                .map_or(key.as_str(), |(_, rest)| rest)
                .to_string();
            let shrink =
                o.minimize && minimized.len() < MAX_MINIMIZED && !minimized.contains(&kind);
            let (small, kept) = if shrink {
                minimized.push(kind);
                self.minimize(&case, &key)
            } else {
                (case.clone(), (0..case.features.len()).collect())
            };
            let (small_divergences, small_details) = if kept.len() < case.features.len() {
                self.run_both(&small)
            } else {
                (divergences, details)
            };
            let dir = self.write_failure(&small, &kept, &small_divergences, &small_details);
            println!(
                "DIVERGENCE case {index} seed {seed:#x}: {key}: husk={} reference={}\n    features{}: {:?}\n    \
                 bundle and steps: {}\n    replay: differential --replay {seed:#x} --features {}",
                first_husk,
                first_reference,
                if shrink { " (shrunk)" } else { "" },
                small.tags(),
                dir.display(),
                kept.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
            );
        }
        if !classes.is_empty() {
            let mut by_count: Vec<(&String, &Vec<u64>)> = classes.iter().collect();
            by_count.sort_by_key(|(key, cases)| (std::cmp::Reverse(cases.len()), key.to_string()));
            println!("unlisted divergences by key (step number left out): cases, first case");
            for (key, cases) in by_count {
                println!(
                    "  {key}: {} case(s), e.g. --replay {:#x}",
                    cases.len(),
                    cases[0]
                );
            }
        }
        println!(
            "differential: {run} cases run, {diverged} with unlisted divergences, {listed} listed-and-skipped \
             (seed {}, {:.0} s)",
            o.seed,
            started.elapsed().as_secs_f64()
        );
        if stop_requested() {
            println!("differential: interrupted; cleaned up");
            ExitCode::from(130)
        } else if diverged > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_entries_and_cascade() {
        let dir = husk_testing::TempDir::new("differential-known-test");
        let path = dir.join("known.txt");
        std::fs::write(
            &path,
            "# comment\nfoo&bar | *.exit = 1 | both tags\n* | *.mount:/x | any case\n",
        )
        .unwrap();
        let known = read_known(&path).unwrap();
        assert_eq!(known.len(), 2);
        let obs = |pairs: &[(&str, &str)]| -> Observations {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let husk = obs(&[
            ("00.create.err", "invalid"),
            ("00.create.exit", "1"),
            ("02.state.exit", "1"),
        ]);
        let reference = obs(&[
            ("00.create.err", "-"),
            ("00.create.exit", "0"),
            ("02.state.exit", "0"),
        ]);
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Both tags: the create difference is listed, and what follows from it.
        let d = compare(&husk, &reference, &tags(&["foo", "bar"]), &known);
        assert_eq!(d.len(), 3);
        assert!(d.iter().all(|d| d.listed.is_some()));
        // One tag only: nothing is listed.
        let d = compare(&husk, &reference, &tags(&["foo"]), &known);
        assert!(d.iter().all(|d| d.listed.is_none()));
        // `~` keys are never compared.
        let d = compare(
            &obs(&[("~00.x", "a")]),
            &obs(&[("~00.x", "b")]),
            &[],
            &known,
        );
        assert!(d.is_empty());
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*", "anything"));
        assert!(glob("main.mount:/proc/*", "main.mount:/proc/keys"));
        assert!(glob("*.exit", "03.create.exit"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(!glob("exact", "exactly"));
    }
}
