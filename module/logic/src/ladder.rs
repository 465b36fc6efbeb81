//! The sampling ladder's decisions (UKSM's `judge_slot` and rung arithmetic, §2.14 of the
//! algorithm notes): which rung a VMA moves to after a visit, and how sparsely a rung
//! samples its pages.
//!
//! A VMA's yield over a visit is the merges its samples found, less the merged pages of
//! the VMA that writes broke meanwhile, per sampled page. A VMA that yields at least
//! `abundant_threshold` percent climbs one rung, one that yields less steps down one; a
//! VMA whose writes broke more than `thrash_threshold` percent of what it merged yields
//! nothing, whatever it merged. A VMA that has been sampled all over (a full pass) goes
//! back to rung 0 unless the pass's last cover still yielded enough or a merge was
//! refused during the pass (it steps down one rung then, and the next pass tries the
//! busy pages again), so that memory whose
//! duplicates are all merged costs rung 0's share only; it climbs again as soon as its
//! samples find new duplicates. A cover that yields enough within its first
//! [`EARLY_CLIMB_SAMPLES`] samples climbs at once ([`climbs_early`]).
//!
//! A thrashing VMA is also *held*: its pages are neither merged nor offered for merging
//! for a while (its samples still look for merged pages being broken). The hold lasts
//! [`FIRST_HOLD_MS`] and doubles each time the VMA thrashes again after a hold, up to
//! [`MAX_HOLD_MS`]. Once its covers have found merged pages kept and none broken for as
//! long as the last hold lasted (and that long after it), the VMA has settled, and its
//! next thrashing starts with a short hold again. A VMA whose writes stop is merged again
//! at most [`MAX_HOLD_MS`] after they stopped, plus a cover.

use core::num::NonZeroU64;
use super::governor::RUNGS;

/// The ladder's thresholds, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Yield at or above which a VMA climbs (`abundant_threshold`, UKSM's default 10).
    pub abundant: u32,
    /// Broken-by-write share of merges above which a VMA counts as thrashing
    /// (`thrash_threshold`, UKSM's default 50); 0 turns the filter off, and with it the
    /// return to rung 0 after a full pass.
    pub thrash: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            abundant: 10,
            thrash: 50,
        }
    }
}

/// Samples a cover takes from a VMA, at least (all its pages if it has fewer): a
/// judgement on one or two samples is a coin toss, and a VMA rich in duplicates could
/// wander between the lowest rungs for minutes (UKSM's `RUNG_SAMPLED_MIN` is 3 per rung).
/// On a rung whose share allows fewer samples, the cover takes longer than the rung's
/// cover time; the rung's CPU share is kept either way.
pub const MIN_COVER_SAMPLES: u64 = 8;

/// The stride of a pass over a VMA of `pages` pages on a rung whose stride is
/// `rung_stride`, where the VMA alone would get the rung's samples of a cover with
/// `own_stride`: the larger of the two (the rung's stride lags behind a VMA that just
/// moved in), but fine enough for [`MIN_COVER_SAMPLES`] windows.
pub fn vma_stride(pages: u64, rung_stride: u64, own_stride: u64) -> u64 {
    rung_stride
        .max(own_stride)
        .min(pages / MIN_COVER_SAMPLES)
        .max(1)
}

/// Broken merges a visit must see, at least, before the VMA counts as thrashing: one
/// write to one merged page is no pattern.
pub const MIN_BROKEN: u64 = 4;

/// First hold of a thrashing VMA, in ms.
pub const FIRST_HOLD_MS: u64 = 2_000;
/// Longest hold of a thrashing VMA, in ms.
pub const MAX_HOLD_MS: u64 = 64_000;

/// What a VMA's samples found during one visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visit {
    /// Pages sampled.
    pub sampled: u64,
    /// Pages merged by those samples (new merges only).
    pub merged: u64,
    /// Sampled pages the module had merged that writes broke since they were merged.
    pub broken: u64,
    /// Sampled pages the module had merged that are still merged.
    pub kept: u64,
    /// Pages were sampled while the VMA was held (its thrash is not judged then: breaks
    /// seen are of merges made before the hold).
    pub held: bool,
    /// The VMA has now been sampled all over since it entered its rung.
    pub pass_done: bool,
    /// Some merge was refused during the pass so far (a page busy for a moment: a
    /// reference from a per-CPU LRU batch, a huge page that could not be split now).
    pub refused: bool,
}

/// Whether the merged pages writes broke (at least [`MIN_BROKEN`]) are more than `thrash`
/// percent of the merges the visit made (UKSM's `pages_cowed` against `pages_merged`): a
/// VMA whose merges writes undo as fast as they are made.
pub fn thrashing(visit: &Visit, thrash: u32) -> bool {
    thrash != 0
        && visit.broken >= MIN_BROKEN
        && visit.broken.saturating_mul(100) > u64::from(thrash).saturating_mul(visit.merged)
}

/// The visit's yield in percent of the pages sampled: net new merges per sample, 0 for a
/// thrashing VMA.
pub fn yield_pct(visit: &Visit, thrash: u32) -> u64 {
    if visit.sampled == 0 || thrashing(visit, thrash) {
        return 0;
    }
    visit.merged.saturating_sub(visit.broken) * 100 / visit.sampled
}

/// Samples a cover must have taken, at least, before its VMA may climb in the middle of
/// it ([`climbs_early`]).
pub const EARLY_CLIMB_SAMPLES: u64 = 2 * MIN_COVER_SAMPLES;

/// Whether a VMA in `rung` whose cover so far found `visit` climbs at once, before the
/// cover ends: its yield over at least [`EARLY_CLIMB_SAMPLES`] samples is already
/// abundant. A cover of a slow rung takes its cover time (a second on rung 0 of `full`)
/// whatever it finds, so a VMA rich in duplicates would otherwise spend a cover time on
/// each rung before its duplicates get the fast rungs' share; falling is judged at the
/// end of a cover only (a poor start proves nothing about the rest of the cover).
pub fn climbs_early(rung: usize, visit: &Visit, t: Thresholds) -> bool {
    rung + 1 < RUNGS
        && !visit.held
        && !visit.pass_done
        && visit.sampled >= EARLY_CLIMB_SAMPLES
        && yield_pct(visit, t.thrash) >= u64::from(t.abundant)
}

