//! The adaptive strength of the partial hash (UKSM's `rshash_adjust`, §2.15 of the
//! algorithm notes), as decisions on numbers.
//!
//! Work is counted in hashed words. Each page hashed at strength `s` instead of in full
//! saves `FULL - s` words. Work the partial hash wastes is the cost: hashing a page in
//! full after its partial hash matched one of different content, and comparing two pages
//! byte for byte only to find them different ([`MEMCMP_COST`] words each). A round's
//! *benefit* is what it saved less what it wasted, per hashed page (0 if it wasted more).
//!
//! After every [`ROUND_PAGES`] hashed pages (a *hash round*) the controller judges, as
//! UKSM does:
//! - waste above 90 % of the words saved: the hash is too weak, go up;
//! - no waste at all for more than two rounds: it may be stronger than needed, go down;
//! - otherwise stay.
//!
//! Steps start at one word and double while the direction holds (up to 32 words), and start
//! again at one when it changes or the strength stays.
//!
//! Those rules see collisions only. To find the strength of the best benefit where some
//! waste is normal, the controller also *probes*, as UKSM does: from the strength it holds
//! (the stable point) it steps down in growing steps (`TRYDOWN`) until the benefit falls
//! below the stable point's in three rounds of a window of five, the waste passes 90 % or
//! the strength is 1; then it steps up from the stable point (`TRYUP`) until the benefit
//! falls below the best found downwards in three rounds of five, a round is clean three
//! times in a row or the strength is [`MAX`]; it settles on whichever turning point gave
//! the better benefit and records the next round's benefit as the new stable one. A probe
//! falls due on round [`PROBE_FIRST`] and every [`PROBE_PERIOD`] rounds after it (it waits
//! while the collision rules move the strength), and begins when the benefit has moved by
//! more than half from the stable one for more than two rounds in a row, or when the
//! stable benefit is 0.
//!
//! A change of strength changes every partial hash: the scanner re-keys its stable tree
//! (one rehash of `|Δ|` words per merged folio, [`super::hash::SampleOrder::rehash`]) and
//! starts its unstable table afresh, which forgets the pages waiting there for a partner.
//! UKSM's hash round is a quarter of all memory; this one is a few thousand pages, so a
//! probe, which changes the strength every round, would forget them many times in a pass.
//! A probe therefore begins only after a *quiet* round (fewer than one merge per
//! [`QUIET_PAGES`] hashed pages), and one under way settles on its best point so far as
//! soon as a round is not quiet. The collision rules above act in every round.

use super::hash::{FULL, INITIAL, MAX};

/// Comparing two whole pages, in hashed words. UKSM measures it at boot; on x86_64 a
/// `memcmp` of 4 KiB runs at several times the speed of the word-by-word hash, so a page
/// comparison costs about a quarter of a full hash.
pub const MEMCMP_COST: u64 = (FULL / 4) as u64;
/// Pages hashed per hash round.
pub const ROUND_PAGES: u64 = 4096;
/// Largest step, as a power of two.
const MAX_STEP_LOG: u32 = 5;
/// The round on which the first periodic probe falls due (UKSM: the tenth hash round).
pub const PROBE_FIRST: u64 = 10;
/// Rounds from one periodic probe to the next (UKSM: 256 hash rounds).
pub const PROBE_PERIOD: u64 = 256;
/// A round is quiet when it merged fewer than one page per this many pages hashed.
pub const QUIET_PAGES: u64 = 100;
/// Rounds in a window of a probe, and how many of them below the mark end its direction.
const WINDOW: u32 = 5;
const BELOW_ENDS: u32 = 3;

/// What the controller is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Holding the strength, moving only on the collision rules.
    Still,
    /// Probing below the stable point.
    TryDown,
    /// Probing above the stable point.
    TryUp,
    /// Settled after a probe: the next round's benefit becomes the stable one.
    Settled,
}

impl Mode {
    /// UKSM's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Still => "still",
            Mode::TryDown => "trydown",
            Mode::TryUp => "tryup",
            Mode::Settled => "prestill",
        }
    }
}

/// The verdict on one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Up,
    Down,
    Probe,
    Stay,
}

/// A strength and the benefit a round had at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    strength: usize,
    benefit: u64,
}

