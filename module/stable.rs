// SPDX-License-Identifier: GPL-2.0

//! The stable tree: the folios the module merged pages into, one [`Node`] each.
//!
//! # A merged folio and its node
//!
//! A merged folio is a KSM folio: `folio->mapping` holds the address of its [`Node`] with
//! `PAGE_MAPPING_KSM` set, exactly as for built-in KSM's stable nodes, so the kernel
//! write-protects, copies on write, swaps and frees it as any KSM page. While the module is
//! registered the kernel asks it, through `for_each_item`, for the rmap items of a node:
//! the `(anon_vma, mm, address)` of every place a page was merged into the folio. From
//! those the kernel's own rmap walk finds every PTE mapping the folio, including those of
//! processes forked since (the anon_vma covers them), for reclaim, migration, page idle
//! tracking and memory failure. Migration moves `kpfn` (the node's head, a
//! `struct ksm_hooks_node`) to the new folio.
//!
//! # Rules
//!
//! - A node's item list changes only with its folio locked; the kernel's walkers hold the
//!   folio lock while they read it. Allocation for the list happens before the folio is
//!   locked or under it (as KSM's `stable_tree_insert` does), never under a spinlock.
//! - An item holds a reference on its anon_vma (`get_anon_vma`), which keeps the walk
//!   valid after the VMA or the process is gone, and on its mm (`mmgrab`) while the
//!   process lives, to keep `/proc/PID/ksm_merging_pages` exact: an item counts there while
//!   its address still maps the folio ([`Stable::refresh`] re-checks once per pass).
//! - A node is freed only when no folio points at it any more: its folio was freed (the
//!   kernel's "keyhole" lookup, `ksm_hooks_get_folio`, finds the node stale) or the module
//!   detached it under the folio lock. Nobody can reach a node's items after that.
//! - The tree itself, and everything else here, is used by uksmd (and by unmerging) with
//!   the merge lock held.

use crate::sys::{self, anon_vma, folio, ksm_hooks_node, mm_struct, page, vm_area_struct};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// A place a page was merged into a folio.
#[derive(Clone, Copy)]
struct Item {
    /// The VMA's anon_vma, referenced (`get_anon_vma`).
    anon_vma: *mut anon_vma,
    /// The process, referenced (`mmgrab`) while it has users; null once it exited.
    mm: *mut mm_struct,
    addr: usize,
    /// Whether `mm->ksm_merging_pages` counts this item (the address maps the folio).
    counted: bool,
}

impl Item {
    /// Drops the item's references and its count.
    ///
    /// # Safety
    ///
    /// The item must hold its references and be removed from its node.
    unsafe fn release(self) {
        if !self.mm.is_null() {
            // SAFETY: the item holds a reference on `mm` (`mmgrab`).
            unsafe {
                if self.counted {
                    sys::uksm_mm_merging_add(self.mm, -1);
                }
                sys::uksm_mmdrop(self.mm);
            }
        }
        // SAFETY: the item holds a reference on `anon_vma`.
        unsafe { sys::uksm_anon_vma_put(self.anon_vma) };
    }

    /// Forgets the process of an item whose process exited (the anon_vma stays: it still
    /// leads to processes forked from it).
    ///
    /// # Safety
    ///
    /// As for [`Item::release`], with the item still in its node.
    unsafe fn forget_mm(&mut self) {
        // SAFETY: as in `release`.
        unsafe {
            if self.counted {
                sys::uksm_mm_merging_add(self.mm, -1);
            }
            sys::uksm_mmdrop(self.mm);
        }
        self.mm = core::ptr::null_mut();
        self.counted = false;
    }
}

/// The module's node of a merged folio.
#[repr(C)]
pub(crate) struct Node {
    /// `struct ksm_hooks_node`: must stay the first field (the kernel writes `kpfn`).
    head: ksm_hooks_node,
    /// Accessed only with the folio locked, or once no folio points at the node.
    items: UnsafeCell<KVec<Item>>,
}

// SAFETY: the raw pointers in the items are references the node owns (released in
// `Stable::free_node`); the list is only accessed under the folio lock (module rules), from
// whichever thread holds it.
unsafe impl Send for Node {}

impl Node {
    fn head(&self) -> *mut ksm_hooks_node {
        core::ptr::from_ref(&self.head).cast_mut()
    }

