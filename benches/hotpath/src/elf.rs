//! The loadable segments of a 64-bit little-endian ELF file: enough to turn the address of a
//! mapped instruction back into the link-time address that `.symtab` uses.

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    pub offset: u64,
    pub vaddr: u64,
    pub file_size: u64,
    pub executable: bool,
}

/// The PT_LOAD program headers of `elf`, in file order.
pub fn load_segments(elf: &[u8]) -> Result<Vec<LoadSegment>, String> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little-endian.
    if elf.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let phoff = read_u64(elf, 0x20)?;
    let phentsize = u64::from(read_u16(elf, 0x36)?);
    let phnum = u64::from(read_u16(elf, 0x38)?);
    let mut segments = Vec::new();
    for index in 0..phnum {
        let header = usize::try_from(phoff + index * phentsize)
            .map_err(|_| "program header offset out of range".to_string())?;
        if read_u32(elf, header)? != PT_LOAD {
            continue;
        }
        segments.push(LoadSegment {
            executable: read_u32(elf, header + 4)? & PF_X != 0,
            offset: read_u64(elf, header + 8)?,
            vaddr: read_u64(elf, header + 16)?,
            file_size: read_u64(elf, header + 32)?,
        });
    }
    if segments.is_empty() {
        return Err("no PT_LOAD program header".into());
    }
    Ok(segments)
}

/// The link-time address at which the file's first page (offset 0) is loaded: 0 for a
/// position-independent executable, e.g. 0x400000 for a fixed-address one.
pub fn first_page_vaddr(segments: &[LoadSegment]) -> Result<u64, String> {
    let first = segments
        .iter()
        .find(|s| s.offset < PAGE_SIZE)
        .ok_or("no PT_LOAD segment maps the start of the file")?;
    Ok((first.vaddr - first.offset) & !(PAGE_SIZE - 1))
}

/// The link-time address of file offset `offset`, if an executable segment holds it. (A page
/// may hold the end of one segment and the start of the next, each at its own address.)
pub fn text_vaddr_of_offset(segments: &[LoadSegment], offset: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| {
            let page_start = s.offset & !(PAGE_SIZE - 1);
            s.executable && (page_start..s.offset + s.file_size).contains(&offset)
        })
        .map(|s| s.vaddr - s.offset + offset)
}

pub const PAGE_SIZE: u64 = 4096;

fn bytes<const N: usize>(elf: &[u8], at: usize) -> Result<[u8; N], String> {
    elf.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("truncated ELF file (reading {N} bytes at {at:#x})"))
}

fn read_u16(elf: &[u8], at: usize) -> Result<u16, String> {
    bytes(elf, at).map(u16::from_le_bytes)
}

fn read_u32(elf: &[u8], at: usize) -> Result<u32, String> {
    bytes(elf, at).map(u32::from_le_bytes)
}

fn read_u64(elf: &[u8], at: usize) -> Result<u64, String> {
    bytes(elf, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_this_test_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let segments = load_segments(&exe).unwrap();
        assert!(segments.iter().any(|s| s.executable), "{segments:?}");
        // Rust builds position-independent executables on x86_64 Linux.
        assert_eq!(first_page_vaddr(&segments), Ok(0));
        let text = segments.iter().find(|s| s.executable).unwrap();
        assert_eq!(
            text_vaddr_of_offset(&segments, text.offset),
            Some(text.vaddr)
        );
        assert_eq!(text_vaddr_of_offset(&segments, u64::MAX / 2), None);
    }

    #[test]
    fn rejects_what_is_not_elf() {
        assert!(load_segments(b"#!/bin/sh\n").is_err());
        assert!(load_segments(b"\x7fELF\x01\x01").is_err());
        // A header cut short.
        assert!(load_segments(b"\x7fELF\x02\x01\x01\x00").is_err());
    }

    #[test]
    fn fixed_address_layout() {
        let segments = [
            LoadSegment {
                offset: 0,
                vaddr: 0x400000,
                file_size: 0x1000,
                executable: false,
            },
            LoadSegment {
                offset: 0x1000,
                vaddr: 0x401000,
                file_size: 0x2345,
                executable: true,
            },
        ];
        assert_eq!(first_page_vaddr(&segments), Ok(0x400000));
        assert_eq!(text_vaddr_of_offset(&segments, 0x1010), Some(0x401010));
        assert_eq!(text_vaddr_of_offset(&segments, 0x3345), None);
        // Offset 0x800 is in the first segment, which is not code.
        assert_eq!(text_vaddr_of_offset(&segments, 0x800), None);
    }
}