/// The controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strength {
    strength: usize,
    /// Words saved and wasted, pages hashed and pages merged, in this round.
    saved: u64,
    wasted: u64,
    hashed: u64,
    merged: u64,
    /// Rounds judged.
    rounds: u64,
    /// Rounds in a row without waste, and with a benefit far from the stable one.
    clean_rounds: u32,
    far_rounds: u32,
    /// The last move in `Still`: +1 up, -1 down, 0 none; and the log2 of the next step.
    last: i8,
    step_log: u32,
    mode: Mode,
    /// The benefit recorded at the strength held, once a round has been judged.
    stable: Option<u64>,
    /// A periodic probe fell due and waits for a quiet round.
    probe_due: bool,
    /// The probe's stable point and its best points below and above it.
    stable_point: Point,
    best_down: Point,
    best_up: Point,
    /// Rounds of the current probe direction, and those of its window below the mark.
    window: u32,
    below: u32,
    /// Probes begun.
    probes: u64,
}

impl Default for Strength {
    fn default() -> Self {
        Self::new()
    }
}

impl Strength {
    /// UKSM's initial strength.
    pub const fn new() -> Self {
        let none = Point {
            strength: INITIAL,
            benefit: 0,
        };
        Strength {
            strength: INITIAL,
            saved: 0,
            wasted: 0,
            hashed: 0,
            merged: 0,
            rounds: 0,
            clean_rounds: 0,
            far_rounds: 0,
            last: 0,
            step_log: 0,
            mode: Mode::Still,
            stable: None,
            probe_due: false,
            stable_point: none,
            best_down: none,
            best_up: none,
            window: 0,
            below: 0,
            probes: 0,
        }
    }

    /// The current strength, 1..=[`MAX`].
    pub fn get(&self) -> usize {
        self.strength
    }

