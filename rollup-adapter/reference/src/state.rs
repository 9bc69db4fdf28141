//! The reference rollup's state: typed keys over one [`SparseMerkleTree`], with a journal so
//! that a reverting frame can restore its saved root.
//!
//! # Keys and leaves (state version 4)
//! Every piece of state is a (key, value) pair of field elements:
//!
//! | what | key | value |
//! |---|---|---|
//! | account | `compress_tagged(STATE_TAG, 1·2^160 + address, 0)` | `balance + nonce · 2^128` |
//! | app code | `compress_tagged(STATE_TAG, 3·2^160 + address, 0)` | [`crate::abi::AppKind::to_field`] |
//! | app storage | `compress_tagged(STATE_TAG, 2·2^160 + address, slot)` | the stored value |
//!
//! A key is one Poseidon permutation from the capacity element [`STATE_TAG`]
//! ([`lockstep_circuits::poseidon::compress_tagged`]): a domain apart from the tree's nodes and
//! leaves (capacity `2·2^64`) and from every sponge hash (capacity `n·2^64`). The address is 160
//! bits, so `space·2^160 + address` holds both without overlap. Version 3 hashed
//! `(STATE_TAG, space, address, slot)` with the two-permutation sponge: a key cost the STF
//! circuit about 6,300 cells in every row that derives one, now about 2,250.
//!
//! The pair lives at leaf `key mod 2^depth` as `compress(key, value)` (Poseidon's one-permutation
//! two-to-one compression, [`lockstep_circuits::poseidon::compress`], which hashes the inner
//! nodes too; version 2 used the two-permutation sponge), and a key whose value is
//! `0` has an empty leaf ([`lockstep_circuits::merkle::leaf`]): the root depends on the values
//! alone, never on the order of the writes. Every write returns the [`MerkleAccess`] that
//! [`lockstep_circuits::merkle::MerkleChip::access`] proves. Two keys that fall on one leaf are
//! a [`Error::KeyCollision`]: the operation touching the second is refused, never silently
//! merged (with depth 32 and a thousand keys the chance is about 10⁻⁴; raise the depth for
//! larger states).
//!
//! # Tracing
//! [`State::start_trace`] records every read, write and undo as a [`StateAccess`] until
//! [`State::take_trace`]: the trace [`lockstep_circuits::memory`] proves.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use lockstep_circuits::{
    entry::Address,
    memory::{MemoryWitness, StateAccess},
    merkle::{self, MerkleAccess},
    poseidon, Fr,
};

use lockstep_circuits::smt::SparseMerkleTree;

use crate::{Error, Result};

/// Domain tag of state keys, the capacity element their compression starts from
/// (`"lockstep.state.1"` as a 128-bit big-endian integer).
pub const STATE_TAG: u128 = u128::from_be_bytes(*b"lockstep.state.1");

/// The first input of a state key's compression: `space · 2^160 + address`.
pub fn key_space_address(space: u64, address: &Address) -> Fr {
    Fr::from(space) * Fr::from_u128(1 << 80).square() + address_to_field(address)
}

/// An address as a field element (big-endian, 160 bits).
pub fn address_to_field(address: &Address) -> Fr {
    let mut le = [0u8; 32];
    for (i, b) in address.0.iter().rev().enumerate() {
        le[i] = *b;
    }
    Fr::from_bytes(&le).expect("160 bits are canonical")
}

/// A `u128` as a field element.
pub fn u128_to_field(value: u128) -> Fr {
    Fr::from_u128(value)
}

/// A field element as a `u128`, if it is one.
pub fn field_to_u128(value: &Fr) -> Option<u128> {
    let bytes = value.to_bytes();
    if bytes[16..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(u128::from_le_bytes(
        bytes[..16].try_into().expect("16 bytes"),
    ))
}

/// What a key addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKey {
    /// An account's balance and nonce.
    Account(Address),
    /// An app's storage slot.
    Storage(Address, Fr),
    /// The app installed at an address.
    Code(Address),
}

impl StateKey {
    /// Key space of accounts (hashed into the key; the STF circuit uses the same constants).
    pub const ACCOUNT_SPACE: u64 = 1;
    /// Key space of app storage.
    pub const STORAGE_SPACE: u64 = 2;
    /// Key space of app code.
    pub const CODE_SPACE: u64 = 3;

