//! `husk list`.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The owner column: the user owning the state directory, by name from `passwd`.
fn owner(root: &Path, id: &str, passwd: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root.join(id)) else {
        return String::new();
    };
    user_name(passwd, meta.uid()).unwrap_or_else(|| format!("#{}", meta.uid()))
}

/// The name of `uid` in a passwd(5) file. Read directly rather than through NSS (getpwuid): the binary is statically
/// linked, and glibc's static NSS would need the host's shared NSS modules at run time.
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?;
        (entry_uid.parse() == Ok(uid)).then(|| name.to_string())
    })
}

pub fn run(root: &Path, a: ListArgs) -> CmdResult {
    let containers = runtime(root).list()?;
    if a.quiet {
        for c in &containers {
            println!("{}", c.id());
        }
        return Ok(0);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let states: Vec<husk::OciState> = containers
        .iter()
        .map(|c| husk::OciState {
            owner: owner(root, c.id(), &passwd),
            ..c.state()
        })
        .collect();
    if a.format == "json" {
        // runc prints `null` for no containers; keep parsers that expect it happy.
        if states.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&states)?);
        }
        return Ok(0);
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in &states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// Columns padded like Go's tabwriter with minwidth 12 and padding 3 (runc's layout).
fn table(rows: &[[String; 6]]) -> String {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max((cell.chars().count() + 3).max(12));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}", width = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::user_name;

    #[test]
    fn user_name_reads_the_uid_field() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 1001), None);
    }
}
