//! The global allocator (mimalloc) and the settings that keep the resident set near what is in use.
//!
//! # Why these settings
//!
//! With mimalloc's defaults a pod bounded to a 24 MiB memory tier reached 283-294 MiB of RSS
//! serving descriptors with large label values (issue 9): mimalloc advises its 1 GiB arena for
//! transparent huge pages, so every 64 KiB it touches can pull in a whole 2 MiB page (108-180 MiB of
//! `AnonHugePages`), and it returns freed pages to the system only after a delay and only when
//! it is next called, so an idle pod never shrank. `AllocatorMode::Bounded` (the default):
//!
//! - disables transparent huge pages for the process (`PR_SET_THP_DISABLE`, a safe call through
//!   rustix). It overrides the `MADV_HUGEPAGE` advice mimalloc gave its arena at load time and
//!   holds under the system setting `always` too;
//! - purges freed pages at once (mimalloc's `purge_delay` 0) instead of 1 s later at the next
//!   allocator call, so what a burst of requests freed leaves the resident set with them;
//! - lets idle blocking-pool threads exit after 1 s instead of tokio's 10 s: each thread's
//!   mimalloc heap keeps the pages it allocated from until the thread exits (then whatever is
//!   free goes back), and a burst of disk-tier I/O and decoding leaves a dozen such threads.
//!   Measured with nothing cached (`odg-bench memory --memory-cache-mib 1`): 11 threads still
//!   alive after 10 s idle held the RSS 42 MiB above its start. Starting a thread again costs
//!   tens of microseconds, against milliseconds for the work it runs.
//!
//! The cost on the warm-lookup throughput is in BENCHMARKS.md ("Memory bound"), measured beside
//! `--allocator-mode mimalloc-defaults`, which keeps mimalloc's defaults for that comparison.
//!
//! # Why `unsafe` here
//!
//! mimalloc reads its options from the environment once, while the process loads, before `main`
//! could set a variable; `mi_option_set` is the only way to change `purge_delay` from inside the
//! process, and libmimalloc-sys offers it as a raw FFI declaration. This module is the one place
//! in the workspace allowed `unsafe` (ARCHITECTURE.md, "Invariants"), for that call (and for
//! reading the option back in its test).

use std::time::Duration;

use clap::ValueEnum;

/// mimalloc keeps per-thread heaps small and returns whole freed pages to the system; with the
/// system allocator, large answers rendered on many blocking threads left hundreds of MiB of
/// fragmented arenas resident (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3 `mi_option_e`); libmimalloc-sys names
/// no constant for it. `tests::option_numbers_name_the_documented_defaults` pins the number
/// against the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How the allocator trades resident memory for allocation speed (`--allocator-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorMode {
    /// No transparent huge pages, freed pages returned at once, idle blocking threads gone
    /// after 1 s: RSS follows what is in use.
    Bounded,
    /// mimalloc's defaults (huge pages allowed, delayed purging): the baseline the benchmarks
    /// compare against.
    MimallocDefaults,
}

/// Applies `mode` to the running process; called first thing in `main`, before the runtime
/// starts threads. A setting the system refuses is logged and skipped: it costs memory, not
/// correctness.
pub fn configure(mode: AllocatorMode) {
    if mode == AllocatorMode::MimallocDefaults {
        return;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%error, "could not disable transparent huge pages; RSS may exceed the cache bounds");
    }
    set_purge_delay_ms(0);
}

/// How long an idle blocking-pool thread lives; `None` keeps tokio's default (10 s).
pub fn blocking_thread_keep_alive(mode: AllocatorMode) -> Option<Duration> {
    match mode {
        AllocatorMode::Bounded => Some(Duration::from_secs(1)),
        AllocatorMode::MimallocDefaults => None,
    }
}

#[allow(unsafe_code)]
fn set_purge_delay_ms(milliseconds: i64) {
    // SAFETY: `mi_option_set` takes plain integers and only stores the value in mimalloc's
    // option table (an atomic word read on every later purge decision); it dereferences
    // nothing of ours, and an option number out of range is ignored by mimalloc.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds as _) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn option(option: libmimalloc_sys::mi_option_t) -> std::ffi::c_long {
        // SAFETY: reads one integer from mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    #[test]
    fn option_numbers_name_the_documented_defaults() {
        // mimalloc v3 documents purge_delay's default as 1000 ms (`options.c`); the test
        // process has not configured anything, so reading the number must give that.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(option(MI_OPTION_PURGE_DELAY), 1000);
        }
    }
}
