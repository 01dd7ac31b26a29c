//! Chain values of histories through deliberately replaced migrations.
//!
//! When the history lock says that migration v's text replaces released
//! texts (their checksums), objects that applied an old text carry chain
//! values the code's own history never produces: at v, hash(prev, v, old
//! checksum), and at every later version the chain built on top of that.
//! The runtime cannot hash, so every such value is computed here: for each
//! migration, the links `(prev, checksum, chain)` of all accepted histories
//! other than the code's own.

use crate::hash::chain;

/// One accepted step of a history through a replaced text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedLink {
    /// The chain value of the row before.
    pub prev: String,
    /// The checksum recorded at this version (the code's, or a replaced one).
    pub checksum: String,
    /// The chain value this row carries.
    pub chain: String,
}

/// Most alternative histories accepted at one version; beyond this the lock
/// replaces so much that the build refuses it rather than embed the
/// combinations.
pub const MAX_LINKS: usize = 64;

/// The links of every migration: `checksums[i]` is migration i+1's checksum,
/// `replaces[i]` the old checksums its lock entry lists. Returns `None` when
/// a version would accept more than [`MAX_LINKS`] histories.
pub(crate) fn replaced_links(
    checksums: &[String],
    replaces: &[Vec<String>],
) -> Option<Vec<Vec<ReplacedLink>>> {
    // The chain values at the previous version: the code's own first, then
    // every alternative.
    let mut previous: Vec<String> = vec![String::new()];
    let mut out = Vec::with_capacity(checksums.len());
    for (i, checksum) in checksums.iter().enumerate() {
        let version = u32::try_from(i + 1).ok()?;
        let own_prev = previous.first().cloned().unwrap_or_default();
        let own = chain(&own_prev, version, checksum);
        let mut links = Vec::new();
        let mut current = vec![own.clone()];
        let olds = replaces.get(i).map(Vec::as_slice).unwrap_or_default();
        for prev in &previous {
            for sum in std::iter::once(checksum).chain(olds) {
                if prev == &own_prev && sum == checksum {
                    continue; // the code's own history
                }
                let value = chain(prev, version, sum);
                current.push(value.clone());
                links.push(ReplacedLink {
                    prev: prev.clone(),
                    checksum: sum.clone(),
                    chain: value,
                });
            }
        }
        if links.len() > MAX_LINKS {
            return None;
        }
        out.push(links);
        previous = current;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn no_replacement_no_links() {
        let links = replaced_links(&sums(3), &[]).unwrap();
        assert!(links.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_replaced_version_and_everything_after_it_get_links() {
        let sums = sums(4);
        let replaces = vec![vec![], vec!["old2".to_owned()], vec![], vec![]];
        let links = replaced_links(&sums, &replaces).unwrap();
        let c1 = chain("", 1, "c1");
        let old2 = chain(&c1, 2, "old2");
        assert!(links[0].is_empty());
        assert_eq!(
            links[1],
            [ReplacedLink {
                prev: c1.clone(),
                checksum: "old2".into(),
                chain: old2.clone()
            }]
        );
        // Version 3 on top of the old text: one link, chained onto old2.
        let old3 = chain(&old2, 3, "c3");
        assert_eq!(
            links[2],
            [ReplacedLink {
                prev: old2,
                checksum: "c3".into(),
                chain: old3.clone()
            }]
        );
        assert_eq!(links[3][0].prev, old3);
    }

    #[test]
    fn combinations_multiply_and_are_bounded() {
        let n = 8;
        let replaces: Vec<Vec<String>> = (0..n).map(|i| vec![format!("old{i}")]).collect();
        // Every version replaced: 2^v histories at version v, all but the
        // code's own are links (2^6 - 1 = 63 fit, 2^7 - 1 = 127 do not).
        assert!(replaced_links(&sums(6), &replaces[..6]).is_some());
        assert!(replaced_links(&sums(n), &replaces).is_none());
    }
}
