// SPDX-License-Identifier: GPL-2.0

//! The stable tree: the module's index of the folios it merged pages into.
//!
//! # A merged folio and its node
//!
//! A merged folio is a KSM folio built by KSM's own code (the hook patch's
//! `mm/ksm_hooks.c`): its `->mapping` names a `struct ksm_stable_node` whose list holds one
//! `struct ksm_rmap_item` for every place a page was merged into it. The kernel's rmap walk
//! (reclaim, migration, page idle), memory failure, migration and swap-in serve it exactly
//! as they serve built-in KSM's folios; the rmap walk also finds processes forked since a
//! merge, through each item's anon_vma.
//!
//! Every mapping of a merged folio has an item:
//! - a page becomes a merged folio in place only while one mapping maps it; a page that
//!   fork left shared is merged into another page's folio instead, one mapping at a time
//!   ([`Stable::merge_pair`]);
//! - merging never needs an undo: a node whose second page refuses keeps its first;
//! - the scanner, meeting a merged folio at an address no item names (a process forked
//!   after the merge), adds one ([`Stable::met_merged`]).
//!
//! # Rules
//!
//! - The tree maps [`NodeKey`]s to nodes. A node stays valid until a `ksm_hooks_*` call
//!   reports it freed (stale: its folio was freed), and then leaves the tree at once. Only
//!   uksmd and unmerging, under the merge lock, make such calls, so nobody frees a node
//!   behind the tree's back.
//! - No node is freed with a folio still pointing at it: the kernel frees a node only when
//!   its folio is gone or detached from it.
//! - Merging into a node is capped at `max_page_sharing` items (KSM's name and default), so
//!   every rmap walk stays bounded; more copies of a content get another node.

use crate::logic::node_key::NodeKey;
use crate::mm::{PageRef, VmaRef};
use crate::sys::{self, ksm_rmap_item, ksm_stable_node};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// `-ESTALE` from a `ksm_hooks_*` call: the node turned out stale and is freed now.
const ESTALE: i32 = -(kernel::bindings::ESTALE as i32);
/// `-EMLINK` from `ksm_hooks_merge_first`: the page is mapped more than once.
const EMLINK: i32 = -(kernel::bindings::EMLINK as i32);

/// A node of this module: KSM's `struct ksm_stable_node`, valid while in the tree.
struct NodePtr(*mut ksm_stable_node);

// SAFETY: the pointer is only used by the thread holding the merge lock (module rules).
unsafe impl Send for NodePtr {}

/// An rmap item allocated ahead of a merge, freed unless the merge consumed it.
///
/// # Invariants
///
/// `self.0` is an item from `ksm_hooks_item_alloc`, not attached to any node.
struct SpareItem(*mut ksm_rmap_item);

impl SpareItem {
    fn new() -> Result<Self> {
        // SAFETY: no precondition.
        let item = unsafe { sys::ksm_hooks_item_alloc() };
        if item.is_null() {
            return Err(ENOMEM);
        }
        Ok(SpareItem(item))
    }

    /// Hands the item to a `ksm_hooks_merge_*` call; `consumed` tells whether it kept it.
    fn give(self, f: impl FnOnce(*mut ksm_rmap_item) -> i32) -> i32 {
        let r = f(self.0);
        if r == 0 {
            // Attached to a node now: the node owns it.
            core::mem::forget(self);
        }
        r
    }
}

