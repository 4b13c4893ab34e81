//! `linux.resources.devices` on cgroup v2: an eBPF device filter.
//!
//! cgroup v2 has no devices files; access is decided by a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to the cgroup. cgroups-rs does not support it, so the program is assembled and loaded
//! here with the raw `bpf(2)` system call.
//!
//! Semantics (the same as the v1 `devices.allow` / `devices.deny` files give):
//! * a rule of type `a` resets everything: its `allow` becomes the default for all devices and
//!   earlier rules no longer count; without such a rule the default is deny;
//! * among the later rules, the last one that matches a request decides;
//! * an allow rule matches when all requested access (r/w/m) is in its access; a deny rule
//!   matches when any requested access is in its access.
//!
//! The program is attached without `BPF_F_ALLOW_MULTI` / `BPF_F_ALLOW_OVERRIDE`, so attaching a
//! new one (an update) replaces the previous one and nothing below the cgroup can loosen it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

// From <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes used (class | op | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV32_REG: u8 = 0xbc; // dst = (u32) src
const AND32_IMM: u8 = 0x54; // dst &= imm
const RSH32_IMM: u8 = 0x74; // dst >>= imm
const MOV64_IMM: u8 = 0xb7; // dst = imm
const JNE_IMM: u8 = 0x55; // if dst != imm goto +off
const JEQ_IMM: u8 = 0x15; // if dst == imm goto +off
const EXIT: u8 = 0x95;

// Registers: r1 = context; after the prologue r2 = access, r3 = type, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;

/// Marks a jump whose offset is "to the end of this rule's block", fixed up once the block is
/// complete.
const SKIP: i16 = i16::MIN;

fn access_bits(_field: &str, access: Option<&str>) -> Result<i32, CgroupError> {
    let mut bits = 0;
    for c in super::device_access(access).chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => ACC_MKNOD,
        };
    }
    Ok(bits)
}

/// Assembles the filter program for `rules`.
pub fn assemble(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    let last_reset = rules
        .iter()
        .rposition(|r| r.typ().unwrap_or_default() == LinuxDeviceType::A);
    let default_allow = last_reset.is_some_and(|i| rules[i].allow());
    let first_effective = last_reset.map_or(0, |i| i + 1);

    let mut program = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0), // access_type
        insn(MOV32_REG, R3, R2, 0, 0),
        insn(AND32_IMM, R3, 0, 0, 0xffff), // device type
        insn(RSH32_IMM, R2, 0, 0, 16),     // requested access
        insn(LDX_MEM_W, R4, R1, 4, 0),     // major
        insn(LDX_MEM_W, R5, R1, 8, 0),     // minor
    ];
    // Last matching rule wins: test them from the last one backwards.
    for index in (first_effective..rules.len()).rev() {
        let rule = &rules[index];
        let field = format!("linux.resources.devices[{index}]");
        let mut block = Vec::new();
        match rule.typ().unwrap_or_default() {
            LinuxDeviceType::B => block.push(insn(JNE_IMM, R3, 0, SKIP, DEV_BLOCK)),
            LinuxDeviceType::C | LinuxDeviceType::U => {
                block.push(insn(JNE_IMM, R3, 0, SKIP, DEV_CHAR))
            }
            LinuxDeviceType::A => unreachable!("rules before the last reset are skipped"),
            LinuxDeviceType::P => {
                return Err(CgroupError::InvalidValue {
                    field,
                    reason: "FIFO devices (type p) cannot be controlled by a device filter".into(),
                })
            }
        }
        for (register, number) in [(R4, rule.major()), (R5, rule.minor())] {
            if let Some(number) = number.filter(|n| *n >= 0) {
                let number = i32::try_from(number).map_err(|_| CgroupError::InvalidValue {
                    field: field.clone(),
                    reason: format!("device number {number} is too large"),
                })?;
                block.push(insn(JNE_IMM, register, 0, SKIP, number));
            }
        }
        let access = access_bits(&field, rule.access().as_deref())?;
        if access != ACC_ALL {
            block.push(insn(MOV32_REG, R6, R2, 0, 0));
            if rule.allow() {
                // Matches only if nothing outside the rule's access is requested.
                block.push(insn(AND32_IMM, R6, 0, 0, !access & ACC_ALL));
                block.push(insn(JNE_IMM, R6, 0, SKIP, 0));
            } else {
                // Matches if any of the rule's access is requested.
                block.push(insn(AND32_IMM, R6, 0, 0, access));
                block.push(insn(JEQ_IMM, R6, 0, SKIP, 0));
            }
        }
        block.push(insn(MOV64_IMM, R0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (position, instruction) in block.iter_mut().enumerate() {
            if instruction.off == SKIP {
                // Jump past the rest of the block (relative to the next instruction).
                instruction.off = (len - position - 1) as i16;
            }
        }
        program.extend(block);
    }
    program.push(insn(MOV64_IMM, R0, 0, 0, i32::from(default_allow)));
    program.push(insn(EXIT, 0, 0, 0, 0));
    Ok(program)
}

/// `union bpf_attr` as used by `BPF_PROG_LOAD` (fields up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` as used by `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Calls `bpf(cmd, attr, sizeof attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized #[repr(C)] bpf_attr variant for `cmd`; the kernel
    // reads (and for some commands writes) at most size_of::<T>() bytes of it. Pointers inside it
    // refer to buffers the caller keeps alive for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn load(program: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..9].copy_from_slice(b"husk_devs");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that we now own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(source) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]);
            Err(CgroupError::Bpf {
                op: format!(
                    "loading the device filter (verifier log: {:?})",
                    verifier.trim()
                ),
                source,
            })
        }
    }
}

