// SPDX-License-Identifier: GPL-2.0

//! The unstable table: for each hash seen in the current pass, where the pages with that
//! hash that are not merged yet live, so that a later identical page can be merged with
//! one of them.
//!
//! It is an open-addressing hash table in one vmalloc'd array, sized once per pass to
//! twice the pages hashed in the previous pass (at least 1024 entries, at most 2^20: 24
//! MiB) and reused from pass to pass: scanning a page allocates nothing. A table half full
//! takes no more entries until the next pass, which gets a bigger one. An entry records a
//! location (registry key of the VMA, address), never a page pointer: the page is looked
//! up again, under its mm's mmap lock, when an identical page turns up (KSM's unstable tree
//! equally re-finds its pages through their rmap items). Entries are hints: a stale one
//! (its VMA freed and another registered at the same address, say) costs a look-up and a
//! comparison, nothing more.
//!
//! A page is filed under its partial hash when no page of that partial hash was seen yet
//! this pass. Partial hashes of different pages collide (a page of zeros and a page with a
//! few bytes set outside the sampled words, say): a page that finds only different pages,
//! or none left, under its partial hash is looked up under the hash of its whole content
//! ([`Key::Full`]) and filed there, where identical pages find each other however many
//! pages share their partial hash. An entry whose page went, merged or cannot be merged
//! now is taken over by the next page of its key that finds no partner.

use kernel::prelude::*;

/// Where a page was seen; the default (key 0) marks an emptied entry.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Registry key of the VMA.
    pub(crate) key: usize,
    pub(crate) addr: usize,
}

/// What an entry is filed under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// The page's hash at the scanner's partial strength.
    Partial(u32),
    /// The hash of the whole page, for pages whose partial hash collides.
    Full(u32),
}

/// What a slot holds.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Free,
    Partial,
    Full,
}

impl Key {
    fn split(self) -> (Kind, u32) {
        match self {
            Key::Partial(h) => (Kind::Partial, h),
            Key::Full(h) => (Kind::Full, h),
        }
    }
}

/// 24 bytes: the largest table takes 24 MiB.
#[derive(Clone, Copy, Default)]
struct Entry {
    hash: u32,
    kind: Kind,
    loc: Loc,
}

/// Candidates examined per key at most (different pages whose hashes collide).
pub(crate) const MAX_CANDIDATES: usize = 4;
const MIN_SLOTS: usize = 1 << 10;
const MAX_SLOTS: usize = 1 << 20;

pub(crate) struct Unstable {
    slots: KVVec<Entry>,
    /// Slots in use (probe chains), and those holding a page not merged since.
    used: usize,
    live: usize,
}

impl Unstable {
    pub(crate) fn new() -> Self {
        Unstable {
            slots: KVVec::new(),
            used: 0,
            live: 0,
        }
    }

    /// Empties the table for a pass over about `pages` pages. Without memory for a bigger
    /// table, the old one serves (fewer pages get a chance to pair this pass). A table much
    /// bigger than needed is given back.
    pub(crate) fn reset(&mut self, pages: usize) {
        let want = pages
            .saturating_mul(2)
            .clamp(MIN_SLOTS, MAX_SLOTS)
            .next_power_of_two();
        if want > self.slots.len() || want * 8 < self.slots.len() {
            let mut bigger = KVVec::new();
            if bigger
                .extend_with(want, Entry::default(), GFP_KERNEL)
                .is_ok()
            {
                self.slots = bigger;
                self.used = 0;
                self.live = 0;
                return;
            }
        }
        for e in self.slots.iter_mut() {
            e.kind = Kind::Free;
        }
        self.used = 0;
        self.live = 0;
    }

    /// Pages seen this pass and not merged since (KSM's `pages_unshared`).
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Indexes of up to [`MAX_CANDIDATES`] entries filed under `key`, into `out`; returns
    /// how many.
    pub(crate) fn candidates(&self, key: Key, out: &mut [usize; MAX_CANDIDATES]) -> usize {
        if self.slots.is_empty() {
            return 0;
        }
        let (kind, hash) = key.split();
        let mut n = 0;
        let mut i = hash as usize & self.mask();
        while self.slots[i].kind != Kind::Free && n < MAX_CANDIDATES {
            if self.slots[i].kind == kind && self.slots[i].hash == hash {
                out[n] = i;
                n += 1;
            }
            i = (i + 1) & self.mask();
        }
        n
    }

    pub(crate) fn loc(&self, index: usize) -> Loc {
        self.slots[index].loc
    }

    /// The page at `index` moved on (unmapped, changed): `loc` takes its place.
    pub(crate) fn replace(&mut self, index: usize, loc: Loc) {
        if self.slots[index].loc.key == 0 {
            self.live += 1;
        }
        self.slots[index].loc = loc;
    }

    /// The page at `index` was merged: the entry stays in its probe chain, empty.
    pub(crate) fn merged(&mut self, index: usize) {
        if self.slots[index].loc.key != 0 {
            self.live -= 1;
        }
        self.slots[index].loc = Loc::default();
    }

    /// Records a page; a table more than half full takes no more this pass.
    pub(crate) fn insert(&mut self, key: Key, loc: Loc) {
        if self.slots.is_empty() || self.used >= self.slots.len() / 2 {
            return;
        }
        let (kind, hash) = key.split();
        let mut i = hash as usize & self.mask();
        while self.slots[i].kind != Kind::Free {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = Entry { hash, kind, loc };
        self.used += 1;
        self.live += 1;
    }
}