/// The rung a VMA in `rung` moves to after `visit`. A pass that ends on an abundant cover
/// is no reason to go back to rung 0: the VMA still has duplicates to merge (merges
/// refused during the pass, pages of huge pages split meanwhile: on 7.3 a quarter of a
/// workload in huge pages waited three seconds on rung 0 after its pass). Nor is a pass
/// that met refused merges: the VMA steps down one rung, and its next pass, faster than
/// rung 0's, tries those pages again (a VMA whose pages stay busy reaches rung 0 a pass
/// per rung later).
pub fn judge(rung: usize, visit: &Visit, t: Thresholds) -> usize {
    if yield_pct(visit, t.thrash) >= u64::from(t.abundant) {
        (rung + 1).min(RUNGS - 1)
    } else if visit.pass_done && t.thrash != 0 && !visit.refused {
        0
    } else {
        rung.saturating_sub(1)
    }
}

/// The stride of a rung holding `pages` pages, which samples `quota` pages per batch, one
/// batch every `period_ms`, and should cover its pages once every `cover_ms`: every
/// `stride`-th page of the rung is sampled (at least 1, every page).
pub fn stride(pages: u64, quota: u64, period_ms: u64, cover_ms: u64) -> u64 {
    let per_cover = quota.saturating_mul(cover_ms) / period_ms.max(1);
    if per_cover == 0 {
        return pages.max(1);
    }
    (pages / per_cover).clamp(1, pages.max(1))
}

/// The scanner's record of one VMA on the ladder.
///
/// A pass over the VMA has a stride `s`, fixed when the pass begins: the VMA is cut into
/// windows of `s` pages, and each *cover* samples one page per window, the first present
/// page at or after the cover's phase. The `s` covers of a pass take the phases in a
/// random order ([`Permutation`]), so after a pass every present page has been sampled at
/// least once (a page after a hole of the window may be sampled more than once). The rung
/// decides only how fast covers come; after each cover the VMA is judged ([`judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmaScan {
    /// Rung of the ladder, 0 (slowest) to `RUNGS - 1`.
    pub rung: usize,
    /// Phases of the current pass, in sampling order; its length is the pass's stride.
    perm: Permutation,
    /// Covers of this pass done (index into `perm`).
    cover: u64,
    /// Next window of the current cover.
    window: u64,
    /// Settings generation the pass was drawn in; `u64::MAX`: no pass yet.
    generation: u64,
    /// The rung the VMA was on when the pass was drawn.
    drawn_rung: usize,
    /// What the samples found since the last judgement.
    pub visit: Visit,
    /// The epoch in which the VMA last completed a pass (or was adopted).
    pub passed: u64,
    /// Until when (ms of the monotonic clock) the VMA's pages are not merged: it thrashed.
    hold_until_ms: u64,
    /// The length of the last hold (ms), while the VMA has not settled since (0: settled).
    backoff_ms: u64,
    /// Since when (ms) every cover found merged pages kept and none broken; `u64::MAX`:
    /// the last cover found one broken (or none was calm yet).
    calm_since_ms: u64,
    /// Holds so far (wrapping).
    pub holds: u32,
    /// A merge was refused during the current pass.
    pass_refused: bool,
}

impl VmaScan {
    /// A VMA adopted in `epoch`, on rung 0, its first pass not drawn yet.
    pub const fn new(epoch: u64) -> Self {
        VmaScan {
            rung: 0,
            perm: Permutation::ONE,
            cover: 0,
            window: 0,
            generation: u64::MAX,
            drawn_rung: 0,
            visit: Visit {
                sampled: 0,
                merged: 0,
                broken: 0,
                kept: 0,
                held: false,
                pass_done: false,
                refused: false,
            },
            passed: epoch,
            calm_since_ms: u64::MAX,
            hold_until_ms: 0,
            backoff_ms: 0,
            holds: 0,
            pass_refused: false,
        }
    }

    /// Whether the VMA is held for thrashing at `now_ms`.
    pub fn held(&self, now_ms: u64) -> bool {
        now_ms < self.hold_until_ms
    }

    /// Whether a sample at `now_ms` may merge the VMA's page; a refusal is noted for the
    /// cover's judgement.
    pub fn may_merge(&mut self, now_ms: u64) -> bool {
        let held = self.held(now_ms);
        self.visit.held |= held;
        !held
    }

    /// A sample met a page the module had merged: still merged (`kept`) or replaced.
    pub fn met_merged(&mut self, kept: bool) {
        if kept {
            self.visit.kept += 1;
        } else {
            self.visit.broken += 1;
        }
    }

    /// Judges the cover so far at `now_ms`: a VMA already thrashing is held at once,
    /// without merging the rest of the cover (a cover of a large VMA can take seconds).
    pub fn check_thrash(&mut self, t: Thresholds, now_ms: u64) {
        if !self.visit.held && !self.held(now_ms) && thrashing(&self.visit, t.thrash) {
            self.hold(now_ms);
            // The rest of the cover is held: not judged again at its end.
            self.visit.held = true;
        }
    }

    /// Holds the VMA from `now_ms`: [`FIRST_HOLD_MS`], or twice the last hold if it has
    /// not settled since, up to [`MAX_HOLD_MS`].
    fn hold(&mut self, now_ms: u64) {
        self.backoff_ms = if self.backoff_ms == 0 {
            FIRST_HOLD_MS
        } else {
            self.backoff_ms.saturating_mul(2).min(MAX_HOLD_MS)
        };
        self.hold_until_ms = now_ms.saturating_add(self.backoff_ms);
        self.holds = self.holds.wrapping_add(1);
    }

