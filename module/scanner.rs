// SPDX-License-Identifier: GPL-2.0

//! uksmd, the scanner thread.
//!
//! # What a round does: the sampling ladder
//!
//! While `run` is 1, uksmd does one round every `sleep_millisecs` (or later, see the CPU
//! ceiling below). Every tracked VMA sits on one of four rungs (UKSM's ladder,
//! [`ladder`]); a new VMA starts on rung 0. Each rung has a CPU share (`cpu_ratios`) and
//! a time in which it should cover its VMAs (`eval_intervals`): a round gives each rung,
//! fastest first, as many samples as its share allows at the measured cost of a sample
//! (all rungs together at most `pages_to_scan`), and the rung takes them from its VMAs in
//! registry order, continuing where its last round stopped.
//!
//! A VMA is sampled in passes ([`VmaScan`]): a pass has a stride `s` (the rung's pages
//! over the samples the rung takes in its cover time, fixed when the pass begins) and
//! consists of `s` covers; a cover samples one page per window of `s` pages, the first
//! present page at or after the cover's phase, and the phases of the covers come in a
//! random order drawn anew for each pass. After a pass every present page has been
//! sampled at least once. After each cover the VMA is judged on what its samples merged:
//! at least `abundant_threshold` percent moves it one rung up, less one rung down, and a
//! completed pass that ends on a poorer cover sends it back to rung 0 (duplicates that appear there later are found
//! there, at rung 0's pace). Memory where nothing is found thus costs rung 0's share. A
//! cover whose first samples already yield that much ([`ladder::climbs_early`]) moves its
//! VMA up at once and goes on at the new rung's pace: a cover of rung 0 takes a second
//! whatever it finds, and a duplicate-rich VMA would otherwise wait that long on each
//! rung.
//! A change of the settings draws new passes for every VMA.
//!
//! A pass over the whole registry (`full_scans`, an *epoch*) ends when every VMA tracked
//! at its beginning has completed a pass begun in it, so that each of their pages was
//! sampled while the epoch's unstable table was there to pair it; VMAs adopted meanwhile
//! are waited for by the next epoch. Tests and users who want every page visited at full
//! speed set every rung to the ceiling (`cpu_ratios` `MAX/1 MAX/1 MAX/1 MAX/1`) and long
//! covers (`eval_intervals` `600000 600000 600000 600000`), which make each cover a whole
//! pass.
//!
//! For each VMA the scanner takes a reference on the mm (under the registry lock, while the
//! VMA is known to be alive) and drops the registry lock. Then, one window at a time, it
//! *tries* the mm's mmap lock (a busy mm is skipped for this cover, never waited for),
//! looks the VMA up again (only the same tracked, mergeable VMA is read), takes the first
//! present page of the window (a page-table walk that skips empty ranges), handles it and
//! drops the lock, with `cond_resched` in between. A present anonymous page, small or in
//! a THP, is hashed ([`SampleOrder`]) without locking it: the hash is only a hint. A page
//! of a merged folio is only checked for an rmap item naming its mapping
//! ([`Stable::met_merged`]).
//!
//! # Merging
//!
//! With `use_zero_pages` (the default), a page whose hash equals the hash of a page of zeros
//! is handed to [`merge::merge_zero_page`], which maps the KSM zero page in its place if the
//! page really is all zeros. Hashes sample as many words as the adaptive strength says
//! (`hash_strength`, [`Strength`]): uksmd counts the words partial hashing saves and the
//! work it wastes (whole-content hashes and page comparisons after a partial hash matched
//! different content) and, every few thousand pages, raises or lowers the strength; on a
//! change it re-keys the stable tree ([`Stable::rekey`]) and starts the unstable table
//! afresh.
//!
//! Any other page is first looked up in the stable tree ([`Stable::find`]: merged folios
//! with the same partial hash and, among those, the same whole-content hash, compared byte
//! for byte) and merged into the one with equal content.
//! Failing that, the unstable table ([`Unstable`](crate::unstable::Unstable)) is asked for
//! the page seen earlier in the pass with the same partial hash; if it is still there,
//! still unmerged and byte for byte equal, it is merged with this page into a new merged
//! folio ([`Stable::merge_pair`]). If it differs (partial hashes collide, as pages of zeros
//! do with pages holding a few bytes) or is gone, the page is looked up again among the
//! pages filed under the hash of its whole content ([`Key::Full`]). A page that matches
//! nothing takes over an entry whose page went, was merged or cannot be merged now, or
//! else is entered in the table (under its whole-content hash if its partial hash is
//! taken).
//!
//! Merge domains (`merge_domain`, [`crate::logic::domain`]): each round reads the policy,
//! each visit of a VMA the domain of its process (its owner's effective user ID or memory cgroup,
//! as they are now). The stable tree files nodes by domain and a page looks only among
//! its own; unstable-table keys mix the domain in, and a pair is only merged when both
//! processes are of the same domain (the other's is read when it is paired). A process
//! whose owner cannot be told has its zero pages merged, nothing else.
//!
//! Pages of VMAs armed by userfaultfd or opted out (`MADV_UNMERGEABLE`, or a process that
//! turned merging off with `prctl(PR_SET_MEMORY_MERGE, 0)`) are left alone, on both sides
//! of a pair. The other page's mm is only *tried* (`mmap_read_trylock`), never waited for;
//! as a table entry whose page is pinned or locked, a busy one can be taken over, so no
//! such page keeps every other page of its content from merging. Comparisons before
//! merging are hints: the kernel's merge step compares again with the page
//! write-protected.
//!
//! At the end of an epoch, the stable tree drops nodes whose folio was freed and recounts
//! the sharing (`pages_shared`, `pages_sharing`); the pages still unpaired are
//! `pages_unshared`, and the unstable table is emptied for the next epoch. A table that
//! fills up before then starts afresh at twice the size.
//!
//! A round holds the merge lock, so `run=2` and unload never race with a merge.
//!
//! # CPU ceiling
//!
//! uksmd times each round (the monotonic clock: a round does not sleep, so this is its
//! CPU time, or more when it was preempted; the scheduler's own clock of a running thread
//! lags by up to a tick, too coarse for rounds of a millisecond) and keeps an average cost
//! per sample (`ema_per_page_time`), from which the rungs' quotas follow; no share
//! exceeds `max_cpu_percentage`. The ceiling itself is kept by a budget
//! ([`Budget`]) on uksmd's whole CPU time (the scheduler's clock, exact over spans longer
//! than a tick): it earns the ceiling's share of the time that passes, and while it is
//! spent uksmd sleeps. A round is bounded by pages, not stopped by the clock (a merge that
//! splits a huge page costs far more than the average; stopping rounds after such a merge
//! made merging of huge pages several times slower): a round that overran is paid for by
//! a longer sleep after it. `cpu_governor` presets set the shares, the cover times and
//! the ceiling.
//!
//! While `run` is 0 uksmd sleeps until a sysfs write wakes it. It also prints the periodic
//! statistics line.