    /// The key as a field element (see the module docs).
    pub fn to_field(&self) -> Fr {
        let (space, address, slot) = match self {
            Self::Account(a) => (Self::ACCOUNT_SPACE, a, Fr::zero()),
            Self::Storage(a, slot) => (Self::STORAGE_SPACE, a, *slot),
            Self::Code(a) => (Self::CODE_SPACE, a, Fr::zero()),
        };
        poseidon::compress_tagged(STATE_TAG, key_space_address(space, address), slot)
    }
}

/// An account's balance and nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    /// Balance in wei.
    pub balance: u128,
    /// Transactions sent.
    pub nonce: u64,
}

impl Account {
    /// `balance + nonce · 2^128`.
    pub fn to_field(&self) -> Fr {
        Fr::from_u128(self.balance) + Fr::from(self.nonce) * Fr::from_u128(1u128 << 127).double()
    }

    /// The account with `value` more wei; fails if the balance would pass `2^128 − 1`.
    pub fn credited(self, value: u128) -> Result<Self> {
        let balance = self
            .balance
            .checked_add(value)
            .ok_or_else(|| Error::OutOfRange {
                what: "balance",
                value: format!("{} + {value}", self.balance),
                expected: "at most 2^128 − 1",
            })?;
        Ok(Self { balance, ..self })
    }

    /// The inverse of [`Self::to_field`].
    pub fn from_field(value: &Fr) -> Option<Self> {
        let bytes = value.to_bytes();
        if bytes[24..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(Self {
            balance: u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")),
            nonce: u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
        })
    }
}

/// A position in the journal to revert to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint(usize);

/// The state of one reference rollup.
#[derive(Debug)]
pub struct State {
    tree: SparseMerkleTree,
    /// Keys with a non-zero value, by leaf index: (key, value).
    leaves: HashMap<u64, (Fr, Fr)>,
    /// Undo log: a key and the value it held before.
    journal: Vec<(Fr, Fr)>,
    /// The accesses since [`Self::start_trace`], if tracing. Reads record through `&self`; a
    /// mutex (never contended: a state has one user at a time) keeps the state `Sync`, so an
    /// adapter can hold it across threads.
    trace: Mutex<Option<Vec<StateAccess>>>,
}

impl Clone for State {
    fn clone(&self) -> Self {
        Self {
            tree: self.tree.clone(),
            leaves: self.leaves.clone(),
            journal: self.journal.clone(),
            trace: Mutex::new(
                self.trace
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
        }
    }
}

impl State {
    /// An empty state with a tree of `depth` levels.
    pub fn new(depth: usize) -> Result<Self> {
        Ok(Self {
            tree: SparseMerkleTree::new(depth)?,
            leaves: HashMap::new(),
            journal: Vec::new(),
            trace: Mutex::new(None),
        })
    }

    /// Starts recording every access (dropping any trace not taken).
    pub fn start_trace(&mut self) {
        *self.trace.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
    }

    /// Stops recording and returns the accesses since [`Self::start_trace`] (empty if it was
    /// not called).
    pub fn take_trace(&mut self) -> Vec<StateAccess> {
        self.trace
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }

    fn traced(&self, key: Fr, before: Fr, after: Fr) {
        if let Some(trace) = self
            .trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            trace.push(StateAccess { key, before, after });
        }
    }

    /// The state root.
    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// The tree depth.
    pub fn depth(&self) -> usize {
        self.tree.depth()
    }

    /// The tree, for inclusion paths.
    pub fn tree(&self) -> &SparseMerkleTree {
        &self.tree
    }

    /// Reads a key (`0` if never written).
    pub fn read(&self, key: StateKey) -> Result<Fr> {
        let key = key.to_field();
        let value = self.value_of(key)?;
        self.traced(key, value, value);
        Ok(value)
    }

    /// The value under a raw key (`0` if never written), without tracing it.
    pub fn value(&self, key: &Fr) -> Result<Fr> {
        self.value_of(*key)
    }

