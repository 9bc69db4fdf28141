//! The STF step machine: its rows agree with the executor (every `World::seal` checks that),
//! they check on their own, and every way of forging them that the STF circuit must refuse is
//! refused by the checker.

use std::collections::HashSet;

use lockstep_reference_rollup::{
    abi::{self, CallData, Method},
    block::{Block, Step},
    machine::{self, Cell, Kind, Row, Scratch, MAX_OPS_PER_ROW},
    state::State,
    Error,
};

use crate::world::*;

/// A slot whose blocks need every row kind: remote and local calls, a re-entrant call, a
/// callee that reverts, a caller that reverts after its callee served, a swap with value, a
/// transfer. Returns rollup 1's and rollup 2's (pre state, block, rows).
fn busy_slot() -> Vec<(State, Block, Vec<Row>)> {
    busy_runs()
        .into_iter()
        .map(|(pre, block, run)| (pre, block, run.rows))
        .collect()
}

fn busy_runs() -> Vec<(State, Block, machine::Run)> {
    let mut world = World::new(40);
    world
        .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
        .unwrap();
    world
        .send(
            1,
            TO_FORWARDER_2,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    world
        .send(1, TO_COUNTER_2, 7, forward_then_revert(Method::Increment))
        .unwrap();
    let out = abi::swap_output(AMM_ETH, AMM_TOKENS, 2 * ETH);
    world
        .send(
            1,
            TO_AMM_2,
            2 * ETH,
            CallData::forward(Method::Swap, Method::Transfer, out),
        )
        .unwrap();
    world
        .send(1, TO_COUNTER_1, 0, forward(Method::Increment))
        .unwrap();
    world
        .send(1, TO_REVERTER_2, 5, forward(Method::Increment))
        .unwrap();
    world.send(1, BOB, 3, CallData::transfer()).unwrap();
    let sealed = world.seal();
    sealed
        .iter()
        .zip(&world.pre_states)
        .take(2)
        .map(|(block, pre)| {
            let block = Block::decode(&block.data).unwrap();
            let run = machine::run(pre, domain(), &block).unwrap();
            (pre.clone(), block, run)
        })
        .collect()
}

fn refusal(pre: &State, block: &Block, rows: &[Row]) -> String {
    match machine::check(pre, domain(), block, rows) {
        Ok(_) => panic!("forged rows were accepted"),
        Err(error) => error.to_string(),
    }
}

fn position(rows: &[Row], kind: Kind) -> usize {
    rows.iter()
        .position(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} row"))
}

#[test]
fn a_busy_slot_uses_every_row_kind_within_the_op_budget() {
    let slot = busy_slot();
    let kinds: HashSet<Kind> = slot
        .iter()
        .flat_map(|(_, _, rows)| rows.iter().map(|r| r.kind))
        .collect();
    for kind in [
        Kind::Tx,
        Kind::Serve,
        Kind::Move,
        Kind::Code,
        Kind::App,
        Kind::Tokens,
        Kind::Call,
        Kind::Return,
        Kind::Resume,
        Kind::Mark,
        Kind::Undo,
        Kind::Pop,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} row");
    }
    let widest = slot
        .iter()
        .flat_map(|(_, _, rows)| rows.iter().map(|r| r.ops.len()))
        .max()
        .unwrap();
    assert!(widest <= MAX_OPS_PER_ROW);
    // An outgoing call and a re-entrant served call fill the budget exactly.
    assert_eq!(widest, MAX_OPS_PER_ROW);
}

#[test]
fn stats_count_what_the_rows_hold() {
    for (_, block, run) in busy_runs() {
        let stats = run.stats();
        println!("rollup {}: {stats:?}", block.rollup_id);
        assert_eq!(stats.steps, block.steps.len());
        assert_eq!(stats.rows, run.rows.len());
        assert_eq!(stats.state_ops + stats.scratch_ops, run.op_count());
        assert_eq!(
            stats.kinds.iter().map(|(_, n)| n).sum::<usize>(),
            stats.rows
        );
        assert!(stats.state_keys <= stats.state_ops && stats.scratch_cells <= stats.scratch_ops);
    }
}

