// SPDX-License-Identifier: GPL-2.0

//! Which pages of a VMA the module merged: the measure of thrashing.
//!
//! UKSM counted the merged pages a VMA's writes broke (`pages_cowed`) with a hook in the
//! copy-on-write path. This module needs no such hook: each VMA keeps one bit per page the
//! module merged (by address), and a sample that finds an ordinary page where the bit is
//! set has met a merged page that a write (or an unmap and a new fault) replaced. The
//! sample clears the bit; a sample that finds the merged page still there counts it as
//! kept. Both feed the VMA's judgement ([`crate::logic::ladder`]). A sample that finds a
//! page of a large folio clears the bits of the folio's range without counting them:
//! khugepaged (or `MADV_COLLAPSE`) copied those merged pages into a huge page, which is
//! not the process writing.
//!
//! The bits live in chunks of 512 pages (2 MiB of address space, 64 bytes), one tree node
//! each, allocated only where something was merged: a VMA with no merges costs nothing,
//! a fully merged one an eighth of a byte per page and the node overhead.

use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// Pages per chunk.
const CHUNK_PAGES: usize = 512;
const WORDS: usize = CHUNK_PAGES / 64;

type Chunk = [u64; WORDS];

/// The merged pages of one VMA, by page number (address / `PAGE_SIZE`), since the
/// unmerging it was started after (`Engine::unmerges`): an unmerge breaks every merge,
/// and the scanner starts the maps of older ones afresh before using them.
pub(crate) struct MergedMap {
    chunks: RBTree<usize, Chunk>,
    pub(crate) unmerges: u64,
}

/// A chunk allocated ahead of taking a spinlock, for [`MergedMap::set_with`].
pub(crate) type Spare = RBTreeNodeReservation<usize, Chunk>;

fn place(addr: usize) -> (usize, usize, u64) {
    let page = addr / PAGE_SIZE;
    let bit = page % CHUNK_PAGES;
    (page / CHUNK_PAGES, bit / 64, 1u64 << (bit % 64))
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
        let (chunk, word, mask) = place(addr);
        self.chunks
            .get(&chunk)
            .is_some_and(|c| c[word] & mask != 0)
    }

    /// Forgets the page at `addr` (it is no longer merged); an emptied chunk is freed.
    pub(crate) fn clear(&mut self, addr: usize) {
        self.clear_range(addr, addr + PAGE_SIZE);
    }

    /// Forgets the pages in `start..end` (a large folio maps them now: none is merged); an
    /// emptied chunk is freed.
    pub(crate) fn clear_range(&mut self, start: usize, end: usize) {
        let (first, last) = (start / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
        let mut page = first;
        while page < last {
            let chunk = page / CHUNK_PAGES;
            let chunk_end = ((chunk + 1) * CHUNK_PAGES).min(last);
            if let Some(c) = self.chunks.get_mut(&chunk) {
                for p in page..chunk_end {
                    let (_, word, mask) = place(p * PAGE_SIZE);
                    c[word] &= !mask;
                }
                if c.iter().all(|&w| w == 0) {
                    self.chunks.remove(&chunk);
                }
            }
            page = chunk_end;
        }
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
        let (chunk, word, mask) = place(addr);
        match self.chunks.get_mut(&chunk) {
            Some(c) => {
                c[word] |= mask;
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
        let (chunk, word, mask) = place(addr);
        let mut bits = [0; WORDS];
        bits[word] = mask;
        self.chunks.insert(spare.into_node(chunk, bits));
    }
}
