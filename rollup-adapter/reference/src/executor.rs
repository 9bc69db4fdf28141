//! The reference app-rollup's native executor.
//!
//! It executes user transactions and served calls against its [`State`], records the block's
//! input tape and both entry lists, and replays a block from its tape. Every rule here is one
//! the STF circuit proves; `docs/reference-rollup.md` states them in one place.
//!
//! # Frames
//! Every call runs in a frame that saves the state journal position and the ETH delta. A frame
//! that reverts restores both and marks every call it made to another rollup as uncommitted.
//! A served call runs in a frame that is also restored when the call arrived uncommitted, after
//! it has produced its result. Calls nest at most [`MAX_CALL_DEPTH`] frames deep.
//!
//! # ETH
//! Value moves with calls. Value sent to another rollup leaves this rollup's ETH when the call
//! succeeds and is refunded when it reverts; value received arrives with a served call and
//! stays only if the call succeeds and is committed. The block's ETH delta is the net of both.

use std::cell::RefCell;

use lockstep_circuits::{
    entry::{Address, CallKind, Domain, Entry},
    layout::{SlotHeader, MAX_ENTRIES},
    memory::MemoryWitness,
    Fr,
};
use serde::{Deserialize, Serialize};

use crate::{
    abi::{
        self, AppKind, CallData, Method, MAX_VALUE, REVERT_ALWAYS, REVERT_INSUFFICIENT_BALANCE,
        REVERT_SLIPPAGE, REVERT_UNKNOWN_METHOD,
    },
    block::{Block, CallReturn, IncomingCall, Step, Tx},
    calls::{ApiRouter, CallOutcome, CallRouter, OutgoingCall},
    circuit::StfCapacity,
    machine::{self, Machine, MachineCheckpoint},
    state::{Account, Checkpoint, State, StateKey},
    Error, Result,
};
use lockstep_rollup_api::{self as api, SealedBlock};

pub use crate::spec::MAX_CALL_DEPTH;
/// Default depth of the state tree.
pub const DEFAULT_TREE_DEPTH: usize = 32;
/// Default most steps in one block.
pub const DEFAULT_MAX_STEPS: usize = 64;

/// Storage slot of a counter's count and of a forwarder's last result.
const SLOT_VALUE: u64 = 0;
/// Storage slot of a forwarder's failure count.
const SLOT_FAILURES: u64 = 1;
/// Storage slots of an AMM's ETH and token reserves.
const SLOT_RESERVE_ETH: u64 = 0;
const SLOT_RESERVE_TOKEN: u64 = 1;

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisAccount {
    /// Its address.
    pub address: Address,
    /// Its balance in wei.
    #[serde(with = "crate::abi::u128_text")]
    pub balance: u128,
}

/// An app installed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisApp {
    /// Its address.
    pub address: Address,
    /// What it is.
    pub app: AppKind,
    /// Its ETH balance.
    #[serde(default)]
    #[serde(with = "crate::abi::u128_text")]
    pub balance: u128,
    /// Initial storage: (slot, value).
    #[serde(default)]
    pub storage: Vec<(u64, u128)>,
}

/// A reference rollup's genesis: its id, tree depth, block size and initial state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Rollup id (registered on L1; not 0).
    pub rollup_id: u32,
    /// Depth of the state tree.
    #[serde(default = "default_depth")]
    pub tree_depth: usize,
    /// Most tape steps in one block.
    #[serde(default = "default_max_steps")]
    pub max_steps: usize,
    /// Funded accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Installed apps.
    #[serde(default)]
    pub apps: Vec<GenesisApp>,
}

const fn default_depth() -> usize {
    DEFAULT_TREE_DEPTH
}

const fn default_max_steps() -> usize {
    DEFAULT_MAX_STEPS
}