impl Drop for SpareItem {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the item is unattached.
        unsafe { sys::ksm_hooks_item_free(self.0) };
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

/// The hashes of a merged folio's content, computed by the scanner (which owns the sample
/// order).
pub(crate) struct ContentHash {
    pub(crate) partial: u32,
    pub(crate) full: u32,
}

/// The tree of nodes, keyed by [`NodeKey`].
pub(crate) struct Stable {
    tree: RBTree<NodeKey, NodePtr>,
    seq: u64,
}

/// Outcome of merging a page.
pub(crate) enum Merge {
    Merged,
    /// Not merged now (page locked, pinned, changed, no memory): maybe next pass.
    NotNow,
}

/// What [`Stable::merge_pair`] did.
pub(crate) enum PairMerged {
    /// Both pages map one merged folio now.
    Both,
    /// Only page `a` was merged (a new merged folio): `b` could not be merged now.
    OnlyA,
    /// Only page `b` was merged (a new merged folio): `a` could not be merged now.
    OnlyB,
}

/// Why [`Stable::merge_pair`] merged nothing, by the page that refused.
pub(crate) enum PairRefused {
    /// Page `a` could not be merged now (pinned, locked, its mapping changed).
    First,
    /// Page `b` could not be merged now, or there was no memory for the node.
    Second,
}

/// A page mapped at `addr` of `vma` (borrowed under its mmap lock; the caller checked it
/// is tracked and mergeable), referenced.
pub(crate) struct Mapped<'a> {
    pub(crate) vma: VmaRef<'a>,
    pub(crate) page: &'a PageRef,
    pub(crate) addr: usize,
}