/// The builder's meter: a [`machine::Machine`] given a block's tape one transaction at a time
/// (each prefix ending where every frame has closed) runs the rows of one run over the whole
/// tape, and needs what the run's stats say; a checkpoint taken between transactions undoes
/// the next one exactly.
#[test]
fn a_machine_fed_transaction_by_transaction_runs_the_rows_of_one_run() {
    for (pre, block, run) in busy_runs() {
        let ends: Vec<usize> = run
            .rows
            .iter()
            .filter(|r| r.after.next == machine::Next::Fetch && r.after.depth == 0)
            .map(|r| r.after.tape as usize)
            .collect();
        assert!(ends.len() > 2, "rollup {}: {ends:?}", block.rollup_id);
        let mut meter = machine::Machine::new(&pre, block.rollup_id);
        for (i, &end) in ends.iter().enumerate() {
            let checkpoint = meter.checkpoint();
            meter.advance(&block.steps[..end]).unwrap();
            if i == 1 {
                let after = (meter.rows().to_vec(), meter.needs());
                meter.restore(checkpoint);
                assert!(meter.rows().len() < after.0.len());
                meter.advance(&block.steps[..end]).unwrap();
                assert_eq!((meter.rows().to_vec(), meter.needs()), after);
            }
        }
        assert_eq!(meter.rows(), run.rows.as_slice());
        assert_eq!(meter.needs(), run.stats().capacity());
        // Stopping inside a transaction (a call waiting for its result) is an error.
        let waiting = run
            .rows
            .iter()
            .find(|r| r.after.frame.waiting && r.after.next == machine::Next::Fetch)
            .map(|r| r.after.tape as usize);
        if let Some(cut) = waiting {
            let mut partial = machine::Machine::new(&pre, block.rollup_id);
            let err = partial.advance(&block.steps[..cut]).unwrap_err();
            assert!(err.to_string().contains("waits for its result"), "{err}");
        }
    }
}

#[test]
fn padded_rows_still_check_and_overflowing_the_capacity_is_an_error() {
    let (pre, block, rows) = busy_slot().remove(0);
    let run = machine::run(&pre, domain(), &block).unwrap();
    assert_eq!(run.rows, rows);
    let padded = run.padded(run.rows.len() + 5).unwrap();
    assert_eq!(padded.last().unwrap().kind, Kind::Pad);
    assert_eq!(
        machine::check(&pre, domain(), &block, &padded).unwrap(),
        run.outputs
    );
    let error = run.padded(run.rows.len() - 1).unwrap_err().to_string();
    assert!(error.contains("row capacity"), "{error}");
}

#[test]
fn a_wrong_post_root_is_refused() {
    let (pre, mut block, rows) = busy_slot().remove(0);
    block.post_root = block.pre_root;
    assert!(refusal(&pre, &block, &rows).contains("not the header's"));
    let error = machine::run(&pre, domain(), &block)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not the header's"), "{error}");
}

#[test]
fn a_read_of_another_value_is_refused() {
    // The transaction row claims Alice holds more than she does.
    let (pre, block, mut rows) = busy_slot().remove(0);
    let tx = position(&rows, Kind::Tx);
    let more = lockstep_circuits::Fr::from(1_000_000);
    let ops = &mut rows[tx].ops;
    assert!(matches!(ops[0].cell, Cell::State(_)));
    assert!(matches!(ops[2].cell, Cell::Scratch(Scratch::Journal(0, 1))));
    ops[0].before += more;
    ops[0].after += more;
    // The journal keeps the claimed previous value: the row is consistent in itself.
    ops[2].after += more;
    let error = refusal(&pre, &block, &rows);
    assert!(
        error.contains("not the key's value at the pre root"),
        "{error}"
    );
}

#[test]
fn registers_a_row_does_not_compute_are_refused() {
    // A served call credits the ETH delta; claim twice as much, consistently onwards.
    let (pre, block, mut rows) = busy_slot().remove(1);
    let at = rows
        .iter()
        .position(|r| r.kind == Kind::Move && r.after.eth_delta != r.before.eth_delta)
        .expect("a served call with value");
    let extra = rows[at].after.eth_delta - rows[at].before.eth_delta;
    for row in &mut rows[at..] {
        row.after.eth_delta += extra;
        row.before.eth_delta += extra;
    }
    rows[at].before.eth_delta -= extra;
    let error = refusal(&pre, &block, &rows);
    assert!(
        error.contains(&format!("row {at}: ends with other registers")),
        "{error}"
    );
}

#[test]
fn a_skipped_or_reordered_row_is_refused() {
    let (pre, block, rows) = busy_slot().remove(0);
    let code = position(&rows, Kind::Code);

    let mut skipped = rows.clone();
    skipped.remove(code);
    let error = refusal(&pre, &block, &skipped);
    assert!(
        error.contains(&format!("row {code}: does not start from the registers")),
        "{error}"
    );

    let mut swapped = rows.clone();
    swapped.swap(code, code + 1);
    let error = refusal(&pre, &block, &swapped);
    assert!(error.contains(&format!("row {code}:")), "{error}");

    let mut truncated = rows;
    truncated.pop();
    let error = refusal(&pre, &block, &truncated);
    assert!(error.contains("the rows end at tape step"), "{error}");
}

