//! Partial page hashing with an adjustable strength (UKSM's `page_hash`/`delta_hash`).
//!
//! A page is seen as 1024 32-bit words. A fixed random permutation of the word offsets,
//! drawn once at load, gives the order in which words are sampled. The hash of strength
//! `s` folds the first `s` sampled words into a 32-bit state with an invertible step:
//!
//! ```text
//! h += word; h += h << 8; h ^= h >> 12        (wrapping)
//! ```
//!
//! Because every step can be undone, a hash of strength `a` can be turned into the hash of
//! strength `b` by applying or undoing `|b - a|` steps, without rehashing the page
//! ([`SampleOrder::rehash`]). Strengths above [`FULL`] go round the permutation again, up
//! to [`MAX`], so a "maximal" hash exists that does not depend on the current strength.
//!
//! The hash is only a hint for finding candidates: pages are compared in full before they
//! are merged.

/// 32-bit words in a 4 KiB page.
pub const WORDS: usize = 1024;
/// Strength that samples every word once.
pub const FULL: usize = WORDS;
/// Largest strength: every word, then the first `MAX - FULL` sampled words again.
pub const MAX: usize = FULL + 10;
/// Strength UKSM starts with.
pub const INITIAL: usize = FULL >> 4;

const SEED: u32 = 0xdead_beef;

fn step(h: u32, word: u32) -> u32 {
    let mut h = h.wrapping_add(word);
    h = h.wrapping_add(h << 8);
    h ^ (h >> 12)
}

fn unstep(h: u32, word: u32) -> u32 {
    // Undo `h ^= h >> 12`: x ^ (x >> 12) ^ (x >> 24) restores x for 32-bit x.
    let mut x = h ^ (h >> 12);
    x ^= x >> 24;
    // Undo `h *= 257`: the inverse of 257 modulo 2^32 is 1 - 2^8 + 2^16 - 2^24.
    x = x.wrapping_mul(0xff00_ff01);
    x.wrapping_sub(word)
}

/// Read access to the 32-bit words of one page.
///
/// The kernel implements it over a mapped user page with volatile reads (the page may
/// change while it is hashed); tests implement it over arrays.
pub trait PageWords {
    /// Word `index` (`< WORDS`) of the page.
    fn word(&self, index: usize) -> u32;
}

impl PageWords for [u32; WORDS] {
    fn word(&self, index: usize) -> u32 {
        self[index]
    }
}

/// A page of zeros.
pub struct ZeroPage;

impl PageWords for ZeroPage {
    fn word(&self, _index: usize) -> u32 {
        0
    }
}

/// The order in which words of a page are sampled: a permutation of `0..WORDS`.
pub struct SampleOrder {
    offsets: [u16; WORDS],
}

impl SampleOrder {
    /// A permutation drawn from `seed` (Fisher–Yates over a xorshift generator).
    pub fn new(seed: u64) -> Self {
        let mut offsets = [0u16; WORDS];
        for (i, o) in offsets.iter_mut().enumerate() {
            *o = i as u16;
        }
        let mut state = if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        };
        for i in (1..WORDS).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (state % (i as u64 + 1)) as usize;
            offsets.swap(i, j);
        }
        SampleOrder { offsets }
    }

    fn word(&self, page: &impl PageWords, index: usize) -> u32 {
        page.word(usize::from(self.offsets[index % FULL]))
    }

    /// Hash of `page` at `strength` (clamped to `1..=MAX`).
    pub fn hash(&self, page: &impl PageWords, strength: usize) -> u32 {
        self.rehash(page, SEED, 0, strength)
    }

    /// Turns `hash`, the hash of `page` at strength `from`, into its hash at strength `to`
    /// (both clamped to `0..=MAX`), touching `|to - from|` words.
    pub fn rehash(&self, page: &impl PageWords, hash: u32, from: usize, to: usize) -> u32 {
        let (from, to) = (from.min(MAX), to.clamp(1, MAX));
        let mut h = hash;
        if to >= from {
            for i in from..to {
                h = step(h, self.word(page, i));
            }
        } else {
            for i in (to..from).rev() {
                h = unstep(h, self.word(page, i));
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seed: u32) -> [u32; WORDS] {
        let mut p = [0u32; WORDS];
        let mut x = seed | 1;
        for w in p.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *w = x;
        }
        p
    }

    #[test]
    fn order_is_a_permutation_and_depends_on_the_seed() {
        let a = SampleOrder::new(42);
        let mut seen = [false; WORDS];
        for &o in a.offsets.iter() {
            assert!(!seen[usize::from(o)]);
            seen[usize::from(o)] = true;
        }
        assert_ne!(a.offsets, SampleOrder::new(43).offsets);
        assert_eq!(a.offsets, SampleOrder::new(42).offsets);
    }

    #[test]
    fn step_is_invertible() {
        for (h, w) in [
            (0u32, 0u32),
            (SEED, 7),
            (u32::MAX, u32::MAX),
            (0x1234_5678, 0x9abc_def0),
        ] {
            assert_eq!(unstep(step(h, w), w), h);
        }
    }

    #[test]
    fn rehash_equals_hashing_again() {
        let order = SampleOrder::new(7);
        let p = page(3);
        for (from, to) in [
            (64, 128),
            (128, 64),
            (1, MAX),
            (MAX, 1),
            (FULL, FULL + 3),
            (64, 64),
        ] {
            let direct = order.hash(&p, to);
            assert_eq!(
                order.rehash(&p, order.hash(&p, from), from, to),
                direct,
                "{from}->{to}"
            );
        }
    }

    #[test]
    fn identical_pages_hash_alike_and_a_sampled_difference_shows() {
        let order = SampleOrder::new(9);
        let (a, mut b) = (page(5), page(5));
        assert_eq!(order.hash(&a, INITIAL), order.hash(&b, INITIAL));
        // Change the first sampled word: every strength sees it.
        b[usize::from(order.offsets[0])] ^= 1;
        for s in [1, INITIAL, FULL, MAX] {
            assert_ne!(order.hash(&a, s), order.hash(&b, s), "strength {s}");
        }
    }

    #[test]
    fn zero_page_matches_an_array_of_zeros() {
        let order = SampleOrder::new(17);
        for s in [1, INITIAL, FULL, MAX] {
            assert_eq!(order.hash(&ZeroPage, s), order.hash(&[0u32; WORDS], s));
        }
    }

    #[test]
    fn a_full_hash_sees_every_word() {
        let order = SampleOrder::new(11);
        let a = page(6);
        for i in (0..WORDS).step_by(97) {
            let mut b = a;
            b[i] = b[i].wrapping_add(1);
            assert_ne!(order.hash(&a, FULL), order.hash(&b, FULL), "word {i}");
        }
    }

    #[test]
    fn distinct_pages_rarely_collide() {
        let order = SampleOrder::new(13);
        let mut hashes = std::vec::Vec::new();
        for s in 0..2000 {
            hashes.push(order.hash(&page(s * 2 + 1), INITIAL));
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert!(hashes.len() >= 1998, "{} distinct of 2000", hashes.len());
    }

    extern crate std;
}
