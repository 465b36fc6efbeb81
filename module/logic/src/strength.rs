//! The adaptive strength of the partial hash (UKSM's `rshash_adjust`, §2.15 of the
//! algorithm notes), as decisions on numbers.
//!
//! Work is counted in hashed words. Each page hashed at strength `s` instead of in full
//! saves `FULL - s` words (the benefit). Work the partial hash wastes is the cost: hashing
//! a page in full after its partial hash matched one of different content, and comparing
//! two pages byte for byte only to find them different ([`MEMCMP_COST`] words each).
//!
//! After every [`ROUND_PAGES`] hashed pages (a *hash round*) the controller judges, as
//! UKSM does:
//! - waste above 90 % of the benefit: the hash is too weak, go up;
//! - no waste at all for more than two rounds: it may be stronger than needed, go down;
//! - otherwise stay.
//! Steps start at one word and double while the direction holds (up to 32 words), and start
//! again at one when it changes or the strength stays. UKSM also probes around a stable
//! point now and then to find a better benefit; this controller does not (the rules above
//! are the ones that react to collisions).
//!
//! A change of strength changes every partial hash: the scanner re-keys its stable tree
//! (one rehash of `|Δ|` words per merged folio, [`super::hash::SampleOrder::rehash`]) and
//! starts its unstable table afresh.

use super::hash::{FULL, INITIAL, MAX};

/// Comparing two whole pages, in hashed words. UKSM measures it at boot; on x86_64 a
/// `memcmp` of 4 KiB runs at several times the speed of the word-by-word hash, so a page
/// comparison costs about a quarter of a full hash.
pub const MEMCMP_COST: u64 = (FULL / 4) as u64;
/// Pages hashed per hash round.
pub const ROUND_PAGES: u64 = 4096;
/// Largest step, as a power of two.
const MAX_STEP_LOG: u32 = 5;

/// The controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strength {
    strength: usize,
    /// Words saved and wasted, and pages hashed, in this round.
    saved: u64,
    wasted: u64,
    hashed: u64,
    /// Rounds in a row without waste.
    clean_rounds: u32,
    /// The last move: +1 up, -1 down, 0 none; and the log2 of the next step.
    last: i8,
    step_log: u32,
}

impl Default for Strength {
    fn default() -> Self {
        Self::new()
    }
}

impl Strength {
    /// UKSM's initial strength.
    pub const fn new() -> Self {
        Strength {
            strength: INITIAL,
            saved: 0,
            wasted: 0,
            hashed: 0,
            clean_rounds: 0,
            last: 0,
            step_log: 0,
        }
    }

    /// The current strength, 1..=[`MAX`].
    pub fn get(&self) -> usize {
        self.strength
    }

    /// `pages` were hashed at the current strength.
    pub fn hashed(&mut self, pages: u64) {
        self.hashed = self.hashed.saturating_add(pages);
        self.saved = self
            .saved
            .saturating_add(pages.saturating_mul(FULL.saturating_sub(self.strength) as u64));
    }

    /// Work the partial hash made necessary and that found nothing, in hashed words.
    pub fn wasted(&mut self, words: u64) {
        self.wasted = self.wasted.saturating_add(words);
    }

    /// Waste of computing the whole-content hash from the partial one.
    pub fn full_hash_words(&self) -> u64 {
        FULL.saturating_sub(self.strength) as u64
    }

    /// Whether the round is complete (then call [`end_round`](Self::end_round)).
    pub fn round_done(&self) -> bool {
        self.hashed >= ROUND_PAGES
    }

    /// Judges the round and starts the next; returns the new strength if it changed.
    pub fn end_round(&mut self) -> Option<usize> {
        let (saved, wasted) = (self.saved, self.wasted);
        (self.saved, self.wasted, self.hashed) = (0, 0, 0);
        let dir: i8 = if wasted.saturating_mul(10) > saved.saturating_mul(9) {
            self.clean_rounds = 0;
            1
        } else if wasted == 0 {
            self.clean_rounds += 1;
            if self.clean_rounds > 2 {
                -1
            } else {
                0
            }
        } else {
            self.clean_rounds = 0;
            0
        };
        if dir == 0 || dir != self.last {
            self.step_log = 0;
        }
        self.last = dir;
        if dir == 0 {
            return None;
        }
        let step = 1usize << self.step_log;
        self.step_log = (self.step_log + 1).min(MAX_STEP_LOG);
        let next = if dir > 0 {
            self.strength.saturating_add(step).min(MAX)
        } else {
            self.strength.saturating_sub(step).max(1)
        };
        if next == self.strength {
            return None;
        }
        self.strength = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &mut Strength, wasted_per_page: u64) -> Option<usize> {
        for _ in 0..ROUND_PAGES / 2 {
            s.hashed(2);
            s.wasted(2 * wasted_per_page);
        }
        assert!(s.round_done());
        s.end_round()
    }

    #[test]
    fn collisions_push_the_strength_up_in_growing_steps() {
        let mut s = Strength::new();
        let mut seen = std::vec::Vec::new();
        for _ in 0..8 {
            seen.push(round(&mut s, FULL as u64).unwrap());
        }
        let start = INITIAL;
        assert_eq!(
            seen,
            [start + 1, start + 3, start + 7, start + 15, start + 31, start + 63, start + 95, start + 127]
        );
        // Up to MAX, never beyond.
        for _ in 0..100 {
            round(&mut s, FULL as u64 * 2);
        }
        assert_eq!(s.get(), MAX);
        assert_eq!(round(&mut s, FULL as u64 * 2), None);
    }

    #[test]
    fn no_waste_lowers_it_after_two_clean_rounds_and_some_waste_holds_it() {
        let mut s = Strength::new();
        assert_eq!(round(&mut s, 0), None);
        assert_eq!(round(&mut s, 0), None);
        assert_eq!(round(&mut s, 0), Some(INITIAL - 1));
        assert_eq!(round(&mut s, 0), Some(INITIAL - 3));
        // A little waste (below 90 % of the benefit): stay, and the step starts over.
        assert_eq!(round(&mut s, 10), None);
        assert_eq!(round(&mut s, 0), None);
        assert_eq!(round(&mut s, 0), None);
        assert_eq!(round(&mut s, 0), Some(INITIAL - 4));
        // Never below 1.
        for _ in 0..100 {
            round(&mut s, 0);
        }
        assert_eq!(s.get(), 1);
    }

    #[test]
    fn a_reversal_starts_with_a_small_step() {
        let mut s = Strength::new();
        round(&mut s, 0);
        round(&mut s, 0);
        round(&mut s, 0);
        assert_eq!(round(&mut s, 0), Some(INITIAL - 3));
        assert_eq!(round(&mut s, FULL as u64), Some(INITIAL - 2));
        assert_eq!(round(&mut s, FULL as u64), Some(INITIAL));
    }

    #[test]
    fn an_empty_round_changes_nothing_it_should_not() {
        let mut s = Strength::new();
        assert!(!s.round_done());
        // No pages hashed: no benefit, no waste: counts as a clean round.
        assert_eq!(s.end_round(), None);
        assert_eq!(s.get(), INITIAL);
    }

    extern crate std;
}