    /// Draws a new pass with `stride` when the current one is complete or belongs to
    /// another `generation` of the settings. Between covers, a VMA that changed rungs since
    /// the pass was drawn also gets a new pass if `stride` is more than a factor of two
    /// away from the pass's, but only while less than half of the pass's covers are done: a
    /// new pass samples from scratch, and redrawing passes again and again would leave
    /// pages unsampled for ever (a VMA whose passes were redrawn at each of its moves kept
    /// 16 % of its duplicates unmerged and dropped to rung 0, whose samples then found too
    /// few of them to climb again). A rung's stride that moves while the VMA stays (the
    /// cost of a page is measured afresh every second, and under load it moves by factors
    /// of two and more) redraws nothing: a pass takes as many samples whatever its stride,
    /// the stride only sets how many a cover takes before the VMA is judged; redrawn at
    /// such moves, a pass on rung 0 in its first half was started over again and again,
    /// and 8 % of a VMA's duplicates waited more than 600 s. The random words pick the
    /// phase order.
    ///
    /// A pass whose stride is less than a sixteenth of `stride` is drawn afresh even in
    /// the middle of a cover: drawn when the cost of a page was not known yet, or when the
    /// rung held little memory, its covers would take many times the rung's cover time
    /// (a VMA of 16 384 pages drawn with stride 16 on rung 0 waited 85 s for its first
    /// judgement). What the cover sampled so far still counts for that judgement.
    pub fn begin(&mut self, stride: u64, generation: u64, r1: u64, r2: u64) {
        let s = self.perm.len();
        let off = stride > s.saturating_mul(2) || stride.saturating_mul(2) < s;
        let early = self.cover.saturating_mul(2) < s;
        let moved = self.rung != self.drawn_rung;
        let too_fine = stride > s.saturating_mul(16);
        if self.generation != generation
            || (off && early && moved && self.cover_fresh())
            || too_fine
        {
            self.draw(stride, generation, r1, r2);
        }
    }

    fn draw(&mut self, stride: u64, generation: u64, r1: u64, r2: u64) {
        self.perm = Permutation::new(stride, r1, r2);
        self.cover = 0;
        self.window = 0;
        self.generation = generation;
        self.drawn_rung = self.rung;
        self.pass_refused = false;
    }

    /// The stride of the current pass.
    pub fn stride(&self) -> u64 {
        self.perm.len()
    }

    /// Whether the current cover has not begun yet.
    pub fn cover_fresh(&self) -> bool {
        self.window == 0
    }

    /// The pages (indexes from the VMA's start, `first..end`) where the next sample is
    /// taken: the first present page there. `None` when the cover is complete.
    pub fn next_window(&self, pages: u64) -> Option<(u64, u64)> {
        let s = self.perm.len();
        let start = self.window.checked_mul(s)?;
        if start >= pages {
            return None;
        }
        let end = start.saturating_add(s).min(pages);
        Some((start.saturating_add(self.perm.at(self.cover)).min(end), end))
    }

    /// The current window and those before `page` (an index from the VMA's start) hold no
    /// page where this cover samples: the cover goes on at the window of `page`.
    pub fn skip_to(&mut self, page: u64) {
        self.window = (page / self.perm.len()).max(self.window + 1);
    }

    /// A merge of the page just sampled was refused for now.
    pub fn refused(&mut self) {
        self.pass_refused = true;
    }

    /// One window sampled: whether it held a page, and whether that page was merged.
    pub fn sampled(&mut self, found: bool, merged: bool) {
        self.window += 1;
        self.visit.sampled += u64::from(found);
        self.visit.merged += u64::from(merged);
    }

    /// After a sample: climbs one rung at once if the cover so far yields enough
    /// ([`climbs_early`]). The cover goes on where it stands, at the new rung's pace; its
    /// samples so far have been judged, and the next judgement counts from here. Returns
    /// whether the VMA climbed.
    pub fn climb_early(&mut self, t: Thresholds) -> bool {
        if !climbs_early(self.rung, &self.visit, t) {
            return false;
        }
        self.rung += 1;
        self.note_breaks();
        self.visit = Visit::default();
        true
    }

    /// A visit that found merges broken ends the VMA's calm.
    fn note_breaks(&mut self) {
        if self.visit.broken > 0 {
            self.calm_since_ms = u64::MAX;
        }
    }

    /// Ends a cover at `now_ms`: judges the VMA, moves it on the ladder and holds it if it
    /// thrashes; after the last cover of its pass, the next [`begin`](Self::begin) draws a
    /// new pass (with the stride of the rung the VMA is on then). Returns whether a pass
    /// ended.
    pub fn end_cover(&mut self, t: Thresholds, now_ms: u64) -> bool {
        self.cover += 1;
        self.window = 0;
        let pass_done = self.cover >= self.perm.len();
        if pass_done {
            self.generation = u64::MAX;
        }
        self.visit.pass_done = pass_done;
        self.visit.refused = self.pass_refused;
        if pass_done {
            self.pass_refused = false;
        }
        self.rung = judge(self.rung, &self.visit, t);
        self.note_breaks();
        if self.visit.held {
            // Breaks seen while held are of merges made before: not judged again.
        } else if thrashing(&self.visit, t.thrash) {
            self.hold(now_ms);
        } else if self.visit.kept > 0 && self.visit.broken == 0 {
            // Merged pages stayed merged and none was broken. The VMA has settled once
            // every cover has been calm for as long as it was last held, and that long
            // after the hold: a writer that pauses between sweeps leaves single covers
            // without breaks, so one calm cover is not enough.
            if self.calm_since_ms == u64::MAX {
                self.calm_since_ms = now_ms;
            }
            if now_ms >= self.hold_until_ms.saturating_add(self.backoff_ms)
                && now_ms.saturating_sub(self.calm_since_ms) >= self.backoff_ms
            {
                self.backoff_ms = 0;
            }
        }
        self.visit = Visit::default();
        pass_done
    }
}

