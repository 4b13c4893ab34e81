//! `husk ps`: the container's processes, as the host's `ps` shows them, or their pids as JSON.

use std::path::Path;
use std::process::Command;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    /// Options for ps(1) (default `-ef`); ignored with `--format json`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(root: &Path, a: PsArgs) -> CmdResult {
    let pids = runtime(root).load(&a.id)?.pids()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let ps_args = if a.ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        a.ps_args
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| format!("run ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ps {}: {}: {}",
            ps_args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    print!(
        "{}",
        filter_rows(&String::from_utf8_lossy(&out.stdout), &pids)?
    );
    Ok(0)
}

/// Keeps the header and the rows whose PID column is one of `pids`.
fn filter_rows(ps_output: &str, pids: &[i32]) -> Result<String, String> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|name| name == "PID")
        .ok_or("couldn't find PID field in ps output")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let Some(field) = line.split_whitespace().nth(column) else {
            continue;
        };
        let pid: i32 = field
            .parse()
            .map_err(|_| format!("unexpected pid {field:?} in ps output line {line:?}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_own_rows() {
        let ps = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh -c x\nroot 420 1 other\n";
        assert_eq!(
            filter_rows(ps, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sh -c x\n"
        );
    }

    #[test]
    fn pid_column_is_found_anywhere() {
        let ps = "  STAT   PID COMMAND\n  Ss      7 sleep\n  R       8 ps\n";
        assert_eq!(
            filter_rows(ps, &[8]).unwrap(),
            "  STAT   PID COMMAND\n  R       8 ps\n"
        );
    }

    #[test]
    fn missing_pid_column_is_an_error() {
        let err = filter_rows("COMMAND\nsleep\n", &[1]).unwrap_err();
        assert!(err.contains("PID"), "{err}");
    }
}
