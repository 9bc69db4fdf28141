//! A three-rollup cluster with the reference apps, shared by the tests.

use std::rc::Rc;

use lockstep_circuits::entry::{Address, Domain};
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::{Block, Tx},
    circuit::StfCapacity,
    executor::DEFAULT_MAX_STEPS,
    machine::{self, Outputs},
    sample,
    state::State,
    CallOutcome, Genesis, ReferenceReplica, ReferenceRollup, Transition,
};
use lockstep_rollup_api::{Cluster, RollupReplica, SealedBlock};

pub(crate) use lockstep_reference_rollup::sample::{
    ALICE, AMM_2, AMM_ETH, AMM_TOKENS, BACK_TO_1, BOB, CAROL, COUNTER_1, COUNTER_2, ETH,
    REVERTER_2, THREE_TO_1, THREE_TO_COUNTER_2, TO_AMM_2, TO_COUNTER_1, TO_COUNTER_2,
    TO_FORWARDER_2, TO_REVERTER_2,
};

pub(crate) const fn domain() -> Domain {
    sample::DOMAIN
}

/// A capacity no test block reaches: the rollups keep a meter, which every seal checks.
const AMPLE: StfCapacity = StfCapacity {
    rows: 1 << 20,
    tape: 1 << 20,
    keys: 1 << 20,
    scratch: 1 << 20,
};

/// The sample cluster's geneses, at the default tree depth.
pub(crate) fn geneses() -> [Genesis; 3] {
    sample::geneses(lockstep_reference_rollup::executor::DEFAULT_TREE_DEPTH)
}

/// Every address with a balance anywhere, for conservation checks: the sample's, the zero
/// address and the property tests' stranger.
fn addresses() -> impl Iterator<Item = Address> {
    sample::ADDRESSES
        .into_iter()
        .chain([Address([0; 20]), Address([0x77; 20])])
}

/// What the cluster reported for Alice's transaction, with the outcome as the reference rollup
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub(crate) outcome: CallOutcome,
    pub(crate) cross_calls: usize,
    pub(crate) executions: usize,
}

pub(crate) struct World {
    pub(crate) cluster: Cluster,
    pub(crate) rollups: Vec<Rc<ReferenceRollup>>,
    /// Each rollup's state when the slot began.
    pub(crate) pre_states: Vec<State>,
    pub(crate) nonces: [u64; 4],
    /// Each rollup's transition (replay and state trace), once sealed.
    pub(crate) transitions: Vec<Transition>,
}

impl World {
    pub(crate) fn new(slot: u64) -> Self {
        Self::with_depth(
            slot,
            lockstep_reference_rollup::executor::DEFAULT_TREE_DEPTH,
        )
    }

    /// The cluster with state trees of `depth` levels (small ones keep circuit tests cheap).
    pub(crate) fn with_depth(slot: u64, depth: usize) -> Self {
        let mut cluster = Cluster::new(domain());
        let mut rollups = Vec::new();
        for mut genesis in geneses() {
            genesis.tree_depth = depth;
            let rollup = Rc::new(ReferenceRollup::new(&genesis).unwrap().with_capacity(AMPLE));
            cluster.add(Box::new(rollup.clone())).unwrap();
            rollups.push(rollup);
        }
        cluster.begin_slot(slot).unwrap();
        let pre_states = rollups.iter().map(|r| r.state()).collect();
        Self {
            cluster,
            rollups,
            pre_states,
            nonces: [0; 4],
            transitions: Vec::new(),
        }
    }

    pub(crate) fn rollup(&self, id: u32) -> &ReferenceRollup {
        &self.rollups[id as usize - 1]
    }

    /// Alice sends a transaction on `rollup`.
    pub(crate) fn send(
        &mut self,
        rollup: u32,
        to: Address,
        value: u128,
        data: CallData,
    ) -> std::result::Result<Receipt, lockstep_rollup_api::RollupError> {
        let tx = Tx {
            from: ALICE,
            nonce: self.nonces[rollup as usize],
            to,
            value,
            data,
        };
        let receipt = self.cluster.submit(rollup, &tx.encode())?;
        self.nonces[rollup as usize] += 1;
        Ok(Receipt {
            outcome: CallOutcome::from_api(&receipt.outcome).expect("a reference rollup's word"),
            cross_calls: receipt.cross_calls,
            executions: receipt.executions,
        })
    }

    /// Seals the slot and checks that every block replays, from its pre-state and its bytes
    /// alone, to exactly what the builder sealed, with a state trace that leads to its post root.
    pub(crate) fn seal(&mut self) -> Vec<SealedBlock> {
        let metered: Vec<_> = self.rollups.iter().map(|r| r.needs().unwrap()).collect();
        let sealed = self.cluster.seal().unwrap();
        self.transitions.clear();
        for ((block, pre), metered) in sealed.iter().zip(&self.pre_states).zip(metered) {
            let decoded = Block::decode(&block.data).unwrap();
            let transition =
                ReferenceRollup::transition(pre.clone(), DEFAULT_MAX_STEPS, domain(), &decoded)
                    .unwrap();
            assert_eq!(
                &transition.sealed, block,
                "rollup {} replays",
                block.header.rollup_id
            );
            assert_eq!(transition.memory.pre_root, block.header.pre_root);
            assert_eq!(
                transition.memory.post_root().unwrap(),
                block.header.post_root
            );
            // The step machine, the STF circuit's native twin, agrees with the executor, and
            // its rows check on their own.
            let run = machine::run(pre, domain(), &decoded).unwrap();
            assert_eq!(
                run.outputs,
                machine_outputs(block),
                "rollup {}",
                block.header.rollup_id
            );
            let checked = machine::check(pre, domain(), &decoded, &run.rows).unwrap();
            assert_eq!(checked, run.outputs);
            // The builder's meter, fed one transaction at a time and rewound with every one
            // the cluster undid, counted what one run over the block counts.
            assert_eq!(
                metered,
                Some(run.stats().capacity()),
                "rollup {}'s meter",
                block.header.rollup_id
            );
            // The adapter's replica executes the block once, on the step machine, and seals
            // exactly what the builder sealed, ending at its post state.
            let mut replica = ReferenceReplica::from_state(
                block.header.rollup_id,
                DEFAULT_MAX_STEPS,
                pre.clone(),
            );
            let (applied, witness) = replica.apply_block(domain(), &block.data).unwrap();
            assert_eq!(
                &applied, block,
                "rollup {}'s replica",
                block.header.rollup_id
            );
            assert_eq!(replica.state_root(), block.header.post_root);
            assert_eq!(witness.run.rows, run.rows);
            self.transitions.push(transition);
        }
        sealed
    }

    /// Σ balances of the known addresses on `rollup`.
    pub(crate) fn eth_on(&self, rollup: u32) -> u128 {
        addresses()
            .map(|a| self.rollup(rollup).account(&a).unwrap().balance)
            .sum()
    }
}

pub(crate) fn forward(inner: Method) -> CallData {
    CallData::forward(inner, Method::Transfer, 0)
}

/// A forwarder call that runs `inner` on the target, then reverts with its result.
pub(crate) fn forward_then_revert(inner: Method) -> CallData {
    CallData {
        method: Method::ForwardThenRevert,
        inner,
        next: Method::Transfer,
        arg: 0,
    }
}

/// What the step machine must produce for a sealed block.
pub(crate) fn machine_outputs(block: &SealedBlock) -> Outputs {
    Outputs {
        post_root: block.header.post_root,
        eth_delta: block.header.eth_delta,
        assumed: block.assumed.clone(),
        served: block.served.clone(),
    }
}