/// Builds the filter for `rules` and attaches it to the cgroup2 directory `dir`, replacing the
/// filter attached before.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let program = assemble(rules)?;
    let program_fd = load(&program)?;
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| CgroupError::Bpf {
        op: format!("attaching the device filter to {}", dir.display()),
        source,
    })?;
    // The attachment holds its own reference to the program; our fds can close.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn empty_list_denies_everything() {
        let program = assemble(&[]).unwrap();
        assert_eq!(program.len(), 8);
        assert_eq!(program[6], insn(MOV64_IMM, R0, 0, 0, 0));
    }

    #[test]
    fn rules_before_the_last_reset_are_dropped() {
        let program = assemble(&rules(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3},
            {"allow": true},
        ])))
        .unwrap();
        // Prologue + default allow only.
        assert_eq!(program.len(), 8);
        assert_eq!(program[6], insn(MOV64_IMM, R0, 0, 0, 1));
    }

    #[test]
    fn skip_offsets_land_after_the_block() {
        let program = assemble(&rules(serde_json::json!([
            {"allow": false},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        ])))
        .unwrap();
        // Block: type, major, minor, mov, and, jne, mov r0, exit = 8 instructions.
        let block = &program[6..14];
        assert_eq!(block[0].off, 7);
        assert_eq!(block[1].off, 6);
        assert_eq!(block[2].off, 5);
        assert_eq!(block[5].off, 2);
        assert_eq!(block[4].imm, ACC_MKNOD);
        assert_eq!(block[6], insn(MOV64_IMM, R0, 0, 0, 1));
        assert_eq!(program[14], insn(MOV64_IMM, R0, 0, 0, 0));
    }

    #[test]
    fn fifo_is_rejected_and_unknown_access_letters_ignored() {
        assert!(assemble(&rules(serde_json::json!([{"allow": true, "type": "p"}]))).is_err());
        assert_eq!(access_bits("f", Some("rwa")).unwrap(), ACC_READ | ACC_WRITE);
        assert_eq!(access_bits("f", Some("")).unwrap(), ACC_ALL);
    }
}
