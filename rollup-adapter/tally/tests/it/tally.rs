use std::rc::Rc;

use halo2_base::{gates::circuit::CircuitBuilderStage, halo2_proofs::dev::MockProver};
use lockstep_circuits::{
    entry::{Address, Domain},
    Fr,
};
use lockstep_reference_rollup::{
    abi::{AppKind, CallData, Method},
    block::Tx,
    CallOutcome as Word, Genesis, ReferenceRollup,
};
use lockstep_rollup_api::{
    CallRouter, Cluster, IncomingCall, OutgoingCall, ProvingJob, RollupError, RollupReplica,
    SealedBlock, SyncRollup, U256,
};
use lockstep_tally_rollup::{
    block::TallyBlock,
    circuit::{circuit, TallyWitness, TALLY_K},
    replica::job_witness,
    TallyReplica, TallyRollup, TallyState, TALLY_APP,
};

const DOMAIN: Domain = Domain {
    chain_id: 31_337,
    registry: Address([0x5e; 20]),
};
const ALICE: Address = Address([0xa1; 20]);
/// On the reference rollup (2): a forwarder to the tally app on rollup 1.
const TO_TALLY: Address = Address([0xf7; 20]);
const DA: u64 = 0xda;

/// Rollup 1 is a tally (3 calls counted, 40 wei held); rollup 2 a reference rollup whose
/// forwarder calls it.
fn cluster() -> (Cluster, Rc<TallyRollup>) {
    let tally = Rc::new(TallyRollup::new(
        1,
        TallyState {
            count: 3,
            balance: 40,
        },
    ));
    let genesis = Genesis::new(2).with_account(ALICE, 1_000).with_app(
        TO_TALLY,
        AppKind::Forwarder {
            rollup: 1,
            target: TALLY_APP,
        },
        0,
    );
    let mut cluster = Cluster::new(DOMAIN);
    cluster.add(Box::new(tally.clone())).unwrap();
    cluster
        .add(Box::new(ReferenceRollup::new(&genesis).unwrap()))
        .unwrap();
    (cluster, tally)
}

fn send(cluster: &Cluster, nonce: u64, value: u128, data: CallData) -> Word {
    let tx = Tx {
        from: ALICE,
        nonce,
        to: TO_TALLY,
        value,
        data,
    };
    let receipt = cluster.submit(2, &tx.encode()).unwrap();
    Word::from_api(&receipt.outcome).unwrap()
}

/// A slot: a call with 7 wei (counted: answers 4), a call inside a frame that reverts
/// (answers 5, changes nothing), a call with 2 wei (answers 5).
fn slot() -> (Vec<SealedBlock>, Rc<TallyRollup>) {
    let (mut cluster, tally) = cluster();
    cluster.begin_slot(9).unwrap();
    let forward = CallData::forward(Method::Increment, Method::Transfer, 0);
    assert_eq!(send(&cluster, 0, 7, forward), Word::ok(4));
    let then_revert = CallData {
        method: Method::ForwardThenRevert,
        ..forward
    };
    assert_eq!(send(&cluster, 1, 0, then_revert), Word::revert(5));
    assert_eq!(send(&cluster, 2, 2, forward), Word::ok(5));
    (cluster.seal().unwrap(), tally)
}

fn witness(block: &SealedBlock) -> TallyWitness {
    TallyWitness::new(
        DOMAIN,
        Fr::from(DA),
        &TallyBlock::decode(&block.data).unwrap(),
    )
    .unwrap()
}

fn verify(witness: &TallyWitness, expected: &SealedBlock) -> Result<(), String> {
    let builder =
        circuit(CircuitBuilderStage::Mock, TALLY_K, None, witness).map_err(|e| e.to_string())?;
    let instances = expected
        .witness(Fr::from(DA))
        .public_inputs()
        .to_instances()
        .map_err(|e| e.to_string())?;
    let prover = MockProver::run(TALLY_K, &builder, vec![instances]).map_err(|e| e.to_string())?;
    prover
        .verify()
        .map_err(|e| format!("{} constraint failures", e.len()))
}

#[test]
fn the_tally_serves_a_reference_rollup_and_its_entries_balance() {
    let (blocks, tally) = slot();
    let (tally_block, reference) = (&blocks[0], &blocks[1]);
    // The cluster checked that rollup 2 assumed exactly what rollup 1 served.
    assert_eq!(tally_block.served, reference.assumed);
    assert_eq!(tally_block.steps, 3);
    assert!(tally_block.assumed.is_empty());
    // Committed calls only: 3 + 2 counted, 40 + 7 + 2 wei.
    assert_eq!(
        tally.state(),
        TallyState {
            count: 5,
            balance: 49
        }
    );
    assert_eq!(
        (tally_block.header.eth_delta, reference.header.eth_delta),
        (9, -9)
    );
    assert_eq!(
        tally_block.header.post_root,
        TallyState {
            count: 5,
            balance: 49
        }
        .root()
    );
    assert_eq!(
        tally_block.served.iter().filter(|e| !e.committed).count(),
        1
    );

    // The block replays from its bytes to the same state, once.
    let replica = TallyRollup::new(
        1,
        TallyState {
            count: 3,
            balance: 40,
        },
    );
    replica.apply_block(DOMAIN, &tally_block.data).unwrap();
    assert_eq!(replica.state_root(), tally_block.header.post_root);
    let again = replica.apply_block(DOMAIN, &tally_block.data).unwrap_err();
    assert!(
        matches!(again, RollupError::Internal { rollup: 1, .. }),
        "{again}"
    );
}

