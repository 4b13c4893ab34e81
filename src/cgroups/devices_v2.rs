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
//! The program is attached with `BPF_F_ALLOW_MULTI`, beside any others on the cgroup (systemd
//! attaches its own to a unit with `DeviceAllow=`): the kernel grants only what every program
//! of the cgroup and of its ancestors grants, so nothing below can loosen it. husk's program is
//! named `husk_devs`; a new one replaces it (`BPF_F_REPLACE`).
//!
//! Rules add to those in force, as successive writes to v1's `devices.allow` / `devices.deny`
//! do: a list without a type `a` rule (an `update` adding one device, say) is checked before the
//! rules of the program already attached, which the kernel hands back (`BPF_OBJ_GET_INFO_BY_FD`,
//! its translated instructions: this program type has no context rewriting, so they are the ones
//! loaded). Each rule's block jumps only within itself, so the new blocks followed by the old
//! program's body make one valid program. A program husk did not make is not extended.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

// From <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;
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

/// The instructions every program of [`assemble`] starts with: they load the request into
/// registers r2 to r5.
const PROLOGUE: [Insn; 6] = [
    insn(LDX_MEM_W, R2, R1, 0, 0), // access_type
    insn(MOV32_REG, R3, R2, 0, 0),
    insn(AND32_IMM, R3, 0, 0, 0xffff), // device type
    insn(RSH32_IMM, R2, 0, 0, 16),     // requested access
    insn(LDX_MEM_W, R4, R1, 4, 0),     // major
    insn(LDX_MEM_W, R5, R1, 8, 0),     // minor
];

/// The program for `rules` on top of `previous` (a program of [`assemble`] in force): the new
/// rules' blocks are tested first, then the previous program's, ending with its default. With a
/// type `a` rule in `rules` (which resets everything) `previous` does not count.
pub fn assemble_on_top(
    rules: &[LinuxDeviceCgroup],
    previous: Option<&[Insn]>,
) -> Result<Vec<Insn>, CgroupError> {
    let resets = rules
        .iter()
        .any(|r| r.typ().unwrap_or_default() == LinuxDeviceType::A);
    let mut program = assemble(rules)?;
    let Some(previous) = previous.filter(|_| !resets) else {
        return Ok(program);
    };
    let body = previous.strip_prefix(&PROLOGUE[..]).ok_or_else(|| {
        CgroupError::Unsupported(
            "linux.resources.devices: the cgroup's device filter was not made by husk, so rules \
             cannot be added to it"
                .into(),
        )
    })?;
    // Drop the new program's default (its last two instructions) for the previous rules.
    program.truncate(program.len() - 2);
    program.extend_from_slice(body);
    Ok(program)
}