impl Genesis {
    /// Reads a genesis file (JSON).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let error = |reason: String| Error::Genesis(format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(format!("not a genesis: {e}")))
    }

    /// An empty genesis for `rollup_id` with default depth and block size.
    pub fn new(rollup_id: u32) -> Self {
        Self {
            rollup_id,
            tree_depth: DEFAULT_TREE_DEPTH,
            max_steps: DEFAULT_MAX_STEPS,
            accounts: Vec::new(),
            apps: Vec::new(),
        }
    }

    /// Adds a funded account.
    pub fn with_account(mut self, address: Address, balance: u128) -> Self {
        self.accounts.push(GenesisAccount { address, balance });
        self
    }

    /// Adds an app.
    pub fn with_app(mut self, address: Address, app: AppKind, balance: u128) -> Self {
        self.apps.push(GenesisApp {
            address,
            app,
            balance,
            storage: Vec::new(),
        });
        self
    }

    /// Adds an AMM with the given reserves (its ETH balance is the ETH reserve).
    pub fn with_amm(mut self, address: Address, eth: u128, tokens: u128) -> Self {
        self.apps.push(GenesisApp {
            address,
            app: AppKind::Amm,
            balance: eth,
            storage: vec![(SLOT_RESERVE_ETH, eth), (SLOT_RESERVE_TOKEN, tokens)],
        });
        self
    }

    /// The genesis state.
    pub fn state(&self) -> Result<State> {
        if self.rollup_id == 0 {
            return Err(Error::Genesis("rollup id 0 is L1".into()));
        }
        let mut state = State::new(self.tree_depth)?;
        let mut seen = std::collections::HashSet::new();
        let addresses = self
            .accounts
            .iter()
            .map(|a| a.address)
            .chain(self.apps.iter().map(|a| a.address));
        for address in addresses {
            if !seen.insert(address) {
                return Err(Error::Genesis(format!(
                    "address 0x{} appears twice",
                    hex::encode(address.0)
                )));
            }
        }
        for account in &self.accounts {
            state.set_account(
                &account.address,
                Account {
                    balance: account.balance,
                    nonce: 0,
                },
            )?;
        }
        for app in &self.apps {
            state.write(StateKey::Code(app.address), app.app.to_field())?;
            if app.balance > 0 {
                state.set_account(
                    &app.address,
                    Account {
                        balance: app.balance,
                        nonce: 0,
                    },
                )?;
            }
            for &(slot, value) in &app.storage {
                state.set_storage_u128(&app.address, Fr::from(slot), value)?;
            }
        }
        state.commit();
        Ok(state)
    }
}

/// A replayed block and the executor's own trace of its state accesses, as a memory-check
/// witness. Proofs never use it: the STF proof checks the step machine's accesses
/// ([`crate::machine::Run`]). It is the executor's independent account of the same block, which
/// tests check against the memory circuit and the machine.
#[derive(Debug, Clone)]
pub struct Transition {
    /// What the block produced.
    pub sealed: SealedBlock,
    /// Every state access of the replay, with its key table opened at the pre root.
    pub memory: MemoryWitness,
    /// The state after the block.
    pub post_state: State,
}

/// Where a frame's value comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Debited from a local account.
    Account(Address),
    /// Arrived with a served call from this app on another rollup.
    Remote(Address),
}

/// A live frame.
#[derive(Debug)]
struct Frame {
    state: Checkpoint,
    eth_delta: i128,
    /// Assumed entries recorded before the frame began.
    assumed: usize,
    /// Whether the frame's calls are committed as far as this rollup knows when it begins.
    committed: bool,
}

/// Everything [`ReferenceRollup::abort_tx`] restores.
#[derive(Debug, Clone, Copy)]
struct TxCheckpoint {
    state: Checkpoint,
    steps: usize,
    assumed: usize,
    served: usize,
    next_seq: u32,
    eth_delta: i128,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// With a capacity: the step machine over the open block, from the slot's pre state. It
    /// runs each transaction's steps once, when [`ReferenceRollup::fits`] is asked, to size the
    /// block as the STF circuit will lay it out.
    meter: Option<Machine<State>>,
    /// Where the meter was when the open transaction began, if it has moved since.
    meter_checkpoint: Option<MachineCheckpoint>,
    domain: Domain,
    slot: Option<u64>,
    pre_root: Fr,
    steps: Vec<Step>,
    assumed: Vec<Entry>,
    served: Vec<Entry>,
    next_seq: u32,
    eth_delta: i128,
    frames: Vec<Frame>,
    tx: Option<TxCheckpoint>,
}

/// The reference app-rollup: counters, forwarders, an AMM and a reverter over a Poseidon
/// sparse Merkle tree, executing synchronously with other rollups.
#[derive(Debug)]
pub struct ReferenceRollup {
    id: u32,
    max_steps: usize,
    /// What its prover's circuit holds: [`api::SyncRollup::seal`] refuses a block beyond it.
    capacity: Option<StfCapacity>,
    inner: RefCell<Inner>,
}

impl ReferenceRollup {
    /// A rollup at its genesis state.
    pub fn new(genesis: &Genesis) -> Result<Self> {
        Ok(Self::from_state(
            genesis.rollup_id,
            genesis.max_steps,
            genesis.state()?,
        ))
    }