use crate::logic::domain::{self, Policy};
use crate::logic::governor::{self, Budget, PageCost, Settings, RUNGS};
use crate::logic::ladder::{self, Thresholds, VmaScan};
use crate::logic::hash::{self, SampleOrder};
use crate::logic::strength::{self, Strength};
use crate::logic::tunable::Id;
use crate::merge::{self, Engine};
use crate::merged_map::MergedMap;
use crate::mm::{HoldsMm, MmapReadGuard, PageRef, VmaRef};
use crate::registry::{Next, Target};
use crate::stable::{ContentHash, Mapped, Merge, PairMerged, PairRefused, Stable};
use crate::sys::{self, mm_struct, task_struct};
use crate::unstable::{self, Key, Loc};
use crate::{settings, tunables, Uksm};
use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::rbtree::RBTreeNodeReservation;

/// The running uksmd thread.
pub(crate) struct Thread {
    task: *mut task_struct,
}

// SAFETY: the handle is only used to stop the thread, which kthread_stop allows from any
// thread.
unsafe impl Send for Thread {}
// SAFETY: `&Thread` gives no access to the task.
unsafe impl Sync for Thread {}

impl Thread {
    pub(crate) fn start() -> Result<Self> {
        // SAFETY: the thread reaches the published state only.
        let task = unsafe { sys::uksm_thread_start() };
        // SAFETY: checking an error pointer.
        if unsafe { sys::uksm_is_err(task.cast()) } {
            // SAFETY: `task` is an error pointer.
            let errno = unsafe { sys::uksm_ptr_err(task.cast()) };
            return Err(Error::from_errno(errno as c_int));
        }
        Ok(Thread { task })
    }

    /// Stops the thread and waits for it to exit.
    pub(crate) fn stop(self) {
        // SAFETY: `task` is the thread started in `start`, not stopped before (`self` is
        // consumed).
        unsafe { sys::uksm_thread_stop(self.task) };
    }
}

fn should_stop() -> bool {
    // SAFETY: called from the uksmd thread.
    unsafe { sys::uksm_thread_should_stop() }
}

/// The scanner's own state, owned by the uksmd thread.
struct Scanner {
    order: SampleOrder,
    /// The adaptive strength of the partial hash.
    strength: Strength,
    /// Hash of a page of zeros at that strength.
    zero_hash: u32,
    /// Pages hashed and words wasted since the strength was last told (the merge steps
    /// borrow the scanner shared).
    hashed_now: Cell<u64>,
    wasted_now: Cell<u64>,
    /// A merge was refused since the per-CPU LRU batches were last drained, and when
    /// that was (ms).
    refused: Cell<bool>,
    drained_ms: i64,
    /// A merge of the page being sampled was refused.
    refused_now: Cell<bool>,
    /// Large folios (address ranges) that the merge steps of the page being sampled met
    /// in the sampled VMA, whose merged map the scan holds meanwhile.
    lent_collapses: Cell<[Option<(usize, usize)>; 2 * unstable::MAX_CANDIDATES]>,
    /// Whether the current pass has begun (the unstable table is set up for it).
    in_pass: bool,
    /// Pages hashed in this pass and in the last complete one (sizes the unstable table).
    hashed: usize,
    hashed_last_pass: usize,
    /// Per rung: the registry key its cover continues at.
    cursor: [usize; RUNGS],
    /// Per rung: the stride of passes drawn now, and the samples it may take per round.
    stride: [u64; RUNGS],
    quota: [u64; RUNGS],
    /// The settings generation the strides were computed for (`None`: not yet), and when
    /// (ms).
    strides_for: Option<u64>,
    strides_at_ms: i64,
    /// Windows sampled in the current round.
    round_pages: u64,
    /// The merge domain policy of the current round (read under the merge lock, which a
    /// change of policy takes to unmerge).
    policy: Policy,
}