    fn value_of(&self, key: Fr) -> Result<Fr> {
        let index = self.tree.index_of(&key);
        match self.leaves.get(&index) {
            None => Ok(Fr::zero()),
            Some((k, v)) if *k == key => Ok(*v),
            Some((k, _)) => Err(self.collision(key, *k, index)),
        }
    }

    /// Sets a key's leaf with no journal entry and no trace.
    fn put(&mut self, key: Fr, value: Fr) {
        let index = self.tree.index_of(&key);
        if value == Fr::zero() {
            self.leaves.remove(&index);
        } else {
            self.leaves.insert(index, (key, value));
        }
        self.tree.set(index, merkle::leaf(key, value));
    }

    /// A read as the circuit proves it: the value and its inclusion (or absence) path.
    pub fn read_access(&self, key: StateKey) -> Result<MerkleAccess> {
        let value = self.read(key)?;
        let key = key.to_field();
        Ok(MerkleAccess {
            key,
            before: value,
            after: value,
            siblings: self.tree.path(self.tree.index_of(&key)),
        })
    }

    /// Writes a key, journaling the old value; returns the access for the circuit witness.
    pub fn write(&mut self, key: StateKey, value: Fr) -> Result<MerkleAccess> {
        let key = key.to_field();
        let before = self.value_of(key)?;
        let access = MerkleAccess {
            key,
            before,
            after: value,
            siblings: self.tree.path(self.tree.index_of(&key)),
        };
        self.traced(key, before, value);
        if before != value {
            self.journal.push((key, before));
            self.put(key, value);
        }
        Ok(access)
    }

    /// Reads an account.
    pub fn account(&self, address: &Address) -> Result<Account> {
        let value = self.read(StateKey::Account(*address))?;
        Account::from_field(&value).ok_or_else(|| Error::OutOfRange {
            what: "account leaf",
            value: format!("{value:?}"),
            expected: "balance + nonce · 2^128 with a 64-bit nonce",
        })
    }

    /// Writes an account.
    pub fn set_account(&mut self, address: &Address, account: Account) -> Result<()> {
        self.write(StateKey::Account(*address), account.to_field())
            .map(drop)
    }

    /// Reads an app storage slot that holds a `u128`.
    pub fn storage_u128(&self, app: &Address, slot: Fr) -> Result<u128> {
        let value = self.read(StateKey::Storage(*app, slot))?;
        field_to_u128(&value).ok_or_else(|| Error::OutOfRange {
            what: "storage value",
            value: format!("{value:?}"),
            expected: "a 128-bit integer",
        })
    }

    /// Writes a `u128` to an app storage slot.
    pub fn set_storage_u128(&mut self, app: &Address, slot: Fr, value: u128) -> Result<()> {
        self.write(StateKey::Storage(*app, slot), u128_to_field(value))
            .map(drop)
    }

    /// The current journal position.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    /// Undoes every write since `checkpoint`.
    pub fn revert_to(&mut self, checkpoint: Checkpoint) {
        while self.journal.len() > checkpoint.0 {
            let (key, previous) = self.journal.pop().expect("journal longer than checkpoint");
            let current = self.value_of(key).expect("a journaled key owns its leaf");
            self.traced(key, current, previous);
            self.put(key, previous);
        }
    }

    /// Forgets the journal (at the end of a block): earlier checkpoints become invalid.
    pub fn commit(&mut self) {
        self.journal.clear();
    }

    /// Moves to the state a block's memory witness ends in: every key of its table takes its
    /// last value. Untraced and unjournaled (the witness was checked against this state when
    /// it was made: [`MemoryWitness::with_scratch`]).
    pub fn apply_memory(&mut self, memory: &MemoryWitness) {
        for key in &memory.keys {
            self.put(key.key, key.last);
        }
        self.journal.clear();
    }

