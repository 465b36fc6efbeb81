//! Tunables: the numbers a user sets through module parameters and /sys/kernel/mm/uksm/.
//!
//! Every tunable has one definition here (name, accepted range, default) that both the
//! parameter and the sysfs attribute of the same name use. Input is accepted only when it
//! is a plain decimal number inside the range, optionally followed by one newline (what
//! `echo` writes). Anything else is refused with the reason, and the old value is kept:
//! there is no clamping and no partial parse.

use core::ffi::CStr;
use core::fmt;

/// Which tunable: also its index in [`ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    /// `run`: 0 stops the scanner, 1 lets it scan and merge, 2 unmerges everything and
    /// stops.
    Run = 0,
    /// `sleep_millisecs`: pause of the scanner between two rounds.
    SleepMillisecs = 1,
    /// `stats_interval_secs`: seconds between two statistics lines in the kernel log.
    StatsIntervalSecs = 2,
    /// `pages_to_scan`: most pages the scanner samples per round, all rungs together.
    PagesToScan = 3,
    /// `use_zero_pages`: 1 merges all-zero pages into the KSM zero page, 0 leaves them.
    UseZeroPages = 4,
    /// `max_page_sharing`: most places one merged page may be mapped at by merging (KSM's
    /// name and default); more copies of a content get another merged page.
    MaxPageSharing = 5,
    /// `abundant_threshold`: percent of a VMA's samples that must find new merges for the
    /// VMA to climb the sampling ladder (UKSM's meaning).
    AbundantThreshold = 6,
    /// `thrash_threshold`: percent of a VMA's merges broken by writes above which the VMA
    /// counts as thrashing; 0 turns the filter off (UKSM's meaning).
    ThrashThreshold = 7,
}

/// Number of tunables.
pub const COUNT: usize = 8;

/// A user-settable number with its accepted range.
#[derive(Debug)]
pub struct Tunable {
    /// Which one.
    pub id: Id,
    /// Name of the module parameter and of the sysfs attribute.
    pub name: &'static CStr,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
    /// Value before any parameter or write.
    pub default: u64,
}

/// Every tunable, indexed by [`Id`].
pub const ALL: [Tunable; COUNT] = [
    Tunable {
        id: Id::Run,
        name: c"run",
        min: 0,
        max: 2,
        default: 1,
    },
    // At most one hour: a longer pause is a mistake, not a setting.
    Tunable {
        id: Id::SleepMillisecs,
        name: c"sleep_millisecs",
        min: 0,
        max: 3_600_000,
        default: 100,
    },
    // 0 = no periodic line; at most one day.
    Tunable {
        id: Id::StatsIntervalSecs,
        name: c"stats_interval_secs",
        min: 0,
        max: 86_400,
        default: 60,
    },
    // A round must make progress; a million pages (4 GiB) per round is far beyond useful.
    // The rungs' CPU shares normally bind before the default does.
    Tunable {
        id: Id::PagesToScan,
        name: c"pages_to_scan",
        min: 1,
        max: 1_000_000,
        default: 20_000,
    },
    Tunable {
        id: Id::UseZeroPages,
        name: c"use_zero_pages",
        min: 0,
        max: 1,
        default: 1,
    },
    // KSM's bounds: a merged page shared by at least two; a rmap walk over at most a
    // million items is already far too long.
    Tunable {
        id: Id::MaxPageSharing,
        name: c"max_page_sharing",
        min: 2,
        max: 1_000_000,
        default: 256,
    },
    // UKSM's ranges and defaults.
    Tunable {
        id: Id::AbundantThreshold,
        name: c"abundant_threshold",
        min: 0,
        max: 99,
        default: 10,
    },
    Tunable {
        id: Id::ThrashThreshold,
        name: c"thrash_threshold",
        min: 0,
        max: 99,
        default: 50,
    },
];

impl Id {
    /// The definition of this tunable.
    pub fn tunable(self) -> &'static Tunable {
        &TABLE[self as usize]
    }
}

static TABLE: [Tunable; COUNT] = ALL;

/// Longest input looked at; longer input is refused without being parsed.
pub const MAX_INPUT: usize = 32;

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but an optional newline.
    Empty,
    /// More than [`MAX_INPUT`] bytes.
    TooLong,
    /// A byte that is not a decimal digit (signs and spaces included).
    NotANumber,
    /// A number outside the tunable's range (or beyond 64 bits).
    OutOfRange {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty input"),
            ParseError::TooLong => write!(f, "input longer than {MAX_INPUT} bytes"),
            ParseError::NotANumber => f.write_str("not a plain decimal number"),
            ParseError::OutOfRange { min, max } => write!(f, "not in {min}..={max}"),
        }
    }
}