    /// What the controller is doing.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Probes begun.
    pub fn probes(&self) -> u64 {
        self.probes
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

    /// `pages` were merged (a probe waits while pages are being merged).
    pub fn merged(&mut self, pages: u64) {
        self.merged = self.merged.saturating_add(pages);
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
        let (saved, wasted, hashed, merged) = (self.saved, self.wasted, self.hashed, self.merged);
        (self.saved, self.wasted, self.hashed, self.merged) = (0, 0, 0, 0);
        let benefit = match saved.checked_sub(wasted) {
            Some(net) if hashed > 0 => net / hashed,
            _ => 0,
        };
        let quiet = merged.saturating_mul(QUIET_PAGES) < hashed.max(1);
        self.rounds += 1;
        if self.rounds >= PROBE_FIRST && (self.rounds - PROBE_FIRST) % PROBE_PERIOD == 0 {
            self.probe_due = true;
        }
        let verdict = self.judge(saved, wasted, benefit);
        let old = self.strength;
        match self.mode {
            Mode::Still => self.still(verdict, benefit, quiet),
            Mode::TryDown => self.try_down(verdict, benefit, quiet),
            Mode::TryUp => self.try_up(verdict, benefit, quiet),
            Mode::Settled => {
                self.stable = Some(benefit);
                self.mode = Mode::Still;
                self.step_log = 0;
            }
        }
        (self.strength != old).then_some(self.strength)
    }

    /// UKSM's `judge_rshash_direction`, but that a periodic probe waits in `probe_due`.
    fn judge(&mut self, saved: u64, wasted: u64, benefit: u64) -> Verdict {
        if wasted == 0 {
            self.clean_rounds += 1;
            return if self.clean_rounds > 2 {
                Verdict::Down
            } else {
                Verdict::Stay
            };
        }
        self.clean_rounds = 0;
        if wasted.saturating_mul(10) > saved.saturating_mul(9) {
            self.far_rounds = 0;
            return Verdict::Up;
        }
        let Some(stable) = self.stable.filter(|&b| b > 0) else {
            self.far_rounds = 0;
            return Verdict::Probe;
        };
        if benefit.abs_diff(stable).saturating_mul(2) > stable {
            self.far_rounds += 1;
            if self.far_rounds > 2 {
                return Verdict::Probe;
            }
            return Verdict::Stay;
        }
        self.far_rounds = 0;
        Verdict::Stay
    }

    /// One step of `2^step_log` words up (`dir` > 0) or down; the next step doubles.
    fn step(&mut self, dir: i8) {
        let step = 1usize << self.step_log;
        self.step_log = (self.step_log + 1).min(MAX_STEP_LOG);
        self.strength = if dir > 0 {
            self.strength.saturating_add(step).min(MAX)
        } else {
            self.strength.saturating_sub(step).max(1)
        };
    }

    fn still(&mut self, verdict: Verdict, benefit: u64, quiet: bool) {
        let probe = verdict == Verdict::Probe || (self.probe_due && verdict == Verdict::Stay);
        if probe && quiet && self.stable.is_some() {
            self.probe_due = false;
            self.probes += 1;
            let here = Point {
                strength: self.strength,
                benefit,
            };
            (self.stable_point, self.best_down, self.best_up) = (here, here, here);
            self.stable = Some(benefit);
            (self.window, self.below, self.last) = (0, 0, 0);
            self.mode = Mode::TryDown;
            self.step_log = 0;
            self.step(-1);
            return;
        }
        let dir: i8 = match verdict {
            Verdict::Up => 1,
            Verdict::Down => -1,
            Verdict::Probe | Verdict::Stay => 0,
        };
        if dir == 0 || dir != self.last {
            self.step_log = 0;
        }
        self.last = dir;
        if dir != 0 || self.stable.is_none() {
            self.stable = Some(benefit);
        }
        if dir != 0 {
            self.step(dir);
        }
    }

    /// Counts a probe round against `mark`; returns whether enough of the window fell
    /// below it.
    fn below_mark(&mut self, benefit: u64, mark: u64) -> bool {
        if self.window % WINDOW == 0 {
            self.below = 0;
        }
        self.window += 1;
        if benefit < mark {
            self.below += 1;
        }
        self.below >= BELOW_ENDS
    }

    fn try_down(&mut self, verdict: Verdict, benefit: u64, quiet: bool) {
        let here = Point {
            strength: self.strength,
            benefit,
        };
        let stable = self.stable_point.benefit;
        let ended = self.below_mark(benefit, stable);
        if benefit >= stable && benefit > self.best_down.benefit {
            self.best_down = here;
        }
        if !quiet {
            self.settle();
        } else if ended || verdict == Verdict::Up || self.strength == 1 {
            self.strength = self.stable_point.strength;
            (self.window, self.below) = (0, 0);
            self.step_log = 0;
            self.step(1);
            self.step_log = 0;
            self.mode = Mode::TryUp;
        } else {
            self.step(-1);
        }
    }

    fn try_up(&mut self, verdict: Verdict, benefit: u64, quiet: bool) {
        let here = Point {
            strength: self.strength,
            benefit,
        };
        let mark = self.best_down.benefit;
        let ended = self.below_mark(benefit, mark);
        if benefit >= mark && benefit > self.best_up.benefit {
            self.best_up = here;
        }
        if !quiet || ended || verdict == Verdict::Down || self.strength == MAX {
            self.settle();
        } else {
            self.step(1);
        }
    }

    /// Ends a probe on the better of its turning points.
    fn settle(&mut self) {
        let best = if self.best_up.benefit > self.best_down.benefit {
            self.best_up
        } else {
            self.best_down
        };
        self.strength = best.strength;
        self.mode = Mode::Settled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round of `ROUND_PAGES` pages wasting `wasted_per_page` words each and merging
    /// `merged` pages.
    fn round_merging(s: &mut Strength, wasted_per_page: u64, merged: u64) -> Option<usize> {
        for _ in 0..ROUND_PAGES / 2 {
            s.hashed(2);
            s.wasted(2 * wasted_per_page);
        }
        s.merged(merged);
        assert!(s.round_done());
        s.end_round()
    }

    fn round(s: &mut Strength, wasted_per_page: u64) -> Option<usize> {
        round_merging(s, wasted_per_page, 0)
    }

    /// A round of the workload of [`waste_of`].
    fn workload(s: &mut Strength, merged: u64) -> Option<usize> {
        let wasted = waste_of(s.get());
        round_merging(s, wasted, merged)
    }

    /// Waste per page of a workload whose pages collide below strength 20.
    fn waste_of(strength: usize) -> u64 {
        if strength < 20 {
            2 * FULL as u64
        } else {
            30
        }
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
            [
                start + 1,
                start + 3,
                start + 7,
                start + 15,
                start + 31,
                start + 63,
                start + 95,
                start + 127
            ]
        );
        // Up to MAX, never beyond.
        for _ in 0..100 {
            round(&mut s, FULL as u64 * 2);
        }
        assert_eq!(s.get(), MAX);
        assert_eq!(round(&mut s, FULL as u64 * 2), None);
        assert_eq!(s.probes(), 0);
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

    #[test]
    fn the_periodic_probe_finds_the_weakest_strength_that_does_not_collide() {
        // A steady waste of 30 words a page holds the collision rules still at 64; only a
        // probe finds that the hash can be much weaker before pages collide (below 20).
        let mut s = Strength::new();
        let mut path = std::vec::Vec::new();
        for _ in 0..PROBE_FIRST - 1 {
            assert_eq!(workload(&mut s, 0), None);
        }
        assert_eq!(s.mode(), Mode::Still);
        while path.len() < 20 {
            let before = s.mode();
            workload(&mut s, 0);
            path.push((before, s.get()));
            if before == Mode::Settled {
                break;
            }
        }
        use Mode::*;
        assert_eq!(
            path,
            [
                // Down from the stable point in growing steps, while the benefit grows.
                (Still, 63),
                (TryDown, 61),
                (TryDown, 57),
                (TryDown, 49),
                (TryDown, 33),
                (TryDown, 1),
                // Strength 1 collides (waste above 90 %): back to the stable point, up.
                (TryDown, 65),
                // Above it the benefit is below the best point found downwards: three
                // rounds of that, then settle there.
                (TryUp, 66),
                (TryUp, 68),
                (TryUp, 33),
                (Settled, 33),
            ]
        );
        assert_eq!((s.mode(), s.probes()), (Mode::Still, 1));
        // Settled: no more probes until the next period, nothing moves.
        for _ in 0..100 {
            assert_eq!(workload(&mut s, 0), None);
        }
    }

    #[test]
    fn a_probe_waits_while_pages_are_merged_and_gives_up_when_merging_starts() {
        let mut s = Strength::new();
        let merging = ROUND_PAGES / QUIET_PAGES + 1;
        for _ in 0..PROBE_FIRST + 5 {
            assert_eq!(workload(&mut s, merging), None);
        }
        assert_eq!((s.mode(), s.probes()), (Mode::Still, 0));
        // A quiet round: the probe that fell due begins.
        assert_eq!(workload(&mut s, 0), Some(INITIAL - 1));
        assert_eq!(workload(&mut s, 0), Some(INITIAL - 3));
        assert_eq!(s.mode(), Mode::TryDown);
        // Merging again: the probe settles at once on its best point so far, 61, which
        // this round measured.
        assert_eq!(workload(&mut s, merging), None);
        assert_eq!((s.mode(), s.get()), (Mode::Settled, INITIAL - 3));
        assert_eq!(workload(&mut s, merging), None);
        assert_eq!((s.mode(), s.probes()), (Mode::Still, 1));
    }

    #[test]
    fn a_lasting_change_of_benefit_starts_a_probe() {
        let mut s = Strength::new();
        round(&mut s, 30);
        round(&mut s, 30);
        // The waste grows to half a page's saved words (not the 90 % that pushes up): the
        // benefit falls by more than half, and after three such rounds the controller
        // probes.
        assert_eq!(round(&mut s, 500), None);
        assert_eq!(round(&mut s, 500), None);
        assert_eq!(round(&mut s, 500), Some(INITIAL - 1));
        assert_eq!((s.mode(), s.probes()), (Mode::TryDown, 1));
    }

    #[test]
    fn any_sequence_keeps_the_strength_in_range_and_ends_probes() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut s = Strength::new();
        let mut probing = 0u32;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let wasted = match x % 4 {
                0 => 0,
                1 => x >> 54,
                2 => (x >> 40) % (3 * FULL as u64),
                _ => waste_of(s.get()),
            };
            let merged = if x % 7 == 0 { ROUND_PAGES } else { 0 };
            round_merging(&mut s, wasted, merged);
            assert!((1..=MAX).contains(&s.get()));
            probing = if matches!(s.mode(), Mode::TryDown | Mode::TryUp) {
                probing + 1
            } else {
                0
            };
            // Each direction of a probe ends within a window or on reaching a bound.
            assert!(probing < 2 * 40, "probe did not end");
        }
        assert!(s.probes() > 0);
    }

    extern crate std;
}
