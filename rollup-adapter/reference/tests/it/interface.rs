//! The reference rollup at the rollup interface: it speaks the protocol's bytes and 256-bit
//! values at its boundary, refuses what it cannot express, forks and applies blocks as a builder
//! needs, and refuses to seal a block beyond its prover's capacity.

use std::rc::Rc;

use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::{Block, Step, Tx},
    circuit::StfCapacity,
    machine, CallOutcome, Genesis, ReferenceReplica, ReferenceRollup, ReferenceRollups,
};
use lockstep_rollup_api::{
    CallRouter, Cluster, IncomingCall, OutgoingCall, RollupError, RollupFactory, RollupReplica,
    SyncRollup, U256,
};

use crate::world::*;

/// A router double that answers every call with fixed return data.
struct FixedAnswer(Vec<u8>);

impl CallRouter for FixedAnswer {
    fn call(
        &self,
        _: &OutgoingCall,
    ) -> lockstep_rollup_api::Result<lockstep_rollup_api::CallOutcome> {
        Ok(lockstep_rollup_api::CallOutcome::ok(self.0.clone()))
    }
}

fn increment_via_forwarder(nonce: u64) -> Tx {
    Tx {
        from: ALICE,
        nonce,
        to: TO_COUNTER_2,
        value: 0,
        data: forward(Method::Increment),
    }
}

fn rollup(id: u32) -> ReferenceRollup {
    let genesis = geneses()[id as usize - 1].clone();
    ReferenceRollup::new(&genesis).unwrap()
}