impl Mapped<'_> {
    fn vma(&self) -> *mut sys::vm_area_struct {
        self.vma.as_ptr()
    }

    fn page(&self) -> *mut sys::page {
        self.page.as_ptr()
    }
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

    /// The first node with a key from `from` to `last`.
    fn node_from(&mut self, from: NodeKey, last: NodeKey) -> Option<(NodeKey, *mut ksm_stable_node)> {
        let cursor = self.tree.cursor_lower_bound(&from)?;
        let (&key, node) = cursor.current();
        (key <= last).then_some((key, node.0))
    }

    /// Calls `f` for every node from `from` to `last` in key order; `f` returns whether
    /// the node is still there (a `ksm_hooks_*` call may have found it stale and freed it,
    /// which removes it from the tree) and whether to go on.
    fn for_each(
        &mut self,
        from: NodeKey,
        last: NodeKey,
        mut f: impl FnMut(NodeKey, *mut ksm_stable_node) -> (bool, bool),
    ) {
        let mut at = from;
        while let Some((key, node)) = self.node_from(at, last) {
            at = key.next();
            let (alive, go_on) = f(key, node);
            if !alive {
                self.tree.remove(&key);
            }
            if !go_on {
                break;
            }
        }
    }

    /// The node of a merged folio of merge domain `domain` with content equal to `page`'s
    /// and room for another mapping, if any: `partial` is the page's partial hash,
    /// `full_of` gives the hash of its whole content, asked for only if some node has that
    /// partial hash.
    pub(crate) fn find(
        &mut self,
        partial: u32,
        domain: u64,
        page: &PageRef,
        max_sharing: i32,
        full_of: impl FnOnce() -> u32,
    ) -> Option<NodeKey> {
        let (from, last) = NodeKey::partial_range(partial);
        self.node_from(from, last)?;
        let full = full_of();
        let (from, last) = NodeKey::content_range(partial, full, domain);
        let mut found = None;
        self.for_each(from, last, |key, node| {
            // SAFETY: `node` is in the tree, so valid; `page` is referenced.
            let r = unsafe {
                if sys::ksm_hooks_node_mappers(node) >= max_sharing {
                    0
                } else {
                    sys::uksm_node_same(node, page.as_ptr())
                }
            };
            if r == 1 {
                found = Some(key);
            }
            (r != ESTALE, r != 1)
        });
        found
    }

    /// Merges `m` into the folio of the node at `key`.
    pub(crate) fn merge_into(&mut self, key: NodeKey, m: &Mapped<'_>, max_sharing: i32) -> Merge {
        let Some(node) = self.tree.get(&key).map(|n| n.0) else {
            return Merge::NotNow;
        };
        let Ok(item) = SpareItem::new() else {
            return Merge::NotNow;
        };
        // SAFETY: `node` is in the tree; `m` is a mapped page under its mmap lock, referenced.
        let r = item.give(|item| unsafe {
            sys::ksm_hooks_merge_into(node, m.vma(), m.addr, m.page(), item, max_sharing)
        });
        if r == ESTALE {
            self.tree.remove(&key);
        }
        if r == 0 {
            Merge::Merged
        } else {
            Merge::NotNow
        }
    }

    /// The scanner met `m`, a page of a merged folio: makes sure an item names this
    /// mapping (it may be a process forked since the merge, or one whose item was
    /// dropped). Returns whether an item was added.
    pub(crate) fn met_merged(&mut self, m: &Mapped<'_>) -> bool {
        // SAFETY: `m.page` is referenced.
        let node = unsafe { sys::ksm_hooks_page_node(m.page()) };
        if node.is_null() {
            return false;
        }
        let Ok(item) = SpareItem::new() else {
            return false;
        };
        // SAFETY: while the module is registered every KSM folio with a node is one of
        // its own, and a node whose folio is referenced (`m.page`) is valid. The cap does
        // not apply: the mapping exists already.
        let r = item.give(|item| unsafe {
            sys::ksm_hooks_merge_into(node, m.vma(), m.addr, m.page(), item, i32::MAX)
        });
        if r == ESTALE {
            // Cannot happen while the folio is referenced; never keep a freed node.
            self.for_each(NodeKey::default(), NodeKey::LAST, |_, n| (n != node, true));
        }
        r == 0
    }

    /// Merges the identical pages `a` and `b` into a new merged folio: the first merge of
    /// a content. The page that one mapping maps becomes the folio (`a` if both qualify);
    /// the other is merged into it. Allocates everything first, so nothing needs undoing.
    /// Both pages are of merge domain `domain`, which the new node is filed under.
    pub(crate) fn merge_pair(
        &mut self,
        domain: u64,
        hash_of: impl FnOnce(&PageRef) -> ContentHash,
        a: &Mapped<'_>,
        b: &Mapped<'_>,
        max_sharing: i32,
    ) -> Result<PairMerged, PairRefused> {
        let (Ok(item_first), Ok(item_second), Ok(reservation)) = (
            SpareItem::new(),
            SpareItem::new(),
            RBTreeNodeReservation::new(GFP_KERNEL),
        ) else {
            return Err(PairRefused::Second);
        };
        // SAFETY: no precondition.
        let node = unsafe { sys::ksm_hooks_node_alloc() };
        if node.is_null() {
            return Err(PairRefused::Second);
        }
        // A `b` the kernel would refuse (pinned, say) is refused before `a` becomes a
        // merged folio.
        if b.page.held_elsewhere() {
            // SAFETY: the node never had a folio.
            unsafe { sys::ksm_hooks_node_free(node) };
            return Err(PairRefused::Second);
        }
        // SAFETY (both calls): `a` and `b` are mapped pages under their mmap locks,
        // referenced; the node is new.
        let first = |m: &Mapped<'_>, item: SpareItem| {
            item.give(|item| unsafe {
                sys::ksm_hooks_merge_first(m.vma(), m.addr, m.page(), node, item)
            })
        };
        let (folio_page, second, swapped) = match first(a, item_first) {
            0 => (a.page, b, false),
            r if r == EMLINK => {
                // `a` is mapped by fork relatives too: let `b` be the folio.
                // SAFETY: as above.
                let item = SpareItem::new();
                match item.map(|item| first(b, item)) {
                    Ok(0) => (b.page, a, true),
                    _ => {
                        // SAFETY: the node never had a folio.
                        unsafe { sys::ksm_hooks_node_free(node) };
                        return Err(PairRefused::Second);
                    }
                }
            }
            _ => {
                // SAFETY: the node never had a folio.
                unsafe { sys::ksm_hooks_node_free(node) };
                return Err(PairRefused::First);
            }
        };
        // SAFETY: the node is attached to its folio now and in no tree yet: valid.
        let r = item_second.give(|item| unsafe {
            sys::ksm_hooks_merge_into(node, second.vma(), second.addr, second.page(), item, max_sharing)
        });
        // Hashed now that the content cannot change: it is write-protected in every mapping
        // (and the caller's reference keeps the page for the kmap).
        let hash = hash_of(folio_page);
        self.seq += 1;
        let key = NodeKey {
            partial: hash.partial,
            full: hash.full,
            domain,
            seq: self.seq,
        };
        self.tree.insert(reservation.into_node(key, NodePtr(node)));
        Ok(match (r == 0, swapped) {
            (true, _) => PairMerged::Both,
            (false, false) => PairMerged::OnlyA,
            (false, true) => PairMerged::OnlyB,
        })
    }

    /// Once per pass: counts the sharing and drops nodes found stale. A node with more
    /// items than mappings drops the items through which nothing can map it any more.
    /// No folio is locked, and each is referenced only for a moment.
    pub(crate) fn refresh(&mut self) -> Sharing {
        let mut sharing = Sharing::default();
        self.for_each(NodeKey::default(), NodeKey::LAST, |_, node| {
            // SAFETY: `node` is in the tree, so valid; sleeping is allowed here.
            let mapped = unsafe { sys::uksm_node_mapcount(node) };
            if mapped < 0 {
                return (false, true);
            }
            if mapped > 0 {
                sharing.shared += 1;
                sharing.sharing += mapped as u64 - 1;
            }
            // SAFETY: as above.
            let alive = unsafe {
                sys::ksm_hooks_node_mappers(node) <= mapped
                    || sys::ksm_hooks_node_prune(node) != ESTALE
            };
            // SAFETY: no lock is held.
            unsafe { sys::uksm_cond_resched() };
            (alive, true)
        });
        sharing
    }

    /// Re-keys every node for a new strength of the partial hash: `partial_of` turns the
    /// partial hash of a merged folio's page into its partial hash at the new strength.
    /// No allocation (each tree node is reused), so no node can be lost; nodes found stale
    /// meanwhile leave the tree.
    pub(crate) fn rekey(&mut self, mut partial_of: impl FnMut(&PageRef, u32) -> u32) {
        let mut old = core::mem::replace(&mut self.tree, RBTree::new());
        loop {
            let Some((key, node)) = old.iter().next().map(|(&k, n)| (k, n.0)) else {
                break;
            };
            let Some(slot) = old.remove_node(&key) else {
                break;
            };
            // SAFETY: `node` was in the tree, so valid; a NULL result means it was stale
            // and is freed now.
            let page = unsafe { sys::uksm_node_page(node) };
            let Some(page) = core::ptr::NonNull::new(page) else {
                continue;
            };
            // SAFETY: `uksm_node_page` returned a referenced page, handed over.
            let page = unsafe { PageRef::adopt(page) };
            let key = NodeKey {
                partial: partial_of(&page, key.partial),
                ..key
            };
            drop(page);
            self.tree
                .insert(slot.into_reservation().into_node(key, NodePtr(node)));
            // SAFETY: no spinlock is held (the merge lock is a mutex).
            unsafe { sys::uksm_cond_resched() };
        }
    }

    /// Unmerging: frees every node whose folio is mapped nowhere any more (with `force`,
    /// every node: a folio still mapped stays a KSM folio without a node). Returns how many
    /// folios are still mapped.
    pub(crate) fn release(&mut self, force: bool) -> usize {
        let mut mapped = 0;
        self.for_each(NodeKey::default(), NodeKey::LAST, |_, node| {
            // SAFETY: `node` is in the tree, so valid.
            let r = unsafe { sys::ksm_hooks_node_release(node, force) };
            if r != 0 {
                mapped += 1;
            }
            (r != 0, true)
        });
        mapped
    }
}
