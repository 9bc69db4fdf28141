//! Field elements as the protocol writes them in bytes and text: 32 big-endian bytes, and `0x`
//! with 64 hex digits (the API, key files, block headers).

use crate::Fr;

/// A field element, big-endian.
pub fn fr_to_be(value: &Fr) -> [u8; 32] {
    let mut bytes = value.to_bytes();
    bytes.reverse();
    bytes
}

/// A field element from 32 big-endian bytes; `None` unless canonical (below the modulus).
pub fn fr_from_be(bytes: &[u8; 32]) -> Option<Fr> {
    let mut le = *bytes;
    le.reverse();
    Option::from(Fr::from_bytes(&le))
}

/// A field element as `0x` + 64 hex digits, big-endian.
pub fn fr_hex(value: &Fr) -> String {
    format!("0x{}", hex::encode(fr_to_be(value)))
}

/// Parses a hex field element (big-endian, `0x` optional, at most 64 digits, canonical).
pub fn parse_fr_hex(text: &str) -> Option<Fr> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    let bytes: [u8; 32] = hex::decode(format!("{digits:0>64}"))
        .ok()?
        .try_into()
        .ok()?;
    fr_from_be(&bytes)
}
