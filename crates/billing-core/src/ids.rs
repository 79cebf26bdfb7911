//! Random identifiers and the hashes we keep of secret ones.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result, Upstream};

/// N random bytes from the OS, hex.
pub(crate) fn random_hex<const N: usize>() -> std::result::Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Hex SHA-256 of a one-time key: only the hash is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// 32 random bytes, hex.
pub fn new_one_time_key() -> Result<String> {
    random_hex::<32>().map_err(|e| Error::InvalidData {
        service: Upstream::Stripe,
        detail: format!("no randomness: {e}"),
    })
}

/// Whether `key` hashes to `stored_hash`, compared in constant time.
pub fn key_matches(key: &str, stored_hash: &str) -> bool {
    hash_key(key)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_keys_should_be_random_and_only_match_their_hash() {
        let a = new_one_time_key().unwrap();
        let b = new_one_time_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(key_matches(&a, &hash_key(&a)));
        assert!(!key_matches(&b, &hash_key(&a)));
    }
}