    fn collision(&self, key: Fr, occupant: Fr, index: u64) -> Error {
        Error::KeyCollision {
            key: lockstep_circuits::fr_text::fr_hex(&key),
            occupant: lockstep_circuits::fr_text::fr_hex(&occupant),
            index,
            depth: self.tree.depth(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_packing_round_trips() {
        let a = Account {
            balance: u128::MAX,
            nonce: u64::MAX,
        };
        assert_eq!(Account::from_field(&a.to_field()), Some(a));
        assert_eq!(Account::from_field(&(a.to_field() + Fr::one())), None);
        assert_eq!(field_to_u128(&Fr::from_u128(7)), Some(7));
        assert_eq!(field_to_u128(&-Fr::one()), None);
    }

    #[test]
    fn revert_restores_root_and_values() {
        let mut state = State::new(20).unwrap();
        let a = Address([1; 20]);
        state
            .set_account(
                &a,
                Account {
                    balance: 5,
                    nonce: 0,
                },
            )
            .unwrap();
        let root = state.root();
        let cp = state.checkpoint();
        state
            .set_account(
                &a,
                Account {
                    balance: 9,
                    nonce: 1,
                },
            )
            .unwrap();
        state.set_storage_u128(&a, Fr::from(3), 42).unwrap();
        assert_ne!(state.root(), root);
        state.revert_to(cp);
        assert_eq!(state.root(), root);
        assert_eq!(state.account(&a).unwrap().balance, 5);
        assert_eq!(state.storage_u128(&a, Fr::from(3)).unwrap(), 0);
    }

    #[test]
    fn every_access_carries_the_roots_the_circuit_will_check() {
        let mut state = State::new(24).unwrap();
        let keys: Vec<_> = (0u8..6)
            .map(|i| StateKey::Storage(Address([i; 20]), Fr::from(u64::from(i) * 7)))
            .collect();
        // Writes (including 0 to missing and to existing keys) and reads, in a fixed mix.
        for (step, value) in [3u64, 0, 5, 0, 9, 1, 0, 2, 8, 0, 0, 4]
            .into_iter()
            .enumerate()
        {
            let key = keys[(step * 5) % keys.len()];
            let before = state.root();
            let access = if step % 4 == 3 {
                state.read_access(key).unwrap()
            } else {
                state.write(key, Fr::from(value)).unwrap()
            };
            assert_eq!(access.root_before(), before, "step {step}");
            assert_eq!(access.root_after(), state.root(), "step {step}");
        }
        // Writing 0 to a key that never existed leaves the root alone.
        let root = state.root();
        state
            .write(StateKey::Code(Address([0x42; 20])), Fr::zero())
            .unwrap();
        assert_eq!(state.root(), root);
    }

    #[test]
    fn the_root_depends_on_values_not_on_history() {
        let mut state = State::new(20).unwrap();
        let key = StateKey::Storage(Address([7; 20]), Fr::from(1));
        let empty = state.root();
        state.write(key, Fr::from(5)).unwrap();
        state.write(key, Fr::zero()).unwrap();
        assert_eq!(state.root(), empty, "a key back at 0 has an empty leaf");
        assert_eq!(
            state.tree().leaf(state.tree().index_of(&key.to_field())),
            Fr::zero()
        );
    }

    #[test]
    fn the_trace_records_reads_writes_and_undos() {
        let mut state = State::new(20).unwrap();
        let key = StateKey::Code(Address([9; 20]));
        state.write(key, Fr::from(3)).unwrap();
        state.start_trace();
        let cp = state.checkpoint();
        assert_eq!(state.read(key).unwrap(), Fr::from(3));
        state.write(key, Fr::from(4)).unwrap();
        state.revert_to(cp);
        let k = key.to_field();
        let access = |before: u64, after: u64| StateAccess {
            key: k,
            before: Fr::from(before),
            after: Fr::from(after),
        };
        assert_eq!(
            state.take_trace(),
            vec![access(3, 3), access(3, 4), access(4, 3)]
        );
        assert!(state.take_trace().is_empty(), "tracing stopped");
    }

    #[test]
    fn colliding_keys_are_refused() {
        // Depth 1: two leaves, so three keys must collide somewhere.
        let mut state = State::new(1).unwrap();
        let keys: Vec<_> = (0u8..3)
            .map(|i| StateKey::Account(Address([i; 20])))
            .collect();
        let results: Vec<_> = keys
            .iter()
            .map(|k| state.write(*k, Fr::one()).is_ok())
            .collect();
        assert!(results.iter().any(|ok| !ok), "{results:?}");
        let err = keys
            .iter()
            .find_map(|k| state.read(*k).err())
            .expect("a colliding read fails");
        assert!(err.to_string().contains("collides"), "{err}");
    }
}
