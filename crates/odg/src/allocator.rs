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
//!   tens of microseconds, against milliseconds for the work it runs;
//! - gives every allocation of [`DIRECT_MIN_BYTES`] (64 KiB) or more its own anonymous mapping
//!   (`mmap`, grown with `mremap`, returned with `munmap`) instead of a mimalloc block. mimalloc v3
//!   puts blocks of 84-512 KiB (label values of 100 KiB, their YAML and JSON copies) 36 or so to
//!   a shared 4 MiB page and returns a page only when every block in it is free, so one cached
//!   100 KiB string kept up to 4 MiB resident, and the transient copies of the requests in flight
//!   left pages that cached blocks then pinned: with the memory tier's gauge at 19 MiB, an idle
//!   pod held 52 MiB above its start. A mapping of its own is resident exactly while its
//!   block lives, rounded to 4 KiB. The cost, a system call per large allocation and per free,
//!   is small beside what a large block is for (decoding, rendering, reading a layer).
//!
//! The cost on the warm-lookup throughput is in BENCHMARKS.md ("Memory bound"), measured beside
//! `--allocator-mode mimalloc-defaults`, which keeps mimalloc's defaults for that comparison.
//!
//! # Why `unsafe` here
//!
//! mimalloc reads its options from the environment once, while the process loads, before `main`
//! could set a variable; `mi_option_set` is the only way to change `purge_delay` from inside the
//! process, and libmimalloc-sys offers it as a raw FFI declaration. A global allocator is an
//! `unsafe` trait, and mapping memory is a system call on raw pointers. This module is the one
//! place in the workspace allowed `unsafe` (ARCHITECTURE.md, "Invariants"), for those (and for
//! reading the option back in its test).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::ValueEnum;

/// mimalloc keeps per-thread heaps small and returns whole freed pages to the system; with the
/// system allocator, large answers rendered on many blocking threads left hundreds of MiB of
/// fragmented arenas resident (see BENCHMARKS.md). Large blocks bypass it in bounded mode.
#[global_allocator]
static ALLOCATOR: BoundedAllocator = BoundedAllocator;

/// Allocations of this many bytes and more get a mapping of their own in bounded mode: every
/// size mimalloc would place in a shared medium (512 KiB) or large (4 MiB) page beside others,
/// and the singletons above them alike, so that one rule decides.
pub const DIRECT_MIN_BYTES: usize = 64 * 1024;

/// The alignment every mapping has (the smallest page size of the platforms we build for);
/// a layout asking for more stays with mimalloc.
const DIRECT_MAX_ALIGN: usize = 4096;

/// Whether new large allocations are mapped directly; set by [`configure`]. Frees never read it:
/// a block allocated before `main` (or before a mode change) is freed by whoever made it, told
/// apart by mimalloc's page map ([`is_direct`]).
static DIRECT_MAPPING: AtomicBool = AtomicBool::new(false);

/// mimalloc, except that large blocks get their own anonymous mapping while
/// [`DIRECT_MAPPING`] is on (see the module's header for why).
pub struct BoundedAllocator;

fn wants_direct(size: usize, align: usize) -> bool {
    cfg!(target_os = "linux")
        && size >= DIRECT_MIN_BYTES
        && align <= DIRECT_MAX_ALIGN
        && DIRECT_MAPPING.load(Ordering::Relaxed)
}

/// Whether `ptr`, allocated with `layout`, is one of our mappings: a large layout whose address
/// mimalloc does not know (its page map is the authority on its own blocks).
#[allow(unsafe_code)]
fn is_direct(ptr: *mut u8, layout: Layout) -> bool {
    layout.size() >= DIRECT_MIN_BYTES
        && layout.align() <= DIRECT_MAX_ALIGN
        // SAFETY: a lookup in mimalloc's page map; it reads no memory at `ptr`.
        && !unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn map(size: usize) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        address.cast()
    }
}

