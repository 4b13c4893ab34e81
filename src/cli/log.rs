//! `--log`/`--log-format`: where errors and debug lines go, in runc's formats.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    #[allow(dead_code)]
    debug: bool,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_path_buf),
            json: format == "json",
            debug,
        }
    }

    /// Logs an error as runc does: with `--log`, a line in the file and the bare message on
    /// stderr; without it, the formatted line on stderr.
    pub fn error(&self, msg: &str) {
        if self.file.is_some() {
            self.write("error", msg);
            eprintln!("{msg}");
        } else {
            eprintln!("{}", self.format("error", msg));
        }
    }

    fn format(&self, level: &str, msg: &str) -> String {
        let time = husk::state::now_rfc3339_seconds();
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        let line = self.format(level, msg);
        // Appending to a log file the caller named is the one host write the CLI does itself.
        if let Ok(mut f) =
            husk::hostfs::open(path, std::fs::OpenOptions::new().create(true).append(true))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
