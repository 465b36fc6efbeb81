//! The CPU governor: how many pages uksmd samples in each rung per batch, and how long it
//! sleeps after a batch, so that its CPU use stays within the budget of the rungs it worked
//! in, and never above `max_cpu_percentage` of one CPU (UKSM's governor, §2.16 of the
//! algorithm notes).
//!
//! CPU shares are in units of 1/10000 of one CPU ([`ONE_CPU`]). Each rung of the sampling
//! ladder has a share ([`CpuRatio`]): a fixed one, or a fraction of `max_cpu_percentage`.
//! A batch that ran `r` ns at share `s` is followed by a sleep of `r * (10000 - s) / s` ns,
//! so that `r / (r + sleep) = s / 10000`; a rung's quota of pages per batch is the run
//! time its share allows after one base sleep, divided by the measured cost of one page
//! ([`PageCost`]). The presets ([`PRESETS`]) are UKSM's.

use core::fmt;

/// Rungs of the sampling ladder.
pub const RUNGS: usize = 4;
/// One whole CPU, in the units of a CPU share.
pub const ONE_CPU: u32 = 10_000;
/// The longest sleep after a batch (UKSM's cap), in ns.
pub const MAX_SLEEP_NS: u64 = 1_000_000_000;

/// The CPU share of one rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuRatio {
    /// A fixed share, 1..=9999 of [`ONE_CPU`].
    Fixed(u32),
    /// `max_cpu_percentage` divided by this, 1..=100 (written `MAX/n`).
    OfMax(u32),
}

impl CpuRatio {
    /// The share in units of 1/10000 of a CPU, with `max_cpu_percentage` = `max_pct`:
    /// at least 1, at most `max_pct` of a CPU.
    pub fn share(self, max_pct: u32) -> u32 {
        let cap = max_pct.clamp(1, 100) * 100;
        let share = match self {
            CpuRatio::Fixed(r) => r,
            CpuRatio::OfMax(n) => cap / n.max(1),
        };
        share.clamp(1, cap)
    }
}

impl fmt::Display for CpuRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuRatio::Fixed(r) => write!(f, "{r}"),
            CpuRatio::OfMax(n) => write!(f, "MAX/{n}"),
        }
    }
}

/// A governor preset: the rungs' shares and cover times, and the CPU ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Name written to and read from `cpu_governor`.
    pub name: &'static str,
    /// CPU share of each rung (`cpu_ratios`).
    pub cpu_ratios: [CpuRatio; RUNGS],
    /// Time in which each rung covers its pages once, in ms (`eval_intervals`).
    pub eval_intervals_ms: [u32; RUNGS],
    /// Ceiling of uksmd's CPU use, in percent of one CPU (`max_cpu_percentage`).
    pub max_cpu_percentage: u32,
}

use CpuRatio::{Fixed, OfMax};

/// UKSM's presets, by increasing restraint. `full` lets uksmd use up to 95 % of a CPU where
/// duplicates are found fast; every preset samples memory where nothing is found in rung 0,
/// at 0.1-0.2 % of a CPU.
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "full",
        cpu_ratios: [Fixed(20), Fixed(40), OfMax(4), OfMax(1)],
        eval_intervals_ms: [1000, 500, 200, 50],
        max_cpu_percentage: 95,
    },
    Preset {
        name: "medium",
        cpu_ratios: [Fixed(20), Fixed(30), OfMax(4), OfMax(1)],
        eval_intervals_ms: [1000, 500, 400, 100],
        max_cpu_percentage: 50,
    },
    Preset {
        name: "low",
        cpu_ratios: [Fixed(10), Fixed(20), OfMax(2), OfMax(1)],
        eval_intervals_ms: [1500, 1000, 1000, 250],
        max_cpu_percentage: 20,
    },
    Preset {
        name: "quiet",
        cpu_ratios: [Fixed(10), Fixed(20), Fixed(40), Fixed(75)],
        eval_intervals_ms: [2000, 1000, 1000, 1000],
        max_cpu_percentage: 1,
    },
];

