//! Where a merged folio's node sits in the module's stable tree.
//!
//! Keys order nodes by the hashes of their content (partial, then whole), then by merge
//! domain (crate::domain: a page is merged only into a node of its own domain), then by
//! the order of creation (nodes may share both hashes: look-alike contents, and one content split
//! over several nodes by `max_page_sharing`). A look-up by partial hash alone costs nothing
//! for the many pages no merged content shares it with; the whole-content hash then sorts
//! the look-alike contents (pages of a few bytes and zeros share a partial hash by the
//! thousand) so that only nodes whose whole content hashes alike are compared byte for byte.

/// A node's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeKey {
    /// Partial hash of the content.
    pub partial: u32,
    /// Hash of the whole content.
    pub full: u32,
    /// Merge domain of the pages merged into the node.
    pub domain: u64,
    /// Order of creation.
    pub seq: u64,
}

impl NodeKey {
    /// The greatest key.
    pub const LAST: NodeKey = NodeKey {
        partial: u32::MAX,
        full: u32::MAX,
        domain: u64::MAX,
        seq: u64::MAX,
    };

    /// The least key after `self`.
    pub fn next(self) -> Self {
        NodeKey {
            seq: self.seq + 1,
            ..self
        }
    }

    /// The range of keys with partial hash `partial`.
    pub fn partial_range(partial: u32) -> (NodeKey, NodeKey) {
        (
            NodeKey {
                partial,
                full: 0,
                domain: 0,
                seq: 0,
            },
            NodeKey {
                partial,
                full: u32::MAX,
                domain: u64::MAX,
                seq: u64::MAX,
            },
        )
    }

    /// The range of keys with both hashes, in `domain`.
    pub fn content_range(partial: u32, full: u32, domain: u64) -> (NodeKey, NodeKey) {
        (
            NodeKey {
                partial,
                full,
                domain,
                seq: 0,
            },
            NodeKey {
                partial,
                full,
                domain,
                seq: u64::MAX,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_exactly_their_keys() {
        let k = NodeKey {
            partial: 5,
            full: 9,
            domain: 1000,
            seq: 3,
        };
        let (lo, hi) = NodeKey::partial_range(5);
        assert!(lo <= k && k <= hi);
        let (lo, hi) = NodeKey::content_range(5, 9, 1000);
        assert!(lo <= k && k <= hi);
        let other = NodeKey { full: 10, ..k };
        assert!(!(lo <= other && other <= hi));
        // The same content in another domain is outside the range.
        let other = NodeKey { domain: 1001, ..k };
        assert!(!(lo <= other && other <= hi));
        let other = NodeKey { domain: 0, ..k };
        assert!(!(lo <= other && other <= hi));
        let (lo, hi) = NodeKey::partial_range(5);
        assert!(lo <= other && other <= hi);
        let (lo, hi) = NodeKey::partial_range(6);
        assert!(!(lo <= k && k <= hi));
    }

    #[test]
    fn next_is_the_least_greater_key() {
        let k = NodeKey {
            partial: 1,
            full: 2,
            domain: 0,
            seq: 3,
        };
        assert!(k.next() > k);
        assert_eq!(k.next().seq, 4);
        assert!(NodeKey::LAST >= k.next());
    }
}
