//! The unstable table: for each hash seen in the current pass, where the pages with that
//! hash that are not merged yet live, so that a later identical page can be merged with
//! one of them.
//!
//! It is an open-addressing hash table over one array of [`Entry`]s that the caller owns
//! (the module's is vmalloc'd, sized once per pass with [`slots_for`] and reused from pass
//! to pass: scanning a page allocates nothing). A table half full takes no more entries
//! until the next pass, which gets a bigger one. An entry records a location (registry key
//! of the VMA, address), never a page pointer: the page is looked up again, under its mm's
//! mmap lock, when an identical page turns up (KSM's unstable tree equally re-finds its
//! pages through their rmap items). Entries are hints: a stale one (its VMA freed and
//! another registered at the same address, say) costs a look-up and a comparison, nothing
//! more.
//!
//! A page is filed under its partial hash when no page of that partial hash was seen yet
//! this pass. Partial hashes of different pages collide (a page of zeros and a page with a
//! few bytes set outside the sampled words, say): a page that finds only different pages,
//! or none left, under its partial hash is looked up under the hash of its whole content
//! ([`Key::Full`]) and filed there, where identical pages find each other however many
//! pages share their partial hash. An entry whose page went, merged or cannot be merged
//! now is taken over by the next page of its key that finds no partner.

/// Where a page was seen; the default (key 0) marks an emptied entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    /// Registry key of the VMA.
    pub key: usize,
    /// Address of the page.
    pub addr: usize,
}

/// What an entry is filed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The page's hash at the scanner's partial strength.
    Partial(u32),
    /// The hash of the whole page, for pages whose partial hash collides.
    Full(u32),
}

/// What a slot holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// One slot; 24 bytes on 64-bit, so the largest table takes 24 MiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entry {
    hash: u32,
    kind: Kind,
    loc: Loc,
}

/// Candidates examined per key at most (different pages whose hashes collide).
pub const MAX_CANDIDATES: usize = 4;
/// Smallest table.
pub const MIN_SLOTS: usize = 1 << 10;
/// Largest table: 2^20 slots, a pass of about 2^19 pages remembered.
pub const MAX_SLOTS: usize = 1 << 20;

/// Slots a table for a pass over about `pages` pages should have: twice the pages, a power
/// of two within [`MIN_SLOTS`] and [`MAX_SLOTS`].
pub fn slots_for(pages: usize) -> usize {
    pages
        .saturating_mul(2)
        .clamp(MIN_SLOTS, MAX_SLOTS)
        .next_power_of_two()
}

/// Whether a table of `have` slots should be replaced for a pass that wants `want`: too
/// small, or more than eight times too big.
pub fn should_resize(have: usize, want: usize) -> bool {
    want > have || want.saturating_mul(8) < have
}

/// The table over storage `S` (a slice of entries whose length is a power of two, or
/// empty).
pub struct Table<S> {
    slots: S,
    /// Slots in use (probe chains), and those holding a page not merged since.
    used: usize,
    live: usize,
}