    /// # Safety
    ///
    /// The node's folio must be locked by the caller, or no folio may point at the node
    /// any more; the returned reference must not outlive that.
    #[allow(clippy::mut_from_ref)]
    unsafe fn items(&self) -> &mut KVec<Item> {
        // SAFETY: exclusive access is guaranteed by the caller (the folio lock).
        unsafe { &mut *self.items.get() }
    }

    /// Records that the page at `addr` of `vma` maps the folio now.
    ///
    /// # Safety
    ///
    /// The folio must be locked; the mmap lock of `vma`'s mm held and `addr` in `vma`.
    unsafe fn add(&self, vma: *mut vm_area_struct, addr: usize) -> bool {
        // SAFETY: the mmap lock is held (caller).
        let (mm, av) = unsafe { (sys::uksm_vma_mm(vma), sys::uksm_vma_anon_vma_get(vma)) };
        if av.is_null() {
            return false;
        }
        // SAFETY: the folio is locked (caller).
        let items = unsafe { self.items() };
        // A place merged again after a COW break repeats an item: `Stable::refresh`
        // drops the repeat.
        let item = Item {
            anon_vma: av,
            mm,
            addr,
            counted: true,
        };
        if items.push(item, GFP_KERNEL).is_err() {
            // SAFETY: taken above.
            unsafe { sys::uksm_anon_vma_put(av) };
            return false;
        }
        // SAFETY: `mm` is alive under its mmap lock; the item now holds it.
        unsafe {
            sys::uksm_mmgrab(mm);
            sys::uksm_mm_merging_add(mm, 1);
        }
        true
    }
}

/// Called by the kernel (through ksm_hooks) for each rmap item of a node of this module.
///
/// # Safety
///
/// The ksm_hooks contract: `node` heads a [`Node`] of this module (while it is registered,
/// every KSM folio with a node is one of its), whose folio the caller holds locked.
#[no_mangle]
unsafe extern "C" fn uksm_rs_for_each_item(
    node: *mut ksm_hooks_node,
    f: sys::ItemFn,
    arg: *mut c_void,
) {
    // SAFETY: `head` is the first field of the `repr(C)` `Node`; the folio is locked.
    let items = unsafe { (*node.cast::<Node>()).items() };
    for item in items.iter() {
        // SAFETY: `f` and `arg` come from the kernel; the anon_vma is referenced.
        if !unsafe { f(arg, item.anon_vma, item.mm, item.addr) } {
            break;
        }
    }
}

/// Pages shared and sharing, as KSM counts them.
#[derive(Default, Clone, Copy)]
pub(crate) struct Sharing {
    /// Merged folios still mapped.
    pub(crate) shared: u64,
    /// Further mappings of them: the pages merging saves.
    pub(crate) sharing: u64,
}

/// Where a node sits in the tree: the hashes of its content (partial, then whole), then
/// the order of creation (nodes may share both hashes).
///
/// A look-up by partial hash alone costs nothing for the many pages no merged content
/// shares it with; the whole-content hash then sorts the look-alike contents (pages of a
/// few bytes and zeros share a partial hash by the thousand) so that only nodes whose
/// whole content hashes alike are compared byte for byte.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct NodeKey {
    partial: u32,
    full: u32,
    seq: u64,
}

impl NodeKey {
    /// The greatest key.
    const LAST: NodeKey = NodeKey {
        partial: u32::MAX,
        full: u32::MAX,
        seq: u64::MAX,
    };

    /// The least key after `self`.
    fn next(self) -> Self {
        NodeKey {
            seq: self.seq + 1,
            ..self
        }
    }
}

/// The hashes of a merged folio's content, computed by the scanner (which owns the sample
/// order).
pub(crate) struct ContentHash {
    pub(crate) partial: u32,
    pub(crate) full: u32,
}

/// The tree of nodes, keyed by [`NodeKey`].
pub(crate) struct Stable {
    tree: RBTree<NodeKey, KBox<Node>>,
    seq: u64,
}

/// A merged folio with identical content, found by [`Stable::find`]; holds a folio
/// reference until dropped.
pub(crate) struct Found {
    node: *const Node,
    folio: *mut folio,
}

impl Drop for Found {
    fn drop(&mut self) {
        // SAFETY: the reference taken by the keyhole lookup.
        unsafe { sys::uksm_folio_put(self.folio) };
    }
}