    /// A rollup at `state`.
    pub fn from_state(id: u32, max_steps: usize, state: State) -> Self {
        Self {
            id,
            max_steps,
            capacity: None,
            inner: RefCell::new(Inner {
                meter: None,
                meter_checkpoint: None,
                pre_root: state.root(),
                state,
                domain: Domain::default(),
                slot: None,
                steps: Vec::new(),
                assumed: Vec::new(),
                served: Vec::new(),
                next_seq: 0,
                eth_delta: 0,
                frames: Vec::new(),
                tx: None,
            }),
        }
    }

    /// The rollup whose blocks must fit `capacity` (the STF circuit its prover uses): sealing a
    /// block beyond it fails with [`api::RollupError::Full`], so a builder leaves transactions
    /// for a later slot instead of sealing a block nobody can prove.
    #[must_use]
    pub const fn with_capacity(mut self, capacity: StfCapacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Why the open block, with the transaction under way, does not fit the rollup's capacity,
    /// if it does not (see [`Self::needs`]).
    pub fn fits(&self) -> Result<Option<String>> {
        let (Some(capacity), Some(needs)) = (&self.capacity, self.needs()?) else {
            return Ok(None);
        };
        Ok(machine::check_fits(&needs, capacity)
            .err()
            .map(|why| format!("rollup {}: {why}", self.id)))
    }

    /// What the open block, with the transaction under way, needs of an STF circuit, as its
    /// meter counts it; `None` for a rollup with no capacity (it keeps no meter) or no open slot.
    /// The meter (the step machine) runs the steps recorded since it was last asked, so each
    /// step of a block runs once however often the builder asks.
    pub fn needs(&self) -> Result<Option<StfCapacity>> {
        self.with(|inner| {
            let Inner {
                meter,
                meter_checkpoint,
                steps,
                tx,
                ..
            } = inner;
            let Some(meter) = meter.as_mut() else {
                return Ok(None);
            };
            if tx.is_some() && meter_checkpoint.is_none() {
                *meter_checkpoint = Some(meter.checkpoint());
            }
            meter.advance(steps)?;
            Ok(Some(meter.needs()))
        })
    }

    /// The current state root.
    pub fn root(&self) -> Fr {
        self.inner.borrow().state.root()
    }

    /// A copy of the current state.
    pub fn state(&self) -> State {
        self.inner.borrow().state.clone()
    }

    /// An account's balance and nonce.
    pub fn account(&self, address: &Address) -> Result<Account> {
        self.inner.borrow().state.account(address)
    }

    /// A `u128` storage slot of an app.
    pub fn storage(&self, app: &Address, slot: u64) -> Result<u128> {
        self.inner.borrow().state.storage_u128(app, Fr::from(slot))
    }

    /// An AMM's token balance of `holder`.
    pub fn token_balance(&self, amm: &Address, holder: &Address) -> Result<u128> {
        self.inner
            .borrow()
            .state
            .storage_u128(amm, abi::token_slot(holder))
    }

    /// Replays `block` on `state` in `domain`: re-executes its tape, checks that every step is
    /// the one execution needs next and that the post root is the header's, and returns what
    /// the block produced (the same [`SealedBlock`] its builder sealed).
    pub fn replay(
        state: State,
        max_steps: usize,
        domain: Domain,
        block: &Block,
    ) -> Result<SealedBlock> {
        Self::replay_on(state, max_steps, domain, block).map(|(_, sealed)| sealed)
    }

    /// [`Self::replay`] that also records every state access: the block's [`Transition`]. The
    /// trace's key table is opened against `state`.
    pub fn transition(
        mut state: State,
        max_steps: usize,
        domain: Domain,
        block: &Block,
    ) -> Result<Transition> {
        let pre_state = state.tree().clone();
        state.start_trace();
        let (rollup, sealed) = Self::replay_on(state, max_steps, domain, block)?;
        let (trace, post_state) = rollup.with(|inner| {
            let trace = inner.state.take_trace();
            (trace, inner.state.clone())
        });
        let memory = MemoryWitness::new(&pre_state, &trace)?;
        let post_root = memory.post_root()?;
        if post_root != sealed.header.post_root {
            return Err(Error::Replay {
                rollup: block.rollup_id,
                step: block.steps.len(),
                reason: format!(
                    "the state trace leads to {}, not to the post root {}",
                    crate::block::fr_hex(&post_root),
                    crate::block::fr_hex(&sealed.header.post_root)
                ),
            });
        }
        Ok(Transition {
            sealed,
            memory,
            post_state,
        })
    }

    fn replay_on(
        state: State,
        max_steps: usize,
        domain: Domain,
        block: &Block,
    ) -> Result<(Self, SealedBlock)> {
        let rollup = Self::from_state(block.rollup_id, max_steps, state);
        let error = |step: usize, reason: String| Error::Replay {
            rollup: block.rollup_id,
            step,
            reason,
        };
        if rollup.root() != block.pre_root {
            return Err(error(
                0,
                format!(
                    "pre root {} is not the state's root {}",
                    crate::block::fr_hex(&block.pre_root),
                    crate::block::fr_hex(&rollup.root())
                ),
            ));
        }
        rollup.begin_slot(domain, block.slot)?;
        let tape = Tape {
            rollup: &rollup,
            steps: &block.steps,
            next: std::cell::Cell::new(0),
        };
        while let Some(step) = block.steps.get(tape.next.get()) {
            let at = tape.next.get();
            tape.next.set(at + 1);
            match step {
                Step::Tx(tx) => {
                    rollup.execute_tx(tx, &tape)?;
                }
                Step::Serve(call) => {
                    rollup.serve(call, &tape)?;
                }
                Step::Return(ret) => {
                    return Err(error(
                        at,
                        format!("a result for call {} with no call waiting for it", ret.seq),
                    ))
                }
            }
        }
        let sealed = rollup.seal()?;
        if sealed.header.post_root != block.post_root {
            return Err(error(
                block.steps.len(),
                format!(
                    "post root {} differs from the header's {}",
                    crate::block::fr_hex(&sealed.header.post_root),
                    crate::block::fr_hex(&block.post_root)
                ),
            ));
        }
        Ok((rollup, sealed))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }

    fn record(&self, step: Step) -> Result<()> {
        self.with(|inner| {
            if inner.steps.len() >= self.max_steps {
                return Err(Error::TooManySteps {
                    rollup: self.id,
                    max: self.max_steps,
                });
            }
            inner.steps.push(step);
            Ok(())
        })
    }

    fn open_slot(&self) -> Result<(Domain, u64)> {
        self.with(|inner| match inner.slot {
            Some(slot) => Ok((inner.domain, slot)),
            None => Err(Error::Refused(format!(
                "rollup {} has no open slot (call begin_slot first)",
                self.id
            ))),
        })
    }

    /// Runs one call in a new frame. `committed` is the frame's flag as known at its start.
    fn call_frame(
        &self,
        source: Source,
        target: Address,
        value: u128,
        data: CallData,
        committed: bool,
        router: &dyn CallRouter,
    ) -> Result<CallOutcome> {
        self.with(|inner| {
            if inner.frames.len() >= MAX_CALL_DEPTH {
                return Err(Error::CallTooDeep {
                    depth: inner.frames.len() + 1,
                    max: MAX_CALL_DEPTH,
                });
            }
            inner.frames.push(Frame {
                state: inner.state.checkpoint(),
                eth_delta: inner.eth_delta,
                assumed: inner.assumed.len(),
                committed,
            });
            Ok(())
        })?;
        let outcome = self.run_app(source, target, value, data, router);
        self.with(|inner| {
            let frame = inner.frames.pop().expect("the frame pushed above");
            let outcome = outcome?;
            let discard = !outcome.success || (matches!(source, Source::Remote(_)) && !committed);
            if discard {
                inner.state.revert_to(frame.state);
                inner.eth_delta = frame.eth_delta;
            }
            if !outcome.success {
                for entry in &mut inner.assumed[frame.assumed..] {
                    entry.committed = false;
                }
            }
            Ok(outcome)
        })
    }

    /// Moves the value in, then runs the target's code.
    fn run_app(
        &self,
        source: Source,
        target: Address,
        value: u128,
        data: CallData,
        router: &dyn CallRouter,
    ) -> Result<CallOutcome> {
        let moved = self.with(|inner| -> Result<bool> {
            if value == 0 {
                return Ok(true);
            }
            if let Source::Account(from) = source {
                let mut account = inner.state.account(&from)?;
                if account.balance < value {
                    return Ok(false);
                }
                account.balance -= value;
                inner.state.set_account(&from, account)?;
            } else {
                inner.eth_delta += value as i128;
            }
            let account = inner.state.account(&target)?.credited(value)?;
            inner.state.set_account(&target, account)?;
            Ok(true)
        })?;
        if !moved {
            return Ok(CallOutcome::revert(REVERT_INSUFFICIENT_BALANCE));
        }
        let code = self.with(|inner| inner.state.read(StateKey::Code(target)))?;
        let app = if code == Fr::zero() {
            None
        } else {
            Some(AppKind::from_field(&code).ok_or_else(|| Error::OutOfRange {
                what: "code leaf",
                value: crate::block::fr_hex(&code),
                expected: "an app kind",
            })?)
        };
        match (app, data.method) {
            (Some(AppKind::Reverter), _) | (_, Method::Fail) => {
                Ok(CallOutcome::revert(REVERT_ALWAYS))
            }
            (_, Method::Transfer) => Ok(CallOutcome::ok(0)),
            (Some(AppKind::Counter), Method::Increment) => self.with(|inner| {
                let slot = Fr::from(SLOT_VALUE);
                let count = inner.state.storage_u128(&target, slot)?.wrapping_add(1);
                inner.state.set_storage_u128(&target, slot, count)?;
                Ok(CallOutcome::ok(count))
            }),
            (
                Some(AppKind::Forwarder {
                    rollup,
                    target: remote,
                }),
                Method::Forward | Method::ForwardThenRevert,
            ) => {
                let result =
                    self.subcall(target, rollup, remote, value, data.forwarded(), router)?;
                let word = self.with(|inner| -> Result<u128> {
                    if result.success {
                        inner
                            .state
                            .set_storage_u128(&target, Fr::from(SLOT_VALUE), result.word)?;
                        Ok(result.word)
                    } else {
                        let slot = Fr::from(SLOT_FAILURES);
                        let failures = inner.state.storage_u128(&target, slot)?.wrapping_add(1);
                        inner.state.set_storage_u128(&target, slot, failures)?;
                        Ok(0)
                    }
                })?;
                Ok(if data.method == Method::ForwardThenRevert {
                    CallOutcome::revert(word)
                } else {
                    CallOutcome::ok(word)
                })
            }
            (Some(AppKind::Amm), Method::Swap) => self.with(|inner| {
                let eth = Fr::from(SLOT_RESERVE_ETH);
                let token = Fr::from(SLOT_RESERVE_TOKEN);
                let x = inner.state.storage_u128(&target, eth)?;
                let y = inner.state.storage_u128(&target, token)?;
                let out = abi::swap_output(x, y, value);
                if out == 0 || out < data.arg {
                    return Ok(CallOutcome::revert(REVERT_SLIPPAGE));
                }
                let (Source::Account(caller) | Source::Remote(caller)) = source;
                let reserve = x.checked_add(value).ok_or_else(|| Error::OutOfRange {
                    what: "AMM ETH reserve",
                    value: format!("{x} + {value}"),
                    expected: "at most 2^128 − 1",
                })?;
                inner.state.set_storage_u128(&target, eth, reserve)?;
                inner.state.set_storage_u128(&target, token, y - out)?;
                let holder = abi::token_slot(&caller);
                let held = inner.state.storage_u128(&target, holder)?;
                inner
                    .state
                    .set_storage_u128(&target, holder, held.saturating_add(out))?;
                Ok(CallOutcome::ok(out))
            }),
            _ => Ok(CallOutcome::revert(REVERT_UNKNOWN_METHOD)),
        }
    }

    /// A call from app `caller` to `target` on rollup `rollup` (this one or another).
    fn subcall(
        &self,
        caller: Address,
        rollup: u32,
        target: Address,
        value: u128,
        data: CallData,
        router: &dyn CallRouter,
    ) -> Result<CallOutcome> {
        let committed = self.with(|inner| inner.frames.last().is_none_or(|f| f.committed));
        if rollup == self.id {
            return self.call_frame(
                Source::Account(caller),
                target,
                value,
                data,
                committed,
                router,
            );
        }
        if rollup == 0 {
            return Err(Error::Refused(
                "calls into L1 (rollup 0) are not supported by the reference rollup yet".into(),
            ));
        }
        let (domain, slot) = self.open_slot()?;
        // Debit first: a caller that cannot pay never reaches the other rollup, and no entry
        // is recorded (the call did not leave this rollup).
        let started = self.with(|inner| -> Result<Option<(u32, usize)>> {
            let mut account = inner.state.account(&caller)?;
            if account.balance < value {
                return Ok(None);
            }
            if inner.assumed.len() >= MAX_ENTRIES {
                return Err(Error::TooManyEntries {
                    rollup: self.id,
                    side: "assumed",
                    max: MAX_ENTRIES,
                });
            }
            account.balance -= value;
            inner.state.set_account(&caller, account)?;
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.assumed.push(Entry {
                domain,
                slot,
                src: self.id,
                dst: rollup,
                seq,
                kind: CallKind::Call,
                success: false,
                committed,
                caller,
                target,
                value: abi::value_bytes(value),
                calldata_hash: data.digest(),
                return_hash: [0; 32],
            });
            Ok(Some((seq, inner.assumed.len() - 1)))
        })?;
        let Some((seq, index)) = started else {
            return Ok(CallOutcome::revert(REVERT_INSUFFICIENT_BALANCE));
        };
        let outcome = router.call(&OutgoingCall {
            src: self.id,
            seq,
            dst: rollup,
            caller,
            target,
            value,
            data,
            committed,
        })?;
        self.with(|inner| -> Result<()> {
            let entry = &mut inner.assumed[index];
            entry.success = outcome.success;
            entry.return_hash = abi::word_digest(outcome.word);
            if outcome.success {
                inner.eth_delta -= value as i128;
            } else {
                let mut account = inner.state.account(&caller)?;
                account.balance += value;
                inner.state.set_account(&caller, account)?;
            }
            Ok(())
        })?;
        self.record(Step::Return(CallReturn {
            seq,
            success: outcome.success,
            word: outcome.word,
        }))?;
        Ok(outcome)
    }
}

/// The executor's own entry points, in the reference rollup's types (the protocol's
/// [`api::SyncRollup`] implementation below converts and calls them).
impl ReferenceRollup {
    /// The rollup's id.
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// Starts a block for `slot`. Fails if a block is open.
    pub fn begin_slot(&self, domain: Domain, slot: u64) -> Result<()> {
        self.with(|inner| {
            if let Some(open) = inner.slot {
                return Err(Error::Refused(format!(
                    "rollup {}: slot {open} is still open",
                    self.id
                )));
            }
            inner.domain = domain;
            inner.slot = Some(slot);
            inner.pre_root = inner.state.root();
            inner.meter = self
                .capacity
                .map(|_| Machine::new(inner.state.clone(), self.id));
            inner.meter_checkpoint = None;
            Ok(())
        })
    }