#[test]
fn transactions_encode_to_83_bytes_and_anything_else_is_refused() {
    let tx = increment_via_forwarder(7);
    let bytes = tx.encode();
    assert_eq!(bytes.len(), Tx::LEN);
    assert_eq!(bytes.len(), 83);
    assert_eq!(Tx::decode(&bytes).unwrap(), tx);
    assert!(Tx::decode(&bytes[..82]).is_err(), "truncated");
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Tx::decode(&longer)
        .unwrap_err()
        .to_string()
        .contains("1 bytes after"));
    let mut bad_method = bytes;
    bad_method[64] = 9; // the calldata's method selector
    assert!(Tx::decode(&bad_method)
        .unwrap_err()
        .to_string()
        .contains("method selector"));

    // Through the interface, undecodable bytes are invalid (never retryable).
    let one = rollup(1);
    SyncRollup::begin_slot(&one, domain(), 1).unwrap();
    let err = SyncRollup::execute_tx(&one, &bad_method, &FixedAnswer(vec![])).unwrap_err();
    assert!(
        matches!(err, RollupError::Invalid { rollup: 1, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
}

#[test]
fn calls_the_reference_rollup_cannot_express_are_refused_at_its_boundary() {
    let two = rollup(2);
    SyncRollup::begin_slot(&two, domain(), 1).unwrap();
    let call = |data: Vec<u8>, value: U256| IncomingCall {
        src: 1,
        seq: 0,
        caller: TO_COUNTER_2,
        target: COUNTER_2,
        value,
        data,
        committed: true,
    };
    let increment = CallData::new(Method::Increment).to_bytes();
    let router = FixedAnswer(vec![]);
    // Well-formed: served, and the answer is the counter's word as 16 big-endian bytes.
    let ok = SyncRollup::serve(&two, &call(increment.to_vec(), U256::ZERO), &router).unwrap();
    assert_eq!(ok.data, 1u128.to_be_bytes());
    for (what, data, value, expected) in [
        (
            "EVM-ABI calldata",
            vec![0xa9; 36],
            U256::ZERO,
            "calldata length",
        ),
        (
            "a value above 2^96 − 1",
            increment.to_vec(),
            U256::from(1u128 << 96),
            "call value",
        ),
        (
            "a value above 2^128",
            increment.to_vec(),
            U256::MAX,
            "above 2^128",
        ),
    ] {
        let err = SyncRollup::serve(&two, &call(data, value), &router).unwrap_err();
        assert!(
            matches!(&err, RollupError::Invalid { rollup: 2, reason } if reason.contains(expected)),
            "{what}: {err}"
        );
    }

    // Return data from another rollup must be a word below 2^128: a longer answer refuses the
    // transaction that made the call, and nothing of it stays.
    let one = rollup(1);
    let root = one.root();
    SyncRollup::begin_slot(&one, domain(), 1).unwrap();
    let tx = increment_via_forwarder(0).encode();
    let mut long = vec![0u8; 15];
    long.extend_from_slice(&[1; 17]);
    SyncRollup::begin_tx(&one);
    let err = SyncRollup::execute_tx(&one, &tx, &FixedAnswer(long)).unwrap_err();
    SyncRollup::abort_tx(&one);
    assert!(
        matches!(&err, RollupError::Invalid { rollup: 1, reason } if reason.contains("return data")),
        "{err}"
    );
    assert_eq!(one.root(), root);
    // Leading zeros are fine: 32 bytes that hold a small number are that number.
    let mut padded = vec![0u8; 31];
    padded.push(9);
    let outcome = SyncRollup::execute_tx(&one, &tx, &FixedAnswer(padded)).unwrap();
    assert_eq!(CallOutcome::from_api(&outcome).unwrap(), CallOutcome::ok(9));
}

#[test]
fn a_fork_simulates_a_slot_and_its_block_applies_to_the_original() {
    let factory = ReferenceRollups {
        geneses: geneses().to_vec(),
        capacities: Default::default(),
    };
    assert_eq!(factory.ids(), vec![1, 2, 3]);
    let originals: Vec<Rc<dyn SyncRollup>> = factory
        .genesis()
        .unwrap()
        .into_iter()
        .map(Rc::from)
        .collect();
    let roots: Vec<_> = originals.iter().map(|r| r.state_root()).collect();

    // Simulate on forks: the originals do not move.
    let forks: Vec<Rc<dyn SyncRollup>> = originals.iter().map(|r| Rc::from(r.fork())).collect();
    let mut cluster = Cluster::new(domain());
    for fork in &forks {
        cluster.add(Box::new(fork.clone())).unwrap();
    }
    cluster.begin_slot(5).unwrap();
    cluster
        .submit(1, &increment_via_forwarder(0).encode())
        .unwrap();
    let sealed = cluster.seal().unwrap();
    assert_eq!(
        originals.iter().map(|r| r.state_root()).collect::<Vec<_>>(),
        roots
    );
    assert!(sealed[2].is_empty(), "rollup 3 did nothing");
    assert_eq!(
        (sealed[0].steps, sealed[1].steps),
        (2, 1),
        "tx + result; served call"
    );

    // Each block applies to its original, which reaches the fork's state.
    for (block, (original, fork)) in sealed.iter().zip(originals.iter().zip(&forks)) {
        original.apply_block(domain(), &block.data).unwrap();
        assert_eq!(original.state_root(), fork.state_root());
    }
    // A block applies once: it no longer starts at the rollup's state.
    let again = originals[0]
        .apply_block(domain(), &sealed[0].data)
        .unwrap_err();
    assert!(
        matches!(again, RollupError::Internal { rollup: 1, .. }),
        "{again}"
    );
    // Another rollup's block, or bytes that are no block, do not apply.
    let foreign = originals[0]
        .apply_block(domain(), &sealed[1].data)
        .unwrap_err();
    assert!(foreign.to_string().contains("rollup 2's"), "{foreign}");
    let junk = originals[0].apply_block(domain(), b"LKB").unwrap_err();
    assert!(matches!(junk, RollupError::Invalid { .. }), "{junk}");
    // Not with a slot open.
    originals[0].begin_slot(domain(), 6).unwrap();
    let open = originals[0]
        .apply_block(domain(), &sealed[0].data)
        .unwrap_err();
    assert!(open.to_string().contains("is open"), "{open}");
    assert!(Block::decode(&sealed[0].data).is_ok());
}

#[test]
fn a_block_beyond_the_provers_capacity_is_refused_at_seal_as_full() {
    // Room for exactly the rows of one local transfer, not of a cross-rollup call.
    let tiny = StfCapacity {
        rows: 4,
        tape: 4,
        keys: 8,
        scratch: 16,
    };
    let one = rollup(1).with_capacity(tiny);
    SyncRollup::begin_slot(&one, domain(), 1).unwrap();
    SyncRollup::execute_tx(
        &one,
        &increment_via_forwarder(0).encode(),
        &FixedAnswer(vec![1]),
    )
    .unwrap();
    let root = one.root();
    let err = SyncRollup::seal(&one).unwrap_err();
    assert!(
        matches!(&err, RollupError::Full { rollup: 1, reason } if reason.contains("rows")),
        "{err}"
    );
    assert!(err.is_retryable());
    // Nothing sealed: the slot is still open, at the same state.
    assert_eq!(one.root(), root);
    assert!(SyncRollup::begin_slot(&one, domain(), 2).is_err());

    // The same block without a capacity seals.
    let free = rollup(1);
    SyncRollup::begin_slot(&free, domain(), 1).unwrap();
    SyncRollup::execute_tx(
        &free,
        &increment_via_forwarder(0).encode(),
        &FixedAnswer(vec![1]),
    )
    .unwrap();
    assert_eq!(SyncRollup::seal(&free).unwrap().steps, 2);
}

/// What the block of `txs` on rollup 1's genesis needs of an STF circuit, as one run of the
/// step machine over the sealed block counts it.
fn needs(txs: &[Tx]) -> StfCapacity {
    let free = rollup(1);
    let pre = free.state();
    SyncRollup::begin_slot(&free, domain(), 1).unwrap();
    for tx in txs {
        SyncRollup::execute_tx(&free, &tx.encode(), &FixedAnswer(vec![])).unwrap();
    }
    let sealed = SyncRollup::seal(&free).unwrap();
    let block = Block::decode(&sealed.data).unwrap();
    machine::run(&pre, domain(), &block)
        .unwrap()
        .stats()
        .capacity()
}

/// The builder's sizing: a cluster keeps a transaction only while every block still fits its
/// prover. The one that would overflow is undone (state and the rollup's meter of the block)
/// and reported as full; a later transaction that fits is kept; the block seals with the kept
/// ones.
#[test]
fn a_cluster_undoes_the_transaction_that_overflows_a_provers_capacity() {
    let transfer = |nonce, to| Tx {
        from: ALICE,
        nonce,
        to,
        value: 1,
        data: CallData::transfer(),
    };
    let kept = [transfer(0, BOB), transfer(1, BOB)];
    // Exactly what the two transfers to Bob need; a transfer to Carol touches her account too.
    let capacity = needs(&kept);
    let wider = needs(&[transfer(0, BOB), transfer(1, CAROL)]);
    assert!(wider.keys > capacity.keys, "{wider:?} {capacity:?}");

    let one = Rc::new(rollup(1).with_capacity(capacity));
    let mut cluster = Cluster::new(domain());
    cluster.add(Box::new(one.clone())).unwrap();
    cluster.begin_slot(1).unwrap();
    cluster.submit(1, &kept[0].encode()).unwrap();
    let (root, alice) = (one.root(), one.account(&ALICE).unwrap());
    let err = cluster.submit(1, &transfer(1, CAROL).encode()).unwrap_err();
    assert!(
        matches!(&err, RollupError::Full { rollup: 1, reason } if reason.contains("state keys")),
        "{err}"
    );
    assert_eq!((one.root(), one.account(&ALICE).unwrap()), (root, alice));
    // Had the meter kept Carol's key, this transfer would not fit either.
    cluster.submit(1, &kept[1].encode()).unwrap();
    let sealed = cluster.seal().unwrap();
    let block = Block::decode(&sealed[0].data).unwrap();
    assert_eq!(
        block.steps,
        kept.iter().map(|tx| Step::Tx(*tx)).collect::<Vec<_>>()
    );
}

/// The adapter's side: a replica applies a sealed block once and moves on; a block that lies
/// about its post root or its tape, another rollup's block, a block too long for the genesis
/// and a block that no longer starts at its root are refused, and a refusal changes nothing.
#[test]
fn a_replica_applies_each_sealed_block_once_and_refuses_lies_changing_nothing() {
    let mut world = World::new(5);
    world
        .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
        .unwrap();
    let sealed = world.seal();
    let genesis = geneses()[0].clone();
    let mut replica = ReferenceReplica::new(&genesis).unwrap();
    let start = replica.state_root();
    let block = Block::decode(&sealed[0].data).unwrap();
    let refused = |replica: &mut ReferenceReplica, data: &[u8]| {
        let err = replica.apply_block(domain(), data).unwrap_err().to_string();
        assert_eq!(
            replica.state_root(),
            start,
            "a refusal changes nothing: {err}"
        );
        err
    };

    // Another post root than the tape leads to.
    let mut lie = block.clone();
    lie.post_root = lie.pre_root;
    let err = refused(&mut replica, &lie.encode());
    assert!(err.contains("post root"), "{err}");
    // A tape without its last step (the call's result): the call has no result.
    let mut short = block.clone();
    short.steps.pop();
    refused(&mut replica, &short.encode());
    // Rollup 2's block.
    let err = refused(&mut replica, &sealed[1].data);
    assert!(err.contains("rollup 2's"), "{err}");
    // More steps than the genesis allows.
    let strict = Genesis {
        max_steps: block.steps.len() - 1,
        ..genesis
    };
    let mut strict = ReferenceReplica::new(&strict).unwrap();
    let err = strict.apply_block(domain(), &sealed[0].data).unwrap_err();
    assert!(matches!(err, RollupError::Full { rollup: 1, .. }), "{err}");

    // The block itself applies, to the builder's sealed block and post root.
    let (applied, witness) = replica.apply_block(domain(), &sealed[0].data).unwrap();
    assert_eq!(applied, sealed[0]);
    assert_eq!(replica.state_root(), sealed[0].header.post_root);
    assert_eq!(
        witness.pre.root(),
        start,
        "the witness keeps the state before"
    );
    // Once only.
    let err = replica
        .apply_block(domain(), &sealed[0].data)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pre root"), "{err}");
    assert_eq!(replica.state_root(), sealed[0].header.post_root);
}
