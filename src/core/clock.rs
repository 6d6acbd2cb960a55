//! `loop.time()`: CLOCK_MONOTONIC, which is what CPython's `time.monotonic()`
//! reads on Linux and the BSDs, so both clocks agree to the nanosecond.

/// Seconds on the monotonic clock, as `time.monotonic()` returns them.
pub fn monotonic() -> f64 {
    // SAFETY: CLOCK_MONOTONIC exists on every platform we build for.
    seconds(unsafe { read(libc::clock_gettime) })
}

/// The clock's resolution in seconds, as `time.get_clock_info("monotonic")`.
pub fn resolution() -> f64 {
    // SAFETY: as above.
    seconds(unsafe { read(libc::clock_getres) })
}

/// Calls `clock_gettime` or `clock_getres` for CLOCK_MONOTONIC.
///
/// # Safety
/// `f` must be one of those two functions.
unsafe fn read(
    f: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int,
) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; with CLOCK_MONOTONIC the
    // call cannot fail.
    unsafe { f(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

fn seconds(ts: libc::timespec) -> f64 {
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let mut last = monotonic();
        for _ in 0..10_000 {
            let now = monotonic();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn resolution_is_positive_and_small() {
        let r = resolution();
        assert!(r > 0.0 && r < 0.01, "{r}");
    }
}