    /// Marks the start of a transaction (see [`api::SyncRollup::begin_tx`]).
    pub fn begin_tx(&self) {
        self.with(|inner| {
            inner.tx = Some(TxCheckpoint {
                state: inner.state.checkpoint(),
                steps: inner.steps.len(),
                assumed: inner.assumed.len(),
                served: inner.served.len(),
                next_seq: inner.next_seq,
                eth_delta: inner.eth_delta,
            });
        });
    }

    /// Keeps everything done since [`Self::begin_tx`].
    pub fn commit_tx(&self) {
        self.with(|inner| {
            inner.tx = None;
            inner.meter_checkpoint = None;
        });
    }

    /// Undoes everything done since [`Self::begin_tx`]: state, block steps, entries.
    pub fn abort_tx(&self) {
        self.with(|inner| {
            if let Some(cp) = inner.tx.take() {
                inner.state.revert_to(cp.state);
                inner.steps.truncate(cp.steps);
                inner.assumed.truncate(cp.assumed);
                inner.served.truncate(cp.served);
                inner.next_seq = cp.next_seq;
                inner.eth_delta = cp.eth_delta;
                inner.frames.clear();
            }
            if let (Some(meter), Some(cp)) = (inner.meter.as_mut(), inner.meter_checkpoint.take()) {
                meter.restore(cp);
            }
        });
    }