/// The preset named by `input` (one optional trailing newline), or `None`.
pub fn preset(input: &[u8]) -> Option<&'static Preset> {
    preset_index(input).map(|i| &PRESETS[i])
}

/// The index in [`PRESETS`] of the preset named by `input` (one optional trailing newline).
pub fn preset_index(input: &[u8]) -> Option<usize> {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    PRESETS.iter().position(|p| p.name.as_bytes() == input)
}

/// The governor's settings: a preset, as chosen with `cpu_governor`, with the parts a user
/// may have set since (`max_cpu_percentage`, `cpu_ratios`, `eval_intervals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Index in [`PRESETS`] of the preset chosen last.
    pub governor: usize,
    /// CPU share of each rung.
    pub cpu_ratios: [CpuRatio; RUNGS],
    /// Time in which each rung covers its pages once, in ms.
    pub eval_intervals_ms: [u32; RUNGS],
    /// Ceiling of uksmd's CPU use, in percent of one CPU (1..=100).
    pub max_cpu_percentage: u32,
}

impl Settings {
    /// The settings of preset `index` (of [`PRESETS`]).
    pub const fn of(index: usize) -> Self {
        let p = &PRESETS[index];
        Settings {
            governor: index,
            cpu_ratios: p.cpu_ratios,
            eval_intervals_ms: p.eval_intervals_ms,
            max_cpu_percentage: p.max_cpu_percentage,
        }
    }

    /// Applies the preset named by `input`; refuses anything but an exact name.
    pub fn choose(&mut self, input: &[u8]) -> Result<(), NameError> {
        *self = Settings::of(preset_index(input).ok_or(NameError)?);
        Ok(())
    }

    /// The CPU ceiling as a share (units of 1/10000 of a CPU).
    pub fn ceiling(&self) -> u32 {
        self.max_cpu_percentage.clamp(1, 100) * 100
    }
}

/// The default settings: UKSM's default preset, `full`.
pub const DEFAULT: Settings = Settings::of(0);

/// A write to `cpu_governor` that names no preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameError;

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of")?;
        for p in PRESETS.iter() {
            write!(f, " {}", p.name)?;
        }
        Ok(())
    }
}

/// `cpu_governor` as read: every preset, the one chosen last in brackets (UKSM's format).
pub struct Governors(pub usize);

impl fmt::Display for Governors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in PRESETS.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if i == self.0 {
                write!(f, "[{}]", p.name)?;
            } else {
                f.write_str(p.name)?;
            }
        }
        Ok(())
    }
}

/// A list of rung values as read: separated by single spaces (what the parsers accept).
pub struct Rungs<'a, T>(pub &'a [T; RUNGS]);

impl<T: fmt::Display> fmt::Display for Rungs<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// The least CPU time a round should have to spend: waking uksmd and setting a round up
/// has a fixed cost, which rounds of a few pages would pay again and again. On the debug
/// kernel under TCG that cost is about 1.6 ms a round (59 rounds of 6 pages used 150 ms
/// under `quiet`, 0.24 % of a CPU against rung 0's 0.1 %, with 1 ms here).
pub const MIN_ROUND_NS: u64 = 4_000_000;
/// The longest period between rounds.
pub const MAX_PERIOD_NS: u64 = 4_000_000_000;

/// The period of rounds: `base_ns` (the sleep between rounds, at least 10 ms), stretched
/// so that the rungs that hold VMAs, sharing `share` of a CPU, may spend at least
/// [`MIN_ROUND_NS`] per round; at most [`MAX_PERIOD_NS`].
pub fn period(base_ns: u64, share: u32) -> u64 {
    let needed = MIN_ROUND_NS.saturating_mul(u64::from(ONE_CPU)) / u64::from(share.max(1));
    base_ns.max(needed.min(MAX_PERIOD_NS))
}

