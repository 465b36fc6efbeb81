// SPDX-License-Identifier: GPL-2.0

//! Merging and unmerging.
//!
//! The page-table work is the kernel's own: the hook patch exports KSM's
//! `try_to_merge_one_page()` and `break_ksm()` (as `ksm_merge_one_page` and
//! `ksm_break_page`), which hold the rules this must follow on 6.12 — MMU-notifier ranges,
//! clear-and-flush before the reference-count check that keeps GUP-pinned pages out,
//! anon-exclusive handling, page locks only tried, a failed attempt leaving the mapping as
//! it was. This module decides what to merge and makes sure everything is unmerged again.
//!
//! Today only all-zero pages are merged, into the KSM zero page (the zero page mapped with a
//! dirty special PTE, which the kernel already un-accounts when it is unmapped or written).
//! The kernel counts them in `ksm_zero_pages` and per process in `/proc/PID/ksm_stat`.
//!
//! # Unmerging
//!
//! `run=2` and unload call [`unmerge_all`] with the merge lock held, so the scanner cannot
//! merge meanwhile. It walks every tracked VMA of every process and breaks each KSM zero
//! page. A fork during the walk can copy a zero page into a new process; the walk is
//! therefore repeated until a whole pass finds nothing left.

use crate::registry::MmSnapshot;
use crate::sys::{self, page, vm_area_struct};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

/// Merges `page`, mapped at `addr` of `vma`, into the KSM zero page if it is all zeros.
///
/// # Safety
///
/// The mmap lock of `vma`'s mm must be held, `vma` valid and tracked, and `page` the small
/// anonymous page mapped at `addr`, with one reference held by the caller.
pub(crate) unsafe fn merge_zero_page(
    vma: *mut vm_area_struct,
    page: *mut page,
    addr: usize,
) -> bool {
    // SAFETY: the caller's guarantees are those of ksm_merge_one_page().
    unsafe { sys::uksm_merge_zero_page(vma, page, addr) == 0 }
}

/// What [`unmerge_all`] did.
pub(crate) struct Unmerged {
    pub(crate) pages: u64,
    pub(crate) passes: u32,
    pub(crate) failures: u64,
}

/// Breaks every KSM zero page of every tracked VMA. The caller holds the merge lock.
pub(crate) fn unmerge_all() -> Result<Unmerged> {
    let mut done = Unmerged {
        pages: 0,
        passes: 0,
        failures: 0,
    };
    loop {
        let snapshot = MmSnapshot::take()?;
        let mut broken = 0;
        for &mm in snapshot.mms() {
            // SAFETY: the snapshot holds a reference on `mm`.
            unsafe { sys::uksm_mmap_read_lock(mm) };
            let mut addr = 0;
            loop {
                // SAFETY: `mm` is alive and its mmap lock held.
                let vma = unsafe { sys::uksm_find_vma(mm, addr) };
                if vma.is_null() {
                    break;
                }
                // SAFETY: `vma` was found under the mmap lock.
                let (start, end) = unsafe { (sys::uksm_vma_start(vma), sys::uksm_vma_end(vma)) };
                // SAFETY: as above.
                if !unsafe { sys::uksm_vma_private(vma) }.is_null() {
                    for a in (start..end).step_by(PAGE_SIZE) {
                        // SAFETY: `a` lies in `vma`, under the mmap lock.
                        match unsafe { sys::uksm_break_page(vma, a) } {
                            0 => {}
                            r if r > 0 => broken += 1,
                            _ => done.failures += 1,
                        }
                    }
                }
                addr = end;
            }
            // SAFETY: taken above.
            unsafe { sys::uksm_mmap_read_unlock(mm) };
        }
        done.pages += broken;
        done.passes += 1;
        if broken == 0 {
            return Ok(done);
        }
    }
}