    /// Executes a user transaction. `Err` means it was refused; a revert is `Ok` with
    /// `success = false`.
    pub fn execute_tx(&self, tx: &Tx, router: &dyn CallRouter) -> Result<CallOutcome> {
        self.open_slot()?;
        let standalone = self.with(|inner| inner.tx.is_none());
        if standalone {
            self.begin_tx();
        }
        let result = self.execute_tx_inner(tx, router);
        if standalone {
            match result {
                Ok(_) => self.commit_tx(),
                Err(_) => self.abort_tx(),
            }
        }
        result
    }

    /// Serves a call from another rollup, now.
    pub fn serve(&self, call: &IncomingCall, router: &dyn CallRouter) -> Result<CallOutcome> {
        let (domain, slot) = self.open_slot()?;
        if call.src == self.id || call.src == 0 {
            return Err(Error::Refused(format!(
                "rollup {} cannot serve a call from rollup {}",
                self.id, call.src
            )));
        }
        if call.value > MAX_VALUE {
            return Err(Error::OutOfRange {
                what: "call value",
                value: call.value.to_string(),
                expected: "at most MAX_VALUE (2^96 − 1)",
            });
        }
        let index = self.with(|inner| {
            if inner.served.len() >= MAX_ENTRIES {
                return Err(Error::TooManyEntries {
                    rollup: self.id,
                    side: "served",
                    max: MAX_ENTRIES,
                });
            }
            inner.served.push(Entry {
                domain,
                slot,
                src: call.src,
                dst: self.id,
                seq: call.seq,
                kind: CallKind::Call,
                success: false,
                committed: call.committed,
                caller: call.caller,
                target: call.target,
                value: abi::value_bytes(call.value),
                calldata_hash: call.data.digest(),
                return_hash: [0; 32],
            });
            Ok(inner.served.len() - 1)
        })?;
        self.record(Step::Serve(*call))?;
        let outcome = self.call_frame(
            Source::Remote(call.caller),
            call.target,
            call.value,
            call.data,
            call.committed,
            router,
        )?;
        self.with(|inner| {
            let entry = &mut inner.served[index];
            entry.success = outcome.success;
            entry.return_hash = abi::word_digest(outcome.word);
        });
        Ok(outcome)
    }

