//! The reference rollup's apps and their compact call ABI.
//!
//! Calldata is 19 bytes: a method selector, two more selectors (what a forwarder asks its
//! target to do, and what that target, if a forwarder too, asks its own) and one 128-bit
//! argument. Return and revert data are one 128-bit word. Both
//! fit in 32 bytes, so the entry's `calldata_hash` and `return_hash` fields carry the data
//! itself, zero-padded on the left ([`CallData::digest`], [`word_digest`]): injective, and
//! free for the STF circuit, which has no Keccak. EVM-ABI data (L1, EVM rollups) uses
//! keccak-256 in those fields; a keccak output equal to a padded compact datum would need a
//! preimage of a value with 13 leading zero bytes.

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use lockstep_circuits::{entry::Address, Fr};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Largest value a call or transaction may carry (2^96 − 1 wei, about 7.9 · 10^10 ETH), so that
/// sums of values stay far inside the ±2^127 range of an ETH delta.
pub const MAX_VALUE: u128 = (1 << 96) - 1;

/// Revert data of an app that always reverts.
pub const REVERT_ALWAYS: u128 = 0xdead;
/// Revert data of a failed value transfer (caller balance too low).
pub const REVERT_INSUFFICIENT_BALANCE: u128 = 0xba1;
/// Revert data of a method the target does not have.
pub const REVERT_UNKNOWN_METHOD: u128 = 0x5e1;
/// Revert data of a swap whose output is below the caller's minimum (or zero).
pub const REVERT_SLIPPAGE: u128 = 0x511;

/// Methods of the reference apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Method {
    /// Send value only; the target has no code, or ignores it.
    Transfer = 0,
    /// Counter: add one to slot 0, return the new value.
    Increment = 1,
    /// Forwarder: call the configured target with `(inner, next, 0, arg)` and the value received,
    /// store what it returns in slot 0 (on failure count it in slot 1 and return 0).
    Forward = 2,
    /// Forwarder: like [`Self::Forward`], then revert with the returned value as revert data.
    ForwardThenRevert = 3,
    /// AMM: swap the value received for tokens; `arg` is the minimum output.
    Swap = 4,
    /// Any app: always revert.
    Fail = 5,
}

impl TryFrom<u8> for Method {
    type Error = Error;

    fn try_from(value: u8) -> Result<Self> {
        Ok(match value {
            0 => Self::Transfer,
            1 => Self::Increment,
            2 => Self::Forward,
            3 => Self::ForwardThenRevert,
            4 => Self::Swap,
            5 => Self::Fail,
            _ => {
                return Err(Error::OutOfRange {
                    what: "method selector",
                    value: value.to_string(),
                    expected: "0 to 5",
                })
            }
        })
    }
}

/// Calldata of a reference-app call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallData {
    /// The method called.
    pub method: Method,
    /// For forwarders: the method they call on their target.
    pub inner: Method,
    /// For forwarders whose target is a forwarder: the method that one calls.
    pub next: Method,
    /// The argument.
    #[serde(with = "u128_text")]
    pub arg: u128,
}

impl CallData {
    /// Encoded length in bytes.
    pub const LEN: usize = 19;

    /// A call of `method` with no inner method and argument 0.
    pub const fn new(method: Method) -> Self {
        Self {
            method,
            inner: Method::Transfer,
            next: Method::Transfer,
            arg: 0,
        }
    }

    /// A forwarder call: the forwarder calls its target with `inner` (and `next`).
    pub const fn forward(inner: Method, next: Method, arg: u128) -> Self {
        Self {
            method: Method::Forward,
            inner,
            next,
            arg,
        }
    }

    /// What a forwarder receiving this calldata sends its target.
    pub const fn forwarded(&self) -> Self {
        Self {
            method: self.inner,
            inner: self.next,
            next: Method::Transfer,
            arg: self.arg,
        }
    }

    /// A plain value transfer.
    pub const fn transfer() -> Self {
        Self::new(Method::Transfer)
    }

    /// `method · inner · next · arg`, 19 bytes big-endian.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.method as u8;
        out[1] = self.inner as u8;
        out[2] = self.next as u8;
        out[3..].copy_from_slice(&self.arg.to_be_bytes());
        out
    }

    /// Decodes 19 bytes.
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Result<Self> {
        Ok(Self {
            method: Method::try_from(bytes[0])?,
            inner: Method::try_from(bytes[1])?,
            next: Method::try_from(bytes[2])?,
            arg: u128::from_be_bytes(bytes[3..].try_into().expect("16 bytes")),
        })
    }

    /// The calldata as the entry's 32-byte calldata field (zero-padded on the left).
    pub fn digest(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[32 - Self::LEN..].copy_from_slice(&self.to_bytes());
        out
    }
}

/// A 128-bit return or revert word as the entry's 32-byte return field.
pub fn word_digest(word: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[16..].copy_from_slice(&word.to_be_bytes());
    out
}

/// A value as the entry's 32-byte value field.
pub fn value_bytes(value: u128) -> [u8; 32] {
    word_digest(value)
}

/// An app installed at an address. Its code leaf holds [`AppKind::to_field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppKind {
    /// `increment() -> new value`; slot 0 holds the count.
    Counter,
    /// Calls `target` on rollup `rollup` (possibly its own) and stores the result.
    Forwarder {
        /// Rollup of the target.
        rollup: u32,
        /// The target app.
        target: Address,
    },
    /// Constant-product market between ETH (slot 0) and a token (slot 1); token balances
    /// at slot `2^160 + holder`.
    Amm,
    /// Reverts whatever it is asked.
    Reverter,
}

