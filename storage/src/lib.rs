//! Persistence for the Lockstep aggregator: storage traits, a RocksDB implementation and an
//! in-memory one for tests.