    /// The committed flag this rollup recorded for its outgoing call `seq`.
    pub fn assumed_committed(&self, seq: u32) -> Option<bool> {
        self.with(|inner| {
            inner
                .assumed
                .iter()
                .find(|e| e.seq == seq)
                .map(|e| e.committed)
        })
    }

    /// Closes the slot's block and goes on from its post state.
    pub fn seal(&self) -> Result<SealedBlock> {
        self.with(|inner| {
            let Some(slot) = inner.slot else {
                return Err(Error::Refused(format!(
                    "rollup {} has no open slot to seal",
                    self.id
                )));
            };
            let block = Block {
                rollup_id: self.id,
                slot,
                pre_root: inner.pre_root,
                post_root: inner.state.root(),
                steps: std::mem::take(&mut inner.steps),
            };
            inner.state.commit();
            inner.slot = None;
            inner.meter = None;
            inner.meter_checkpoint = None;
            inner.next_seq = 0;
            inner.tx = None;
            Ok(SealedBlock {
                header: SlotHeader {
                    domain: inner.domain,
                    slot,
                    rollup_id: self.id,
                    pre_root: block.pre_root,
                    post_root: block.post_root,
                    da_commitment: (),
                    eth_delta: std::mem::take(&mut inner.eth_delta),
                    l1_digest: Fr::zero(),
                },
                data: block.encode(),
                steps: block.steps.len(),
                assumed: std::mem::take(&mut inner.assumed),
                served: std::mem::take(&mut inner.served),
            })
        })
    }
}

/// The reference rollups of a cluster, made from their geneses, each bounded by its prover's
/// capacity where it has one: what a builder runs.
#[derive(Debug, Clone, Default)]
pub struct ReferenceRollups {
    /// The geneses.
    pub geneses: Vec<Genesis>,
    /// The STF circuit's capacity of the rollups proven with it, by id.
    pub capacities: std::collections::BTreeMap<u32, StfCapacity>,
}

impl api::RollupFactory for ReferenceRollups {
    fn ids(&self) -> Vec<u32> {
        self.geneses.iter().map(|g| g.rollup_id).collect()
    }

