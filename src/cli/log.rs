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

    /// Logs an error: to the log file (when set) and always as plain text on stderr.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        eprintln!("{msg}");
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        let time = husk::state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        // Appending to a log file the caller named is the one host write the CLI does itself.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