/// The pages a batch may visit under the ceiling `share`, next to a sleep of `sleep_ns`,
/// when one page costs `page_ns`: at most `cap`, at least 1.
pub fn batch_pages(sleep_ns: u64, share: u32, page_ns: u64, cap: u64) -> u64 {
    quota(sleep_ns, share, page_ns).min(cap).max(1)
}

/// Why a list of rung values was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError {
    /// Not exactly [`RUNGS`] values separated by single spaces (one trailing newline
    /// allowed).
    Count,
    /// A value that is not a plain decimal number (or `MAX/n`, where allowed).
    NotANumber,
    /// A value outside its range.
    OutOfRange {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Count => write!(f, "need {RUNGS} values separated by spaces"),
            ListError::NotANumber => f.write_str("a value is not a plain decimal number"),
            ListError::OutOfRange { min, max } => write!(f, "a value is not in {min}..={max}"),
        }
    }
}

fn number(token: &[u8], min: u32, max: u32) -> Result<u32, ListError> {
    if token.is_empty() || token.len() > 10 || !token.iter().all(u8::is_ascii_digit) {
        return Err(ListError::NotANumber);
    }
    let value = token.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
    if value < u64::from(min) || value > u64::from(max) {
        return Err(ListError::OutOfRange { min, max });
    }
    Ok(value as u32)
}

fn tokens(input: &[u8]) -> Result<[&[u8]; RUNGS], ListError> {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    let mut out: [&[u8]; RUNGS] = [&[]; RUNGS];
    let mut n = 0;
    for token in input.split(|&b| b == b' ') {
        if n == RUNGS {
            return Err(ListError::Count);
        }
        out[n] = token;
        n += 1;
    }
    if n != RUNGS || out.iter().any(|t| t.is_empty()) {
        return Err(ListError::Count);
    }
    Ok(out)
}

/// Parses `cpu_ratios`: four shares, each 1..=9999 (of 10000) or `MAX/n` with n 1..=100.
pub fn parse_cpu_ratios(input: &[u8]) -> Result<[CpuRatio; RUNGS], ListError> {
    let t = tokens(input)?;
    let mut out = [Fixed(1); RUNGS];
    for (o, token) in out.iter_mut().zip(t) {
        *o = match token.strip_prefix(b"MAX/") {
            Some(n) => OfMax(number(n, 1, 100)?),
            None => Fixed(number(token, 1, ONE_CPU - 1)?),
        };
    }
    Ok(out)
}

/// Parses `eval_intervals`: four cover times in ms, each 10..=600000, from the fastest
/// rung's down (each at most the one below it, or the ladder would be upside down).
pub fn parse_eval_intervals(input: &[u8]) -> Result<[u32; RUNGS], ListError> {
    let t = tokens(input)?;
    let mut out = [0; RUNGS];
    for (o, token) in out.iter_mut().zip(t) {
        *o = number(token, 10, 600_000)?;
    }
    if out.windows(2).any(|w| w[1] > w[0]) {
        return Err(ListError::OutOfRange {
            min: 10,
            max: out[0],
        });
    }
    Ok(out)
}

/// The sleep after a batch that ran `run_ns` at `share`, so that the batch and the sleep
/// together use `share` of a CPU; at most [`MAX_SLEEP_NS`].
pub fn sleep_after(run_ns: u64, share: u32) -> u64 {
    let share = u64::from(share.max(1).min(ONE_CPU));
    // No 128-bit division in the kernel: beyond 1000 s of run the product may saturate,
    // and the sleep is capped anyway.
    run_ns
        .saturating_mul(u64::from(ONE_CPU).saturating_sub(share))
        .checked_div(share)
        .map_or(MAX_SLEEP_NS, |sleep| sleep.min(MAX_SLEEP_NS))
}