/// The page being scanned, with its hash and where the unstable table records it.
struct Current<'a> {
    key: usize,
    mm: *mut mm_struct,
    /// Merge domain of the page's process.
    domain: u64,
    at: Mapped<'a>,
    hash: u32,
}

impl Current<'_> {
    /// The unstable table's key for the page's partial hash, in its domain.
    fn partial_key(&self) -> Key {
        Key::Partial(domain::mix(self.hash, self.domain))
    }

    /// Where the page is, as the unstable table records it.
    fn loc(&self) -> Loc {
        Loc {
            key: self.key,
            addr: self.at.addr,
        }
    }
}

/// What came of pairing with an unstable-table entry.
enum Pair {
    Merged,
    /// The entry's page became a merged folio; the current page could not join it now.
    OtherMergedAlone,
    /// The current page became a merged folio; the entry's page could not join it now.
    CurrentMergedAlone,
    /// The entry's page is gone or changed: the current page takes its place.
    Gone,
    /// The entry's page differs (a hash collision): try the next candidate.
    Different,
    /// The entry's page cannot be merged now (its mm busy, the page pinned or locked): the
    /// current page may take its place, so one such page never keeps every other page of
    /// its content from pairing for the rest of the pass.
    OtherRefused,
    /// The current page cannot be merged now (locked, pinned, changed; no memory).
    NotNow,
}

/// Which pages a sample merged: the current page, and the page of an unstable-table
/// entry (where it was).
#[derive(Default, Clone, Copy)]
struct Merged {
    current: bool,
    other: Option<Loc>,
}

impl Merged {
    const CURRENT: Merged = Merged {
        current: true,
        other: None,
    };

    fn any(&self) -> bool {
        self.current || self.other.is_some()
    }
}

/// What came of trying the candidates filed under one key.
enum Candidates {
    /// Merged (what), or the current page cannot be merged now: nothing more to do.
    Done(Merged),
    /// No partner among this many candidates.
    Tried(usize),
}

impl Scanner {
    fn new() -> Self {
        // SAFETY: no precondition.
        let order = SampleOrder::new(unsafe { sys::uksm_random_u64() });
        let strength = Strength::new();
        let zero_hash = order.hash(&hash::ZeroPage, strength.get());
        Scanner {
            order,
            strength,
            zero_hash,
            hashed_now: Cell::new(0),
            wasted_now: Cell::new(0),
            refused: Cell::new(false),
            drained_ms: 0,
            refused_now: Cell::new(false),
            lent_collapses: Cell::new([None; 2 * unstable::MAX_CANDIDATES]),
            policy: domain::DEFAULT,
            in_pass: false,
            hashed: 0,
            hashed_last_pass: 0,
            cursor: [0; RUNGS],
            stride: [1; RUNGS],
            quota: [1; RUNGS],
            strides_for: None,
            strides_at_ms: 0,
            round_pages: 0,
        }
    }

    /// Hashes `page`.
    fn hash(&self, page: &PageRef) -> u32 {
        self.order.hash(&page.kmap(), self.strength.get())
    }

    /// The hash of the whole of `page`, from its partial hash.
    fn full_hash(&self, page: &PageRef, partial: u32) -> u32 {
        self.order
            .rehash(&page.kmap(), partial, self.strength.get(), hash::FULL)
    }

    /// Work the partial hash wasted, in hashed words.
    fn waste(&self, words: u64) {
        self.wasted_now.set(self.wasted_now.get().saturating_add(words));
    }

    /// Tells the strength controller what this round hashed and wasted; at the end of a
    /// hash round it may change the strength, and then the stable tree is re-keyed and
    /// the unstable table starts afresh.
    fn adapt_strength(&mut self, uksm: &Uksm, engine: &mut Engine) {
        self.strength.hashed(self.hashed_now.take());
        self.strength.wasted(self.wasted_now.take());
        if !self.strength.round_done() {
            return;
        }
        let old = self.strength.get();
        let Some(new) = self.strength.end_round() else {
            return;
        };
        let order = &self.order;
        engine
            .stable
            .rekey(|page, partial| order.rehash(&page.kmap(), partial, old, new));
        let len = engine.unstable.len();
        engine.unstable.reset(len);
        self.zero_hash = self.order.hash(&hash::ZeroPage, new);
        uksm.hash_strength.store(new as u64, Ordering::Relaxed);
    }

    /// A merge was refused for now (a page busy for a moment).
    fn refuse(&self) {
        self.refused.set(true);
        self.refused_now.set(true);
    }

    /// Both hashes of a merged page (write-protected: its content is final).
    fn content_hash(&self, page: &PageRef) -> ContentHash {
        let partial = self.hash(page);
        ContentHash {
            partial,
            full: self.full_hash(page, partial),
        }
    }