/// Outcome of merging a page.
pub(crate) enum Merge {
    Merged,
    /// Not merged now (page locked, pinned, changed, no memory): maybe next pass.
    NotNow,
}

/// Why [`Stable::merge_pair`] did not merge, by the page that refused.
pub(crate) enum PairRefused {
    /// Page `a` could not be made a KSM folio now (pinned, locked, its mapping changed).
    First,
    /// Page `b` could not be merged now, or there was no memory for the node.
    Second,
}

impl Stable {
    pub(crate) fn new() -> Self {
        Stable {
            tree: RBTree::new(),
            seq: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tree.iter().next().is_none()
    }

    /// The first node with a key at or after `from`. The pointer stays valid while the node
    /// is in the tree (nodes are boxed).
    fn node_from(&mut self, from: NodeKey) -> Option<(NodeKey, *const Node)> {
        let cursor = self.tree.cursor_lower_bound(&from)?;
        let (&key, node) = cursor.current();
        Some((key, &**node as *const Node))
    }

    /// Frees a node no folio points at any more.
    fn free_node(node: KBox<Node>) {
        // SAFETY: no folio points at the node (caller), so nobody else reaches its items.
        let items = unsafe { node.items() };
        for item in items.iter() {
            // SAFETY: each item holds its references; the list is dropped below.
            unsafe { item.release() };
        }
        drop(node);
    }

    /// The first node with a key from `*from` to `last` whose folio is still there, with
    /// that folio referenced (and locked, with `lock`); `*from` moves past it. Nodes found
    /// stale on the way (their folio freed: the keyhole lookup fails) are freed.
    fn next_live(
        &mut self,
        from: &mut NodeKey,
        last: NodeKey,
        lock: bool,
    ) -> Option<(NodeKey, *const Node, *mut folio)> {
        loop {
            let (key, node) = self.node_from(*from)?;
            if key > last {
                return None;
            }
            *from = key.next();
            // SAFETY: `node` is in the tree, so it is alive; sleeping is allowed here.
            let folio = unsafe { sys::uksm_node_folio((*node).head(), lock) };
            if !folio.is_null() {
                return Some((key, node, folio));
            }
            if let Some(n) = self.tree.remove(&key) {
                Self::free_node(n);
            }
        }
    }

    /// The merged folio whose content equals `page`'s, if any: `partial` is the page's
    /// partial hash, `full_of` gives the hash of its whole content, asked for only if some
    /// node has that partial hash. Nodes found stale on the way are freed.
    pub(crate) fn find(
        &mut self,
        partial: u32,
        page: *mut page,
        full_of: impl FnOnce() -> u32,
    ) -> Option<Found> {
        let (first, _) = self.node_from(NodeKey {
            partial,
            ..NodeKey::default()
        })?;
        if first.partial != partial {
            return None;
        }
        let full = full_of();
        let mut from = NodeKey {
            partial,
            full,
            seq: 0,
        };
        let last = NodeKey {
            seq: u64::MAX,
            ..from
        };
        while let Some((_, node, folio)) = self.next_live(&mut from, last, false) {
            let found = Found { node, folio };
            // SAFETY: both pages are referenced.
            if unsafe { sys::uksm_pages_identical(sys::uksm_folio_page(folio), page) } {
                return Some(found);
            }
        }
        None
    }

    /// Merges `page` (mapped at `addr` of `vma`) into the folio of `found`'s node.
    ///
    /// The node's folio is looked up again and locked for the whole merge: a folio found
    /// without the lock may be one that migration is replacing at that moment (its
    /// mapping still names the node until the migration completes); the lock excludes
    /// migration and the kernel's rmap walkers while the mapping and its item appear.
    ///
    /// # Safety
    ///
    /// The mmap lock of `vma`'s mm must be held, `vma` tracked and not userfaultfd-armed,
    /// and `page` the small anonymous page mapped at `addr`, referenced by the caller.
    pub(crate) unsafe fn merge_into(
        &mut self,
        found: &Found,
        vma: *mut vm_area_struct,
        page: *mut page,
        addr: usize,
    ) -> Merge {
        // SAFETY: `found.node` is in the tree (this thread alone removes nodes); sleeping
        // is allowed here.
        let folio = unsafe { sys::uksm_node_folio((*found.node).head(), true) };
        if folio.is_null() {
            return Merge::NotNow;
        }
        // SAFETY (this block): the caller's guarantees; `folio` is the node's KSM folio,
        // referenced and locked (the kernel's merge step only trylocks `page`). If it is
        // not the folio compared (migrated since), the kernel compares the pages again.
        let result = unsafe {
            if sys::uksm_merge_page(vma, page, sys::uksm_folio_page(folio)) != 0 {
                Merge::NotNow
            } else if (*found.node).add(vma, addr) {
                Merge::Merged
            } else {
                // Untracked mappings would hide from rmap walks: undo the merge.
                sys::uksm_break_page(vma, addr);
                Merge::NotNow
            }
        };
        // SAFETY: locked and referenced above.
        unsafe {
            sys::uksm_folio_unlock(folio);
            sys::uksm_folio_put(folio);
        }
        result
    }

    /// Merges the identical pages `a` and `b` into a new merged folio (`a`'s): the first
    /// merge of a content. `b` is referenced by the caller, as is `a`. On failure, tells
    /// which page refused: a page that cannot be merged now must not keep others of the
    /// same content from pairing.
    ///
    /// # Safety
    ///
    /// For each of `(vma_a, page_a, addr_a)` and `(vma_b, page_b, addr_b)`: the mmap lock of
    /// the VMA's mm is held, the VMA tracked and not userfaultfd-armed, and the page the
    /// small anonymous page mapped at the address, referenced by the caller.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn merge_pair(
        &mut self,
        hash_of: impl FnOnce(*mut page) -> ContentHash,
        vma_a: *mut vm_area_struct,
        page_a: *mut page,
        addr_a: usize,
        vma_b: *mut vm_area_struct,
        page_b: *mut page,
        addr_b: usize,
    ) -> Result<(), PairRefused> {
        // Everything that can fail for want of memory is allocated first.
        let Ok(items) = KVec::with_capacity(2, GFP_KERNEL) else {
            return Err(PairRefused::Second);
        };
        let Ok(node) = KBox::new(
            Node {
                head: ksm_hooks_node {
                    kpfn: AtomicUsize::new(0),
                },
                items: UnsafeCell::new(items),
            },
            GFP_KERNEL,
        ) else {
            return Err(PairRefused::Second);
        };
        let Ok(reservation) = RBTreeNodeReservation::new(GFP_KERNEL) else {
            return Err(PairRefused::Second);
        };
        // SAFETY (this block): the caller's guarantees are those of the merge and break
        // steps, and keep both pages referenced.
        unsafe {
            // A `b` the kernel would refuse (pinned, say) is refused before `a` becomes a
            // KSM folio: undoing that would cost a copy of `a`.
            if sys::uksm_page_held_elsewhere(page_b) {
                return Err(PairRefused::Second);
            }
            // `a` becomes a KSM folio without a node (write-protected, checked unpinned).
            if sys::uksm_merge_page(vma_a, page_a, core::ptr::null_mut()) != 0 {
                return Err(PairRefused::First);
            }
            // `b`'s PTE now maps `a`, if `b` was unpinned and is still identical.
            if sys::uksm_merge_page(vma_b, page_b, page_a) != 0 {
                sys::uksm_break_page(vma_a, addr_a);
                return Err(PairRefused::Second);
            }
            let folio = sys::uksm_page_folio(page_a);
            node.head
                .kpfn
                .store(sys::uksm_page_pfn(page_a), Ordering::Relaxed);
            sys::uksm_folio_lock(folio);
            // Room for both items was reserved: these cannot fail (the anon_vmas exist,
            // the pages being mapped anonymous pages).
            let added = node.add(vma_a, addr_a) && node.add(vma_b, addr_b);
            if added {
                sys::uksm_node_attach(folio, node.head());
            }
            sys::uksm_folio_unlock(folio);
            if !added {
                sys::uksm_break_page(vma_b, addr_b);
                sys::uksm_break_page(vma_a, addr_a);
                Self::free_node(node);
                return Err(PairRefused::Second);
            }
        }
        // Hashed now that the content cannot change: it is write-protected in every mapping
        // (and the caller's reference keeps the page for the kmap).
        let hash = hash_of(page_a);
        self.seq += 1;
        let key = NodeKey {
            partial: hash.partial,
            full: hash.full,
            seq: self.seq,
        };
        self.tree.insert(reservation.into_node(key, node));
        Ok(())
    }