    fn genesis(&self) -> api::Result<Vec<Box<dyn api::SyncRollup>>> {
        self.geneses
            .iter()
            .map(|genesis| {
                let mut rollup =
                    ReferenceRollup::new(genesis).map_err(|e| e.into_api(genesis.rollup_id))?;
                rollup.capacity = self.capacities.get(&genesis.rollup_id).copied();
                Ok(Box::new(rollup) as Box<dyn api::SyncRollup>)
            })
            .collect()
    }
}

/// The reference rollup in protocol terms: transactions are [`Tx::encode`]d, calldata the 19
/// bytes of [`CallData::to_bytes`], return data the 16 big-endian bytes of the word, values at
/// most [`MAX_VALUE`].
impl api::SyncRollup for ReferenceRollup {
    fn id(&self) -> u32 {
        self.id
    }

    fn state_root(&self) -> Fr {
        self.root()
    }

    fn fork(&self) -> Box<dyn api::SyncRollup> {
        let mut fork = Self::from_state(self.id, self.max_steps, self.state());
        fork.capacity = self.capacity;
        Box::new(fork)
    }

    fn apply_block(&self, domain: Domain, data: &[u8]) -> api::Result<()> {
        let apply = || -> Result<()> {
            if let Some(slot) = self.with(|inner| inner.slot) {
                return Err(Error::Refused(format!(
                    "rollup {}: slot {slot} is open; seal it before applying a block",
                    self.id
                )));
            }
            let block = Block::decode(data)?;
            if block.rollup_id != self.id {
                return Err(Error::Replay {
                    rollup: self.id,
                    step: 0,
                    reason: format!("the block is rollup {}'s", block.rollup_id),
                });
            }
            let post = Self::replay_on(self.state(), self.max_steps, domain, &block)?.0;
            let post = post.with(|inner| inner.state.clone());
            self.with(|inner| {
                inner.pre_root = post.root();
                inner.state = post;
            });
            Ok(())
        };
        apply().map_err(|e| e.into_api(self.id))
    }