    /// Merges the current page with an identical one, if there is one; otherwise enters it
    /// in the unstable table. Returns which pages were merged.
    fn merge_or_remember(&self, uksm: &Uksm, engine: &mut Engine, cur: &Current<'_>) -> Merged {
        let max_sharing = tunables::get(Id::MaxPageSharing) as i32;
        let mut full = None;
        let found = engine.stable.find(cur.hash, cur.domain, cur.at.page, max_sharing, || {
            *full.insert(self.full_hash(cur.at.page, cur.hash))
        });
        if found.is_none() && full.is_some() {
            // The partial hash matched merged content, the whole content did not.
            self.waste(self.strength.full_hash_words());
        }
        if let Some(key) = found {
            if let Merge::Merged = engine.stable.merge_into(key, &cur.at, max_sharing) {
                uksm.pages_sharing.fetch_add(1, Ordering::Relaxed);
                uksm.pages_merged.fetch_add(1, Ordering::Relaxed);
                return Merged::CURRENT;
            }
            self.refuse();
            return Merged::default();
        }
        let loc = cur.loc();
        let mut vacant = None;
        let n =
            match self.pair_with_candidates(uksm, engine, cur.partial_key(), cur, &mut vacant)
            {
                Candidates::Done(merged) => return merged,
                Candidates::Tried(n) => n,
            };
        if n == 0 {
            // No page of this partial hash yet in this pass (so none under a whole-content
            // hash either).
            engine.unstable.insert(cur.partial_key(), loc);
            return Merged::default();
        }
        // Different pages, or none left, hold the partial hash: pages of this content may
        // be filed under their whole-content hash.
        let key = Key::Full(domain::mix(
            full.unwrap_or_else(|| {
                self.waste(self.strength.full_hash_words());
                self.full_hash(cur.at.page, cur.hash)
            }),
            cur.domain,
        ));
        if let Candidates::Done(merged) =
            self.pair_with_candidates(uksm, engine, key, cur, &mut vacant)
        {
            return merged;
        }
        match vacant {
            Some(index) => engine.unstable.replace(index, loc),
            None => engine.unstable.insert(key, loc),
        }
        Merged::default()
    }

    /// Tries to merge the current page with the pages filed under `key`. An entry whose
    /// page went, was merged or cannot be merged now is noted in `vacant` (the first one
    /// found): the current page takes it over if it finds no partner.
    fn pair_with_candidates(
        &self,
        uksm: &Uksm,
        engine: &mut Engine,
        key: Key,
        cur: &Current<'_>,
        vacant: &mut Option<usize>,
    ) -> Candidates {
        let loc = cur.loc();
        let mut candidates = [0; unstable::MAX_CANDIDATES];
        let n = engine.unstable.candidates(key, &mut candidates);
        for &index in &candidates[..n] {
            let other = engine.unstable.loc(index);
            if other == loc {
                return Candidates::Done(Merged::default());
            }
            if other == Loc::default() {
                // Emptied: its page was merged.
                vacant.get_or_insert(index);
                continue;
            }
            match self.pair(uksm, &mut engine.stable, engine.unmerges, other, cur) {
                Pair::Merged => {
                    engine.unstable.merged(index);
                    uksm.pages_shared.fetch_add(1, Ordering::Relaxed);
                    uksm.pages_sharing.fetch_add(1, Ordering::Relaxed);
                    uksm.pages_merged.fetch_add(2, Ordering::Relaxed);
                    return Candidates::Done(Merged {
                        current: true,
                        other: Some(other),
                    });
                }
                Pair::OtherMergedAlone => {
                    // In the stable tree now, where later pages of its content find it.
                    engine.unstable.merged(index);
                    uksm.pages_shared.fetch_add(1, Ordering::Relaxed);
                    uksm.pages_merged.fetch_add(1, Ordering::Relaxed);
                    return Candidates::Done(Merged {
                        current: false,
                        other: Some(other),
                    });
                }
                Pair::CurrentMergedAlone => {
                    uksm.pages_shared.fetch_add(1, Ordering::Relaxed);
                    uksm.pages_merged.fetch_add(1, Ordering::Relaxed);
                    return Candidates::Done(Merged::CURRENT);
                }
                Pair::Gone => {
                    vacant.get_or_insert(index);
                }
                Pair::OtherRefused => {
                    self.refuse();
                    vacant.get_or_insert(index);
                }
                Pair::Different => {}
                Pair::NotNow => {
                    self.refuse();
                    return Candidates::Done(Merged::default());
                }
            }
        }
        Candidates::Tried(n)
    }

