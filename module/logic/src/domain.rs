//! Merge domains: which pages may be merged with each other.
//!
//! Merging is a side channel: a process that writes a page and times the copy-on-write
//! fault learns whether another process holds the same contents. A domain policy confines
//! merging to pages whose owners are alike:
//!
//! - `global`: any page with any page (UKSM's behaviour);
//! - `uid`: pages of processes with the same effective user ID (the default);
//! - `cgroup`: pages of processes in the same memory cgroup.
//!
//! Zero pages are merged into the zero page under every policy: what such a merge reveals
//! is only whether the writer's own page was zero. The kernel side turns a process into
//! its domain ([`Domain`] values are opaque numbers; [`NONE`] means "unknown, merge
//! nothing") and keeps pages of different domains apart in both of its indexes.

use core::fmt;

/// A domain policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Any page with any page.
    Global = 0,
    /// Pages of processes with the same effective user ID.
    Uid = 1,
    /// Pages of processes in the same memory cgroup.
    Cgroup = 2,
}

/// Every policy, in the order reads list them.
pub const POLICIES: [Policy; 3] = [Policy::Global, Policy::Uid, Policy::Cgroup];

/// The policy before any parameter or write.
pub const DEFAULT: Policy = Policy::Uid;

/// The domain of a process whose owner cannot be told (an mm whose owner is exiting):
/// nothing of it is merged.
pub const NONE: u64 = u64::MAX;

impl Policy {
    /// Its name, as written and read.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Global => "global",
            Policy::Uid => "uid",
            Policy::Cgroup => "cgroup",
        }
    }

    /// The policy named by `input` (one optional trailing newline); nothing else.
    pub fn parse(input: &[u8]) -> Result<Policy, PolicyError> {
        let name = input.strip_suffix(b"\n").unwrap_or(input);
        POLICIES
            .into_iter()
            .find(|p| p.name().as_bytes() == name)
            .ok_or(PolicyError)
    }

    /// The policy stored as `v` (see [`Policy::as_u32`]).
    pub fn from_u32(v: u32) -> Policy {
        match v {
            0 => Policy::Global,
            2 => Policy::Cgroup,
            _ => Policy::Uid,
        }
    }

    /// The policy as stored.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Every policy, the chosen one in brackets (as `merge_domain` reads).
pub struct Policies(pub Policy);

impl fmt::Display for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in POLICIES.into_iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if p == self.0 {
                write!(f, "[{}]", p.name())?;
            } else {
                f.write_str(p.name())?;
            }
        }
        Ok(())
    }
}

/// A write to `merge_domain` that names no policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyError;

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of global uid cgroup")
    }
}

/// Whether pages of domains `a` and `b` may be merged with each other.
pub fn may_merge(a: u64, b: u64) -> bool {
    a == b && a != NONE
}

/// What a page's hash is filed under in the unstable table: pages of different domains
/// land apart (so one domain's pages do not crowd out another's candidates), and the
/// global domain (0) keeps the hash unchanged. Only a hint: pairing checks [`may_merge`].
pub fn mix(hash: u32, domain: u64) -> u32 {
    if domain == 0 {
        return hash;
    }
    let m = domain.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    hash ^ (m >> 32) as u32 ^ m as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn parses_exact_names_only() {
        assert_eq!(Policy::parse(b"global"), Ok(Policy::Global));
        assert_eq!(Policy::parse(b"uid\n"), Ok(Policy::Uid));
        assert_eq!(Policy::parse(b"cgroup"), Ok(Policy::Cgroup));
        for bad in [
            &b""[..],
            b"\n",
            b"uid\n\n",
            b" uid",
            b"UID",
            b"uid ",
            b"u",
            b"global\0",
            b"1",
            b"[uid]",
            b"\xff\xfe",
        ] {
            assert_eq!(Policy::parse(bad), Err(PolicyError), "{bad:?}");
        }
        assert_eq!(PolicyError.to_string(), "not one of global uid cgroup");
    }

    #[test]
    fn reads_list_all_with_the_chosen_one_in_brackets() {
        assert_eq!(Policies(Policy::Uid).to_string(), "global [uid] cgroup");
        assert_eq!(Policies(Policy::Global).to_string(), "[global] uid cgroup");
        for p in POLICIES {
            assert_eq!(Policy::from_u32(p.as_u32()), p);
        }
        assert_eq!(DEFAULT, Policy::Uid);
    }

    #[test]
    fn only_equal_known_domains_merge() {
        assert!(may_merge(0, 0));
        assert!(may_merge(1000, 1000));
        assert!(!may_merge(1000, 1001));
        assert!(!may_merge(NONE, NONE));
        assert!(!may_merge(0, NONE));
    }

    #[test]
    fn mixing_keeps_global_and_separates_domains() {
        assert_eq!(mix(0xdead_beef, 0), 0xdead_beef);
        let (a, b) = (mix(0xdead_beef, 1000), mix(0xdead_beef, 1001));
        assert_ne!(a, b);
        assert_ne!(a, 0xdead_beef);
        // Deterministic: the same page of the same domain is found again.
        assert_eq!(a, mix(0xdead_beef, 1000));
    }
}