    /// Once per pass: frees stale nodes, re-checks which items still map their folio
    /// (keeping `/proc/PID/ksm_merging_pages` exact) and counts the sharing.
    pub(crate) fn refresh(&mut self) -> Sharing {
        let mut sharing = Sharing::default();
        let mut from = NodeKey::default();
        while let Some((_, node, folio)) = self.next_live(&mut from, NodeKey::LAST, true) {
            // SAFETY: the folio is locked and referenced.
            unsafe {
                Self::recount(&*node, folio);
                let mapped = sys::uksm_folio_mapcount(folio).max(0) as u64;
                if mapped > 0 {
                    sharing.shared += 1;
                    sharing.sharing += mapped - 1;
                }
                sys::uksm_folio_unlock(folio);
                sys::uksm_folio_put(folio);
                sys::uksm_cond_resched();
            }
        }
        sharing
    }

    /// Drops repeated items and items whose anon_vma no VMA uses any more (nothing can map
    /// the folio through them: a VMA only ever gains an anon_vma from another VMA that has
    /// it), and re-checks each remaining item's mapping. Busy processes are left as they
    /// were.
    ///
    /// # Safety
    ///
    /// `folio` is the node's folio, locked and referenced by the caller.
    unsafe fn recount(node: &Node, folio: *mut folio) {
        // SAFETY: the folio is locked.
        let items = unsafe { node.items() };
        // Counted items first among equal places, so the repeats dropped are uncounted
        // where possible.
        items.sort_unstable_by_key(|i| (i.anon_vma as usize, i.mm as usize, i.addr, !i.counted));
        let mut kept = 0;
        for i in 0..items.len() {
            let item = items[i];
            // SAFETY: the item holds a reference on its anon_vma.
            if unsafe { sys::uksm_anon_vma_unused(item.anon_vma) } {
                // SAFETY: the item holds its references; it leaves the list below.
                unsafe { item.release() };
                continue;
            }
            if kept > 0 {
                let last = items[kept - 1];
                if (last.anon_vma, last.mm, last.addr) == (item.anon_vma, item.mm, item.addr) {
                    // SAFETY: the repeat holds its own references; it leaves the list below.
                    unsafe { item.release() };
                    continue;
                }
            }
            items[kept] = item;
            kept += 1;
        }
        // SAFETY: `Item` is `Copy`; the first `kept` entries are initialised.
        unsafe { items.set_len(kept) };
        for item in items.iter_mut() {
            if item.mm.is_null() {
                continue;
            }
            // SAFETY (this block): the item holds `mm`. The mmap lock is only tried: the
            // folio lock is held, and the usual order is mmap lock first.
            unsafe {
                if !sys::uksm_mm_has_users(item.mm) {
                    item.forget_mm();
                    continue;
                }
                if !sys::uksm_mmap_read_trylock(item.mm) {
                    continue;
                }
                let vma = sys::uksm_vma_lookup(item.mm, item.addr);
                let maps = !vma.is_null() && sys::uksm_maps_folio(vma, item.addr, folio);
                sys::uksm_mmap_read_unlock(item.mm);
                if maps != item.counted {
                    sys::uksm_mm_merging_add(item.mm, if maps { 1 } else { -1 });
                    item.counted = maps;
                }
            }
        }
    }

    /// Unmerging: detaches every node whose folio is mapped nowhere any more and frees it.
    /// Returns how many folios are still mapped (a later unmerge pass must break them).
    pub(crate) fn detach_unmapped(&mut self) -> usize {
        let mut mapped = 0;
        let mut from = NodeKey::default();
        while let Some((key, _, folio)) = self.next_live(&mut from, NodeKey::LAST, true) {
            // SAFETY: the folio is locked and referenced.
            let still = unsafe { sys::uksm_folio_mapcount(folio) } > 0;
            if !still {
                // An unmapped KSM folio (in the swap cache, say) keeps no node: the kernel
                // copies it on swap-in and frees it.
                // SAFETY: the folio is locked.
                unsafe { sys::uksm_node_attach(folio, core::ptr::null_mut()) };
            }
            // SAFETY: locked and referenced above.
            unsafe {
                sys::uksm_folio_unlock(folio);
                sys::uksm_folio_put(folio);
            }
            if still {
                mapped += 1;
            } else if let Some(n) = self.tree.remove(&key) {
                Self::free_node(n);
            }
        }
        mapped
    }
}
