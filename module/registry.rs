// SPDX-License-Identifier: GPL-2.0

//! The VMA registry: one [`VmaSlot`] for every VMA the module may merge pages of.
//!
//! # Which VMAs
//!
//! A VMA is tracked when it is anonymous (`vma_is_anonymous()`: no `vm_ops`, which includes
//! private mappings of /dev/zero) and has none of the flags in
//! `uksm_vm_flags_unmergeable()`: `VM_SHARED`, `VM_MAYSHARE` (shared memory is not
//! copy-on-write), `VM_PFNMAP`, `VM_IO`, `VM_MIXEDMAP` (no normal pages), `VM_HUGETLB`,
//! `VM_DROPPABLE`,
//! `VM_DONTEXPAND` (special mappings: vdso, vvar, driver mappings), `VM_GROWSDOWN` and
//! `VM_GROWSUP` (stacks change their range outside the VMA hooks). These properties are set
//! before a VMA is linked and never change afterwards, so a VMA's eligibility is decided
//! once, when it is linked or adopted.
//!
//! # Lifetime
//!
//! The hook patch calls [`Registry::adopt`] whenever a VMA becomes visible in an mm and
//! [`Registry::release`] before any VMA carrying a `ksm_private` pointer is freed. A slot
//! therefore never outlives its VMA, and the `vma` pointer of a slot is valid while the
//! registry lock is held. Range changes (split, merge, expand, shrink) keep the object, so
//! page counts are read from the VMA, never cached.
//!
//! `vma->ksm_private` points at the VMA's slot exactly while the slot is in the tree; both
//! change only under the registry lock.
//!
//! # Locking
//!
//! The registry lock is a spinlock taken inside `mmap_lock` (hooks run with it held) and
//! never the other way round. Nothing sleeps under it.

use crate::logic::governor::RUNGS;
use crate::logic::ladder::VmaScan;
use crate::merged_map::{self, MergedMap};
use crate::mm::{MmGrab, MmRef, MmapReadGuard, VmaRef};
use crate::sys;
use crate::sys::{mm_struct, vm_area_struct};
use core::ffi::c_void;
use core::ptr;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// What the module keeps per tracked VMA.
pub(crate) struct VmaSlot {
    vma: *mut vm_area_struct,
    /// Where the VMA is on the sampling ladder and in its pass (uksmd's record).
    scan: VmaScan,
    /// The pages the module merged (lent to uksmd while it samples the VMA).
    merged: MergedMap,
    /// The epoch in which the VMA's current pass was first sampled (`None`: not yet).
    began: Option<u64>,
}

// SAFETY: a slot is only a handle; the VMA it points to is accessed only under the
// registry lock, from any thread, while the hooks guarantee it is alive (see module doc).
unsafe impl Send for VmaSlot {}

/// The tree of slots, keyed by VMA address.
pub(crate) struct Registry {
    slots: RBTree<usize, VmaSlot>,
    vmas: usize,
    /// Set once at unload: no VMA is adopted any more.
    closing: bool,
    /// Times a hook disagreed with the tree (a VMA linked twice, or released unknown).
    anomalies: u64,
    /// The scan epoch (`full_scans`): it ends when every VMA tracked when it began has
    /// been sampled all over within it, in a pass begun and completed in the epoch (VMAs
    /// adopted during an epoch are not waited for). The unstable table lives for an
    /// epoch, so any two identical pages of those VMAs meet in it: with a pass that began
    /// in the epoch before counted instead, the pages a VMA sampled then and those its
    /// partners sample now were never in one table (pairs of pages of two processes
    /// stayed unmerged pass after pass).
    epoch: u64,
    /// VMAs the current epoch still waits for.
    unpassed: usize,
    /// VMAs on each rung.
    on_rung: [usize; RUNGS],
}

/// What [`Registry::next_in_rung`] found.
pub(crate) enum Next {
    /// A VMA of the rung.
    Found(Target),
    /// None among the slots looked at; continue at this key.
    Skipped(usize),
    /// No more VMAs of the rung after the key.
    End,
}

/// A tracked VMA picked for scanning: where it was when picked, and its mm held alive.
///
/// The VMA itself may go away as soon as the registry lock is dropped; the scanner looks
/// it up again under the mm's mmap lock before touching it.
pub(crate) struct Target {
    /// Registry key (the VMA's address).
    pub(crate) key: usize,
    pub(crate) vma: *mut vm_area_struct,
    /// Start of the VMA when picked.
    pub(crate) start: usize,
    /// Pages of the VMA when picked.
    pub(crate) pages: u64,
    pub(crate) mm: MmRef,
    /// The VMA's ladder record when picked (written back with [`Registry::store_scan`]).
    pub(crate) scan: VmaScan,
    /// The VMA's merged pages, taken from its slot and given back by `store_scan` (if
    /// the VMA went meanwhile, they are dropped with the target).
    pub(crate) merged: MergedMap,
}

