//! A global allocator that counts allocations and bytes while counting is switched on.
//!
//! This module is the one place in the workspace with `unsafe` code: implementing
//! [`GlobalAlloc`] is an `unsafe impl` by definition. Every method only forwards to
//! [`System`] with the caller's arguments unchanged and bumps atomic counters, so the safety
//! contract is exactly `System`'s. The benches crate takes the workspace lints with
//! `unsafe_code = "deny"` (not "forbid") so that this module can allow it locally.
//!
//! Counting costs one relaxed atomic load per allocation while off, so timings of code
//! measured with counting off are not disturbed.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// [`System`] plus counters. Install it in a bench with
/// `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

fn count_alloc(size: usize) {
    if ON.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(size as u64, Relaxed);
    }
}

fn count_free(size: usize) {
    if ON.load(Relaxed) {
        FREED.fetch_add(size as u64, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters do not touch the memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc(new_size);
        count_free(layout.size());
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Allocations (and reallocations) counted.
    pub allocations: u64,
    /// Bytes allocated.
    pub allocated: u64,
    /// Bytes freed.
    pub freed: u64,
}

impl Snapshot {
    /// The counters now.
    pub fn now() -> Self {
        Self {
            allocations: ALLOCATIONS.load(Relaxed),
            allocated: ALLOCATED.load(Relaxed),
            freed: FREED.load(Relaxed),
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Snapshot) -> Snapshot {
        Snapshot {
            allocations: self.allocations - earlier.allocations,
            allocated: self.allocated - earlier.allocated,
            freed: self.freed - earlier.freed,
        }
    }

    /// Bytes still allocated out of those counted (allocated minus freed).
    pub fn live_bytes(self) -> i64 {
        self.allocated as i64 - self.freed as i64
    }
}

/// Runs `f` with counting switched on and returns its result and what it allocated. Other
/// threads' allocations during `f` are counted too: measure on a quiet process.
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, Snapshot) {
    let before = Snapshot::now();
    ON.store(true, Relaxed);
    let result = f();
    ON.store(false, Relaxed);
    (result, Snapshot::now().since(before))
}

/// Allocations per call of `f`, averaged over `runs` calls (the results are dropped outside
/// the counted window).
pub fn allocations_per_call<R>(runs: u32, mut f: impl FnMut() -> R) -> f64 {
    let mut kept = Vec::with_capacity(runs as usize);
    let ((), counts) = counted(|| {
        for _ in 0..runs {
            kept.push(f());
        }
    });
    drop(kept);
    counts.allocations as f64 / f64::from(runs.max(1))
}

/// Allocations per call of `f` on inputs made by `setup`, averaged over `runs` calls; the
/// inputs are made before and the results dropped after the counted window.
pub fn allocations_per_call_with<I, R>(
    runs: u32,
    setup: impl FnMut() -> I,
    mut f: impl FnMut(I) -> R,
) -> f64 {
    let inputs: Vec<I> = std::iter::repeat_with(setup).take(runs as usize).collect();
    let mut kept = Vec::with_capacity(runs as usize);
    let ((), counts) = counted(|| {
        for input in inputs {
            kept.push(f(input));
        }
    });
    drop(kept);
    counts.allocations as f64 / f64::from(runs.max(1))
}
