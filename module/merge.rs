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
//! folio instead of mapping it again), then walks the page tables of every anonymous VMA
//! of every process (empty ranges cost nothing) and breaks each merged page and KSM zero
//! page (`break_ksm()`: the process gets a private copy). A process with no KSM zero page
//! is skipped as soon as no merged folio exists either. A fork during the walk can copy a
//! merged page into a new process; the walk is therefore repeated until a whole pass finds
//! nothing left. Then every node is detached from its (now unmapped) folio and freed.
//!
//! `run=2` stops with `EINTR` when the writer gets a signal. Unload cannot give up: a page
//! the kernel cannot copy (`ENOMEM`, a memory cgroup at its limit) is tried again for a
//! while; after that its folio is detached from its node and stays mapped as a KSM folio
//! without a node (the kernel copies it on write and frees it when unmapped), with a
//! warning in the kernel log.
//!
//! [`stable`]: crate::stable
//! [`unstable`]: crate::unstable

use crate::registry::MmSnapshot;
use crate::mm::{MmapReadGuard, VmaRef};
use crate::stable::{Mapped, Stable};
use crate::sys;
use crate::unstable::Unstable;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

/// Merges `m` into the KSM zero page if it is all zeros and the VMA allows KSM zero pages
/// ([`VmaRef::zero_pages_allowed`]).
pub(crate) fn merge_zero_page(m: &Mapped<'_>) -> bool {
    // SAFETY: `m.vma` is borrowed under its mmap lock and `m.page` is referenced, as
    // ksm_hooks_merge_zero() needs.
    m.vma.zero_pages_allowed()
        && unsafe { sys::ksm_hooks_merge_zero(m.vma.as_ptr(), m.addr, m.page.as_ptr()) } == 0
}

/// What the merge lock protects: the trees of the merge engine.
pub(crate) struct Engine {
    pub(crate) stable: Stable,
    pub(crate) unstable: Unstable,
    /// Times everything was unmerged: a VMA's record of its merged pages from before
    /// ([`MergedMap`](crate::merged_map::MergedMap)) no longer holds.
    pub(crate) unmerges: u64,
}

impl Engine {
    pub(crate) fn new() -> Self {
        Engine {
            stable: Stable::new(),
            unstable: Unstable::new(),
            unmerges: 0,
        }
    }
}

/// What [`unmerge_all`] did.
pub(crate) struct Unmerged {
    pub(crate) pages: u64,
    pub(crate) passes: u32,
    /// Pages the kernel could not copy at first (out of memory).
    pub(crate) failures: u64,
    /// Folios left mapped without a node (unload only, after failures).
    pub(crate) detached: usize,
}

/// How long unload keeps trying pages the kernel cannot copy, in passes 100 ms apart.
const UNLOAD_RETRY_PASSES: u32 = 300;

/// Breaks every merged page and KSM zero page of every process and frees every node. The
/// caller holds the merge lock (and so owns `engine`). With `interruptible` (run=2 from a
/// process), a signal ends it with `EINTR`.
pub(crate) fn unmerge_all(engine: &mut Engine, interruptible: bool) -> Result<Unmerged> {
    // SAFETY: a flag the kernel reads; cleared again below.
    unsafe { sys::ksm_hooks_set_unmerging(true) };
    engine.unmerges += 1;
    let result = unmerge_passes(engine, interruptible);
    // SAFETY: as above.
    unsafe { sys::ksm_hooks_set_unmerging(false) };
    result
}

/// Breaks the merged pages of one VMA; returns (broken, failed), or `EINTR`.
fn unmerge_vma(
    guard: &MmapReadGuard<'_>,
    vma: VmaRef<'_>,
    folios: bool,
    interruptible: bool,
) -> Result<(u64, u64)> {
    let (mut broken, mut failed) = (0, 0);
    let mut addr = vma.start();
    // Without merged folios, most processes have no KSM zero page, or none left.
    while folios || guard.ksm_zero_pages() > 0 {
        // SAFETY: no precondition.
        if interruptible && unsafe { sys::uksm_signal_pending() } {
            return Err(EINTR);
        }
        let Some((at, page)) = vma.next_page(addr, vma.end()) else {
            break;
        };
        // A KSM zero page comes as `None`.
        if page.map_or(true, |page| page.is_ksm()) {
            match vma.break_merged(at) {
                0 => broken += 1,
                _ => failed += 1,
            }
        }
        addr = at + PAGE_SIZE;
    }
    Ok((broken, failed))
}

fn unmerge_passes(engine: &mut Engine, interruptible: bool) -> Result<Unmerged> {
    let mut done = Unmerged {
        pages: 0,
        passes: 0,
        failures: 0,
        detached: 0,
    };
    let mut failing_passes = 0;
    loop {
        let folios = !engine.stable.is_empty();
        let snapshot = MmSnapshot::take()?;
        let (mut broken, mut failed) = (0, 0);
        let mut interrupted = false;
        snapshot.for_each_vma(|guard, vma| {
            // Merged pages are only ever in anonymous VMAs (tracked ones and their copies)
            // that have had anonymous pages (an anon_vma).
            if !vma.may_hold_anon_pages() || interrupted {
                return;
            }
            match unmerge_vma(guard, vma, folios, interruptible) {
                Ok((b, f)) => {
                    broken += b;
                    failed += f;
                }
                Err(_) => interrupted = true,
            }
        });
        done.pages += broken;
        done.failures += failed;
        done.passes += 1;
        if interrupted {
            return Err(EINTR);
        }
        if broken > 0 {
            continue;
        }
        // A break that failed left its page merged: try again a while; unload then
        // detaches what is left.
        let force = !interruptible && failing_passes >= UNLOAD_RETRY_PASSES;
        let still_mapped = engine.stable.release(force);
        if force {
            done.detached = still_mapped;
            return Ok(done);
        }
        if still_mapped == 0 && failed == 0 {
            return Ok(done);
        }
        failing_passes += 1;
        if failing_passes % 50 == 0 {
            pr_warn!(
                "unmerging: {} merged pages could not be copied yet ({} folios still mapped); retrying\n",
                failed,
                still_mapped
            );
        }
        // SAFETY: no lock but the merge lock (a mutex) is held.
        if interruptible && unsafe { sys::uksm_signal_pending() } {
            return Err(EINTR);
        }
        // SAFETY: as above.
        unsafe { sys::uksm_msleep(100) };
    }
}