/// The order in which a VMA's phases are sampled: a random permutation of `0..n`, as the
/// affine map `j -> (a * j + b) mod n` with `a` coprime to `n` (re-drawn for each pass over
/// the VMA, as UKSM reshuffles its permutation).
///
/// # Invariants
///
/// `a` and `b` are below `n`. (With `n` non-zero, no operation here can panic: the kernel
/// build must not carry panic paths in the scanner's inner loop.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permutation {
    n: NonZeroU64,
    a: u64,
    b: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while let Some(nz) = NonZeroU64::new(b) {
        (a, b) = (b, a % nz);
    }
    a
}

impl Permutation {
    /// The identity on `0..1`.
    pub const ONE: Permutation = Permutation {
        n: NonZeroU64::MIN,
        a: 0,
        b: 0,
    };

    /// A permutation of `0..n` (of `0..1` for `n` 0) drawn from the random words `r1`, `r2`.
    pub fn new(n: u64, r1: u64, r2: u64) -> Self {
        let n = NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN);
        let mut a = r1 % n;
        // Coprimes are dense: this ends within a few steps (at most n).
        while gcd(a, n.get()) != 1 && n.get() > 1 {
            a = add_mod(a, 1, n);
        }
        Permutation { n, a, b: r2 % n }
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.n.get()
    }

    /// The `j`-th element (`j` below the length).
    pub fn at(&self, j: u64) -> u64 {
        add_mod(mul_mod(self.a, j % self.n, self.n), self.b, self.n)
    }
}

/// `a * b mod n` for `a`, `b` below `n`, without 128-bit arithmetic (the kernel has no
/// 128-bit division).
fn mul_mod(a: u64, b: u64, n: NonZeroU64) -> u64 {
    match a.checked_mul(b) {
        Some(p) => p % n,
        None => {
            // Double and add, all below n.
            let (mut acc, mut a, mut b) = (0u64, a, b);
            while b > 0 {
                if b & 1 == 1 {
                    acc = add_mod(acc, a, n);
                }
                a = add_mod(a, a, n);
                b >>= 1;
            }
            acc
        }
    }
}

