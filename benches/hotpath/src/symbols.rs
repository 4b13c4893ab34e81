//! The traced binary's function symbols (from its `.symtab`, read with binutils' `nm`) and the
//! keys written to the hot list.

use std::borrow::Cow;
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

/// The name under which `symbol` goes into the hot list: a Rust legacy-mangled name loses its
/// hash (`…17h<16 hex digits>E` becomes `…E`), which changes with every build; other names (C)
/// stay as they are.
pub fn symbol_key(symbol: &str) -> Cow<'_, str> {
    const HASH_LEN: usize = "17h".len() + 16 + "E".len();
    let bytes = symbol.as_bytes();
    if !symbol.starts_with("_ZN") || bytes.len() < "_ZN".len() + HASH_LEN {
        return Cow::Borrowed(symbol);
    }
    let hash = &bytes[bytes.len() - HASH_LEN..];
    let is_hash = hash.starts_with(b"17h")
        && hash.ends_with(b"E")
        && hash[3..HASH_LEN - 1].iter().all(u8::is_ascii_hexdigit);
    if !is_hash {
        return Cow::Borrowed(symbol);
    }
    // The cut is at an ASCII byte ('1'), so it is a char boundary.
    Cow::Owned(format!("{}E", &symbol[..symbol.len() - HASH_LEN]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_hash_is_removed() {
        assert_eq!(
            symbol_key("_ZN4husk3cli4main17he9bac20488719135E"),
            "_ZN4husk3cli4mainE"
        );
        assert_eq!(
            symbol_key(
                "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$GT$17h0123456789abcdefE"
            ),
            "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$GT$E"
        );
    }

    #[test]
    fn other_names_are_unchanged() {
        for name in [
            "memcpy",
            "main",
            "_start",
            // Not a hash: 15 hex digits, a non-hex digit, missing final E, a suffix after it.
            "_ZN4husk3cli4main17he9bac2048871913E",
            "_ZN4husk3cli4main17he9bac2048871913gE",
            "_ZN4husk3cli4main17he9bac20488719135",
            "_ZN4husk3cli4main17he9bac20488719135E.llvm.123",
            // C++-style mangling without the Rust hash.
            "_ZN3foo3barEv",
            // Not a legacy-mangled name at all although it ends like one.
            "x17he9bac20488719135E",
            "17he9bac20488719135E",
        ] {
            assert_eq!(symbol_key(name), name, "{name}");
        }
    }

    #[test]
    fn key_handles_non_ascii_without_panicking() {
        assert_eq!(symbol_key("_ZNé"), "_ZNé");
        assert_eq!(
            symbol_key("_ZNéééééééééééééééééééééé"),
            "_ZNéééééééééééééééééééééé"
        );
    }

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
