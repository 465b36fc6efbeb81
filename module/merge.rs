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
//! All-zero pages are merged into the KSM zero page (the zero page mapped with a dirty
//! special PTE, which the kernel already un-accounts when it is unmapped or written). The
//! kernel counts them in `ksm_zero_pages` and per process in `/proc/PID/ksm_stat`. Other
//! identical pages are merged into one KSM folio each, owned by the [`stable`] tree; the
//! [`unstable`] table pairs the first two copies of a content.
//!
//! # Unmerging
//!
//! `run=2` and unload call [`unmerge_all`] with the merge lock held, so the scanner cannot
//! merge meanwhile. It first tells the kernel it is unmerging (swap-in then copies a KSM
//! folio instead of mapping it again), then walks every anonymous VMA of every process and
//! breaks each merged page (`break_ksm()`: the process gets a private copy). A process with
//! no KSM zero page is skipped as soon as no merged folio exists either. A fork during the
//! walk can copy a merged page into a new process; the walk is therefore repeated until a
//! whole pass finds nothing left. Then every node is detached from its (now unmapped)
//! folio and freed; a folio still mapped somehow makes the walk start again.
//!
//! [`stable`]: crate::stable
//! [`unstable`]: crate::unstable

use crate::registry::MmSnapshot;
use crate::stable::Stable;
use crate::sys::{self, page, vm_area_struct};
use crate::unstable::Unstable;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

/// Merges `page`, mapped at `addr` of `vma`, into the KSM zero page if it is all zeros.
///
/// VMAs registered with userfaultfd are left alone: the KSM zero PTE would not carry a
/// write-protect marker, and a monitor must see every missing or protected page as it
/// left it. So are VMAs a fork does not copy (`MADV_DONTFORK`, `MADV_WIPEONFORK`): the
/// child of a fork inherits the parent's count of KSM zero pages, including ones in such
/// VMAs it never maps, and the global count would never return to 0.
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
    // SAFETY: the caller's guarantees are those of ksm_merge_one_page(); `vma` is valid
    // under the mmap lock for the flag tests.
    unsafe {
        !sys::uksm_vma_uffd_armed(vma)
            && !sys::uksm_vma_not_copied_on_fork(vma)
            && sys::uksm_merge_zero_page(vma, page, addr) == 0
    }
}

/// What the merge lock protects: the trees of the merge engine.
pub(crate) struct Engine {
    pub(crate) stable: Stable,
    pub(crate) unstable: Unstable,
}

impl Engine {
    pub(crate) fn new() -> Self {
        Engine {
            stable: Stable::new(),
            unstable: Unstable::new(),
        }
    }
}

/// What [`unmerge_all`] did.
pub(crate) struct Unmerged {
    pub(crate) pages: u64,
    pub(crate) passes: u32,
    pub(crate) failures: u64,
}

/// Breaks every merged page and KSM zero page of every process and frees every node. The
/// caller holds the merge lock (and so owns `engine`).
pub(crate) fn unmerge_all(engine: &mut Engine) -> Result<Unmerged> {
    // SAFETY: a flag the kernel reads; cleared again below (and at unregistration).
    unsafe { sys::uksm_set_unmerging(true) };
    let result = unmerge_passes(engine);
    // SAFETY: as above.
    unsafe { sys::uksm_set_unmerging(false) };
    result
}

fn unmerge_passes(engine: &mut Engine) -> Result<Unmerged> {
    let mut done = Unmerged {
        pages: 0,
        passes: 0,
        failures: 0,
    };
    loop {
        let folios = !engine.stable.is_empty();
        let snapshot = MmSnapshot::take()?;
        let mut broken = 0;
        snapshot.for_each_vma(|vma| {
            // SAFETY: `for_each_vma` passes valid VMAs under their mmap lock.
            let (start, end, anonymous) = unsafe {
                let anonymous = sys::uksm_vma_is_anonymous(vma) && sys::uksm_vma_has_anon_vma(vma);
                (sys::uksm_vma_start(vma), sys::uksm_vma_end(vma), anonymous)
            };
            // SAFETY: as above.
            let mm = unsafe { sys::uksm_vma_mm(vma) };
            // Merged pages are only ever in anonymous VMAs (tracked ones and their copies)
            // that have had anonymous pages (an anon_vma).
            if !anonymous {
                return;
            }
            for a in (start..end).step_by(PAGE_SIZE) {
                // Without merged folios, most processes have no KSM zero page, or none
                // left: stop looking.
                // SAFETY: `mm` is alive while its mmap lock is held.
                if !folios && unsafe { sys::uksm_mm_ksm_zero_pages(mm) } == 0 {
                    break;
                }
                // SAFETY: `a` lies in `vma`, under the mmap lock.
                match unsafe { sys::uksm_break_page(vma, a) } {
                    0 => {}
                    r if r > 0 => broken += 1,
                    _ => done.failures += 1,
                }
            }
        });
        done.pages += broken;
        done.passes += 1;
        if broken == 0 {
            let still_mapped = engine.stable.detach_unmapped();
            if still_mapped == 0 {
                return Ok(done);
            }
            if done.passes % 16 == 0 {
                pr_warn!(
                    "unmerging: {} merged pages are mapped where no walk finds them yet; retrying\n",
                    still_mapped
                );
                // SAFETY: no lock but the merge lock (a mutex) is held.
                unsafe { sys::uksm_msleep(100) };
            }
        }
    }
}