/// The run time that `share` allows next to a sleep of `sleep_ns`.
pub fn run_allowed(sleep_ns: u64, share: u32) -> u64 {
    let share = u64::from(share.max(1).min(ONE_CPU - 1));
    sleep_ns
        .saturating_mul(share)
        .checked_div(u64::from(ONE_CPU).saturating_sub(share))
        .unwrap_or(u64::MAX)
}

/// Pages a rung at `share` may sample in one batch, next to a sleep of `sleep_ns`, when
/// one page costs `page_ns`: at least 1.
pub fn quota(sleep_ns: u64, share: u32, page_ns: u64) -> u64 {
    (run_allowed(sleep_ns, share) / page_ns.max(1)).max(1)
}

/// uksmd's CPU budget under the ceiling: credit accrues at the ceiling's share of the
/// time that passes and the CPU time uksmd uses (all of it, between rounds too) spends
/// it. While the credit is negative uksmd sleeps. The credit saved while idle is capped
/// (`burst_ns`), so the ceiling holds over any span longer than a round or two, also when
/// a round costs far more than its estimate (a merge that splits a huge page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    credit_ns: i64,
    wall_ns: u64,
    cpu_ns: u64,
}

impl Budget {
    /// A budget from the clocks now (monotonic and the thread's CPU time, ns).
    pub fn new(wall_ns: u64, cpu_ns: u64) -> Self {
        Budget {
            credit_ns: 0,
            wall_ns,
            cpu_ns,
        }
    }

    /// Accounts the time since the last call at `share` of a CPU (credit at most
    /// `burst_ns`); returns how long uksmd must sleep before it may run again (0: now).
    pub fn update(&mut self, wall_ns: u64, cpu_ns: u64, share: u32, burst_ns: u64) -> u64 {
        let share = u64::from(share.max(1).min(ONE_CPU));
        let earned = wall_ns.saturating_sub(self.wall_ns).saturating_mul(share) / u64::from(ONE_CPU);
        let spent = cpu_ns.saturating_sub(self.cpu_ns);
        (self.wall_ns, self.cpu_ns) = (wall_ns.max(self.wall_ns), cpu_ns.max(self.cpu_ns));
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.credit_ns = self
            .credit_ns
            .saturating_add(clamp(earned))
            .saturating_sub(clamp(spent))
            .min(clamp(burst_ns));
        match u64::try_from(self.credit_ns) {
            Ok(_) => 0,
            // Owed: the time in which the share earns it back.
            Err(_) => self
                .credit_ns
                .unsigned_abs()
                .saturating_mul(u64::from(ONE_CPU))
                / share,
        }
    }
}

/// The measured CPU cost of sampling one page, as UKSM keeps it: an exponential moving
/// average (20 % new, 80 % old) that follows a burst (a sample above 10 times the average)
/// only by doubling.
///
/// Rounds are measured together until they span [`PageCost::MIN_SPAN_NS`]: the monotonic
/// clock may advance only by the tick (a guest without a usable TSC counts jiffies), so a
/// round shorter than a tick reads 0 or a whole tick, and only a sum over many rounds is
/// right on average. Rounds of fewer than [`PageCost::MIN_PAGES`] pages are not measured:
/// their time is mostly the round's own set-up, and counting it per page would shrink the
/// next rounds further (the estimate would run away). An average that no round has
/// measured for [`PageCost::STALE_ROUNDS`] rounds is halved, so that rounds grow until
/// they are measured again (UKSM resets its average now and then for the same reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCost {
    ns: u64,
    acc_ns: u64,
    acc_pages: u64,
    stale_rounds: u32,
}

impl PageCost {
    /// The cost assumed before anything is measured (UKSM's 500 ns).
    pub const INITIAL_NS: u64 = 500;
    /// Measured time that makes one sample of the average.
    pub const MIN_SPAN_NS: u64 = 20_000_000;
    /// Rounds of fewer pages are not measured.
    pub const MIN_PAGES: u64 = 8;
    /// Rounds without a measurement after which the average is halved.
    pub const STALE_ROUNDS: u32 = 64;

