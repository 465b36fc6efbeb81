// SPDX-License-Identifier: GPL-2.0

//! Which pages of a VMA the module merged: the measure of thrashing.
//!
//! UKSM counted the merged pages a VMA's writes broke (`pages_cowed`) with a hook in the
//! copy-on-write path. This module needs no such hook: each VMA keeps one bit per page the
//! module merged (by address), and a sample that finds an ordinary page where the bit is
//! set has met a merged page that a write (or an unmap and a new fault) replaced. The
//! sample clears the bit; a sample that finds the merged page still there counts it as
//! kept. Both feed the VMA's judgement ([`crate::logic::ladder`]). A sample that finds a
//! page of a large folio marks the merged pages of the folio's range *collapsed*
//! ([`crate::logic::merged_bits`]): khugepaged (or `MADV_COLLAPSE`) copied them into a
//! huge page, which is not the process writing, and merging them again is no new find. So
//! does a merge step that meets a large folio as the partner of another VMA's page: the
//! merge splits the folio, and the VMA's own samples would then find small pages where
//! the bits are set, as if writes had replaced them.
//!
//! The bits live in chunks of 512 pages (2 MiB of address space, 128 bytes), one tree node
//! each, allocated only where something was merged: a VMA with no merges costs nothing,
//! a fully merged one a quarter of a byte per page and the node overhead.

use crate::logic::merged_bits::{ChunkBits, CHUNK_PAGES};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// The merged pages of one VMA, by page number (address / `PAGE_SIZE`), since the
/// unmerging it was started after (`Engine::unmerges`): an unmerge breaks every merge,
/// and the scanner starts the maps of older ones afresh before using them.
pub(crate) struct MergedMap {
    chunks: RBTree<usize, ChunkBits>,
    pub(crate) unmerges: u64,
}

/// A chunk allocated ahead of taking a spinlock, for [`MergedMap::set_with`].
pub(crate) type Spare = RBTreeNodeReservation<usize, ChunkBits>;

/// The chunk of the page at `addr`, and the page's index in it.
fn place(addr: usize) -> (usize, usize) {
    let page = addr / PAGE_SIZE;
    (page / CHUNK_PAGES, page % CHUNK_PAGES)
}

impl MergedMap {
    pub(crate) fn new(unmerges: u64) -> Self {
        MergedMap {
            chunks: RBTree::new(),
            unmerges,
        }
    }

    /// Whether the page at `addr` was merged by the module and not seen replaced since.
    pub(crate) fn test(&self, addr: usize) -> bool {
        let (chunk, page) = place(addr);
        self.chunks.get(&chunk).is_some_and(|c| c.merged(page))
    }

    /// Applies `f` to the chunk of `addr` if it exists, and frees the chunk if that emptied
    /// it; returns what `f` returned (`default` without a chunk).
    fn update<R>(
        &mut self,
        addr: usize,
        default: R,
        f: impl FnOnce(&mut ChunkBits, usize) -> R,
    ) -> R {
        let (chunk, page) = place(addr);
        let Some(c) = self.chunks.get_mut(&chunk) else {
            return default;
        };
        let r = f(c, page);
        if c.is_empty() {
            self.chunks.remove(&chunk);
        }
        r
    }

    /// Forgets the page at `addr` (a write replaced it: it is no longer merged).
    pub(crate) fn clear(&mut self, addr: usize) {
        self.update(addr, (), |c, page| c.clear(page));
    }

    /// A large folio maps the pages in `start..end`: the merged ones among them are
    /// collapsed now. Returns how many were.
    pub(crate) fn collapse(&mut self, start: usize, end: usize) -> u64 {
        let mut moved = 0;
        let mut addr = start;
        while addr < end {
            let (_, page) = place(addr);
            let in_chunk = (CHUNK_PAGES - page).min((end - addr).div_ceil(PAGE_SIZE));
            moved += u64::from(self.update(addr, 0, |c, page| c.collapse(page, page + in_chunk)));
            addr += in_chunk * PAGE_SIZE;
        }
        moved
    }

    /// Whether the page at `addr` was collapsed; forgets that it was.
    pub(crate) fn take_collapsed(&mut self, addr: usize) -> bool {
        self.update(addr, false, |c, page| c.take_collapsed(page))
    }

    /// Records that the page at `addr` was merged. Allocates a chunk if needed (may sleep);
    /// without memory the page is not recorded (its breaking then goes unnoticed: the VMA
    /// is judged on the others).
    pub(crate) fn set(&mut self, addr: usize) {
        if self.try_set(addr) {
            return;
        }
        if let Ok(spare) = RBTreeNodeReservation::new(GFP_KERNEL) {
            self.set_with(addr, spare);
        }
    }

    /// Records that the page at `addr` was merged if its chunk exists; returns whether it
    /// did (never allocates: usable under a spinlock).
    pub(crate) fn try_set(&mut self, addr: usize) -> bool {
        let (chunk, page) = place(addr);
        match self.chunks.get_mut(&chunk) {
            Some(c) => {
                c.set(page);
                true
            }
            None => false,
        }
    }

    /// Records that the page at `addr` was merged, using `spare` if its chunk is missing
    /// (never allocates; `spare` is freed if unused, which does not sleep either).
    pub(crate) fn set_with(&mut self, addr: usize, spare: Spare) {
        if self.try_set(addr) {
            return;
        }
        let (chunk, page) = place(addr);
        self.chunks.insert(spare.into_node(chunk, ChunkBits::with_merged(page)));
    }
}