    fn begin_slot(&self, domain: Domain, slot: u64) -> api::Result<()> {
        Self::begin_slot(self, domain, slot).map_err(|e| e.into_api(self.id))
    }

    fn begin_tx(&self) {
        Self::begin_tx(self);
    }

    fn commit_tx(&self) {
        Self::commit_tx(self);
    }

    fn abort_tx(&self) {
        Self::abort_tx(self);
    }

    fn execute_tx(&self, tx: &[u8], router: &dyn api::CallRouter) -> api::Result<api::CallOutcome> {
        let tx = Tx::decode(tx).map_err(|e| e.into_api(self.id))?;
        Self::execute_tx(self, &tx, &ApiRouter(router))
            .map(CallOutcome::to_api)
            .map_err(|e| e.into_api(self.id))
    }

    fn serve(
        &self,
        call: &api::IncomingCall,
        router: &dyn api::CallRouter,
    ) -> api::Result<api::CallOutcome> {
        let call = IncomingCall::from_api(call).map_err(|e| e.into_api(self.id))?;
        Self::serve(self, &call, &ApiRouter(router))
            .map(CallOutcome::to_api)
            .map_err(|e| e.into_api(self.id))
    }

    fn assumed_committed(&self, seq: u32) -> Option<bool> {
        Self::assumed_committed(self, seq)
    }

    fn fits(&self) -> api::Result<()> {
        match Self::fits(self).map_err(|e| e.into_api(self.id))? {
            Some(why) => Err(api::RollupError::Full {
                rollup: self.id,
                reason: why,
            }),
            None => Ok(()),
        }
    }

    fn seal(&self) -> api::Result<SealedBlock> {
        if let Some(why) = Self::fits(self).map_err(|e| e.into_api(self.id))? {
            return Err(api::RollupError::Full {
                rollup: self.id,
                reason: why,
            });
        }
        Self::seal(self).map_err(|e| e.into_api(self.id))
    }
}

impl ReferenceRollup {
    fn execute_tx_inner(&self, tx: &Tx, router: &dyn CallRouter) -> Result<CallOutcome> {
        if tx.value > MAX_VALUE {
            return Err(Error::OutOfRange {
                what: "transaction value",
                value: tx.value.to_string(),
                expected: "at most MAX_VALUE (2^96 − 1)",
            });
        }
        self.with(|inner| -> Result<()> {
            if !inner.frames.is_empty() {
                return Err(Error::Refused(
                    "a transaction cannot start inside a call".into(),
                ));
            }
            let mut account = inner.state.account(&tx.from)?;
            if account.nonce != tx.nonce {
                return Err(Error::Refused(format!(
                    "nonce {} of 0x{}, expected {}",
                    tx.nonce,
                    hex::encode(tx.from.0),
                    account.nonce
                )));
            }
            if account.balance < tx.value {
                return Err(Error::Refused(format!(
                    "0x{} sends {} wei but holds {}",
                    hex::encode(tx.from.0),
                    tx.value,
                    account.balance
                )));
            }
            account.nonce += 1;
            inner.state.set_account(&tx.from, account)
        })?;
        self.record(Step::Tx(*tx))?;
        self.call_frame(
            Source::Account(tx.from),
            tx.to,
            tx.value,
            tx.data,
            true,
            router,
        )
    }
}

/// Replays a block's tape: answers outgoing calls from it, executing the served calls that
/// come first.
struct Tape<'a> {
    rollup: &'a ReferenceRollup,
    steps: &'a [Step],
    next: std::cell::Cell<usize>,
}

impl CallRouter for Tape<'_> {
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome> {
        let error = |step: usize, reason: String| Error::Replay {
            rollup: call.src,
            step,
            reason,
        };
        loop {
            let at = self.next.get();
            let Some(step) = self.steps.get(at) else {
                return Err(error(
                    at,
                    format!(
                        "the block ends while call {} waits for its result",
                        call.seq
                    ),
                ));
            };
            self.next.set(at + 1);
            match step {
                Step::Serve(served) => {
                    self.rollup.serve(served, self)?;
                }
                Step::Return(ret) if ret.seq == call.seq => {
                    return Ok(CallOutcome {
                        success: ret.success,
                        word: ret.word,
                    })
                }
                Step::Return(ret) => {
                    return Err(error(
                        at,
                        format!(
                            "a result for call {} while call {} waits",
                            ret.seq, call.seq
                        ),
                    ))
                }
                Step::Tx(_) => {
                    return Err(error(
                        at,
                        format!("a transaction while call {} waits for its result", call.seq),
                    ))
                }
            }
        }
    }
}