impl<S: AsRef<[Entry]> + AsMut<[Entry]>> Table<S> {
    /// A table over `slots`, emptied.
    pub fn new(slots: S) -> Self {
        assert!(slots.as_ref().is_empty() || slots.as_ref().len().is_power_of_two());
        let mut t = Table {
            slots,
            used: 0,
            live: 0,
        };
        t.clear();
        t
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// Whether the table has no slots at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the table for a new pass.
    pub fn clear(&mut self) {
        for e in self.slots.as_mut().iter_mut() {
            e.kind = Kind::Free;
        }
        self.used = 0;
        self.live = 0;
    }

    /// Whether the table takes no more entries (half its slots in use).
    pub fn is_full(&self) -> bool {
        self.is_empty() || self.used >= self.len() / 2
    }

    /// Pages seen this pass and not merged since (KSM's `pages_unshared`).
    pub fn live(&self) -> usize {
        self.live
    }

    fn mask(&self) -> usize {
        self.len() - 1
    }

    /// Indexes of up to [`MAX_CANDIDATES`] entries filed under `key`, into `out`; returns
    /// how many.
    pub fn candidates(&self, key: Key, out: &mut [usize; MAX_CANDIDATES]) -> usize {
        if self.is_empty() {
            return 0;
        }
        let slots = self.slots.as_ref();
        let (kind, hash) = key.split();
        let mut n = 0;
        let mut i = hash as usize & self.mask();
        while slots[i].kind != Kind::Free && n < MAX_CANDIDATES {
            if slots[i].kind == kind && slots[i].hash == hash {
                out[n] = i;
                n += 1;
            }
            i = (i + 1) & self.mask();
        }
        n
    }

    /// Where the page of entry `index` was seen (the default once it was merged).
    pub fn loc(&self, index: usize) -> Loc {
        self.slots.as_ref()[index].loc
    }

    /// The page at `index` moved on (unmapped, changed, cannot be merged): `loc` takes its
    /// place.
    pub fn replace(&mut self, index: usize, loc: Loc) {
        let e = &mut self.slots.as_mut()[index];
        if e.loc.key == 0 {
            self.live += 1;
        }
        e.loc = loc;
    }

    /// The page at `index` was merged: the entry stays in its probe chain, empty.
    pub fn merged(&mut self, index: usize) {
        let e = &mut self.slots.as_mut()[index];
        if e.loc.key != 0 {
            self.live -= 1;
        }
        e.loc = Loc::default();
    }

    /// Records a page; a table more than half full takes no more this pass.
    pub fn insert(&mut self, key: Key, loc: Loc) {
        if self.is_full() {
            return;
        }
        let mask = self.mask();
        let slots = self.slots.as_mut();
        let (kind, hash) = key.split();
        let mut i = hash as usize & mask;
        while slots[i].kind != Kind::Free {
            i = (i + 1) & mask;
        }
        slots[i] = Entry { hash, kind, loc };
        self.used += 1;
        self.live += 1;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn table(n: usize) -> Table<Vec<Entry>> {
        Table::new(vec![Entry::default(); n])
    }

    fn loc(key: usize) -> Loc {
        Loc {
            key,
            addr: key * 4096,
        }
    }

    fn found(t: &Table<Vec<Entry>>, key: Key) -> Vec<Loc> {
        let mut out = [0; MAX_CANDIDATES];
        let n = t.candidates(key, &mut out);
        out[..n].iter().map(|&i| t.loc(i)).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(slots_for(0), MIN_SLOTS);
        assert_eq!(slots_for(1000), 2048);
        assert_eq!(slots_for(usize::MAX), MAX_SLOTS);
        assert!(should_resize(1024, 2048));
        assert!(!should_resize(2048, 1024));
        assert!(should_resize(1 << 20, 1024));
    }

    #[test]
    fn partial_and_full_keys_are_apart() {
        let mut t = table(1024);
        t.insert(Key::Partial(7), loc(1));
        t.insert(Key::Full(7), loc(2));
        assert_eq!(found(&t, Key::Partial(7)), [loc(1)]);
        assert_eq!(found(&t, Key::Full(7)), [loc(2)]);
        assert!(found(&t, Key::Partial(8)).is_empty());
        assert_eq!(t.live(), 2);
    }

    #[test]
    fn colliding_hashes_probe_on() {
        let mut t = table(1024);
        // Same slot (hashes equal modulo 1024), different hashes.
        for k in 0..6 {
            t.insert(Key::Partial(5 + 1024 * k), loc(k as usize + 1));
        }
        assert_eq!(found(&t, Key::Partial(5 + 1024 * 3)), [loc(4)]);
        // At most MAX_CANDIDATES of one key.
        for k in 0..6 {
            t.insert(Key::Partial(9), loc(100 + k));
        }
        assert_eq!(found(&t, Key::Partial(9)).len(), MAX_CANDIDATES);
    }

    #[test]
    fn merged_entries_keep_the_chain() {
        let mut t = table(1024);
        t.insert(Key::Partial(3), loc(1));
        t.insert(Key::Partial(3 + 1024), loc(2));
        let mut out = [0; MAX_CANDIDATES];
        assert_eq!(t.candidates(Key::Partial(3), &mut out), 1);
        t.merged(out[0]);
        assert_eq!(t.live(), 1);
        // The emptied entry still leads on to the one behind it.
        assert_eq!(found(&t, Key::Partial(3 + 1024)), [loc(2)]);
        assert_eq!(found(&t, Key::Partial(3)), [Loc::default()]);
        t.replace(out[0], loc(9));
        assert_eq!(found(&t, Key::Partial(3)), [loc(9)]);
        assert_eq!(t.live(), 2);
        // Replacing a live entry does not count it twice.
        t.replace(out[0], loc(10));
        assert_eq!(t.live(), 2);
    }

    #[test]
    fn half_full_takes_no_more_and_clear_empties() {
        let mut t = table(1024);
        for k in 0..2000 {
            t.insert(Key::Partial(k), loc(k as usize + 1));
        }
        assert_eq!(t.live(), 512);
        t.clear();
        assert_eq!(t.live(), 0);
        assert!(found(&t, Key::Partial(0)).is_empty());
        let mut empty: Table<Vec<Entry>> = Table::new(Vec::new());
        empty.insert(Key::Partial(1), loc(1));
        assert!(found(&empty, Key::Partial(1)).is_empty());
    }
}
