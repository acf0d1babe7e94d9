//! An allocator that remembers the largest single allocation, so a target
//! can hold a decoder to its memory limit whatever a length claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, watched. A target installs it with
/// `#[global_allocator] static ALLOC: Largest = Largest;`.
pub struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

impl Largest {
    /// Runs `f` and returns its result with the largest single allocation
    /// (or reallocation) made meanwhile.
    pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
        LARGEST.store(0, Ordering::Relaxed);
        let out = f();
        (out, LARGEST.load(Ordering::Relaxed))
    }
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}