    /// Tries to merge the page at `other` with the current page.
    fn pair(
        &self,
        uksm: &Uksm,
        stable: &mut Stable,
        unmerges: u64,
        other: Loc,
        cur: &Current<'_>,
    ) -> Pair {
        // The VMA must still be tracked (so alive, with its mm) under the same mm. The
        // reference is on the mm structure only: dropping it here, under the current mm's
        // mmap lock, must never be what tears an address space down.
        let now = sys::now_ms() as u64;
        let Some(grab) = uksm.registry.lock().mm_at(other.key, now) else {
            return Pair::Gone;
        };
        // The current mm's lock is held already (by the caller); another is only tried.
        let guard = if grab.as_ptr() == cur.mm {
            None
        } else {
            // Pages of another merge domain are never merged with this one.
            if !domain::may_merge(grab.domain(self.policy), cur.domain) {
                return Pair::Different;
            }
            match MmapReadGuard::try_lock(&grab) {
                Some(guard) if guard.has_users() => Some(guard),
                // An mm without users is exiting: leave it.
                Some(_) => return Pair::Gone,
                None => return Pair::OtherRefused,
            }
        };
        let vma = match &guard {
            Some(guard) => guard.vma_lookup(other.addr),
            // The same mm: under the lock the current VMA is borrowed from.
            None => cur.at.vma.sibling(other.addr),
        };
        let Some(vma) = vma.filter(VmaRef::mergeable) else {
            return Pair::Gone;
        };
        let Some(page) = vma.page_at(other.addr) else {
            return Pair::Gone;
        };
        // A large folio there maps no merged page (see `scan_vma`): the pages the module
        // merged in its range were copied into it. Merging splits it, and its pages must
        // not look like merges broken by writes when they are sampled next.
        if let Some((first, end)) = large_folio(&page, other.addr, &vma) {
            if other.key == cur.key {
                let mut lent = self.lent_collapses.get();
                let range = Some((first, end));
                if let Some(free) = lent.iter_mut().find(|r| r.is_none() || **r == range) {
                    *free = range;
                }
                self.lent_collapses.set(lent);
            } else {
                let moved =
                    uksm.registry
                        .lock()
                        .note_collapsed(other.key, first, end, unmerges);
                uksm.merges_collapsed.fetch_add(moved, Ordering::Relaxed);
            }
        }
        if page.as_ptr() == cur.at.page.as_ptr() {
            // One page mapped twice (a fork not written since): nothing to gain.
            return Pair::Different;
        }
        if !page.same_content(cur.at.page) {
            self.waste(strength::MEMCMP_COST);
            return Pair::Different;
        }
        let other_page = Mapped {
            vma,
            page: &page,
            addr: other.addr,
        };
        let max_sharing = tunables::get(Id::MaxPageSharing) as i32;
        match stable.merge_pair(
            cur.domain,
            |merged| self.content_hash(merged),
            &other_page,
            &cur.at,
            max_sharing,
        ) {
            Ok(PairMerged::Both) => Pair::Merged,
            Ok(PairMerged::OnlyA) => Pair::OtherMergedAlone,
            Ok(PairMerged::OnlyB) => Pair::CurrentMergedAlone,
            Err(PairRefused::First) => Pair::OtherRefused,
            Err(PairRefused::Second) => Pair::NotNow,
        }
    }