    /// A fresh average.
    pub const fn new() -> Self {
        PageCost {
            ns: Self::INITIAL_NS,
            acc_ns: 0,
            acc_pages: 0,
            stale_rounds: 0,
        }
    }

    /// The average, in ns per page.
    pub fn ns(&self) -> u64 {
        self.ns
    }

    /// Adds a round that sampled `pages` in `run_ns`.
    pub fn add(&mut self, run_ns: u64, pages: u64) {
        if pages < Self::MIN_PAGES {
            self.stale_rounds += 1;
            if self.stale_rounds >= Self::STALE_ROUNDS {
                self.stale_rounds = 0;
                self.ns = (self.ns / 2).max(1);
            }
            return;
        }
        self.stale_rounds = 0;
        self.acc_ns = self.acc_ns.saturating_add(run_ns);
        self.acc_pages = self.acc_pages.saturating_add(pages);
        if self.acc_ns < Self::MIN_SPAN_NS || self.acc_pages == 0 {
            return;
        }
        let cur = (self.acc_ns / self.acc_pages).max(1);
        (self.acc_ns, self.acc_pages) = (0, 0);
        self.ns = if cur > self.ns.saturating_mul(10) {
            self.ns.saturating_mul(2)
        } else {
            (cur.saturating_mul(20) + self.ns.saturating_mul(80)) / 100
        }
        .max(1);
    }
}

impl Default for PageCost {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_by_name() {
        assert_eq!(preset(b"full").unwrap().max_cpu_percentage, 95);
        assert_eq!(preset(b"quiet\n").unwrap().max_cpu_percentage, 1);
        assert!(preset(b"ful").is_none());
        assert!(preset(b"full ").is_none());
        assert!(preset(b"").is_none());
    }

    #[test]
    fn shares() {
        assert_eq!(Fixed(20).share(95), 20);
        assert_eq!(OfMax(4).share(95), 2375);
        assert_eq!(OfMax(1).share(95), 9500);
        // A fixed share above the ceiling is held to it: quiet's rungs at 1 %.
        assert_eq!(Fixed(75).share(1), 75);
        assert_eq!(Fixed(400).share(1), 100);
        assert_eq!(OfMax(100).share(1), 1);
    }

    #[test]
    fn lists() {
        assert_eq!(
            parse_cpu_ratios(b"20 40 MAX/4 MAX/1\n"),
            Ok([Fixed(20), Fixed(40), OfMax(4), OfMax(1)])
        );
        assert_eq!(parse_cpu_ratios(b"20 40 MAX/4"), Err(ListError::Count));
        assert_eq!(parse_cpu_ratios(b"20 40 MAX/4 1 2"), Err(ListError::Count));
        assert_eq!(parse_cpu_ratios(b"20  40 MAX/4 1"), Err(ListError::Count));
        assert_eq!(
            parse_cpu_ratios(b"0 40 MAX/4 1"),
            Err(ListError::OutOfRange { min: 1, max: 9999 })
        );
        assert_eq!(
            parse_cpu_ratios(b"10000 40 MAX/4 1"),
            Err(ListError::OutOfRange { min: 1, max: 9999 })
        );
        assert_eq!(
            parse_cpu_ratios(b"20 40 MAX/0 1"),
            Err(ListError::OutOfRange { min: 1, max: 100 })
        );
        assert_eq!(
            parse_cpu_ratios(b"20 -40 MAX/4 1"),
            Err(ListError::NotANumber)
        );
        assert_eq!(
            parse_cpu_ratios(b"20 40 max/4 1"),
            Err(ListError::NotANumber)
        );
        assert_eq!(
            parse_cpu_ratios(b"99999999999 40 MAX/4 1"),
            Err(ListError::NotANumber)
        );
        assert_eq!(
            parse_eval_intervals(b"1000 500 200 50\n"),
            Ok([1000, 500, 200, 50])
        );
        assert!(parse_eval_intervals(b"50 200 500 1000").is_err());
        assert!(parse_eval_intervals(b"1000 500 200 5").is_err());
    }

