//! One process-wide tuning that must be in place before the process starts.
//!
//! glibc before 2.40 copies with `rep movsb` on CPUs that report fast short
//! `rep movsb` (FSRM), which AMD sets from Zen 3 on. There `rep movsb` runs up to
//! 20 times slower when the destination is not aligned (glibc bug 30994; glibc
//! 2.40 stopped preferring it on AMD). libp2p's noise layer copies every byte a
//! peer sends into its frame buffer at unaligned offsets, so on such a machine
//! (Debian 12 ships glibc 2.36) a `vast bench-dataplane` client spent 27% more
//! CPU than with the copies done by glibc's vector loop (BENCHMARKS.md, "Cluster").
//! glibc reads its tunables only when a process starts, so `vast` re-executes
//! itself once with `glibc.cpu.x86_rep_movsb_threshold` raised, which is what the
//! later glibc does on its own. A `GLIBC_TUNABLES` that already sets that key is
//! left alone, and so is the re-executed process: it reads the key it was given
//! (glibc's `getenv` keeps the whole value).

/// The tunable that moves the switch to `rep movsb` out of reach.
pub const KEY: &str = "glibc.cpu.x86_rep_movsb_threshold";
/// Its value: above the sizes where glibc switches to non-temporal stores.
const VALUE: &str = "1073741824";

/// What `GLIBC_TUNABLES` should become, or `None` to leave the process as it is.
/// `current` is the variable's value, `affected` whether this machine has the
/// slow `rep movsb` and a glibc that prefers it.
pub fn tunables_with(current: Option<&str>, affected: bool) -> Option<String> {
    if !affected {
        return None;
    }
    match current {
        Some(c) if c.split(':').any(|t| t.split('=').next() == Some(KEY)) => None,
        // Ours first: glibc before 2.38 cuts the variable after the first tunable
        // in the process's own copy of the environment (what /proc shows), and
        // the user's tunables still apply after it.
        Some(c) if !c.is_empty() => Some(format!("{KEY}={VALUE}:{c}")),
        _ => Some(format!("{KEY}={VALUE}")),
    }
}

/// Re-executes this process with the tunable set when it helps; returns when it
/// does not (or when the exec fails, which leaves the process working, untuned).
pub fn tune_memcpy() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let current = std::env::var_os("GLIBC_TUNABLES");
        let current = match current.as_ref().map(|c| c.to_str()) {
            // A value we cannot read is not ours to extend.
            Some(None) => return,
            Some(Some(c)) => Some(c),
            None => None,
        };
        let Some(value) = tunables_with(current, affected()) else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_default();
        // `exec` returns only when it failed: go on untuned.
        let _ = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .exec();
    }
}

/// An AMD CPU with FSRM under a glibc older than 2.40.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn affected() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    let (vendor, fsrm) = {
        let v = __cpuid(0);
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&v.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&v.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&v.ecx.to_le_bytes());
        let fsrm = v.eax >= 7 && __cpuid_count(7, 0).edx & (1 << 4) != 0;
        (vendor, fsrm)
    };
    &vendor == b"AuthenticAMD" && fsrm && glibc_before(2, 40)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn glibc_before(major: u32, minor: u32) -> bool {
    extern "C" {
        fn gnu_get_libc_version() -> *const std::ffi::c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
    parse_version(&v.to_string_lossy()).is_some_and(|v| v < (major, minor))
}

/// `2.36` or `2.39.9000` as (major, minor).
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunables_are_added_once_and_never_override_the_users() {
        assert_eq!(tunables_with(None, false), None);
        assert_eq!(tunables_with(Some("glibc.a=1"), false), None);
        assert_eq!(
            tunables_with(None, true).as_deref(),
            Some("glibc.cpu.x86_rep_movsb_threshold=1073741824")
        );
        assert_eq!(
            tunables_with(Some(""), true).as_deref(),
            Some("glibc.cpu.x86_rep_movsb_threshold=1073741824")
        );
        assert_eq!(
            tunables_with(Some("glibc.malloc.check=0"), true).as_deref(),
            Some("glibc.cpu.x86_rep_movsb_threshold=1073741824:glibc.malloc.check=0")
        );
        // Set by the user, or by our own re-exec: left as it is.
        assert_eq!(
            tunables_with(Some("glibc.cpu.x86_rep_movsb_threshold=4096"), true),
            None
        );
        assert_eq!(
            tunables_with(
                Some("a.b=1:glibc.cpu.x86_rep_movsb_threshold=9:c.d=2"),
                true
            ),
            None
        );
        // A key that only starts the same is another key.
        assert!(tunables_with(Some("glibc.cpu.x86_rep_movsb_threshold_x=1"), true).is_some());
    }

    #[test]
    fn glibc_versions() {
        assert_eq!(parse_version("2.36"), Some((2, 36)));
        assert_eq!(parse_version("2.39.9000"), Some((2, 39)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("2.36").unwrap() < (2, 40));
        assert!(parse_version("2.40").unwrap() >= (2, 40));
    }
}
