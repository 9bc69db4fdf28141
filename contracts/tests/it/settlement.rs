//! `LockstepSettlement` on anvil through the Rust side: real type-3 transactions with blobs,
//! the Rust encodings against the contract's, and refusals decoded into clear errors.
//!
//! The verifier here is the accept-all stand-in: these tests are about the bookkeeping and the
//! public-input encodings (the `SlotSettled` digest commits to every rebuilt input). Settling a
//! real aggregated proof is `aggregator/tests/it/settle.rs`.

use alloy::{
    primitives::{Address, Bytes, B256, I256, U256},
    providers::DynProvider,
};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig, Deployment},
    devnet::{Devnet, DevnetConfig},
    settlement::{
        self, claim, da_commitment, domain, eth_delta_to_field, execution_digest,
        withdrawal_digest, Claim, SidecarFormat, SlotData, Withdrawal, ACCUMULATOR_WORDS,
    },
    verifier::ACCEPT_ALL_STAND_IN,
    Error,
};

struct Cluster {
    devnet: Devnet,
    provider: DynProvider,
    deployment: Deployment,
    contract: LockstepSettlement::LockstepSettlementInstance<DynProvider>,
}

async fn cluster() -> Cluster {
    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .expect("anvil starts");
    let provider = devnet.provider();
    let config = DeployConfig {
        verifiers: vec![
            (1, ACCEPT_ALL_STAND_IN.to_vec()),
            (2, ACCEPT_ALL_STAND_IN.to_vec()),
        ],
        ..DeployConfig::default()
    };
    let deployment = deploy_all(&provider, &config).await.expect("deploys");
    let contract = LockstepSettlement::new(deployment.settlement, provider.clone());
    for (vk, root) in [(0xa1, 0x11), (0xb1, 0x22)] {
        contract
            .createRollup(
                devnet.dev_address(),
                B256::from(U256::from(vk)),
                B256::from(U256::from(root)),
                false,
                false,
            )
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    Cluster {
        devnet,
        provider,
        deployment,
        contract,
    }
}

fn accumulator() -> [U256; ACCUMULATOR_WORDS] {
    std::array::from_fn(|i| U256::from(0xacc0 + i))
}

/// The words after the accumulator, as the contract must rebuild them.
fn settled_words(
    deployment: &Deployment,
    slot: u64,
    claims: &[Claim],
    vks: &[u64],
    versioned_hashes: &[B256],
) -> Vec<U256> {
    let mut words = vec![
        domain(deployment.chain_id, deployment.settlement),
        U256::from(slot),
    ];
    for (c, vk) in claims.iter().zip(vks) {
        let delta = i128::try_from(c.ethDelta).unwrap();
        words.extend([
            U256::from(c.rollupId),
            U256::from(*vk),
            c.preRoot.into(),
            c.postRoot.into(),
            da_commitment(
                versioned_hashes[usize::from(c.blobIndex)],
                c.dataOffset,
                c.dataLength,
            ),
            eth_delta_to_field(delta),
            withdrawal_digest(&c.withdrawals),
        ]);
    }
    words
}

#[tokio::test]
async fn settles_a_slot_with_blobs_moves_eth_and_commits_to_the_rebuilt_inputs() {
    let Cluster {
        devnet,
        provider,
        deployment,
        contract,
    } = cluster().await;
    contract
        .deposit(2, devnet.dev_address())
        .value(U256::from(1_000))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // Rollup 2 pays 300 wei to rollup 1 and withdraws 200 to an L1 account.
    let mut data = SlotData::new();
    let at1 = data.push(b"block of rollup 1").unwrap();
    let at2 = data.push(&[0x5a; 40_000]).unwrap();
    let recipient = Address::repeat_byte(0x77);
    let claims = vec![
        claim(1, U256::from(0x11), U256::from(0x111), at1, 300, vec![]),
        claim(
            2,
            U256::from(0x22),
            U256::from(0x222),
            at2,
            -500,
            vec![Withdrawal {
                recipient,
                amount: U256::from(200),
            }],
        ),
    ];
    let sidecar = data.sidecar(SidecarFormat::default()).unwrap();
    let hashes = sidecar.versioned_hashes();
    let slot = contract.currentSlot().call().await.unwrap();
    let expected = execution_digest(&settled_words(
        &deployment,
        slot,
        &claims,
        &[0xa1, 0xb1],
        &hashes,
    ));

    let settled = settlement::settle(
        &provider,
        deployment.settlement,
        slot,
        claims.clone(),
        accumulator(),
        Bytes::from(vec![0xc0; 64]),
        sidecar,
    )
    .await
    .expect("settles");
    assert_eq!(
        settled.execution_digest, expected,
        "the contract rebuilt other public inputs than the documented layout"
    );
    assert!(settled.blob_gas_used > 0, "not a blob transaction");
    eprintln!(
        "settle, 2 rollups, stand-in verifier: {} gas",
        settled.gas_used
    );

    let (root1, balance1) = settlement::rollup_state(&provider, deployment.settlement, 1)
        .await
        .unwrap();
    let (root2, balance2) = settlement::rollup_state(&provider, deployment.settlement, 2)
        .await
        .unwrap();
    assert_eq!((root1, balance1), (U256::from(0x111), U256::from(300)));
    assert_eq!((root2, balance2), (U256::from(0x222), U256::from(500)));
    assert_eq!(
        contract.withdrawable(recipient).call().await.unwrap(),
        U256::from(200)
    );
    assert_eq!(contract.nextSlot().call().await.unwrap(), slot + 1);

    // The same claims again: refused with the contract's reason, nothing applied.
    let mut again = SlotData::new();
    again.push(b"block of rollup 1").unwrap();
    let err = settlement::settle(
        &provider,
        deployment.settlement,
        slot,
        claims,
        accumulator(),
        Bytes::from(vec![0xc0; 64]),
        again.sidecar(SidecarFormat::default()).unwrap(),
    )
    .await
    .expect_err("a slot settles once");
    assert!(
        matches!(&err, Error::SettlementRefused(reason) if reason.contains("SlotAlreadySettled")),
        "{err}"
    );
}

#[tokio::test]
async fn refusals_come_back_decoded() {
    // Keep the devnet bound: dropping it stops anvil.
    let Cluster {
        devnet: _devnet,
        provider,
        deployment,
        contract,
    } = cluster().await;
    let slot = contract.currentSlot().call().await.unwrap();
    let mut data = SlotData::new();
    let at = data.push(b"x").unwrap();
    let cases = [
        // Rollup 1's root is 0x11, not 0x12.
        (
            claim(1, U256::from(0x12), U256::from(1), at, 0, vec![]),
            "StalePreRoot",
        ),
        // Nothing deposited: rollup 1 cannot pay 1 wei.
        (
            claim(1, U256::from(0x11), U256::from(1), at, -1, vec![]),
            "Overdraw",
        ),
        // Only one blob in the transaction.
        (
            claim(
                1,
                U256::from(0x11),
                U256::from(1),
                settlement::DataRef {
                    blob_index: 1,
                    ..at
                },
                0,
                vec![],
            ),
            "MissingBlob",
        ),
        (
            claim(9, U256::from(0x11), U256::from(1), at, 0, vec![]),
            "UnknownRollup",
        ),
    ];
    for (c, reason) in cases {
        let err = settlement::settle(
            &provider,
            deployment.settlement,
            slot,
            vec![c],
            accumulator(),
            Bytes::new(),
            data.sidecar(SidecarFormat::default()).unwrap(),
        )
        .await
        .expect_err(reason);
        assert!(
            matches!(&err, Error::SettlementRefused(r) if r.contains(reason)),
            "expected {reason}, got {err}"
        );
    }
    assert_eq!(contract.nextSlot().call().await.unwrap(), 0);

    // Refused calls cost no nonce: the next transaction is mined at once, not queued behind a
    // gap.
    let pending = contract
        .deposit(1, Address::ZERO)
        .value(U256::from(1))
        .send()
        .await
        .unwrap();
    let receipt = tokio::time::timeout(std::time::Duration::from_secs(20), pending.get_receipt())
        .await
        .expect("mined, not stuck behind a nonce gap")
        .unwrap();
    assert!(receipt.status());
}

#[tokio::test]
async fn rust_encodings_match_the_contract() {
    let Cluster {
        devnet: _devnet,
        contract,
        ..
    } = cluster().await;
    for delta in [0i128, 1, -1, i128::MAX, i128::MIN, 123_456_789] {
        let on_chain = contract
            .ethDeltaToField(I256::try_from(delta).unwrap())
            .call()
            .await
            .unwrap();
        assert_eq!(on_chain, eth_delta_to_field(delta), "delta {delta}");
    }
    let hash = B256::repeat_byte(0x01);
    assert_eq!(
        contract.daCommitment(hash, 7, 9).call().await.unwrap(),
        da_commitment(hash, 7, 9)
    );
    let withdrawals = vec![
        Withdrawal {
            recipient: Address::repeat_byte(1),
            amount: U256::from(5),
        },
        Withdrawal {
            recipient: Address::repeat_byte(2),
            amount: U256::MAX >> 130,
        },
    ];
    assert_eq!(
        contract
            .withdrawalDigest(withdrawals.clone())
            .call()
            .await
            .unwrap(),
        withdrawal_digest(&withdrawals)
    );
}

#[tokio::test]
async fn deployment_refuses_a_verifier_without_code() {
    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .expect("anvil starts");
    let config = DeployConfig {
        // Creation code that deploys nothing.
        verifiers: vec![(1, vec![0x60, 0x00, 0x60, 0x00, 0xf3])],
        ..DeployConfig::default()
    };
    let err = deploy_all(&devnet.provider(), &config)
        .await
        .expect_err("empty verifier");
    assert!(err.to_string().contains("BadVerifier"), "{err}");
}