    #[test]
    fn sleep_keeps_the_share() {
        // 1 ms of work at 0.2 % of a CPU: 499 ms of sleep.
        assert_eq!(sleep_after(1_000_000, 20), 499_000_000);
        // At 95 %: a twentieth of the run.
        assert_eq!(sleep_after(19_000_000, 9500), 1_000_000);
        // Capped.
        assert_eq!(sleep_after(u64::MAX, 1), MAX_SLEEP_NS);
        for share in [1, 20, 75, 2375, 9500, 9999] {
            for sleep in [1_000_000u64, 100_000_000] {
                let run = run_allowed(sleep, share);
                // run / (run + sleep) is the share, to rounding.
                let got = run as u128 * ONE_CPU as u128 / (run as u128 + sleep as u128);
                assert!(
                    got <= share as u128 && got + 1 >= share as u128,
                    "{share} {sleep} {got}"
                );
            }
        }
        assert_eq!(quota(100_000_000, 20, 500), 400);
        assert_eq!(quota(100_000_000, 1, 1_000_000), 1);
    }

    #[test]
    fn settings_and_their_text() {
        extern crate std;
        use std::string::ToString;
        let mut s = DEFAULT;
        assert_eq!(Governors(s.governor).to_string(), "[full] medium low quiet");
        assert_eq!(Rungs(&s.cpu_ratios).to_string(), "20 40 MAX/4 MAX/1");
        assert_eq!(Rungs(&s.eval_intervals_ms).to_string(), "1000 500 200 50");
        assert_eq!(s.ceiling(), 9500);
        assert_eq!(s.choose(b"quiet\n"), Ok(()));
        assert_eq!(s, Settings::of(3));
        assert_eq!(Governors(s.governor).to_string(), "full medium low [quiet]");
        assert_eq!(s.ceiling(), 100);
        // Anything else keeps the settings.
        for bad in [&b"qui"[..], b"Quiet", b"quiet ", b"", b"\n", b"full\0"] {
            assert_eq!(s.choose(bad), Err(NameError), "{bad:?}");
            assert_eq!(s, Settings::of(3));
        }
        assert_eq!(NameError.to_string(), "not one of full medium low quiet");
        // What is read back parses to the same values.
        for p in 0..PRESETS.len() {
            let s = Settings::of(p);
            let text = Rungs(&s.cpu_ratios).to_string();
            assert_eq!(parse_cpu_ratios(text.as_bytes()), Ok(s.cpu_ratios));
            let text = Rungs(&s.eval_intervals_ms).to_string();
            assert_eq!(
                parse_eval_intervals(text.as_bytes()),
                Ok(s.eval_intervals_ms)
            );
        }
    }

    #[test]
    fn budget_holds_the_ceiling_over_any_mix_of_rounds() {
        // 10 % of a CPU; rounds of 2 ms and, every tenth, a round of 300 ms (a split of a
        // huge page, say); CPU seen a tick late half of the time.
        let share = 1_000;
        let mut b = Budget::new(0, 0);
        let (mut wall, mut cpu) = (0u64, 0u64);
        let burst = run_allowed(100_000_000, share);
        for i in 0..10_000u64 {
            let run = if i % 10 == 9 { 300_000_000 } else { 2_000_000 };
            cpu += run;
            wall += run;
            let seen = if i % 2 == 0 { cpu.saturating_sub(4_000_000) } else { cpu };
            let sleep = b.update(wall, seen, share, burst).max(10_000_000);
            wall += sleep;
            let _ = b.update(wall, seen, share, burst);
        }
        let used = cpu as f64 / wall as f64;
        assert!(used <= 0.101, "used {used}");
        assert!(used >= 0.09, "used {used}: the budget wastes its share");
        // Credit saved while idle is capped: after an hour asleep, one burst only.
        let mut b = Budget::new(0, 0);
        assert_eq!(b.update(3_600_000_000_000, 0, share, burst), 0);
        assert_eq!(b.update(3_600_000_000_000, burst, share, burst), 0);
        assert!(b.update(3_600_000_000_000, burst + 1_000_000, share, burst) >= 9_000_000);
        // Absurd inputs saturate instead of overflowing.
        let mut b = Budget::new(u64::MAX, 0);
        assert_eq!(b.update(0, u64::MAX, 0, u64::MAX), u64::MAX);
    }

