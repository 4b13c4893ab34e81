//! The traced binary's function symbols: from its `.symtab` (read with binutils' `nm`) or from
//! a file of `nm -S` output kept by the link step of a stripped binary.

use std::path::Path;
use std::process::Command;

/// A function: link-time addresses `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub start: u64,
    pub end: u64,
    pub name: String,
}

impl Symbol {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// Function symbols sorted by address, one per address.
#[derive(Debug)]
pub struct SymbolTable {
    symbols: Vec<Symbol>,
}

/// One line of `nm --defined-only -S`.
struct NmEntry<'a> {
    address: u64,
    size: u64,
    global: bool,
    name: &'a str,
}

impl SymbolTable {
    /// Reads the function symbols of `binary` with `nm`; fails when it has none (stripped).
    pub fn from_binary(binary: &Path) -> Result<Self, String> {
        let output = Command::new("nm")
            .args(["--defined-only", "-S"])
            .arg(binary)
            .output()
            .map_err(|e| format!("cannot run nm (binutils) on {}: {e}", binary.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!(
                "nm failed on {} ({}): {}",
                binary.display(),
                output.status,
                stderr.trim()
            ));
        }
        let table = Self::parse_nm(&String::from_utf8_lossy(&output.stdout));
        if table.symbols.is_empty() {
            return Err(format!(
                "{} has no function symbols (nm: {}); it must be unstripped, e.g. built with \
                 CARGO_PROFILE_RELEASE_STRIP=false",
                binary.display(),
                if stderr.trim().is_empty() {
                    "no output"
                } else {
                    stderr.trim()
                }
            ));
        }
        Ok(table)
    }

    /// Reads a file of `nm --defined-only -S` output (build/link-husk keeps one next to each husk
    /// binary it links, as deps/husk-<hash>.symbols, before stripping it).
    pub fn from_nm_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading symbols from {}: {e}", path.display()))?;
        let table = Self::parse_nm(&text);
        if table.symbols.is_empty() {
            return Err(format!("{} lists no function symbols", path.display()));
        }
        Ok(table)
    }

    /// Builds the table from `nm --defined-only -S` output. Only code symbols count (types
    /// T/t, W/w, i). Aliases at one address collapse to one name: sized before unsized, global
    /// before local, then the smallest name, so the choice is stable. A symbol without a size
    /// (hand-written assembly) reaches to the next symbol, unless it lies inside a sized one.
    pub fn parse_nm(text: &str) -> Self {
        let mut entries: Vec<NmEntry> = text.lines().filter_map(parse_nm_line).collect();
        entries.sort_by(|a, b| {
            a.address
                .cmp(&b.address)
                .then((b.size > 0).cmp(&(a.size > 0)))
                .then(b.global.cmp(&a.global))
                .then(a.name.cmp(b.name))
        });
        entries.dedup_by_key(|e| e.address);

        let mut symbols = Vec::with_capacity(entries.len());
        let mut sized_end = 0;
        for (i, entry) in entries.iter().enumerate() {
            let end = if entry.size > 0 {
                sized_end = sized_end.max(entry.address + entry.size);
                entry.address + entry.size
            } else if entry.address < sized_end {
                continue;
            } else {
                match entries.get(i + 1) {
                    Some(next) => next.address,
                    None => continue,
                }
            };
            symbols.push(Symbol {
                start: entry.address,
                end,
                name: entry.name.to_owned(),
            });
        }
        SymbolTable { symbols }
    }

    /// The function holding link-time address `address`.
    pub fn lookup(&self, address: u64) -> Option<&Symbol> {
        let after = self.symbols.partition_point(|s| s.start <= address);
        let candidate = self.symbols.get(after.checked_sub(1)?)?;
        (address < candidate.end).then_some(candidate)
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }
}

fn parse_nm_line(line: &str) -> Option<NmEntry<'_>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, size, kind, name) = match fields.as_slice() {
        [address, size, kind, name] => (address, Some(size), kind, name),
        [address, kind, name] => (address, None, kind, name),
        _ => return None,
    };
    let kind = match kind.as_bytes() {
        [k @ (b'T' | b't' | b'W' | b'w' | b'i')] => *k,
        _ => return None,
    };
    Some(NmEntry {
        address: u64::from_str_radix(address, 16).ok()?,
        size: match size {
            Some(size) => u64::from_str_radix(size, 16).ok()?,
            None => 0,
        },
        global: kind.is_ascii_uppercase(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NM: &str = "\
0000000000001000 0000000000000010 T first
0000000000001010 0000000000000020 t second
0000000000001010 0000000000000020 T second_alias
0000000000001030 T _start
0000000000001018 t label_inside_second
0000000000001040 0000000000000008 T last
0000000000002000 0000000000000100 D some_data
0000000000002100 0000000000000100 B some_bss
0000000000003000 0000000000000004 r rodata
                 U undefined_in_case_nm_prints_it
garbage line
";

    #[test]
    fn lookup_finds_the_containing_function() {
        let table = SymbolTable::parse_nm(NM);
        let name = |a| table.lookup(a).map(|s| s.name.as_str());
        assert_eq!(name(0x0fff), None);
        assert_eq!(name(0x1000), Some("first"));
        assert_eq!(name(0x100f), Some("first"));
        // Aliases: the global name wins; an unsized label inside a sized symbol is dropped.
        assert_eq!(name(0x1010), Some("second_alias"));
        assert_eq!(name(0x1018), Some("second_alias"));
        assert_eq!(name(0x102f), Some("second_alias"));
        // An unsized symbol reaches to the next one.
        assert_eq!(name(0x1030), Some("_start"));
        assert_eq!(name(0x103f), Some("_start"));
        assert_eq!(name(0x1047), Some("last"));
        assert_eq!(name(0x1048), None);
        // Data is not code.
        assert_eq!(name(0x2000), None);
        assert_eq!(name(0x3000), None);
        assert_eq!(table.len(), 4);
        assert_eq!(table.lookup(0x1010).map(Symbol::size), Some(0x20));
        assert_eq!(table.lookup(0x1030).map(Symbol::size), Some(0x10));
    }

    #[test]
    fn lookup_in_an_empty_table() {
        let table = SymbolTable::parse_nm("");
        assert_eq!(table.len(), 0);
        assert_eq!(table.lookup(0), None);
        assert_eq!(table.lookup(u64::MAX), None);
    }

    /// The real thing: this test binary's own symbols, found by nm and looked up by address.
    #[test]
    fn lookup_in_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let table = match SymbolTable::from_binary(&exe) {
            Ok(table) => table,
            Err(e) => panic!("reading this test binary's symbols: {e}"),
        };
        let wanted = table
            .symbols
            .iter()
            .find(|s| s.name == "main")
            .expect("the C main that rustc emits, in this binary's symbols")
            .clone();
        let middle = wanted.start + wanted.size() / 2;
        assert_eq!(table.lookup(middle), Some(&wanted));
        assert_eq!(table.lookup(wanted.start), Some(&wanted));
        assert_ne!(
            table.lookup(wanted.end).map(|s| &s.name),
            Some(&wanted.name)
        );
    }
}