/// Whether the module may merge pages of `vma`.
///
/// # Safety
///
/// `vma` must be a valid VMA whose flags, `vm_ops` and mm are settled (linked, or looked up
/// under its mm's mmap lock).
pub(crate) unsafe fn is_eligible(vma: *const vm_area_struct) -> bool {
    // SAFETY: the caller guarantees `vma` is valid.
    unsafe {
        sys::uksm_vma_is_anonymous(vma)
            && sys::uksm_vma_flags(vma) & sys::uksm_vm_flags_unmergeable() == 0
    }
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            slots: RBTree::new(),
            vmas: 0,
            closing: false,
            anomalies: 0,
            epoch: 0,
            unpassed: 0,
            on_rung: [0; RUNGS],
        }
    }

    /// Starts tracking `vma` if it is eligible and not tracked yet.
    ///
    /// `reservation` was allocated before the lock was taken; it is dropped if unused.
    ///
    /// # Safety
    ///
    /// `vma` must be linked in its mm, with that mm's mmap lock held (the hook contract, or
    /// the adoption walk).
    pub(crate) unsafe fn adopt(
        &mut self,
        vma: *mut vm_area_struct,
        reservation: RBTreeNodeReservation<usize, VmaSlot>,
    ) {
        // SAFETY: `vma` is valid (caller).
        if self.closing || !unsafe { sys::uksm_vma_private(vma) }.is_null() {
            return;
        }
        let key = vma as usize;
        if self
            .slots
            .insert(reservation.into_node(
                key,
                VmaSlot {
                    vma,
                    scan: VmaScan::new(self.epoch),
                    merged: MergedMap::new(0),
                    began: None,
                },
            ))
            .is_some()
        {
            // A VMA at this address was never released: its memory was reused without the
            // free hook. Keep the new one.
            self.anomalies += 1;
        } else {
            self.vmas += 1;
            self.on_rung[0] += 1;
        }
        let slot = self
            .slots
            .get(&key)
            .map_or(ptr::null(), |s| s as *const VmaSlot);
        // SAFETY: `vma` is valid (caller); the slot stays at this address until released
        // (tree nodes are boxed).
        unsafe { sys::uksm_vma_set_private(vma, slot as *mut c_void) };
    }

    /// Stops tracking `vma`, which is about to be freed. Returns its slot, to be dropped
    /// outside the lock (its merged-page map may hold many chunks).
    ///
    /// # Safety
    ///
    /// `vma` must be valid (not yet freed).
    #[must_use]
    pub(crate) unsafe fn release(&mut self, vma: *mut vm_area_struct) -> Option<VmaSlot> {
        // Re-read under the lock: unload may have detached it meanwhile.
        // SAFETY: `vma` is valid (caller).
        if unsafe { sys::uksm_vma_private(vma) }.is_null() {
            return None;
        }
        // SAFETY: as above.
        unsafe { sys::uksm_vma_set_private(vma, ptr::null_mut()) };
        let slot = self.slots.remove(&(vma as usize));
        match &slot {
            Some(slot) => {
                self.vmas -= 1;
                self.on_rung[slot.scan.rung] -= 1;
                if slot.scan.passed != self.epoch {
                    self.unpassed -= 1;
                }
            }
            None => self.anomalies += 1,
        }
        slot
    }

    /// Detaches every slot from its VMA and refuses new ones; returns the tree to be freed
    /// outside the lock.
    pub(crate) fn close(&mut self) -> RBTree<usize, VmaSlot> {
        self.closing = true;
        for slot in self.slots.values() {
            // SAFETY: the slot is in the tree, so its VMA is alive.
            unsafe { sys::uksm_vma_set_private(slot.vma, ptr::null_mut()) };
        }
        self.vmas = 0;
        self.on_rung = [0; RUNGS];
        core::mem::take(&mut self.slots)
    }

    /// Number of tracked VMAs.
    pub(crate) fn vmas(&self) -> usize {
        self.vmas
    }

    pub(crate) fn anomalies(&self) -> u64 {
        self.anomalies
    }

    /// The mm of the tracked VMA with registry key `key`, if it is still tracked and not
    /// held for thrashing (its pages are not merged then, on either side of a pair).
    pub(crate) fn mm_at(&self, key: usize, now_ms: u64) -> Option<MmGrab> {
        let slot = self.slots.get(&key).filter(|s| !s.scan.held(now_ms))?;
        // SAFETY: the slot is in the tree, so its VMA, and hence its mm, are alive.
        let mm = core::ptr::NonNull::new(unsafe { sys::uksm_vma_mm(slot.vma) })?;
        // SAFETY: as above.
        Some(unsafe { MmGrab::get(mm) })
    }

    /// The first tracked VMA on `rung` with a key at or after `from` whose mm still has
    /// users, looking at no more than `limit` slots (the lock is a spinlock).
    pub(crate) fn next_in_rung(&mut self, rung: usize, from: usize, limit: usize) -> Next {
        let Some(mut cursor) = cursor_from(&mut self.slots, &from) else {
            return Next::End;
        };
        let mut looked = 0;
        loop {
            let (&key, slot) = cursor.current_mut();
            if slot.scan.rung == rung {
                // SAFETY: the slot is in the tree, so its VMA, and hence its mm, are alive.
                let (mm, start, end) = unsafe {
                    (
                        sys::uksm_vma_mm(slot.vma),
                        sys::uksm_vma_start(slot.vma),
                        sys::uksm_vma_end(slot.vma),
                    )
                };
                // SAFETY: `mm` is alive (above); a zero user count means it is exiting.
                if let Some(mm) = unsafe { MmRef::get(mm) } {
                    return Next::Found(Target {
                        key,
                        vma: slot.vma,
                        start,
                        pages: (end.saturating_sub(start) / kernel::page::PAGE_SIZE) as u64,
                        mm,
                        scan: slot.scan,
                        merged: core::mem::replace(&mut slot.merged, MergedMap::new(0)),
                    });
                }
            }
            looked += 1;
            cursor = match cursor.move_next() {
                Some(c) => c,
                None => return Next::End,
            };
            if looked >= limit {
                return Next::Skipped(*cursor.current().0);
            }
        }
    }

    /// Writes back the ladder record and the merged pages of the VMA `vma` at `key`, if it
    /// is still tracked (else returns the map, to be dropped outside the lock); a
    /// completed pass (`passed`) counts for the epoch if it began in the epoch.
    pub(crate) fn store_scan(
        &mut self,
        key: usize,
        vma: *mut vm_area_struct,
        scan: VmaScan,
        merged: MergedMap,
        passed: bool,
    ) -> Option<MergedMap> {
        let epoch = self.epoch;
        let Some(slot) = self.slots.get_mut(&key).filter(|s| s.vma == vma) else {
            return Some(merged);
        };
        // The slot's own map is empty while lent: uksmd records partners in this VMA in
        // the lent map (dropping an empty tree frees nothing).
        slot.merged = merged;
        let was = slot.scan.passed;
        self.on_rung[slot.scan.rung] -= 1;
        self.on_rung[scan.rung] += 1;
        slot.scan = scan;
        slot.scan.passed = was;
        let began = *slot.began.get_or_insert(epoch);
        if passed {
            if was != epoch && began == epoch {
                slot.scan.passed = epoch;
                self.unpassed -= 1;
            }
            slot.began = None;
        }
        None
    }

    /// Records that the page at `addr` of the VMA at `key` (not the one lent to uksmd) was
    /// merged, if it is still tracked. `spare` is used if its map needs a new chunk, and
    /// freed otherwise (neither sleeps).
    /// A map from before the last unmerge (`unmerges` is the current count) is left alone:
    /// the scanner starts it afresh when it next samples the VMA, outside this lock.
    pub(crate) fn note_merged(
        &mut self,
        key: usize,
        addr: usize,
        unmerges: u64,
        spare: merged_map::Spare,
    ) {
        if let Some(slot) = self.slots.get_mut(&key) {
            if slot.merged.unmerges == unmerges {
                slot.merged.set_with(addr, spare);
            }
        }
    }

    /// Records that a large folio maps `start..end` of the VMA at `key` (not the one lent
    /// to uksmd), if it is still tracked and its map is from the current unmerge count
    /// `unmerges`: the merged pages there were copied into it. Returns how many were.
    pub(crate) fn note_collapsed(
        &mut self,
        key: usize,
        start: usize,
        end: usize,
        unmerges: u64,
    ) -> u64 {
        match self.slots.get_mut(&key) {
            Some(slot) if slot.merged.unmerges == unmerges => slot.merged.collapse(start, end),
            _ => 0,
        }
    }

    /// VMAs on `rung`.
    pub(crate) fn on_rung(&self, rung: usize) -> usize {
        self.on_rung[rung]
    }

    /// Whether every VMA the epoch waits for has completed a pass.
    pub(crate) fn epoch_done(&self) -> bool {
        self.unpassed == 0
    }

    /// Begins the next epoch: it waits for every VMA tracked now.
    pub(crate) fn new_epoch(&mut self) {
        self.epoch += 1;
        self.unpassed = self.vmas;
    }

    /// VMAs and their pages on each rung (one walk over every slot).
    pub(crate) fn rung_stats(&self) -> ([u64; RUNGS], [u64; RUNGS]) {
        let (mut vmas, mut pages) = ([0; RUNGS], [0; RUNGS]);
        for slot in self.slots.values() {
            let rung = slot.scan.rung.min(RUNGS - 1);
            // SAFETY: the slot is in the tree, so its VMA is alive.
            let (start, end) =
                unsafe { (sys::uksm_vma_start(slot.vma), sys::uksm_vma_end(slot.vma)) };
            vmas[rung] += 1;
            pages[rung] += (end.saturating_sub(start) / kernel::page::PAGE_SIZE) as u64;
        }
        (vmas, pages)
    }
}