/// A router double: the tally makes no calls, so it is never asked.
struct NoCalls;

impl CallRouter for NoCalls {
    fn call(
        &self,
        call: &OutgoingCall,
    ) -> lockstep_rollup_api::Result<lockstep_rollup_api::CallOutcome> {
        panic!("the tally made a call: {call:?}")
    }
}

#[test]
fn the_tally_refuses_what_it_does_not_serve() {
    let tally = TallyRollup::new(1, TallyState::default());
    tally.begin_slot(DOMAIN, 1).unwrap();
    let call = |target, value| IncomingCall {
        src: 2,
        seq: 0,
        caller: ALICE,
        target,
        value,
        data: vec![1, 2, 3],
        committed: true,
    };
    for (what, incoming, expected) in [
        ("another target", call(ALICE, U256::ZERO), "serves only"),
        (
            "too much value",
            call(TALLY_APP, U256::from(1u128 << 96)),
            "2^96",
        ),
    ] {
        let err = tally.serve(&incoming, &NoCalls).unwrap_err();
        assert!(
            matches!(&err, RollupError::Invalid { rollup: 1, reason } if reason.contains(expected)),
            "{what}: {err}"
        );
    }
    let err = tally.execute_tx(&[0; 83], &NoCalls).unwrap_err();
    assert!(err.to_string().contains("no transactions"), "{err}");
    // Any calldata is counted.
    let ok = tally
        .serve(&call(TALLY_APP, U256::from(3)), &NoCalls)
        .unwrap();
    assert_eq!(ok.data, 1u128.to_be_bytes());
    assert_eq!(tally.seal().unwrap().header.eth_delta, 3);
}

#[test]
fn the_circuit_proves_the_slot_and_refuses_every_lie() {
    let (blocks, _) = slot();
    let sealed = &blocks[0];
    let honest = witness(sealed);
    assert_eq!(verify(&honest, sealed), Ok(()));

    // Each lie, on the witness, must fail against the sealed block's public inputs, or (for
    // lies inside an entry) against the public inputs the lie itself would expose.
    let relabelled = |change: &dyn Fn(&mut TallyWitness)| {
        let mut lie = honest.clone();
        change(&mut lie);
        let mut claimed = sealed.clone();
        claimed.served.clone_from(&lie.served);
        (lie, claimed)
    };
    let lies: Vec<(&str, TallyWitness, SealedBlock)> = vec![
        {
            // A call answered with another count.
            let (lie, claimed) = relabelled(&|w| w.served[0].return_hash[31] = 9);
            ("wrong answer", lie, claimed)
        },
        {
            let (lie, claimed) = relabelled(&|w| w.served[1].success = false);
            ("a failed call", lie, claimed)
        },
        {
            let (lie, claimed) = relabelled(&|w| w.served[2].target = ALICE);
            ("another target", lie, claimed)
        },
        {
            let (lie, claimed) = relabelled(&|w| w.served[0].value[15] = 1);
            ("a value above 2^128", lie, claimed)
        },
        {
            // An uncommitted call that claims to have counted: the answers after it are off.
            let (lie, claimed) = relabelled(&|w| w.served[1].committed = true);
            ("uncommitted counted", lie, claimed)
        },
        {
            // Another starting state than the sealed pre root.
            let mut lie = honest.clone();
            lie.pre.balance += 1;
            ("another pre state", lie, sealed.clone())
        },
        {
            // The sealed post root with one call dropped from the list.
            let mut lie = honest.clone();
            lie.served.pop();
            let mut claimed = sealed.clone();
            claimed.served.pop();
            ("a dropped call", lie, claimed)
        },
    ];
    for (what, lie, claimed) in lies {
        assert!(verify(&lie, &claimed).is_err(), "{what} was accepted");
    }
}

/// The adapter's side: the replica applies the slot's block once, to what the executor sealed,
/// and its witness is the circuit's; a block from another state or of another rollup is
/// refused, changing nothing.
#[test]
fn the_replica_applies_the_sealed_block_and_its_witness_satisfies_the_circuit() {
    let (blocks, _) = slot();
    let start = TallyState {
        count: 3,
        balance: 40,
    };
    let mut replica = TallyReplica::new(1, start);
    let refused = |replica: &mut TallyReplica, data: &[u8]| {
        let err = replica.apply_block(DOMAIN, data).unwrap_err().to_string();
        assert_eq!(replica.state(), start, "a refusal changes nothing: {err}");
        err
    };
    let mut other_start = TallyBlock::decode(&blocks[0].data).unwrap();
    other_start.pre.count += 1;
    let err = refused(&mut replica, &other_start.encode());
    assert!(err.contains("the rollup is at"), "{err}");
    let err = refused(&mut replica, &blocks[1].data);
    assert!(err.contains("tally block"), "{err}");

    let (sealed, witness) = replica.apply_block(DOMAIN, &blocks[0].data).unwrap();
    assert_eq!(sealed, blocks[0]);
    assert_eq!(replica.state_root(), blocks[0].header.post_root);
    assert_eq!(witness, start);
    let witness = job_witness(&ProvingJob {
        sealed: sealed.clone(),
        da_commitment: Fr::from(DA),
        witness,
    });
    let expected = sealed
        .witness(Fr::from(DA))
        .public_inputs()
        .to_instances()
        .unwrap();
    let builder = circuit(CircuitBuilderStage::Mock, TALLY_K, None, &witness).unwrap();
    MockProver::run(TALLY_K, &builder, vec![expected])
        .unwrap()
        .assert_satisfied();
}