    /// Samples windows of `target`'s current cover ([`VmaScan`]), using up `left` (one per
    /// window). Returns true when the cover is done (or the VMA skipped for it); false
    /// also when the VMA climbed a rung in the middle of the cover.
    ///
    /// The mmap lock is taken for one window at a time, as KSM does for a page, and only
    /// tried: a busy process is skipped for this cover. Each time, the VMA is looked up
    /// again and must be the same tracked, mergeable VMA. The page-table walk in a window
    /// skips empty ranges, so an empty window costs little.
    fn scan_vma(
        &mut self,
        uksm: &Uksm,
        engine: &mut Engine,
        target: &mut Target,
        scan: &mut VmaScan,
        thresholds: Thresholds,
        left: &mut u64,
    ) -> bool {
        let use_zero_pages = tunables::get(Id::UseZeroPages) == 1;
        let (mut sampled, mut hashed) = (0, 0);
        // Whose the pages are, once per visit (not per sample: for `cgroup` it takes and
        // drops a reference on the memory cgroup).
        let domain = target.mm.domain(self.policy);
        let mut climbed = false;
        let done = loop {
            // `run` leaves 1 or the module unloads: stop at once (a sysfs write of run and
            // unloading wait for this round).
            if *left == 0 || tunables::get(Id::Run) != 1 || should_stop() {
                break false;
            }
            let Some(guard) = MmapReadGuard::try_lock(&target.mm) else {
                break true;
            };
            // Pages of userfaultfd-armed VMAs are left alone, and opted-out ranges and
            // processes (`VmaRef::mergeable`).
            let Some(vma) = guard
                .vma_lookup(target.start)
                .filter(|vma| vma.as_ptr() == target.vma && vma.mergeable())
            else {
                break true;
            };
            let start = vma.start();
            let pages = ((vma.end() - start) / PAGE_SIZE) as u64;
            let Some((first, end)) = scan.next_window(pages) else {
                break true;
            };
            let from = start + first as usize * PAGE_SIZE;
            let to = start + end as usize * PAGE_SIZE;
            // The first present page from the window's sample point on, wherever it is:
            // windows before it are empty and skipped at the cost of one walk.
            match vma.next_page(from, vma.end()) {
                None => break true,
                Some((at, _)) if at >= to => scan.skip_to(((at - start) / PAGE_SIZE) as u64),
                Some((at, page)) => {
                    // A large folio maps no merged page: merged pages where it is now were
                    // copied into it by khugepaged or MADV_COLLAPSE. That is not the
                    // process writing, so it does not count for thrashing (holding the VMA
                    // for it would keep the huge page's duplicates unmerged); and merging
                    // such a page again restores a merge, it finds no new duplicate.
                    let folio = page.as_ref().and_then(|p| large_folio(p, at, &vma));
                    if let Some((first, end)) = folio {
                        let moved = target.merged.collapse(first, end);
                        uksm.merges_collapsed.fetch_add(moved, Ordering::Relaxed);
                    }
                    let restoring = target.merged.take_collapsed(at);
                    // A page the module merged here: still merged (a KSM page, or the KSM
                    // zero page, which has no page), or replaced by a write since.
                    if target.merged.test(at) {
                        let kept = page.as_ref().map_or(true, PageRef::is_ksm);
                        scan.met_merged(kept);
                        if !kept {
                            target.merged.clear(at);
                            uksm.merges_broken.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let mut merged = Merged::default();
                    if let Some(page) = &page {
                        let cur = Mapped {
                            vma,
                            page,
                            addr: at,
                        };
                        let merging = scan.may_merge(sys::now_ms() as u64);
                        self.refused_now.set(false);
                        merged = self.scan_page(
                            uksm,
                            engine,
                            (target.key, guard.mm(), domain),
                            cur,
                            use_zero_pages,
                            merging,
                        );
                        hashed += 1;
                        // Large folios of this VMA that the merge steps met elsewhere in
                        // it (and may have split).
                        for (first, end) in self.lent_collapses.take().iter().flatten() {
                            let moved = target.merged.collapse(*first, *end);
                            uksm.merges_collapsed.fetch_add(moved, Ordering::Relaxed);
                        }
                        if self.refused_now.get() {
                            scan.refused();
                        }
                    }
                    if merged.current {
                        target.merged.set(at);
                    }
                    match merged.other {
                        Some(other) if other.key == target.key => target.merged.set(other.addr),
                        Some(other) => {
                            if let Ok(spare) = RBTreeNodeReservation::new(GFP_KERNEL) {
                                let mut registry = uksm.registry.lock();
                                registry.note_merged(other.key, other.addr, engine.unmerges, spare);
                            }
                        }
                        None => {}
                    }
                    scan.sampled(page.is_some(), merged.any() && !restoring);
                    scan.check_thrash(thresholds, sys::now_ms() as u64);
                    climbed = scan.climb_early(thresholds);
                }
            }
            sampled += 1;
            *left -= 1;
            drop(guard);
            // SAFETY: no lock is held.
            unsafe { sys::uksm_cond_resched() };
            // The VMA belongs to the next rung now: its cover goes on there.
            if climbed {
                break false;
            }
        };
        self.round_pages += sampled;
        uksm.pages_scanned.fetch_add(hashed, Ordering::Relaxed);
        self.hashed += hashed as usize;
        done
    }

    /// One present anonymous page, referenced, under its mmap lock (`at`: its VMA's
    /// registry key, its mm and the mm's merge domain): a merged page gets an rmap item
    /// for this mapping if it lacks one; another is merged, or remembered, if `merging`
    /// (its VMA is not held for thrashing). Returns which pages were merged.
    fn scan_page(
        &self,
        uksm: &Uksm,
        engine: &mut Engine,
        (key, mm, domain): (usize, *mut mm_struct, u64),
        cur: Mapped<'_>,
        use_zero_pages: bool,
        merging: bool,
    ) -> Merged {
        if cur.page.is_ksm() {
            if engine.stable.met_merged(&cur) {
                uksm.rmap_repairs.fetch_add(1, Ordering::Relaxed);
            }
            return Merged::default();
        }
        if !merging {
            return Merged::default();
        }
        let hash = self.hash(cur.page);
        self.hashed_now.set(self.hashed_now.get() + 1);
        // A hash equal to the zero page's is only a hint: the merge compares the whole
        // page after write-protecting it.
        if hash == self.zero_hash && use_zero_pages {
            if merge::merge_zero_page(&cur) {
                uksm.pages_merged.fetch_add(1, Ordering::Relaxed);
                return Merged::CURRENT;
            }
            // Mostly a page that was not all zeros (or could not be merged now).
            self.waste(strength::MEMCMP_COST / 2);
        }
        if domain == domain::NONE {
            // Whose the page is cannot be told now (its owner is exiting): zero pages
            // only.
            return Merged::default();
        }
        let cur = Current {
            key,
            mm,
            domain,
            at: cur,
            hash,
        };
        self.merge_or_remember(uksm, engine, &cur)
    }

    fn begin_pass(&mut self, engine: &mut Engine) {
        engine.unstable.reset(self.hashed_last_pass);
        self.hashed = 0;
        self.in_pass = true;
    }

    /// Ends the epoch: every VMA tracked when it began has completed a pass begun in it.
    fn end_pass(&mut self, uksm: &Uksm, engine: &mut Engine) {
        // Pages still in per-CPU LRU batches carry a reference that makes merging refuse
        // them; release those once per pass, as KSM does.
        // SAFETY: may sleep; uksmd holds no spinlock here.
        unsafe { sys::uksm_lru_add_drain_all() };
        let sharing = engine.stable.refresh();
        uksm.pages_shared.store(sharing.shared, Ordering::Relaxed);
        uksm.pages_sharing.store(sharing.sharing, Ordering::Relaxed);
        uksm.pages_unshared
            .store(engine.unstable.live() as u64, Ordering::Relaxed);
        uksm.full_scans.fetch_add(1, Ordering::Relaxed);
        let pages: u64 = {
            let mut registry = uksm.registry.lock();
            registry.new_epoch();
            registry.rung_stats().1.iter().sum()
        };
        uksm.tracked_pages.store(pages, Ordering::Relaxed);
        self.hashed_last_pass = self.hashed;
        self.in_pass = false;
    }

    /// Each rung's stride: the rung's pages over the samples its quota takes in its cover
    /// time (`eval_intervals`).
    fn set_strides(&mut self, uksm: &Uksm, gov: &Settings, period_ms: u64) {
        let pages = uksm.registry.lock().rung_stats().1;
        for rung in 0..RUNGS {
            self.stride[rung] = ladder::stride(
                pages[rung],
                self.quota[rung],
                period_ms,
                u64::from(gov.eval_intervals_ms[rung]),
            );
        }
    }

    /// One round: each rung, fastest first, samples up to its quota of windows (all rungs
    /// together at most `pages_to_scan`). Returns false if asked to stop.
    fn round(
        &mut self,
        uksm: &Uksm,
        gov: &Settings,
        generation: u64,
        period_ns: u64,
        page_ns: u64,
    ) -> bool {
        self.round_pages = 0;
        let mut engine = uksm.merge_lock.lock();
        // run=2 may have unmerged everything while this thread waited for the lock.
        if tunables::get(Id::Run) != 1 {
            return true;
        }
        self.policy = tunables::merge_domain();
        // A page just faulted in sits in a per-CPU LRU batch, which holds a reference
        // that makes merging refuse it. KSM drains the batches once per pass; a pass of
        // the slow rungs can take hours, so uksmd drains them at most once a second while
        // merges are being refused.
        if self.refused.get() && sys::now_ms() - self.drained_ms >= 1000 {
            // SAFETY: may sleep; uksmd holds the merge lock, a mutex, and no spinlock.
            unsafe { sys::uksm_lru_add_drain_all() };
            self.drained_ms = sys::now_ms();
            self.refused.set(false);
        }
        if !self.in_pass {
            self.begin_pass(&mut engine);
        } else if engine.unstable.is_full() {
            // A pass of the sparse rungs outlasts what the table holds: start it afresh,
            // twice as big (the pages seen so far are forgotten, not lost: they are
            // sampled again in their next passes).
            let len = engine.unstable.len();
            engine.unstable.reset(self.hashed.max(len));
        }
        let period_ms = period_ns / 1_000_000;
        for rung in 0..RUNGS {
            let share = gov.cpu_ratios[rung].share(gov.max_cpu_percentage);
            self.quota[rung] = governor::quota(period_ns, share, page_ns);
        }
        // Strides follow the rungs' memory, which changes as VMAs come, go and move.
        if self.strides_for != Some(generation) || sys::now_ms() - self.strides_at_ms >= 1000 {
            self.set_strides(uksm, gov, period_ms);
            self.strides_for = Some(generation);
            self.strides_at_ms = sys::now_ms();
        }
        let t = Thresholds {
            abundant: tunables::get(Id::AbundantThreshold) as u32,
            thrash: tunables::get(Id::ThrashThreshold) as u32,
        };
        let mut cap = tunables::get(Id::PagesToScan);
        for rung in (0..RUNGS).rev() {
            let mut left = self.quota[rung].min(cap);
            let before = left;
            if !self.scan_rung(uksm, &mut engine, rung, generation, t, &mut left, gov, period_ms) {
                return false;
            }
            cap -= before - left;
        }
        self.adapt_strength(uksm, &mut engine);
        if uksm.registry.lock().epoch_done() {
            self.end_pass(uksm, &mut engine);
        }
        true
    }

    /// Samples VMAs of `rung` from where its cover stands, up to `left` windows. At the
    /// end of the rung's cover, its stride is computed afresh. Returns false if asked to
    /// stop.
    #[allow(clippy::too_many_arguments)]
    fn scan_rung(
        &mut self,
        uksm: &Uksm,
        engine: &mut Engine,
        rung: usize,
        generation: u64,
        t: Thresholds,
        left: &mut u64,
        gov: &Settings,
        period_ms: u64,
    ) -> bool {
        while *left > 0 && tunables::get(Id::Run) == 1 {
            let next = {
                let mut registry = uksm.registry.lock();
                if registry.on_rung(rung) == 0 {
                    break;
                }
                registry.next_in_rung(rung, self.cursor[rung], 64)
            };
            match next {
                Next::End => {
                    // The rung's cover is complete; the next one starts with the next
                    // round.
                    self.cursor[rung] = 0;
                    let pages = uksm.registry.lock().rung_stats().1[rung];
                    self.stride[rung] = ladder::stride(
                        pages,
                        self.quota[rung],
                        period_ms,
                        u64::from(gov.eval_intervals_ms[rung]),
                    );
                    break;
                }
                Next::Skipped(key) => self.cursor[rung] = key,
                Next::Found(mut target) => {
                    if target.merged.unmerges != engine.unmerges {
                        // Everything was unmerged since these pages were merged.
                        target.merged = MergedMap::new(engine.unmerges);
                    }
                    let mut scan = target.scan;
                    // SAFETY: no precondition.
                    let (r1, r2) = unsafe { (sys::uksm_random_u64(), sys::uksm_random_u64()) };
                    let own = ladder::stride(
                        target.pages,
                        self.quota[rung],
                        period_ms,
                        u64::from(gov.eval_intervals_ms[rung]),
                    );
                    let stride = ladder::vma_stride(target.pages, self.stride[rung], own);
                    scan.begin(stride, generation, r1, r2);
                    let holds = scan.holds;
                    let done = self.scan_vma(uksm, engine, &mut target, &mut scan, t, left);
                    let passed = done && scan.end_cover(t, sys::now_ms() as u64);
                    if scan.holds != holds {
                        uksm.thrash_holds.fetch_add(1, Ordering::Relaxed);
                    }
                    if done {
                        self.cursor[rung] = target.key + 1;
                    }
                    let merged = core::mem::replace(&mut target.merged, MergedMap::new(0));
                    let gone = uksm.registry.lock().store_scan(
                        target.key,
                        target.vma,
                        scan,
                        merged,
                        passed,
                    );
                    // `gone` (the map of a VMA released meanwhile) and `target` (with its
                    // mm reference) are dropped here, outside every lock.
                    drop(gone);
                    drop(target);
                }
            }
            // SAFETY: no lock is held.
            unsafe { sys::uksm_cond_resched() };
            if should_stop() {
                return false;
            }
        }
        true
    }
}

/// The range of `vma` that the large folio of `page` (mapped at `addr`) spans, if the
/// folio is large (a THP or an mTHP).
fn large_folio(page: &PageRef, addr: usize, vma: &VmaRef<'_>) -> Option<(usize, usize)> {
    let (index, pages) = page.folio_span();
    if pages <= 1 {
        return None;
    }
    let first = addr.saturating_sub(index * PAGE_SIZE).max(vma.start());
    let end = addr.saturating_add((pages - index) * PAGE_SIZE).min(vma.end());
    Some((first, end))
}

/// The CPU share of the rungs that hold VMAs, together (at most the ceiling).
fn active_share(uksm: &Uksm, gov: &Settings) -> u32 {
    let registry = uksm.registry.lock();
    let share: u32 = (0..RUNGS)
        .filter(|&rung| registry.on_rung(rung) > 0)
        .map(|rung| gov.cpu_ratios[rung].share(gov.max_cpu_percentage))
        .sum();
    share.min(gov.ceiling())
}

/// Body of uksmd (called by the glue's thread function).
#[no_mangle]
extern "C" fn uksm_rs_thread_main(_data: *mut c_void) -> c_int {
    let Some(uksm) = Uksm::get() else {
        return 0;
    };
    let mut scanner = Scanner::new();
    let mut cost = PageCost::new();
    let mut budget = Budget::new(sys::now_ns(), sys::thread_cpu_ns());
    let mut last_stats = sys::now_ms();
    // When the last round ended (ms of the monotonic clock). The next round is due
    // `sleep_millisecs` (read afresh each time: a new value takes effect at once) after
    // it, or later when the CPU budget is spent.
    let mut round_end = last_stats;
    while !should_stop() {
        let running = tunables::get(Id::Run) == 1;
        let sleep_ms = tunables::get(Id::SleepMillisecs);
        // Quotas are for the base sleep, at least 10 ms of it (so that sleep_millisecs=0
        // still gives rounds of more than one page), stretched when the rungs that hold
        // VMAs have so small a share that a round would not be worth waking for; the
        // budget may save up one round of that size.
        let (gov, generation) = settings::current_with_generation();
        let ceiling = gov.ceiling();
        let base_ns = sleep_ms.max(10) * 1_000_000;
        let period_ns = governor::period(base_ns, active_share(uksm, &gov));
        let sleep_ms = sleep_ms + (period_ns - base_ns) / 1_000_000;
        let burst_ns = governor::run_allowed(period_ns, ceiling);
        let owed_ns = budget.update(sys::now_ns(), sys::thread_cpu_ns(), ceiling, burst_ns);
        let mut due = (round_end + sleep_ms as i64).max(sys::now_ms() + owed_ns.div_ceil(1_000_000) as i64);
        if running && sys::now_ms() >= due {
            let started = sys::now_ns();
            if !scanner.round(uksm, &gov, generation, period_ns, cost.ns()) {
                break;
            }
            // The round's cost per page (monotonic time: a round does not sleep).
            cost.add(sys::now_ns().saturating_sub(started), scanner.round_pages);
            uksm.page_cost_ns.store(cost.ns(), Ordering::Relaxed);
            round_end = sys::now_ms();
            let owed_ns =
                budget.update(sys::now_ns(), sys::thread_cpu_ns(), ceiling, burst_ns);
            due = (round_end + sleep_ms as i64)
                .max(round_end + owed_ns.div_ceil(1_000_000) as i64);
            uksm.sleep_times.fetch_add(1, Ordering::Relaxed);
        }
        // Until the next round (or, stopped, until a sysfs write wakes the thread), and
        // no later than the next statistics line.
        let mut timeout_ms: i64 = if running {
            (due - sys::now_ms()).max(0)
        } else {
            -1
        };
        let interval_ms = tunables::get(Id::StatsIntervalSecs) as i64 * 1000;
        if interval_ms > 0 {
            if (sys::now_ms() - last_stats) >= interval_ms {
                uksm.log_stats("stats");
                last_stats = sys::now_ms();
            }
            let until_stats = interval_ms - (sys::now_ms() - last_stats);
            if timeout_ms < 0 || until_stats < timeout_ms {
                timeout_ms = until_stats.max(0);
            }
        }
        // SAFETY: called from the uksmd thread.
        unsafe { sys::uksm_thread_wait(timeout_ms as _) };
    }
    0
}
