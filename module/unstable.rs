// SPDX-License-Identifier: GPL-2.0

//! The unstable table of the merge engine: the host-tested table of
//! [`crate::logic::unstable`] over a vmalloc'd array, resized once per pass.

use crate::logic::unstable::{self, Entry, Table};
use kernel::prelude::*;

pub(crate) use crate::logic::unstable::{Key, Loc, MAX_CANDIDATES};

/// The table's array.
pub(crate) struct Slots(KVVec<Entry>);

impl AsRef<[Entry]> for Slots {
    fn as_ref(&self) -> &[Entry] {
        &self.0
    }
}

impl AsMut<[Entry]> for Slots {
    fn as_mut(&mut self) -> &mut [Entry] {
        &mut self.0
    }
}

pub(crate) struct Unstable {
    table: Table<Slots>,
}

impl core::ops::Deref for Unstable {
    type Target = Table<Slots>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl core::ops::DerefMut for Unstable {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.table
    }
}

impl Unstable {
    pub(crate) fn new() -> Self {
        Unstable {
            table: Table::new(Slots(KVVec::new())),
        }
    }

    /// Empties the table for a pass over about `pages` pages. Without memory for a bigger
    /// table, the old one serves (fewer pages get a chance to pair this pass). A table much
    /// bigger than needed is given back.
    pub(crate) fn reset(&mut self, pages: usize) {
        let want = unstable::slots_for(pages);
        if unstable::should_resize(self.table.len(), want) {
            let mut slots = KVVec::new();
            if slots.extend_with(want, Entry::default(), GFP_KERNEL).is_ok() {
                self.table = Table::new(Slots(slots));
                return;
            }
        }
        self.table.clear();
    }
}