/// Returns a mapping made by [`map`] or [`remap`].
///
/// # Safety
/// `ptr` starts a mapping of ours of `size` bytes that nothing uses any more.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's guarantee.
    unsafe { libc::munmap(ptr.cast(), size) };
}

/// Resizes a mapping made by [`map`], moving it if need be; null if the system refuses.
///
/// # Safety
/// `ptr` starts a mapping of ours of `size` bytes; on success the old address is no longer valid.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
unsafe fn remap(ptr: *mut u8, size: usize, new_size: usize) -> *mut u8 {
    // SAFETY: the caller's guarantee; the kernel keeps the contents up to the smaller size.
    let moved = unsafe { libc::mremap(ptr.cast(), size, new_size, libc::MREMAP_MAYMOVE) };
    if moved == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        moved.cast()
    }
}

// Elsewhere `wants_direct` is always false, so no mapping is ever made and these never run.
#[cfg(not(target_os = "linux"))]
fn map(_size: usize) -> *mut u8 {
    std::ptr::null_mut()
}
#[cfg(not(target_os = "linux"))]
#[allow(unsafe_code)]
unsafe fn unmap(_ptr: *mut u8, _size: usize) {}
#[cfg(not(target_os = "linux"))]
#[allow(unsafe_code)]
unsafe fn remap(_ptr: *mut u8, _size: usize, _new_size: usize) -> *mut u8 {
    std::ptr::null_mut()
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for BoundedAllocator {
    // A mapping the system refuses (`vm.max_map_count` reached, say) falls back to mimalloc:
    // a block in a shared page costs memory, a failed allocation aborts the process.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if wants_direct(layout.size(), layout.align()) {
            let mapped = map(layout.size());
            if !mapped.is_null() {
                return mapped;
            }
        }
        // SAFETY: forwarded with the caller's guarantees (a non-zero size).
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if wants_direct(layout.size(), layout.align()) {
            // A new anonymous mapping reads as zeros.
            let mapped = map(layout.size());
            if !mapped.is_null() {
                return mapped;
            }
        }
        // SAFETY: as in `alloc`.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_direct(ptr, layout) {
            // SAFETY: `ptr` is the start of a mapping of `layout.size()` bytes made by `map` or
            // `mremap` below (the caller frees with the layout it allocated with), no longer used.
            unsafe { unmap(ptr, layout.size()) };
        } else {
            // SAFETY: a mimalloc block, forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_direct = is_direct(ptr, layout);
        let new_direct = wants_direct(new_size, layout.align());
        if !old_direct && !new_direct {
            // SAFETY: a mimalloc block, forwarded with the caller's guarantees.
            return unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        }
        if old_direct && new_direct {
            // SAFETY: `ptr` starts a mapping of `layout.size()` bytes of ours, handed back by
            // the caller; `realloc`'s contract lets the address change. On failure the old
            // mapping is untouched and the copy below is tried instead.
            let moved = unsafe { remap(ptr, layout.size(), new_size) };
            if !moved.is_null() {
                return moved;
            }
        }
        // Across the threshold (or the mode): a new block, the contents copied, the old freed.
        // SAFETY: `layout.align()` is a valid alignment and `new_size`, rounded up to it, does
        // not overflow `isize` (the caller's guarantee for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (the caller's guarantee).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap; the old
            // block is freed once, with the layout it was allocated with.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3 `mi_option_e`); libmimalloc-sys names
/// no constant for it. `tests::option_numbers_name_the_documented_defaults` pins the number
/// against the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How the allocator trades resident memory for allocation speed (`--allocator-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorMode {
    /// No transparent huge pages, freed pages returned at once, large blocks in mappings of
    /// their own, idle blocking threads gone after 1 s: RSS follows what is in use.
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
    DIRECT_MAPPING.store(true, Ordering::Relaxed);
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

    #[allow(unsafe_code)]
    fn owned_by_mimalloc(ptr: *mut u8) -> bool {
        // SAFETY: a lookup in mimalloc's page map.
        unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
    }

    #[allow(unsafe_code)]
    fn fill(ptr: *mut u8, length: usize) {
        for index in 0..length {
            // SAFETY: the callers pass blocks of at least `length` bytes.
            unsafe { ptr.add(index).write((index % 251) as u8) };
        }
    }

    #[allow(unsafe_code)]
    fn holds_pattern(ptr: *mut u8, length: usize) -> bool {
        // SAFETY: the callers pass blocks of at least `length` bytes.
        (0..length).all(|index| unsafe { ptr.add(index).read() } == (index % 251) as u8)
    }

    /// Large blocks move in and out of their own mappings as they grow and shrink, keeping
    /// their contents; a large block mimalloc made before bounded mode was on (as those made
    /// before `main` are) is still freed and grown correctly. Turning the mode on here affects
    /// the other tests of this process too, which is harmless: both paths are correct.
    #[test]
    #[allow(unsafe_code)]
    fn large_blocks_get_their_own_mappings_and_keep_their_contents() {
        DIRECT_MAPPING.store(true, Ordering::Relaxed);
        let allocator = BoundedAllocator;
        let large = Layout::from_size_align(100 * 1024, 8).unwrap();
        // SAFETY: non-zero sizes; every block is freed once, with the layout it has then.
        unsafe {
            let block = allocator.alloc(large);
            assert!(!block.is_null());
            assert!(!owned_by_mimalloc(block), "100 KiB is mapped directly");
            fill(block, large.size());

            let grown = allocator.realloc(block, large, 300 * 1024);
            assert!(!grown.is_null() && !owned_by_mimalloc(grown));
            assert!(holds_pattern(grown, large.size()));

            let shrunk =
                allocator.realloc(grown, Layout::from_size_align(300 * 1024, 8).unwrap(), 1024);
            assert!(owned_by_mimalloc(shrunk), "1 KiB goes back to mimalloc");
            assert!(holds_pattern(shrunk, 1024));

            let regrown = allocator.realloc(
                shrunk,
                Layout::from_size_align(1024, 8).unwrap(),
                200 * 1024,
            );
            assert!(!owned_by_mimalloc(regrown));
            assert!(holds_pattern(regrown, 1024));
            allocator.dealloc(regrown, Layout::from_size_align(200 * 1024, 8).unwrap());

            let zeroed = allocator.alloc_zeroed(large);
            assert!(!zeroed.is_null());
            assert!((0..large.size()).all(|index| zeroed.add(index).read() == 0));
            allocator.dealloc(zeroed, large);

            let small = Layout::from_size_align(DIRECT_MIN_BYTES - 1, 8).unwrap();
            let block = allocator.alloc(small);
            assert!(
                owned_by_mimalloc(block),
                "below the threshold mimalloc allocates"
            );
            allocator.dealloc(block, small);

            let over_aligned = Layout::from_size_align(100 * 1024, 2 * DIRECT_MAX_ALIGN).unwrap();
            let block = allocator.alloc(over_aligned);
            assert!(
                owned_by_mimalloc(block),
                "alignment beyond a page stays with mimalloc"
            );
            assert_eq!(block as usize % over_aligned.align(), 0);
            allocator.dealloc(block, over_aligned);

            let before_bounded = mimalloc::MiMalloc.alloc(large);
            fill(before_bounded, large.size());
            let moved = allocator.realloc(before_bounded, large, 150 * 1024);
            assert!(!owned_by_mimalloc(moved), "grown into a mapping of its own");
            assert!(holds_pattern(moved, large.size()));
            allocator.dealloc(moved, Layout::from_size_align(150 * 1024, 8).unwrap());

            let before_bounded = mimalloc::MiMalloc.alloc(large);
            assert!(
                !is_direct(before_bounded, large),
                "freed by mimalloc, never unmapped"
            );
            allocator.dealloc(before_bounded, large);
        }
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