    #[test]
    fn rounds_are_spaced_so_that_each_is_worth_waking_for() {
        // The full preset's rungs together: 100 ms stays.
        assert_eq!(period(100_000_000, 9_500), 100_000_000);
        // Only rung 0 of full (0.2 %): a round every 2 s; of quiet (0.1 %): every 4 s.
        assert_eq!(period(100_000_000, 20), 2_000_000_000);
        assert_eq!(period(100_000_000, 10), 4_000_000_000);
        // At most MAX_PERIOD_NS, never below the base.
        assert_eq!(period(100_000_000, 1), MAX_PERIOD_NS);
        assert_eq!(period(0, 0), MAX_PERIOD_NS);
        assert_eq!(period(5_000_000_000, 20), 5_000_000_000);
        assert_eq!(period(100_000_000, 200), 200_000_000);
    }

    #[test]
    fn batches_under_the_ceiling() {
        // 100 ms sleep, 3 us per page: 95 % allows 633 ms of work, capped by pages_to_scan.
        assert_eq!(batch_pages(100_000_000, 9500, 3_000, 1000), 1000);
        // 1 %: about 1 ms of work, 336 pages.
        assert_eq!(batch_pages(100_000_000, 100, 3_000, 1000), 336);
        assert_eq!(batch_pages(0, 100, 3_000, 1000), 1);
        assert_eq!(batch_pages(100_000_000, 100, u64::MAX, 1000), 1);
    }

    #[test]
    fn page_cost_average() {
        let mut c = PageCost::new();
        c.add(20_000_000, 20_000); // 1000 ns per page
        assert_eq!(c.ns(), (20 * 1000 + 80 * 500) / 100);
        let before = c.ns();
        c.add(2_000_000_000, 20_000); // a burst: 100 us per page
        assert_eq!(c.ns(), 2 * before);
        for _ in 0..100 {
            c.add(30_000_000, 10_000);
        }
        assert!((2_900..=3_000).contains(&c.ns()), "{}", c.ns());
        // Rounds too short to measure alone wait for more; rounds of a few pages, or
        // none, are not measured.
        let before = c.ns();
        c.add(1_000_000, 100);
        c.add(50_000_000, 0);
        c.add(50_000_000, PageCost::MIN_PAGES - 1);
        assert_eq!(c.ns(), before);
        // ... but an average nothing measures any more is halved, again and again.
        for _ in 0..PageCost::STALE_ROUNDS * 3 {
            c.add(50_000_000, 1);
        }
        assert_eq!(c.ns(), before / 8);
    }

    #[test]
    fn page_cost_with_a_clock_that_moves_by_ticks() {
        // Rounds of 2 ms (100 pages, 20 us each) on a clock of 4 ms ticks: half read 0,
        // half a whole tick. The average still finds 20 us.
        let mut c = PageCost::new();
        for i in 0..20_000u64 {
            c.add(if i % 2 == 0 { 0 } else { 4_000_000 }, 100);
        }
        assert!((19_000..=21_000).contains(&c.ns()), "{}", c.ns());
    }
}
