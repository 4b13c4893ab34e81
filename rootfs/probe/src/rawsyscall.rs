//! `probe rawsyscall ABI NR [ARG...]`: one system call by number through one of the CPU's syscall ABIs, for seccomp
//! tests of numbers that no name covers (syscalls newer than a profile, or than the kernel) and of the other ABIs
//! a filter must cover (i386 through `int 0x80`, x32 through bit 30 of the number).

use serde_json::{json, Value};

use crate::sys::{self, errno_name};
use crate::syscalls::parse_int;

/// `__X32_SYSCALL_BIT`: an x32 syscall is x86_64's entry with this bit set in the number.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

pub fn run(positional: &[String]) -> Result<Value, String> {
    let [abi, nr, args @ ..] = positional else {
        return Err("rawsyscall needs ABI NR [ARG...]".into());
    };
    let nr = parse_int(nr)?;
    let args = args
        .iter()
        .map(|a| parse_int(a))
        .collect::<Result<Vec<_>, _>>()?;
    if args.len() > 6 {
        return Err("rawsyscall takes at most 6 arguments".into());
    }
    let (number, result) = match abi.as_str() {
        "x86_64" => (nr, native(nr, &args)),
        "x32" => (nr | X32_SYSCALL_BIT, native(nr | X32_SYSCALL_BIT, &args)),
        "i386" if args.is_empty() => (nr, i386(nr)?),
        "i386" => return Err("rawsyscall i386 takes no arguments".into()),
        other => return Err(format!("unknown ABI {other:?}: x86_64, x32 or i386")),
    };
    Ok(match result {
        Ok(ret) => json!({
            "abi": abi, "nr": number, "args": args, "ret": ret, "errno": null, "errno_name": null
        }),
        Err(errno) => json!({
            "abi": abi, "nr": number, "args": args, "ret": null, "errno": errno, "errno_name": errno_name(errno)
        }),
    })
}

fn native(number: i64, args: &[i64]) -> Result<i64, i32> {
    let mut all = [0 as libc::c_long; 6];
    for (slot, value) in all.iter_mut().zip(args) {
        *slot = *value as libc::c_long;
    }
    // SAFETY: the test picks the call and passes integers only: it uses calls that take no pointers, or that a
    // filter stops before they run. The probe exits right after.
    unsafe { sys::raw_syscall(number as libc::c_long, all) }
}

/// A syscall through the i386 ABI: `int 0x80` from this 64-bit process, with the number in eax and the argument
/// registers as they are (so only for calls that take none, or that a filter stops).
#[cfg(target_arch = "x86_64")]
fn i386(nr: i64) -> Result<Result<i64, i32>, String> {
    let mut eax =
        u32::try_from(nr).map_err(|_| format!("i386 syscall number {nr} out of range"))?;
    // SAFETY: `int 0x80` returns the result in eax and clobbers r8-r11 on the way back to 64-bit code; nothing
    // else of ours changes.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inout("eax") eax,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    let ret = i64::from(eax as i32);
    Ok(if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret)
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn i386(_nr: i64) -> Result<Result<i64, i32>, String> {
    Err("the i386 ABI is only reachable from x86_64".into())
}