impl AppKind {
    /// Code of a counter (a code leaf's low byte; the STF circuit uses the same constants).
    pub const COUNTER_CODE: u64 = 1;
    /// Code of a forwarder.
    pub const FORWARDER_CODE: u64 = 2;
    /// Code of an AMM.
    pub const AMM_CODE: u64 = 3;
    /// Code of a reverter.
    pub const REVERTER_CODE: u64 = 4;

    /// `kind + rollup · 2^8 + target · 2^40` (rollup and target only for forwarders).
    pub fn to_field(&self) -> Fr {
        match self {
            Self::Counter => Fr::from(Self::COUNTER_CODE),
            Self::Forwarder { rollup, target } => {
                Fr::from(Self::FORWARDER_CODE)
                    + Fr::from(u64::from(*rollup)) * Fr::from(1 << 8)
                    + crate::state::address_to_field(target) * Fr::from(1 << 40)
            }
            Self::Amm => Fr::from(Self::AMM_CODE),
            Self::Reverter => Fr::from(Self::REVERTER_CODE),
        }
    }

    /// The inverse of [`Self::to_field`]; `None` for an empty code leaf or a value no app has.
    pub fn from_field(value: &Fr) -> Option<Self> {
        let bytes = value.to_bytes();
        let code = u64::from(bytes[0]);
        let empty_above = |from: usize| bytes[from..].iter().all(|&b| b == 0);
        match code {
            Self::COUNTER_CODE if empty_above(1) => Some(Self::Counter),
            Self::AMM_CODE if empty_above(1) => Some(Self::Amm),
            Self::REVERTER_CODE if empty_above(1) => Some(Self::Reverter),
            Self::FORWARDER_CODE if bytes[25..].iter().all(|&b| b == 0) => {
                let rollup = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes"));
                let mut target = [0u8; 20];
                for (i, b) in bytes[5..25].iter().enumerate() {
                    target[19 - i] = *b;
                }
                Some(Self::Forwarder {
                    rollup,
                    target: Address(target),
                })
            }
            _ => None,
        }
    }
}

/// The AMM storage slot of `holder`'s token balance: `2^160 + holder`.
pub fn token_slot(holder: &Address) -> Fr {
    Fr::from_u128(1 << 80).square() + crate::state::address_to_field(holder)
}

/// `floor(reserve_out · amount_in / (reserve_in + amount_in))`: the constant-product output.
pub fn swap_output(reserve_in: u128, reserve_out: u128, amount_in: u128) -> u128 {
    use ruint::aliases::U256;
    let numerator = U256::from(reserve_out) * U256::from(amount_in);
    let denominator = U256::from(reserve_in) + U256::from(amount_in);
    if denominator.is_zero() {
        return 0;
    }
    (numerator / denominator).to::<u128>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_kinds_round_trip_through_their_code_leaf() {
        for kind in [
            AppKind::Counter,
            AppKind::Amm,
            AppKind::Reverter,
            AppKind::Forwarder {
                rollup: u32::MAX,
                target: Address([0xfe; 20]),
            },
        ] {
            assert_eq!(AppKind::from_field(&kind.to_field()), Some(kind));
        }
        assert_eq!(AppKind::from_field(&Fr::zero()), None);
        assert_eq!(AppKind::from_field(&Fr::from(9)), None);
    }

    #[test]
    fn calldata_round_trips_and_rejects_unknown_selectors() {
        let data = CallData::forward(Method::Forward, Method::Swap, 77);
        assert_eq!(CallData::from_bytes(&data.to_bytes()).unwrap(), data);
        assert_eq!(
            data.forwarded().forwarded(),
            CallData {
                method: Method::Swap,
                inner: Method::Transfer,
                next: Method::Transfer,
                arg: 77
            }
        );
        for i in 0..3 {
            let mut bad = data.to_bytes();
            bad[i] = 6;
            assert!(CallData::from_bytes(&bad).is_err());
        }
    }

    #[test]
    fn swap_output_is_constant_product_rounded_down() {
        // x·y = 1000·1000; adding 1000 in leaves 500 out.
        assert_eq!(swap_output(1000, 1000, 1000), 500);
        assert_eq!(swap_output(1000, 1000, 1), 0);
        // No overflow at the extremes: about v − v²/x out.
        let out = swap_output(u128::MAX, u128::MAX, MAX_VALUE);
        assert!(out < MAX_VALUE && out > MAX_VALUE - (1 << 65), "{out}");
        assert_eq!(swap_output(0, 0, 0), 0);
    }
}

/// Serde of a `u128` as a decimal string in JSON and TOML (JSON numbers above 2^53 lose
/// precision in many clients, and `serde_json::Value` cannot hold them above 2^64). Reading
/// also takes a plain number.
pub mod u128_text {
    use serde::{de, Deserializer, Serializer};

    /// Writes the value as a decimal string (human-readable formats) or as a `u128`.
    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(value)
        } else {
            serializer.serialize_u128(*value)
        }
    }

    /// Reads a decimal string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = u128;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unsigned integer below 2^128, as a number or a decimal string")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u128, E> {
                Ok(u128::from(v))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<u128, E> {
                Ok(v)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<u128, E> {
                v.parse()
                    .map_err(|e| E::custom(format!("{v:?} is not a decimal u128: {e}")))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(Visitor)
        } else {
            deserializer.deserialize_u128(Visitor)
        }
    }
}
