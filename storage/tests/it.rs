//! The same behaviour from both backends, RocksDB persistence and schema checks, and a property
//! test that the two backends never disagree.

use lockstep_storage::{
    slot_key, slot_rollup_key, Batch, Error, MemoryStore, Records, RocksStore, Store, Table,
    SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
use proptest::prelude::*;

/// What every backend must do.
fn conformance(store: &dyn Store) {
    assert_eq!(store.get(Table::Slots, b"missing").unwrap(), None);

    let mut batch = Batch::default();
    for (slot, rollup) in [(7u64, 2u32), (7, 1), (8, 1), (6, 9)] {
        batch.put(
            Table::Proofs,
            &slot_rollup_key(slot, rollup),
            format!("{slot}/{rollup}").as_bytes(),
        );
    }
    batch.put(Table::Slots, &slot_key(7), b"collecting");
    store.write(batch).unwrap();

    // A prefix scan returns exactly that slot's records, in rollup order.
    let slot7: Vec<_> = store
        .scan_prefix(Table::Proofs, &slot_key(7))
        .unwrap()
        .into_iter()
        .map(|(_, v)| String::from_utf8(v).unwrap())
        .collect();
    assert_eq!(slot7, ["7/1", "7/2"]);
    assert_eq!(store.scan_prefix(Table::Proofs, &[]).unwrap().len(), 4);
    // Tables are separate.
    assert!(store.scan_prefix(Table::Posts, &[]).unwrap().is_empty());

    // Overwrite and delete in one batch: both or neither.
    let mut batch = Batch::default();
    batch
        .put(Table::Slots, &slot_key(7), b"proving")
        .delete(Table::Proofs, &slot_rollup_key(6, 9))
        .delete(Table::Proofs, b"never there");
    store.write(batch).unwrap();
    assert_eq!(
        store.get(Table::Slots, &slot_key(7)).unwrap().as_deref(),
        Some(&b"proving"[..])
    );
    assert_eq!(
        store.get(Table::Proofs, &slot_rollup_key(6, 9)).unwrap(),
        None
    );

    // Ops apply in order within a batch.
    let mut batch = Batch::default();
    batch
        .put(Table::Mempool, b"k", b"first")
        .delete(Table::Mempool, b"k")
        .put(Table::Mempool, b"k", b"last");
    store.write(batch).unwrap();
    assert_eq!(
        store.get(Table::Mempool, b"k").unwrap().as_deref(),
        Some(&b"last"[..])
    );
}

#[test]
fn memory_store_conforms() {
    conformance(&MemoryStore::default());
}

#[test]
fn rocks_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&RocksStore::open(dir.path()).unwrap());
}

#[test]
fn json_records_round_trip_and_bad_values_name_their_place() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        stage: String,
        rollups: Vec<u32>,
    }
    let store = MemoryStore::default();
    let record = Record {
        stage: "aggregating".into(),
        rollups: vec![1, 2],
    };
    store.put_json(Table::Slots, &slot_key(3), &record).unwrap();
    assert_eq!(
        store
            .get_json::<Record>(Table::Slots, &slot_key(3))
            .unwrap(),
        Some(record)
    );
    let mut batch = Batch::default();
    batch.put(Table::Slots, &slot_key(4), b"{ not json");
    store.write(batch).unwrap();
    let err = store
        .get_json::<Record>(Table::Slots, &slot_key(4))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            table: Table::Slots,
            ..
        }
    ));
    assert!(err.to_string().contains("slots/0000000000000004"), "{err}");
    assert!(store.scan_json::<Record>(Table::Slots, &[]).is_err());
}

#[test]
fn rocks_store_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        store
            .put_json(Table::Posts, &slot_key(9), &"0xabc")
            .unwrap();
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .get_json::<String>(Table::Posts, &slot_key(9))
            .unwrap()
            .as_deref(),
        Some("0xabc")
    );
    assert_eq!(
        store.get(Table::Meta, SCHEMA_VERSION_KEY).unwrap(),
        Some(SCHEMA_VERSION.to_be_bytes().to_vec())
    );
}

#[test]
fn rocks_store_refuses_another_schema_version_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        batch
            .put(
                Table::Meta,
                SCHEMA_VERSION_KEY,
                &(SCHEMA_VERSION + 1).to_be_bytes(),
            )
            .put(Table::Slots, &slot_key(1), b"kept");
        store.write(batch).unwrap();
    }
    let err = RocksStore::open(dir.path()).unwrap_err();
    match &err {
        Error::SchemaVersion {
            found, expected, ..
        } => {
            assert_eq!((*found, *expected), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected a schema version error, got {other}"),
    }
    assert!(err.to_string().contains("schema version"), "{err}");

    // Put the version back: the data is still there.
    {
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), names).unwrap();
        db.put_cf(
            db.cf_handle("meta").unwrap(),
            SCHEMA_VERSION_KEY,
            SCHEMA_VERSION.to_be_bytes(),
        )
        .unwrap();
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get(Table::Slots, &slot_key(1)).unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}

#[test]
fn rocks_store_refuses_a_foreign_database() {
    // Our tables, holding data, but no schema version: someone else's database.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), names).unwrap();
        db.put_cf(db.cf_handle("slots").unwrap(), b"x", b"y")
            .unwrap();
    }
    let err = RocksStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a Lockstep database"), "{err}");
}

#[test]
fn rocks_store_reports_an_unopenable_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let err = RocksStore::open(&file).unwrap_err();
    assert!(
        matches!(err, Error::Open { .. }) && err.to_string().contains("a-file"),
        "{err}"
    );
}

#[derive(Debug, Clone)]
enum TestOp {
    Put(u8, Vec<u8>, Vec<u8>),
    Delete(u8, Vec<u8>),
}

fn op() -> impl Strategy<Value = TestOp> {
    let key = prop::collection::vec(0u8..4, 0..4);
    prop_oneof![
        (
            0u8..4,
            key.clone(),
            prop::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(t, k, v)| TestOp::Put(t, k, v)),
        (0u8..4, key).prop_map(|(t, k)| TestOp::Delete(t, k)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random batches leave both backends with the same contents, prefix by prefix.
    #[test]
    fn backends_agree(batches in prop::collection::vec(prop::collection::vec(op(), 0..6), 1..6),
                      prefix in prop::collection::vec(0u8..4, 0..3)) {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksStore::open(dir.path()).unwrap();
        let memory = MemoryStore::default();
        for ops in batches {
            let mut batch = Batch::default();
            for op in ops {
                match op {
                    TestOp::Put(t, k, v) => batch.put(Table::ALL[usize::from(t)], &k, &v),
                    TestOp::Delete(t, k) => batch.delete(Table::ALL[usize::from(t)], &k),
                };
            }
            rocks.write(batch.clone()).unwrap();
            memory.write(batch).unwrap();
        }
        for table in &Table::ALL[..4] {
            prop_assert_eq!(
                rocks.scan_prefix(*table, &prefix).unwrap(),
                memory.scan_prefix(*table, &prefix).unwrap()
            );
        }
    }
}