/// The mms of all user processes, each held by a reference (`mmget`) until dropped.
pub(crate) struct MmSnapshot {
    mms: KVec<MmRef>,
}

impl MmSnapshot {
    /// Takes a reference on the mm of every user thread, one per mm.
    pub(crate) fn take() -> Result<Self> {
        let mut cap = 256;
        loop {
            let mut raw: KVec<*mut mm_struct> = KVec::new();
            raw.extend_with(cap, core::ptr::null_mut(), GFP_KERNEL)?;
            let mut mms: KVec<MmRef> = KVec::with_capacity(cap, GFP_KERNEL)?;
            // SAFETY: `raw` holds `cap` pointers; the glue writes at most `cap`.
            let found = unsafe { sys::uksm_collect_mms(raw.as_mut_ptr(), cap) };
            let raw = &mut raw[..found.min(cap)];
            raw.sort_unstable();
            let mut last = core::ptr::null_mut();
            for &mm in raw.iter() {
                // SAFETY: each entry is a live mm carrying one user reference taken by the
                // glue, handed over here; a repeat is dropped at once, putting its own.
                let held = unsafe { MmRef::adopt(core::ptr::NonNull::new_unchecked(mm)) };
                if mm != last {
                    // Room for every entry was allocated above: this does not allocate.
                    let _ = mms.push(held, GFP_KERNEL);
                }
                last = mm;
            }
            if found <= cap {
                return Ok(MmSnapshot { mms });
            }
            // More threads than room: these references are dropped; try with more.
            cap = found * 2;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.mms.len()
    }

    /// Calls `f` with every VMA of every mm of the snapshot, in address order, with that
    /// mm's mmap lock held for read: `f` may use the VMA but must not change its range.
    pub(crate) fn for_each_vma(&self, mut f: impl FnMut(&MmapReadGuard<'_>, VmaRef<'_>)) {
        for mm in self.mms.iter() {
            let guard = MmapReadGuard::lock(mm);
            let mut addr = 0;
            while let Some(vma) = guard.find_vma(addr) {
                addr = vma.end();
                f(&guard, vma);
            }
            drop(guard);
            // SAFETY: no lock is held.
            unsafe { sys::uksm_cond_resched() };
        }
    }
}

/// A cursor that moves through `tree` from the first key at or after `key` (the kernel
/// crate renamed it; see Kbuild).
#[cfg(not(uksm_rbtree_cursor_mut))]
fn cursor_from<'a, K: Ord, V>(
    tree: &'a mut RBTree<K, V>,
    key: &K,
) -> Option<kernel::rbtree::Cursor<'a, K, V>> {
    tree.cursor_lower_bound(key)
}

/// A cursor that moves through `tree` from the first key at or after `key` (the kernel
/// crate renamed it; see Kbuild).
#[cfg(uksm_rbtree_cursor_mut)]
fn cursor_from<'a, K: Ord, V>(
    tree: &'a mut RBTree<K, V>,
    key: &K,
) -> Option<kernel::rbtree::CursorMut<'a, K, V>> {
    tree.cursor_lower_bound_mut(key)
}