/// `x + y mod n` for `x`, `y` below `n`, without overflow.
fn add_mod(x: u64, y: u64, n: NonZeroU64) -> u64 {
    let room = n.get().wrapping_sub(y);
    if x >= room {
        x.wrapping_sub(room)
    } else {
        x.wrapping_add(y)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::governor::{self, PageCost, PRESETS};
    use std::eprintln;

    #[test]
    fn judging() {
        let t = Thresholds::default();
        let rich = Visit {
            sampled: 100,
            merged: 30,
            broken: 0,
            kept: 0,
            held: false,
            pass_done: false,
            refused: false,
        };
        assert_eq!(judge(0, &rich, t), 1);
        assert_eq!(judge(3, &rich, t), 3);
        let poor = Visit {
            sampled: 100,
            merged: 2,
            ..rich
        };
        assert_eq!(judge(2, &poor, t), 1);
        assert_eq!(judge(0, &poor, t), 0);
        // Merges broken by writes count against the yield; when writes broke more than
        // the threshold of the merges made, the VMA yields nothing.
        let broken = Visit { broken: 15, ..rich };
        assert!(!thrashing(&broken, 50));
        assert_eq!(yield_pct(&broken, t.thrash), 15);
        let thrash = Visit { broken: 16, ..rich };
        assert!(thrashing(&thrash, 50));
        assert_eq!(yield_pct(&thrash, 50), 0);
        assert_eq!(yield_pct(&thrash, 0), 14);
        // Too few breaks to tell.
        let few = Visit {
            broken: MIN_BROKEN - 1,
            kept: 0,
            ..rich
        };
        assert!(!thrashing(&few, 50));
        // A full pass sends the VMA back to rung 0, unless the thrash filter is off or its
        // last cover still found duplicates enough.
        let done = Visit {
            pass_done: true,
            ..poor
        };
        assert_eq!(judge(3, &done, t), 0);
        assert_eq!(judge(2, &done, Thresholds { thrash: 0, ..t }), 1);
        // A pass that met refused merges steps down one rung only.
        let refused = Visit {
            refused: true,
            ..done
        };
        assert_eq!(judge(3, &refused, t), 2);
        assert_eq!(judge(0, &refused, t), 0);
        let rich_end = Visit {
            pass_done: true,
            ..rich
        };
        assert_eq!(judge(3, &rich_end, t), 3);
        assert_eq!(judge(1, &rich_end, t), 2);
        assert_eq!(yield_pct(&Visit::default(), 50), 0);
    }

    /// A VMA that thrashes is held, longer each time it thrashes again, and merges as soon
    /// as a hold ends once its writes have stopped.
    #[test]
    fn thrashing_vmas_are_held_until_they_settle() {
        let t = Thresholds::default();
        let mut scan = VmaScan::new(0);
        scan.begin(1, 0, 0, 0);
        let now = &mut 10_000;
        // One cover of 500 ms: `merged` merges if allowed, `broken` and `kept` seen.
        fn cover(scan: &mut VmaScan, now: &mut u64, merged: u64, broken: u64, kept: u64) -> u64 {
            scan.visit.sampled = 100;
            if scan.may_merge(*now) {
                scan.visit.merged = merged;
            }
            for _ in 0..broken {
                scan.met_merged(false);
            }
            for _ in 0..kept {
                scan.met_merged(true);
            }
            *now += 500;
            scan.end_cover(Thresholds::default(), *now);
            *now
        }
        // Merged, then broken everywhere: held for FIRST_HOLD_MS.
        cover(&mut scan, now, 50, 0, 0);
        assert!(!scan.held(*now));
        let at = cover(&mut scan, now, 50, 50, 0);
        assert!(scan.held(at) && scan.held(at + FIRST_HOLD_MS - 1));
        assert!(!scan.held(at + FIRST_HOLD_MS));
        // While held nothing is merged, and breaks seen then are not judged.
        while scan.held(*now) {
            cover(&mut scan, now, 50, 10, 0);
        }
        // Thrashing again after a hold: twice as long, and so on up to MAX_HOLD_MS, also
        // when the first cover after a hold finds pages merged before it still merged
        // (a writer that has not come round to them yet) among some broken ones.
        let mut expect = 2 * FIRST_HOLD_MS;
        for _ in 0..10 {
            cover(&mut scan, now, 50, 3, 20);
            let at = cover(&mut scan, now, 50, 50, 0);
            assert!(scan.held(at + expect - 1) && !scan.held(at + expect));
            while scan.held(*now) {
                cover(&mut scan, now, 0, 0, 0);
            }
            expect = (expect * 2).min(MAX_HOLD_MS);
        }
        // A cover without breaks soon after a hold (a writer pausing) does not settle it.
        cover(&mut scan, now, 50, 0, 0);
        cover(&mut scan, now, 0, 0, 50);
        let at = cover(&mut scan, now, 10, 40, 10);
        assert!(scan.held(at + MAX_HOLD_MS - 1) && !scan.held(at + MAX_HOLD_MS));
        while scan.held(*now) {
            cover(&mut scan, now, 0, 0, 0);
        }
        // A writer slower than the covers: calm covers alternate with covers that find a
        // few pages broken (too few to judge), long after the hold. Calm never lasts as
        // long as the hold, so the next thrash doubles the hold still.
        cover(&mut scan, now, 50, 0, 0);
        for _ in 0..(2 * MAX_HOLD_MS / 1000) {
            cover(&mut scan, now, 0, 0, 50);
            cover(&mut scan, now, 0, 2, 48);
        }
        let at = cover(&mut scan, now, 10, 40, 10);
        assert!(scan.held(at + MAX_HOLD_MS - 1), "settled by covers between breaks");
        while scan.held(*now) {
            cover(&mut scan, now, 0, 0, 0);
        }
        // Writes stop: the merges are kept as long as the hold lasted, the VMA settles;
        // a later thrash is short.
        cover(&mut scan, now, 50, 0, 0);
        for _ in 0..(MAX_HOLD_MS / 500 + 1) {
            cover(&mut scan, now, 0, 0, 50);
        }
        assert!(!scan.held(*now));
        let at = cover(&mut scan, now, 10, 40, 10);
        assert!(scan.held(at) && !scan.held(at + FIRST_HOLD_MS));
        // Judged within a cover: held at once, and the cover's end does not judge again.
        let mut early = VmaScan::new(0);
        early.begin(1, 0, 0, 0);
        early.visit.merged = 10;
        for _ in 0..10 {
            early.met_merged(false);
        }
        early.check_thrash(t, 100);
        assert!(early.held(100) && early.held(100 + FIRST_HOLD_MS - 1));
        early.end_cover(t, 200);
        assert!(!early.held(100 + FIRST_HOLD_MS));
        // The filter off: never held.
        let mut off = VmaScan::new(0);
        off.begin(1, 0, 0, 0);
        off.visit.broken = 100;
        off.end_cover(Thresholds { thrash: 0, ..t }, 1);
        assert!(!off.held(1));
    }

    #[test]
    fn permutations_cover_every_phase_once() {
        extern crate std;
        use std::vec;
        for n in [1u64, 2, 3, 7, 64, 65, 100, 1000] {
            for (r1, r2) in [(0, 0), (12345, 678), (u64::MAX, u64::MAX - 1), (6, 9)] {
                let p = Permutation::new(n, r1, r2);
                assert_eq!(p.len(), n);
                let mut seen = vec![false; n as usize];
                for j in 0..n {
                    let x = p.at(j);
                    assert!(x < n);
                    assert!(!seen[x as usize], "n {n}: {x} twice");
                    seen[x as usize] = true;
                }
            }
        }
        assert_eq!(Permutation::new(0, 5, 5).len(), 1);
        // Large lengths do not overflow.
        let big = u64::MAX - 58; // prime
        let p = Permutation::new(big, u64::MAX - 100, u64::MAX - 200);
        assert!(p.at(big - 1) < big && p.at(12345) < big);
        assert_ne!(p.at(1), p.at(2));
    }

    /// Samples one cover of a VMA whose `hits.len()` pages are all present, counting the
    /// samples each page got.
    fn sample_cover(v: &mut VmaScan, hits: &mut [u32]) {
        let pages = hits.len() as u64;
        while let Some((first, end)) = v.next_window(pages) {
            assert!(first <= end && end <= pages);
            // Every page present: the sample is `first`, if the window reaches it.
            if first < end {
                hits[first as usize] += 1;
            }
            v.sampled(first < end, false);
        }
    }

    #[test]
    fn a_pass_samples_every_page() {
        extern crate std;
        use std::vec;
        let t = Thresholds::default();
        // 1000 pages with a stride of 7: 143 windows per cover, 7 covers per pass.
        let pages = 1000;
        let mut v = VmaScan::new(0);
        v.begin(7, 1, 99, 3);
        assert_eq!(v.stride(), 7);
        let mut hits = vec![0u32; pages as usize];
        let mut covers = 0;
        loop {
            assert!(v.cover_fresh());
            sample_cover(&mut v, &mut hits);
            covers += 1;
            if v.end_cover(t, 0) {
                break;
            }
            // Within a pass, the same generation keeps the pass while the rung's stride
            // stays within a factor of two of the pass's.
            let before = v;
            v.begin(4, 1, 1, 1);
            assert_eq!(v, before);
            v.begin(14, 1, 1, 1);
            assert_eq!(v, before);
        }
        assert_eq!(covers, 7);
        assert!(hits.iter().all(|&h| h == 1), "{hits:?}");
        // After the pass, a new one is drawn, with the stride given then.
        v.begin(3, 1, 1, 1);
        assert_eq!(v.stride(), 3);
        // Between covers, a rung stride more than twice the pass's keeps the pass while the
        // VMA stays on its rung, and draws a new one once it moved.
        v.begin(7, 1, 2, 2);
        assert_eq!(v.stride(), 3);
        v.rung = 1;
        v.begin(7, 1, 2, 2);
        assert_eq!(v.stride(), 7);
        let drawn = v;
        v.begin(5, 1, 1, 1);
        assert_eq!(v, drawn);
        // A new generation of the settings redraws at once.
        v.begin(5, 2, 1, 1);
        assert_eq!(v.stride(), 5);
    }

    #[test]
    fn a_cover_takes_enough_samples_to_judge() {
        // A big VMA on a rung that can afford one sample of it per cover: eight.
        assert_eq!(vma_stride(16_384, 16_500, 16_384), 2_048);
        // The rung's stride when it is the larger and fine enough.
        assert_eq!(vma_stride(16_384, 100, 30), 100);
        // A VMA that moved in: its own stride.
        assert_eq!(vma_stride(16_384, 10, 300), 300);
        // Small VMAs: every page.
        assert_eq!(vma_stride(5, 1_000, 1_000), 1);
        assert_eq!(vma_stride(0, 1_000, 1_000), 1);
    }

    #[test]
    fn a_far_too_fine_pass_is_redrawn_mid_cover() {
        let t = Thresholds::default();
        let mut v = VmaScan::new(0);
        // Drawn while a page seemed cheap: stride 16 for a VMA of 16 384 pages.
        v.begin(16, 1, 1, 1);
        assert_eq!(v.next_window(16_384), Some((v.perm.at(0), 16)));
        v.sampled(true, true);
        v.sampled(true, true);
        assert!(!v.cover_fresh());
        // The rung's stride is now 15 times the pass's: the cover goes on.
        v.begin(240, 1, 1, 1);
        assert_eq!(v.stride(), 16);
        // More than 16 times: a new pass at once, the samples so far kept for the judgement.
        v.begin(5_000, 1, 2, 3);
        assert_eq!(v.stride(), 5_000);
        assert!(v.cover_fresh());
        assert_eq!(v.visit.sampled, 2);
        for _ in 0..4 {
            assert!(v.next_window(16_384).is_some());
            v.sampled(true, true);
        }
        assert!(v.next_window(16_384).is_none());
        assert!(!v.end_cover(t, 0));
        assert_eq!(v.rung, 1, "6 of 6 samples merged: up one rung");
    }

    #[test]
    fn a_pass_half_done_is_finished_whatever_the_stride() {
        let t = Thresholds::default();
        let mut v = VmaScan::new(0);
        v.begin(4, 1, 1, 1);
        // Two of the four covers (every window of a 40-page VMA).
        for _ in 0..2 {
            while v.next_window(40).is_some() {
                v.sampled(true, false);
            }
            assert!(!v.end_cover(t, 0));
        }
        // The rung's stride moved far off (a new VMA joined it): the pass goes on.
        v.begin(12, 1, 5, 5);
        assert_eq!(v.stride(), 4);
        v.begin(1, 1, 5, 5);
        assert_eq!(v.stride(), 4);
        for _ in 0..2 {
            while v.next_window(40).is_some() {
                v.sampled(true, false);
            }
        }
        // ... but one cover in, a VMA that moved (here: climbed on a rich cover) gets a
        // new pass for a stride off by more than two.
        let mut w = VmaScan::new(0);
        w.begin(4, 1, 1, 1);
        while w.next_window(40).is_some() {
            w.sampled(true, true);
        }
        assert!(!w.end_cover(t, 0));
        assert_eq!(w.rung, 1);
        w.begin(12, 1, 5, 5);
        assert_eq!(w.stride(), 12);
    }

    /// The rung's stride moving by factors of two at every cover while the VMA stays on
    /// its rung (the cost of a page measured under load) neither restarts the pass nor
    /// leaves a page unsampled: the pass ends after its stride's covers, every page
    /// sampled once.
    #[test]
    fn a_pass_survives_a_wandering_stride() {
        extern crate std;
        use std::vec;
        let t = Thresholds::default();
        let pages = 8192;
        let mut v = VmaScan::new(0);
        let strides = [273, 90, 700, 273, 40, 2_000];
        let mut hits = vec![0u32; pages as usize];
        let mut covers = 0u64;
        loop {
            v.begin(strides[(covers % 6) as usize], 1, covers, covers * 7 + 1);
            assert_eq!(v.stride(), 273, "cover {covers}: the pass was redrawn");
            sample_cover(&mut v, &mut hits);
            covers += 1;
            if v.end_cover(t, 0) {
                break;
            }
            assert_eq!(v.rung, 0);
        }
        assert_eq!(covers, 273);
        assert!(hits.iter().all(|&h| h == 1));
    }

    #[test]
    fn empty_windows_are_skipped() {
        let mut v = VmaScan::new(0);
        v.begin(10, 0, 0, 0);
        let (first, end) = v.next_window(1_000_000).unwrap();
        assert_eq!(end, 10);
        // The next present page is far away: the cover continues at its window.
        v.skip_to(123_456);
        let (first2, end2) = v.next_window(1_000_000).unwrap();
        assert_eq!(end2, 123_460);
        assert_eq!(first2 - 123_450, first);
        // A skip never goes backwards or stays.
        v.skip_to(5);
        assert_eq!(v.next_window(1_000_000).unwrap().1, 123_470);
    }

    #[test]
    fn covers_move_the_vma() {
        let t = Thresholds::default();
        let mut v = VmaScan::new(0);
        v.begin(4, 0, 0, 0);
        // A cover that merged half its samples climbs; one that merged nothing steps down.
        for _ in 0..10 {
            v.sampled(true, true);
            v.sampled(true, false);
        }
        assert!(!v.end_cover(t, 0));
        assert_eq!(v.rung, 1);
        v.sampled(true, false);
        assert!(!v.end_cover(t, 0));
        assert_eq!(v.rung, 0);
        // Windows beyond the pages end the cover at once (an empty VMA).
        assert_eq!(v.next_window(0), None);
    }

    /// A pass that met a refused merge ends one rung down, not on rung 0; the pass after
    /// it, without refusals, goes back to rung 0.
    #[test]
    fn a_pass_with_refusals_steps_down_one_rung() {
        let t = Thresholds::default();
        let mut v = VmaScan::new(0);
        v.rung = 3;
        v.begin(2, 1, 0, 0);
        v.sampled(true, false);
        v.refused();
        assert!(!v.end_cover(t, 0));
        assert_eq!(v.rung, 2);
        v.sampled(true, false);
        assert!(v.end_cover(t, 0));
        assert_eq!(v.rung, 1, "the pass met a refusal in its first cover");
        v.begin(2, 1, 0, 0);
        for _ in 0..2 {
            v.sampled(true, false);
            v.end_cover(t, 0);
        }
        assert_eq!(v.rung, 0);
    }

    /// A cover that finds duplicates fast lets its VMA climb without waiting for the
    /// cover's end; the cover goes on where it stood. A cover finding few does not, nor a
    /// held VMA's, nor one on the top rung.
    #[test]
    fn rich_covers_climb_early() {
        let t = Thresholds::default();
        let mut v = VmaScan::new(0);
        v.begin(64, 0, 3, 5);
        for i in 0..EARLY_CLIMB_SAMPLES - 1 {
            v.sampled(true, i % 2 == 0);
            assert!(!v.climb_early(t), "climbed after {} samples", i + 1);
        }
        v.sampled(true, false);
        assert!(v.climb_early(t));
        assert_eq!(v.rung, 1);
        assert_eq!(v.visit, Visit::default());
        assert!(!v.cover_fresh());
        assert_eq!(v.stride(), 64);
        // One merge in twenty samples: 5 %, below abundant_threshold.
        for i in 0..20 {
            v.sampled(true, i == 0);
            assert!(!v.climb_early(t));
        }
        assert_eq!(v.rung, 1);
        let rich = Visit {
            sampled: 32,
            merged: 16,
            ..Visit::default()
        };
        assert!(climbs_early(2, &rich, t));
        assert!(!climbs_early(RUNGS - 1, &rich, t));
        assert!(!climbs_early(0, &Visit { held: true, ..rich }, t));
        // Merges that writes undo as fast as they are made are no yield.
        assert!(!climbs_early(0, &Visit { broken: 16, ..rich }, t));
        // A higher threshold asks for more.
        assert!(!climbs_early(0, &rich, Thresholds { abundant: 60, ..t }));
    }

    #[test]
    fn strides() {
        // 1 GiB in rung 0 of `full`: 400 pages per 100 ms batch, cover in 1 s: 4000
        // samples per cover, every 65th page.
        assert_eq!(stride(262_144, 400, 100, 1000), 65);
        assert_eq!(stride(100, 400, 100, 1000), 1);
        assert_eq!(stride(0, 400, 100, 1000), 1);
        assert_eq!(stride(1000, 0, 100, 1000), 1000);
    }

    /// A deterministic generator for the simulation.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// A synthetic VMA: `dup` of its pages (per million) have a copy elsewhere, writes
    /// break `write` (per million) of its merged pages per batch. Pages are sampled in a
    /// random order without repeats (a permutation, re-drawn when used up), as uksmd does.
    struct Vma {
        pages: u64,
        dup: u64,
        write: u64,
        rung: usize,
        merged: u64,
        /// Pages of the current permutation already sampled.
        seen: u64,
        /// Duplicates neither merged nor sampled in the current permutation.
        dups_unseen: u64,
        visit: Visit,
    }

    impl Vma {
        fn new(pages: u64, dup: u64, write: u64) -> Self {
            Vma {
                pages,
                dup,
                write,
                rung: 0,
                merged: 0,
                seen: 0,
                dups_unseen: pages * dup / 1_000_000,
                visit: Visit::default(),
            }
        }

        fn dups(&self) -> u64 {
            self.pages * self.dup / 1_000_000
        }

        fn set_dup(&mut self, dup: u64) {
            self.dup = dup;
            let unseen = self.pages - self.seen;
            self.dups_unseen = self.dups().saturating_sub(self.merged) * unseen / self.pages;
        }
    }

    struct Sim {
        vmas: [Vma; 5],
        rng: Rng,
        cost: PageCost,
        cpu_ns: u64,
        wall_ns: u64,
    }

    const PAGE_NS: u64 = 3_000; // one sampled page on the debug kernel
    const SLEEP_NS: u64 = 100_000_000; // the base sleep, 100 ms

    impl Sim {
        fn new() -> Self {
            Sim {
                vmas: [
                    Vma::new(65_536, 500_000, 0),      // 256 MiB, half duplicates
                    Vma::new(262_144, 0, 0),           // 1 GiB of distinct pages
                    Vma::new(262_144, 0, 0),           // another
                    Vma::new(16_384, 400_000, 50_000), // rewritten all the time
                    Vma::new(131_072, 0, 0),           // distinct now, duplicates later
                ],
                rng: Rng(0x9e37_79b9_7f4a_7c15),
                cost: PageCost::new(),
                cpu_ns: 0,
                wall_ns: 0,
            }
        }

        /// One batch of the governor with `preset` (index into PRESETS).
        fn batch(&mut self, preset: usize, t: Thresholds) {
            let p = &PRESETS[preset];
            let mut run_ns = 0;
            let mut top_share = 1;
            // Fastest rung first, as uksmd does: a VMA that climbs is sampled on its new
            // rung from the next batch on.
            for rung in (0..RUNGS).rev() {
                let share = p.cpu_ratios[rung].share(p.max_cpu_percentage);
                let quota = governor::quota(SLEEP_NS, share, self.cost.ns());
                let pages: u64 = self
                    .vmas
                    .iter()
                    .filter(|v| v.rung == rung)
                    .map(|v| v.pages)
                    .sum();
                if pages == 0 {
                    continue;
                }
                top_share = top_share.max(share);
                let stride = stride(
                    pages,
                    quota,
                    SLEEP_NS / 1_000_000,
                    u64::from(p.eval_intervals_ms[rung]),
                );
                for v in self.vmas.iter_mut().filter(|v| v.rung == rung) {
                    // The rung's quota, spread over its VMAs by size; a visit is the VMA's
                    // part of one cover of the rung.
                    let samples = (quota * v.pages / pages).max(1);
                    let visit_len = (v.pages / stride).max(1);
                    let mut taken = 0;
                    for _ in 0..samples {
                        if v.seen == v.pages {
                            v.seen = 0;
                            v.dups_unseen = v.dups().saturating_sub(v.merged);
                            v.visit.pass_done = true;
                        }
                        if self.rng.next() % v.pages < v.merged {
                            v.visit.kept += 1;
                        }
                        let unseen = v.pages - v.seen;
                        if v.dups_unseen > 0 && self.rng.next() % unseen < v.dups_unseen {
                            v.dups_unseen -= 1;
                            v.merged += 1;
                            v.visit.merged += 1;
                        }
                        v.seen += 1;
                        v.visit.sampled += 1;
                        taken += 1;
                        if climbs_early(v.rung, &v.visit, t) {
                            v.rung += 1;
                            v.visit = Visit::default();
                            break;
                        }
                    }
                    run_ns += taken * PAGE_NS;
                    if v.visit.sampled >= visit_len || v.visit.pass_done {
                        v.rung = judge(v.rung, &v.visit, t);
                        v.visit = Visit::default();
                    }
                }
            }
            // Writes break merged pages; a broken page is a duplicate to find again.
            for v in self.vmas.iter_mut() {
                let broken = (v.merged * v.write / 1_000_000).min(v.merged);
                v.merged -= broken;
                v.visit.broken += broken;
                v.dups_unseen += broken * (v.pages - v.seen) / v.pages;
            }
            self.cost.add(run_ns, run_ns / PAGE_NS);
            let sleep = governor::sleep_after(run_ns, top_share).max(SLEEP_NS);
            self.cpu_ns += run_ns;
            self.wall_ns += run_ns + sleep;
        }

        fn share_of_cpu(&self) -> f64 {
            self.cpu_ns as f64 / self.wall_ns as f64
        }
    }

    #[test]
    fn simulation_sorts_vmas_and_keeps_the_budget() {
        let t = Thresholds::default();
        let mut sim = Sim::new();
        let mut merged_at = None;
        for batch in 0..3000 {
            sim.batch(0, t);
            let v = &sim.vmas[0];
            if merged_at.is_none() && v.merged * 100 >= v.dups() * 95 {
                merged_at = Some(batch);
            }
        }
        let merged_at = merged_at.expect("the duplicate-rich VMA was merged");
        eprintln!(
            "sim full: 95 % of the duplicate-rich VMA merged after {merged_at} batches; rungs {:?}",
            sim.vmas
                .iter()
                .map(|v| v.rung)
                .collect::<std::vec::Vec<_>>()
        );
        // Within a few seconds of simulated time (batches of at least 100 ms).
        assert!(merged_at < 200, "95 % merged after {merged_at} batches");
        // Distinct memory sits in rung 0 and the thrashing VMA does not stay high.
        assert_eq!(sim.vmas[1].rung, 0);
        assert_eq!(sim.vmas[2].rung, 0);
        assert!(
            sim.vmas[3].rung <= 1,
            "thrashing VMA in rung {}",
            sim.vmas[3].rung
        );

        // Idle: everything merged that can be, the CPU share is rung 0's order.
        let (cpu0, wall0) = (sim.cpu_ns, sim.wall_ns);
        for _ in 0..3000 {
            sim.batch(0, t);
        }
        let idle = (sim.cpu_ns - cpu0) as f64 / (sim.wall_ns - wall0) as f64;
        eprintln!("sim full: idle share of a CPU {:.5}", idle);
        assert!(idle < 0.01, "idle share {idle}");

        // Late duplicates: VMA 4 gets 30 % duplicates; they are found from rung 0.
        sim.vmas[4].set_dup(300_000);
        let wall_before = sim.wall_ns;
        let mut found = None;
        for batch in 0..20_000 {
            sim.batch(0, t);
            let v = &sim.vmas[4];
            if v.merged * 100 >= v.dups() * 95 {
                found = Some(batch);
                break;
            }
        }
        assert!(found.is_some(), "late duplicates never merged");
        assert!(sim.vmas[4].rung > 0 || sim.vmas[4].merged > 0);
        let late_s = (sim.wall_ns - wall_before) / 1_000_000_000;
        eprintln!("sim full: late duplicates 95 % merged after {late_s} s ({found:?} batches)");
        assert!(late_s < 120, "late duplicates took {late_s} s");
        assert!(sim.share_of_cpu() < 0.95);
    }

    #[test]
    fn quiet_stays_quiet() {
        let t = Thresholds::default();
        let mut sim = Sim::new();
        for _ in 0..2000 {
            sim.batch(3, t);
        }
        let share = sim.share_of_cpu();
        eprintln!(
            "sim quiet: share of a CPU {share:.5}, merged {} of {}",
            sim.vmas[0].merged,
            sim.vmas[0].dups()
        );
        assert!(share <= 0.01, "quiet used {share} of a CPU");
        // and still merged the duplicate-rich VMA.
        assert!(sim.vmas[0].merged > 0);
    }
}
