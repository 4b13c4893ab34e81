//! /proc/self/mountinfo (proc(5)) as JSON objects.

use serde_json::{json, Value};

/// One object per mount, in table order: `id`, `parent`, `major`, `minor`, `root`, `mount_point`, `options`
/// (per-mount flags), `propagation` (`shared`, `master`, `propagate_from` peer group ids or null, and
/// `unbindable`), `optional` (the raw optional fields), `fstype`, `source` and `super_options`.
pub fn parse(text: &str) -> Vec<Value> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Value> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|f| *f == "-")?;
    if separator < 6 || fields.len() < separator + 4 {
        return None;
    }
    let (major, minor) = fields[2].split_once(':')?;
    let optional: Vec<&str> = fields[6..separator].to_vec();
    let tag = |name: &str| {
        optional
            .iter()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix(':')?.parse::<u64>().ok())
    };
    Some(json!({
        "id": fields[0].parse::<u64>().ok()?,
        "parent": fields[1].parse::<u64>().ok()?,
        "major": major.parse::<u64>().ok()?,
        "minor": minor.parse::<u64>().ok()?,
        "root": unescape(fields[3]),
        "mount_point": unescape(fields[4]),
        "options": fields[5].split(',').collect::<Vec<_>>(),
        "propagation": {
            "shared": tag("shared"),
            "master": tag("master"),
            "propagate_from": tag("propagate_from"),
            "unbindable": optional.contains(&"unbindable"),
        },
        "optional": optional,
        "fstype": fields[separator + 1],
        "source": unescape(fields[separator + 2]),
        "super_options": fields[separator + 3].split(',').collect::<Vec<_>>(),
    }))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4);
        match octal {
            Some(digits)
                if bytes[i] == b'\\' && digits.iter().all(|b| (b'0'..=b'7').contains(b)) =>
            {
                out.push((digits[0] - b'0') * 64 + (digits[1] - b'0') * 8 + (digits[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_propagation() {
        let line = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";
        let m = &parse(line)[0];
        assert_eq!(m["id"], 36);
        assert_eq!(m["parent"], 35);
        assert_eq!(m["major"], 98);
        assert_eq!(m["root"], "/mnt1");
        assert_eq!(m["mount_point"], "/mnt x");
        assert_eq!(m["options"], json!(["rw", "noatime"]));
        assert_eq!(m["propagation"]["shared"], 7);
        assert_eq!(m["propagation"]["master"], 1);
        assert_eq!(m["propagation"]["propagate_from"], Value::Null);
        assert_eq!(m["fstype"], "ext3");
        assert_eq!(m["super_options"], json!(["rw", "errors=continue"]));
    }

    #[test]
    fn no_optional_fields() {
        let m = &parse("1 0 0:5 / / ro - tmpfs tmpfs rw,size=4k")[0];
        assert_eq!(m["optional"], json!([]));
        assert_eq!(m["propagation"]["unbindable"], false);
    }
}