#[test]
fn a_row_of_the_wrong_kind_is_refused() {
    let (pre, block, mut rows) = busy_slot().remove(0);
    let code = position(&rows, Kind::Code);
    rows[code].kind = Kind::App;
    let error = refusal(&pre, &block, &rows);
    assert!(
        error.contains("is a App row, but its registers call for Code"),
        "{error}"
    );
}

#[test]
fn a_revert_that_does_not_restore_state_is_refused() {
    // Rollup 2 served a call whose caller later reverted: its changes are undone. Make one
    // undo write back the value it is undoing instead of the journaled one.
    let (pre, block, mut rows) = busy_slot().remove(1);
    let undo = position(&rows, Kind::Undo);
    let write = rows[undo].ops.last_mut().unwrap();
    assert!(matches!(write.cell, Cell::State(_)));
    assert_ne!(write.before, write.after);
    write.after = write.before;
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains("but the row computes"), "{error}");

    // Or drop the undo rows: the pop that follows starts from other registers.
    let (pre, block, mut rows) = busy_slot().remove(1);
    rows.retain(|r| r.kind != Kind::Undo);
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains(&format!("row {undo}:")), "{error}");
}

#[test]
fn a_wrong_assumed_result_is_refused() {
    // The tape says rollup 2's counter returned 5, not 1.
    let (pre, mut block, rows) = busy_slot().remove(0);
    let Step::Return(ret) = block
        .steps
        .iter_mut()
        .find(|s| matches!(s, Step::Return(_)))
        .unwrap()
    else {
        unreachable!()
    };
    ret.word = 5;
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains("but the row computes"), "{error}");
    // Run honestly on the tampered tape, the forwarder stores 5: the root is not the header's.
    let error = machine::run(&pre, domain(), &block)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not the header's"), "{error}");
}

#[test]
fn a_transfer_above_the_balance_is_refused() {
    let (pre, mut block, rows) = busy_slot().remove(0);
    let Step::Tx(tx) = block
        .steps
        .iter_mut()
        .rev()
        .find(|s| matches!(s, Step::Tx(_)))
        .unwrap()
    else {
        unreachable!()
    };
    tx.value = 50 * ETH;
    let error = machine::run(&pre, domain(), &block)
        .unwrap_err()
        .to_string();
    assert!(error.contains("but holds"), "{error}");
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains("but holds"), "{error}");
}

#[test]
fn a_served_call_with_another_committed_flag_is_refused() {
    // Rollup 2 served an uncommitted call (its caller reverted); flip the flag on its tape.
    let (pre, mut block, rows) = busy_slot().remove(1);
    let flipped = block
        .steps
        .iter_mut()
        .find_map(|s| match s {
            Step::Serve(call) if !call.committed => Some(call),
            _ => None,
        })
        .expect("an uncommitted served call");
    flipped.committed = true;
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains("but the row computes"), "{error}");
    // Run on the flipped tape, the callee keeps its changes: not the header's root.
    let error = machine::run(&pre, domain(), &block)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not the header's"), "{error}");
}

#[test]
fn scratch_must_be_read_as_written() {
    // An undo row that claims the journal held another previous value, and writes that value
    // back consistently: the row computes what it claims, but scratch was not read as written.
    let (pre, block, mut rows) = busy_slot().remove(1);
    let undo = position(&rows, Kind::Undo);
    let ops = &mut rows[undo].ops;
    assert!(matches!(ops[1].cell, Cell::Scratch(Scratch::Journal(_, 1))));
    ops[1].before += lockstep_circuits::Fr::one();
    ops[1].after += lockstep_circuits::Fr::one();
    ops[2].after += lockstep_circuits::Fr::one();
    let error = refusal(&pre, &block, &rows);
    assert!(
        error.contains(&format!("row {undo}: reads")) && error.contains("from scratch"),
        "{error}"
    );
}

#[test]
fn a_row_with_too_many_ops_is_refused() {
    let (pre, block, mut rows) = busy_slot().remove(0);
    let op = rows[0].ops[0];
    rows[0].ops.resize(MAX_OPS_PER_ROW + 1, op);
    let error = refusal(&pre, &block, &rows);
    assert!(error.contains("more than the"), "{error}");
    assert!(matches!(
        machine::check(&pre, domain(), &block, &rows),
        Err(Error::Machine { row: 0, .. })
    ));
}
