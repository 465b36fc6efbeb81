//! The bits of one chunk of a VMA's merged-page map (`module/merged_map.rs`): 512 pages,
//! 2 MiB of address space.
//!
//! Each page has two bits. *Merged*: the module merged the page and no sample has seen it
//! replaced since. *Collapsed*: the page was merged, and a huge page now maps it: khugepaged
//! or `MADV_COLLAPSE` copied the merged pages of the range into one large folio. A collapse
//! is not the process writing (it is no thrashing), and merging such a page again only
//! restores a merge the module had made (it is no new duplicate found): the scanner counts
//! neither. This matters where khugepaged undoes merges over and over (7.3's khugepaged
//! collapses ranges of read-only merged pages; a range written just before a collapse hid
//! the writes from the thrash filter, while the merges after it still counted).

/// Pages per chunk.
pub const CHUNK_PAGES: usize = 512;
const WORDS: usize = CHUNK_PAGES / 64;

/// The two bits of each page of one chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkBits {
    merged: [u64; WORDS],
    collapsed: [u64; WORDS],
}

fn at(page: usize) -> (usize, u64) {
    let bit = page % CHUNK_PAGES;
    (bit / 64, 1u64 << (bit % 64))
}

impl ChunkBits {
    /// A chunk with the page at `page` (index in the chunk) merged.
    pub fn with_merged(page: usize) -> Self {
        let mut bits = ChunkBits::default();
        bits.set(page);
        bits
    }

    /// Whether no bit is set (the chunk can be freed).
    pub fn is_empty(&self) -> bool {
        self.merged.iter().chain(&self.collapsed).all(|&w| w == 0)
    }

    /// Whether the page was merged and not seen replaced since.
    pub fn merged(&self, page: usize) -> bool {
        let (w, m) = at(page);
        self.merged[w] & m != 0
    }

    /// The page was merged (again): merged, not collapsed.
    pub fn set(&mut self, page: usize) {
        let (w, m) = at(page);
        self.merged[w] |= m;
        self.collapsed[w] &= !m;
    }

    /// The page is no longer merged (a write replaced it): both bits cleared.
    pub fn clear(&mut self, page: usize) {
        let (w, m) = at(page);
        self.merged[w] &= !m;
        self.collapsed[w] &= !m;
    }

    /// A large folio maps the pages `first..end` (indexes in the chunk, `end` at most
    /// [`CHUNK_PAGES`]): those merged become collapsed. Returns how many did.
    pub fn collapse(&mut self, first: usize, end: usize) -> u32 {
        let mut moved = 0;
        for page in first..end.min(CHUNK_PAGES) {
            let (w, m) = at(page);
            if self.merged[w] & m != 0 {
                self.merged[w] &= !m;
                self.collapsed[w] |= m;
                moved += 1;
            }
        }
        moved
    }

    /// Whether the page was collapsed; clears the bit (a sample decides its fate once: a
    /// merge of it is a restoration, and a page not merged again is forgotten).
    pub fn take_collapsed(&mut self, page: usize) -> bool {
        let (w, m) = at(page);
        let was = self.collapsed[w] & m != 0;
        self.collapsed[w] &= !m;
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collapse_turns_merged_pages_into_collapsed_ones() {
        let mut c = ChunkBits::with_merged(3);
        c.set(4);
        c.set(511);
        assert!(c.merged(3) && c.merged(4) && c.merged(511) && !c.merged(5));
        // A folio over pages 4..512 of the chunk: two merged pages in it.
        assert_eq!(c.collapse(4, 512), 2);
        assert!(c.merged(3) && !c.merged(4) && !c.merged(511));
        // Collapsing again finds nothing merged.
        assert_eq!(c.collapse(0, 600), 1);
        assert!(!c.merged(3));
        // Each collapsed page is taken once.
        assert!(c.take_collapsed(4));
        assert!(!c.take_collapsed(4));
        assert!(!c.take_collapsed(5));
        assert!(!c.is_empty());
        assert!(c.take_collapsed(511) && c.take_collapsed(3));
        assert!(c.is_empty());
    }

    #[test]
    fn merging_or_breaking_a_collapsed_page_ends_its_collapse() {
        let mut c = ChunkBits::with_merged(10);
        c.set(11);
        c.collapse(0, 512);
        c.set(10);
        assert!(c.merged(10) && !c.take_collapsed(10));
        c.clear(11);
        assert!(!c.take_collapsed(11));
        c.clear(10);
        assert!(c.is_empty());
    }
}
