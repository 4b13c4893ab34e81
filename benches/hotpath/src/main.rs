//! husk-hotpath: which functions of a binary does a command execute, in what order?
//!
//! Runs the command under ptrace single-stepping (every process and thread of its tree, ASLR
//! off), records every instruction of BINARY's code the first time it runs (also when run
//! from a copy, such as husk's sealed memfd), maps the addresses to BINARY's symbols and
//! writes one symbol per line, in order of first execution: the input for a link-time
//! function ordering (lld `--symbol-ordering-file`) that packs the code a run needs into few
//! pages. Names are written exactly as the symbol table has them; the link step matches a Rust
//! name whose hash has since changed without its hash.

mod elf;
mod maps;
mod symbols;
mod tracer;

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use maps::TargetBinary;
use symbols::SymbolTable;

const USAGE: &str =
    "usage: husk-hotpath --binary PATH [--symbols NM_FILE] --out FILE -- COMMAND [ARGS...]

Runs COMMAND with every process and thread single-stepped (slow: minutes for a husk run),
and writes to FILE the functions of PATH that the run executed, one per line, in order of
first execution. PATH's symbols come from its .symtab, or, for a stripped binary, from
NM_FILE (`nm --defined-only -S` output of the unstripped link). Exits with COMMAND's exit status.";

struct Args {
    binary: PathBuf,
    symbols: Option<PathBuf>,
    out: PathBuf,
    command: Vec<OsString>,
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let (mut binary, mut symbols, mut out) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--binary") => binary = Some(args.next().ok_or("--binary needs a path")?),
            Some("--symbols") => {
                symbols = Some(args.next().ok_or("--symbols needs a path")?.into())
            }
            Some("--out") => out = Some(args.next().ok_or("--out needs a path")?),
            Some("--") => break,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let command: Vec<OsString> = args.collect();
    if command.is_empty() {
        return Err("no command after --".into());
    }
    Ok(Args {
        binary: binary.ok_or("--binary is required")?.into(),
        symbols,
        out: out.ok_or("--out is required")?.into(),
        command,
    })
}

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    if raw.iter().any(|a| a == "-h" || a == "--help") && !raw.iter().any(|a| a == "--") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(raw.into_iter()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("husk-hotpath: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("husk-hotpath: the command exited with status {code}");
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("husk-hotpath: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Traces, writes the list, prints the summary; returns the command's exit code.
fn run(args: &Args) -> Result<i32, String> {
    // Both fail early on a wrong or stripped binary, before the slow part.
    let symbols = match &args.symbols {
        Some(file) => SymbolTable::from_nm_file(file)?,
        None => SymbolTable::from_binary(&args.binary)?,
    };
    let target = TargetBinary::open(&args.binary)?;
    let trace = tracer::trace(&args.command, &target)?;
    let binary = args.binary.display();

    let mut functions = Vec::new();
    let mut seen_functions = HashSet::new();
    let mut outside_symbols = 0;
    for &address in &trace.addresses {
        match symbols.lookup(address) {
            Some(symbol) if seen_functions.insert(symbol.start) => functions.push(symbol),
            Some(_) => {}
            None => outside_symbols += 1,
        }
    }
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();

    let code_bytes: u64 = functions.iter().map(|f| f.size()).sum();
    let pages_touched: HashSet<u64> = trace.addresses.iter().map(|a| a / elf::PAGE_SIZE).collect();
    let text_pages: u64 = target
        .segments()
        .iter()
        .filter(|s| s.executable)
        .map(|s| s.file_size.div_ceil(elf::PAGE_SIZE))
        .sum();
    eprintln!(
        "husk-hotpath: {} steps in {} traced processes/threads; {} exec'd images mapped {binary}",
        trace.steps, trace.tasks, trace.target_images
    );
    eprintln!(
        "husk-hotpath: {} distinct instruction addresses of {binary} ({outside_symbols} outside any \
         symbol) in {} functions of {} known",
        trace.addresses.len(),
        functions.len(),
        symbols.len()
    );
    eprintln!(
        "husk-hotpath: the functions total {code_bytes} bytes ({} pages if packed); 4 KiB pages \
         touched: {} of {text_pages} pages of code",
        code_bytes.div_ceil(elf::PAGE_SIZE),
        pages_touched.len()
    );
    if names.is_empty() {
        return Err(format!(
            "no function of {binary} was executed (did the command run it? exit status {})",
            trace.exit_code
        ));
    }
    let mut text = names.join("\n");
    text.push('\n');
    write_output(&args.out, &text)?;
    eprintln!(
        "husk-hotpath: wrote {} lines to {}",
        names.len(),
        args.out.display()
    );
    Ok(trace.exit_code)
}

// The workspace lint routes husk's host writes through audited helpers; this tool is not
// husk and writes only the file named on its command line.
#[allow(clippy::disallowed_methods)]
fn write_output(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        let args = parse(&["--binary", "b", "--out", "o", "--", "cmd", "--out", "x"]).unwrap();
        assert_eq!(args.binary, Path::new("b"));
        assert_eq!(args.symbols, None);
        assert_eq!(args.out, Path::new("o"));
        assert_eq!(args.command, ["cmd", "--out", "x"]);
        let with_symbols = parse(&["--binary", "b", "--symbols", "s", "--out", "o", "--", "c"]);
        assert_eq!(
            with_symbols.unwrap().symbols.as_deref(),
            Some(Path::new("s"))
        );
        assert!(parse(&["--binary", "b", "--out", "o", "--"]).is_err());
        assert!(parse(&["--binary", "b", "--", "cmd"]).is_err());
        assert!(parse(&["--out", "o", "--", "cmd"]).is_err());
        assert!(parse(&["--binary"]).is_err());
        assert!(parse(&["--bogus", "--", "cmd"]).is_err());
    }
}
