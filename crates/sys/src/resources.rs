//! Process-wide resource settings made once at start-up: the descriptor limit raised to its hard
//! maximum, and an allocator that gives large freed buffers back to the system.

/// Raises `RLIMIT_NOFILE` to the hard limit (a default soft limit of 1,024 descriptors is a few
/// hundred players). Returns the limit now in force.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(raised.rlim_cur);
    }
    Ok(limit.rlim_cur)
}

/// Keeps glibc's mmap threshold fixed at 1 MiB: segment-sized buffers are mapped and unmapped on
/// their own instead of raising the threshold and piling up in per-thread heaps, so the resident
/// size follows the bodies actually held (the memory formula) rather than their history.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_descriptor_limit_reaches_the_hard_one() {
        let now = super::raise_descriptor_limit().unwrap();
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
        assert_eq!(now, limit.rlim_cur);
    }
}