/// Assembles the filter program for `rules`.
pub fn assemble(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    let last_reset = rules
        .iter()
        .rposition(|r| r.typ().unwrap_or_default() == LinuxDeviceType::A);
    let default_allow = last_reset.is_some_and(|i| rules[i].allow());
    let first_effective = last_reset.map_or(0, |i| i + 1);

    let mut program = PROLOGUE.to_vec();
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

/// `union bpf_attr` as used by `BPF_PROG_QUERY`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

/// `union bpf_attr` as used by `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` as used by `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct GetInfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info`, up to the program's name (the kernel fills at most
/// `info_len` bytes).
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    typ: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// The name husk's programs are loaded with, to tell them from others (systemd's) attached to
/// the same cgroup.
const PROGRAM_NAME: &[u8] = b"husk_devs";

/// Longest program read back: far more than any rule list makes (at most 12 per rule).
const MAX_READ_BACK: usize = 64 * 1024;

/// A device program of husk's attached to a cgroup.
struct Attached {
    fd: OwnedFd,
    insns: Vec<Insn>,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program; its translated instructions go to `insns` (if any).
fn program_info(fd: &OwnedFd, insns: &mut [Insn]) -> io::Result<ProgInfo> {
    let mut info = ProgInfo {
        xlated_prog_len: std::mem::size_of_val(insns) as u32,
        xlated_prog_insns: insns.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut attr = GetInfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// husk's device program attached to `cgroup` itself, if any, among those attached there.
fn attached_program(cgroup: &std::fs::File, dir: &Path) -> Result<Option<Attached>, CgroupError> {
    let failed = |what: &str, source| CgroupError::Bpf {
        op: format!("{what} the device programs of {}", dir.display()),
        source,
    };
    let mut ids = [0u32; 64];
    let mut query = ProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut query).map_err(|e| failed("querying", e))?;
    for id in &ids[..(query.prog_cnt as usize).min(ids.len())] {
        let mut by_id = GetFdByIdAttr {
            prog_id: *id,
            ..Default::default()
        };
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) {
            Ok(fd) => fd,
            // Detached and freed since the query.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(failed("opening", e)),
        };
        // SAFETY: a successful BPF_PROG_GET_FD_BY_ID returns a new file descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let info = program_info(&fd, &mut []).map_err(|e| failed("reading", e))?;
        if !info.name.starts_with(PROGRAM_NAME) {
            continue;
        }
        let mut insns = vec![insn(0, 0, 0, 0, 0); MAX_READ_BACK];
        let info = program_info(&fd, &mut insns).map_err(|e| failed("reading", e))?;
        let count = info.xlated_prog_len as usize / std::mem::size_of::<Insn>();
        if count > insns.len() {
            return Err(CgroupError::Unsupported(format!(
                "linux.resources.devices: the device filter of {} is too long to extend",
                dir.display()
            )));
        }
        insns.truncate(count);
        return Ok(Some(Attached { fd, insns }));
    }
    Ok(None)
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
    attr.prog_name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME);
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
/// filter attached before: with a type `a` rule in `rules`, the new filter has only `rules`;
/// otherwise they are added on top of the rules of the filter in force (see the module docs).
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let resets = rules
        .iter()
        .any(|r| r.typ().unwrap_or_default() == LinuxDeviceType::A);
    let attached = attached_program(&cgroup, dir)?;
    let previous = attached.as_ref().filter(|_| !resets);
    let program = assemble_on_top(rules, previous.map(|a| a.insns.as_slice()))?;
    let program_fd = load(&program)?;
    // Attached with BPF_F_ALLOW_MULTI, beside programs others attach there (systemd's for a
    // unit's DeviceAllow=; the kernel allows only what every one allows), replacing husk's own.
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    if let Some(old) = &attached {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = old.fd.as_raw_fd() as u32;
    }
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

    /// Runs a program of [`assemble`] on one request, as the kernel would: true if allowed.
    fn run(program: &[Insn], dev_type: i32, major: i32, minor: i32, access: i32) -> bool {
        let mut r = [0u32; 7];
        let ctx = [
            ((access << 16) | dev_type) as u32,
            major as u32,
            minor as u32,
        ];
        let mut pc = 0;
        loop {
            let i = program[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[i.off as usize / 4],
                MOV32_REG => r[dst] = r[src],
                AND32_IMM => r[dst] &= i.imm as u32,
                RSH32_IMM => r[dst] >>= i.imm,
                MOV64_IMM => r[dst] = i.imm as u32,
                JNE_IMM if r[dst] != i.imm as u32 => pc += i.off as usize,
                JEQ_IMM if r[dst] == i.imm as u32 => pc += i.off as usize,
                JNE_IMM | JEQ_IMM => {}
                EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn rules_on_top_are_checked_before_the_previous_ones() {
        let created = assemble(&rules(serde_json::json!([
            {"allow": false},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
        ])))
        .unwrap();
        let added = rules(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        ]));
        let updated = assemble_on_top(&added, Some(&created)).unwrap();
        let (null, zero, kmsg) = ((1, 3), (1, 5), (1, 11));
        let allowed =
            |p: &[Insn], (major, minor): (i32, i32), access| run(p, DEV_CHAR, major, minor, access);
        // Before: null rw, zero r, kmsg nothing.
        assert!(allowed(&created, null, ACC_WRITE));
        assert!(allowed(&created, zero, ACC_READ));
        assert!(!allowed(&created, kmsg, ACC_WRITE));
        // After: kmsg w added, null w taken back, the rest as before.
        assert!(allowed(&updated, kmsg, ACC_WRITE));
        assert!(!allowed(&updated, kmsg, ACC_READ));
        assert!(!allowed(&updated, null, ACC_WRITE));
        assert!(allowed(&updated, null, ACC_READ));
        assert!(allowed(&updated, zero, ACC_READ));
        assert!(!allowed(&updated, zero, ACC_WRITE));
        assert!(!run(&updated, DEV_BLOCK, 7, 0, ACC_READ));
        // A reset in the new rules drops the previous ones.
        let reset = rules(serde_json::json!([{"allow": false}]));
        let fresh = assemble_on_top(&reset, Some(&created)).unwrap();
        assert!(!allowed(&fresh, null, ACC_WRITE));
        // A program husk did not make is not extended.
        assert!(assemble_on_top(&added, Some(&created[1..])).is_err());
    }

    #[test]
    fn fifo_is_rejected_and_unknown_access_letters_ignored() {
        assert!(assemble(&rules(serde_json::json!([{"allow": true, "type": "p"}]))).is_err());
        assert_eq!(access_bits("f", Some("rwa")).unwrap(), ACC_READ | ACC_WRITE);
        assert_eq!(access_bits("f", Some("")).unwrap(), ACC_ALL);
    }
}
