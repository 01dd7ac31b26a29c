//! Checksums and the checksum chain, computed once at compile time so the
//! runtime only compares strings.

use sha2::{Digest, Sha256};

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Hex SHA-256 of a migration's normalized text.
///
/// ```
/// use durable_schema_compiler::{checksum, normalize_text};
/// assert_eq!(checksum(&normalize_text("a;\r\n")), checksum("a;\n"));
/// ```
pub fn checksum(normalized_text: &str) -> String {
    hex(&Sha256::digest(normalized_text.as_bytes()))
}

/// The chain value of migration `version`: a hash of the previous chain value
/// (empty for version 1), the version and its checksum. The last tracking row
/// thereby vouches for the whole history in a single comparison.
///
/// ```
/// use durable_schema_compiler::chain;
/// let c1 = chain("", 1, "aa");
/// let c2 = chain(&c1, 2, "bb");
/// assert_ne!(c2, chain(&chain("", 1, "ab"), 2, "bb"));
/// ```
pub fn chain(previous: &str, version: u32, checksum: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"durable-schema/chain/v1\n");
    h.update(previous.as_bytes());
    h.update(b"\n");
    h.update(version.to_string().as_bytes());
    h.update(b"\n");
    h.update(checksum.as_bytes());
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn chain_depends_on_every_input() {
        let base = chain("p", 2, "c");
        assert_ne!(base, chain("q", 2, "c"));
        assert_ne!(base, chain("p", 3, "c"));
        assert_ne!(base, chain("p", 2, "d"));
        assert_eq!(base.len(), 64);
    }
}