impl Tunable {
    /// Parses `input` as a new value of this tunable.
    pub fn parse(&self, input: &[u8]) -> Result<u64, ParseError> {
        parse_decimal(input, self.min, self.max)
    }

    /// Whether `name` (as C passes it, without a trailing NUL) names this tunable.
    pub fn is_named(&self, name: &[u8]) -> bool {
        self.name.to_bytes() == name
    }
}

/// Parses `input` as a plain decimal number in `min..=max` (one optional trailing newline).
pub fn parse_decimal(input: &[u8], min: u64, max: u64) -> Result<u64, ParseError> {
    if input.len() > MAX_INPUT {
        return Err(ParseError::TooLong);
    }
    let digits = input.strip_suffix(b"\n").unwrap_or(input);
    if digits.is_empty() {
        return Err(ParseError::Empty);
    }
    let out_of_range = ParseError::OutOfRange { min, max };
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(ParseError::NotANumber);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(out_of_range)?;
    }
    if value < min || value > max {
        return Err(out_of_range);
    }
    Ok(value)
}

/// The tunable called `name`, if any.
pub fn find(name: &[u8]) -> Option<&'static Tunable> {
    TABLE.iter().find(|t| t.is_named(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_numbers_in_range() {
        assert_eq!(Id::SleepMillisecs.tunable().parse(b"0"), Ok(0));
        assert_eq!(Id::SleepMillisecs.tunable().parse(b"20\n"), Ok(20));
        assert_eq!(
            Id::SleepMillisecs.tunable().parse(b"3600000"),
            Ok(3_600_000)
        );
        assert_eq!(Id::Run.tunable().parse(b"1\n"), Ok(1));
        assert_eq!(Id::Run.tunable().parse(b"0001"), Ok(1));
    }

    #[test]
    fn refuses_out_of_range() {
        let e = ParseError::OutOfRange { min: 0, max: 2 };
        assert_eq!(Id::Run.tunable().parse(b"3"), Err(e));
        assert_eq!(Id::Run.tunable().parse(b"18446744073709551615"), Err(e));
        assert_eq!(Id::Run.tunable().parse(b"18446744073709551616"), Err(e));
        assert_eq!(
            Id::Run.tunable().parse(b"99999999999999999999999999999"),
            Err(e)
        );
        assert_eq!(
            Id::SleepMillisecs.tunable().parse(b"3600001"),
            Err(ParseError::OutOfRange {
                min: 0,
                max: 3_600_000
            })
        );
    }

    #[test]
    fn refuses_non_numbers() {
        for bad in [
            &b"-1"[..],
            b"+1",
            b" 1",
            b"1 ",
            b"1\n\n",
            b"0x10",
            b"abc",
            b"1.5",
            b"\n1",
            b"1\0",
        ] {
            assert_eq!(
                Id::Run.tunable().parse(bad),
                Err(ParseError::NotANumber),
                "{:?}",
                bad
            );
        }
    }

    #[test]
    fn refuses_empty_and_overlong() {
        assert_eq!(Id::Run.tunable().parse(b""), Err(ParseError::Empty));
        assert_eq!(Id::Run.tunable().parse(b"\n"), Err(ParseError::Empty));
        assert_eq!(
            Id::Run.tunable().parse(&[b'0'; MAX_INPUT + 1]),
            Err(ParseError::TooLong)
        );
        assert_eq!(Id::Run.tunable().parse(&[b'0'; MAX_INPUT]), Ok(0));
    }

    #[test]
    fn defaults_are_valid_and_names_unique() {
        for (i, t) in ALL.iter().enumerate() {
            assert_eq!(t.id as usize, i);
            assert!(t.min <= t.default && t.default <= t.max, "{:?}", t.name);
            assert_eq!(find(t.name.to_bytes()).map(|f| f.id), Some(t.id));
        }
        assert!(find(b"no_such_tunable").is_none());
        assert!(find(b"ru").is_none());
    }

    #[test]
    fn messages_name_the_range() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            ParseError::OutOfRange { min: 0, max: 1 }.to_string(),
            "not in 0..=1"
        );
    }
}
