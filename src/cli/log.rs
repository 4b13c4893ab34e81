//! `--log`/`--log-format`/`--debug`: where errors, warnings and debug lines go, in runc's formats
//! (logrus text `time="..." level=... msg="..."`, or one JSON object per line).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

/// The logger of this run, for warnings and debug lines from anywhere in the CLI.
static GLOBAL: OnceLock<Logger> = OnceLock::new();

/// Logs a debug line (only with `--debug`).
pub fn debug(msg: &str) {
    if let Some(logger) = GLOBAL.get() {
        logger.debug(msg);
    }
}

/// Logs a warning (on stderr, or in the `--log` file).
pub fn warn(msg: &str) {
    match GLOBAL.get() {
        Some(logger) => logger.warn(msg),
        None => eprintln!("{}", format_line(false, "warning", msg)),
    }
}

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        let logger = Logger {
            file: file.map(Path::to_path_buf),
            json: format == "json",
            debug,
        };
        // runc creates the log file at start, whether or not anything is logged: shims open it
        // afterwards to read the reason for a failure.
        if let Some(path) = &logger.file {
            let _ = logger.open(path);
        }
        logger
    }

    /// Makes this the logger that [`debug`] and [`warn`] use.
    pub fn install(self) -> &'static Logger {
        GLOBAL.get_or_init(|| self)
    }

    /// Logs an error as runc does: with `--log`, a line in the file and the bare message on
    /// stderr; without it, the formatted line on stderr.
    pub fn error(&self, msg: &str) {
        if self.file.is_some() {
            self.write("error", msg);
            eprintln!("{msg}");
        } else {
            eprintln!("{}", format_line(self.json, "error", msg));
        }
    }

    pub fn warn(&self, msg: &str) {
        self.emit("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.emit("debug", msg);
        }
    }

    /// A line in the log file, or on stderr without one.
    fn emit(&self, level: &str, msg: &str) {
        if self.file.is_some() {
            self.write(level, msg);
        } else {
            eprintln!("{}", format_line(self.json, level, msg));
        }
    }

    fn open(&self, path: &Path) -> std::io::Result<std::fs::File> {
        // Appending to a log file the caller named is the one host write the CLI does itself.
        husk::hostfs::open(path, std::fs::OpenOptions::new().create(true).append(true))
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        if let Ok(mut f) = self.open(path) {
            let _ = writeln!(f, "{}", format_line(self.json, level, msg));
        }
    }
}

/// One log line: logrus's text format, or its JSON format (keys `level`, `msg`, `time`).
fn format_line(json: bool, level: &str, msg: &str) -> String {
    let time = husk::state::now_rfc3339_seconds();
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level={level} msg={}", text_value(msg))
    }
}

/// A value as logrus's text formatter writes it: bare when it is a simple word, else quoted.
fn text_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_text_lines() {
        let line = format_line(false, "debug", "two words");
        assert!(line.starts_with("time=\""), "{line}");
        assert!(line.ends_with(" level=debug msg=\"two words\""), "{line}");
        assert!(format_line(false, "warning", "word").ends_with(" level=warning msg=word"));
        let json: serde_json::Value =
            serde_json::from_str(&format_line(true, "error", "x \"y\"")).unwrap();
        assert_eq!(json["level"], "error");
        assert_eq!(json["msg"], "x \"y\"");
        assert!(json["time"].is_string());
    }
}
