//! A linearizability checker for a read/write/compare-and-set register, in
//! the style of Wing & Gong's search with Porcupine's memoization.
//!
//! A history is a list of operations, each with the time it was invoked and
//! the time its answer came back (or no answer: a timed-out write may or may
//! not have taken effect, so it is given an infinite return time, which lets
//! the search place it anywhere after its call, including "never mattered").
//! The history is linearizable if some total order of the operations (1)
//! respects real time: an operation that returned before another was invoked
//! comes first, and (2) replays correctly on a single register. The search
//! picks, step by step, an operation that may come next (invoked before
//! every pending operation's return), applies it to the model, and
//! backtracks on a mismatch; states already seen (which operations are done,
//! register value) are cached, which keeps the search small in practice.

use std::collections::HashSet;

/// What a client asked, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned `value` (None: the key was absent).
    Read {
        value: Option<u64>,
    },
    Write {
        value: u64,
    },
    /// Compare-and-set: `ok` is Some(true/false) if the answer came back,
    /// None if unknown.
    Cas {
        expected: Option<u64>,
        new: u64,
        ok: Option<bool>,
    },
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub client: usize,
    pub op: RegisterOp,
    /// Invocation time (any monotonic unit, e.g. ns since the test began).
    pub call: u64,
    /// Return time; `None` if no answer came (the effect is unknown).
    pub ret: Option<u64>,
}

/// Is `history` linearizable for a register starting at `initial`?
pub fn check_register(history: &[Operation], initial: Option<u64>) -> bool {
    // Reads without an answer constrain nothing; drop them.
    let ops: Vec<&Operation> = history
        .iter()
        .filter(|o| o.ret.is_some() || !matches!(o.op, RegisterOp::Read { .. }))
        .collect();
    let n = ops.len();
    let calls: Vec<u64> = ops.iter().map(|o| o.call).collect();
    let rets: Vec<u64> = ops.iter().map(|o| o.ret.unwrap_or(u64::MAX)).collect();
    let mut search = Search {
        ops: &ops,
        calls,
        rets,
        seen: HashSet::new(),
    };
    let mut done = vec![0u64; n.div_ceil(64)];
    // Deep histories recurse deeply: run on a thread with a big stack.
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || search.dfs(&mut done, 0, initial))
            .expect("spawn checker thread")
            .join()
            .expect("checker thread")
    })
}

struct Search<'a> {
    ops: &'a [&'a Operation],
    calls: Vec<u64>,
    rets: Vec<u64>,
    seen: HashSet<(Vec<u64>, Option<u64>)>,
}

impl Search<'_> {
    fn dfs(&mut self, done: &mut Vec<u64>, count: usize, state: Option<u64>) -> bool {
        let n = self.ops.len();
        if count == n {
            return true;
        }
        if !self.seen.insert((done.clone(), state)) {
            return false;
        }
        let is_done = |done: &Vec<u64>, i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        // The earliest return among pending operations bounds what may go next.
        let horizon = (0..n)
            .filter(|&i| !is_done(done, i))
            .map(|i| self.rets[i])
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if is_done(done, i) || self.calls[i] > horizon {
                continue;
            }
            let answered = self.ops[i].ret.is_some();
            let next = match &self.ops[i].op {
                RegisterOp::Read { value } => (*value == state).then_some(state),
                RegisterOp::Write { value } => Some(Some(*value)),
                RegisterOp::Cas { expected, new, ok } => {
                    let matches = *expected == state;
                    match ok {
                        Some(true) if matches => Some(Some(*new)),
                        Some(false) if !matches => Some(state),
                        None if !answered => Some(if matches { Some(*new) } else { state }),
                        _ => None,
                    }
                }
            };
            let Some(next) = next else { continue };
            done[i / 64] |= 1 << (i % 64);
            if self.dfs(done, count + 1, next) {
                return true;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, op: RegisterOp, call: u64, ret: u64) -> Operation {
        Operation {
            client,
            op,
            call,
            ret: Some(ret),
        }
    }

    #[test]
    fn accepts_overlapping_operations_that_can_be_ordered() {
        // w(1) overlaps r->1 and r->0: r->0 first, then w(1), then r->1.
        let h = vec![
            op(0, RegisterOp::Write { value: 1 }, 0, 10),
            op(1, RegisterOp::Read { value: None }, 1, 3),
            op(2, RegisterOp::Read { value: Some(1) }, 2, 12),
        ];
        assert!(check_register(&h, None));
    }

    #[test]
    fn rejects_a_stale_read_after_a_completed_write() {
        let h = vec![
            op(0, RegisterOp::Write { value: 1 }, 0, 5),
            op(1, RegisterOp::Read { value: None }, 6, 8),
        ];
        assert!(!check_register(&h, None));
    }

    #[test]
    fn rejects_reads_that_go_back_in_time() {
        // Two sequential reads see 2 then 1, while the writes of 1 and 2 are
        // sequential: 1 then 2. Not linearizable.
        let h = vec![
            op(0, RegisterOp::Write { value: 1 }, 0, 2),
            op(0, RegisterOp::Write { value: 2 }, 3, 20),
            op(1, RegisterOp::Read { value: Some(2) }, 4, 6),
            op(1, RegisterOp::Read { value: Some(1) }, 7, 9),
        ];
        assert!(!check_register(&h, None));
    }

    #[test]
    fn rejects_two_successful_cas_from_the_same_value() {
        let h = vec![
            op(0, RegisterOp::Write { value: 0 }, 0, 1),
            op(
                1,
                RegisterOp::Cas {
                    expected: Some(0),
                    new: 1,
                    ok: Some(true),
                },
                2,
                10,
            ),
            op(
                2,
                RegisterOp::Cas {
                    expected: Some(0),
                    new: 2,
                    ok: Some(true),
                },
                3,
                11,
            ),
        ];
        assert!(!check_register(&h, None));
    }

    #[test]
    fn a_timed_out_write_may_have_happened_or_not() {
        let lost = Operation {
            client: 0,
            op: RegisterOp::Write { value: 7 },
            call: 0,
            ret: None,
        };
        let seen = vec![
            lost.clone(),
            op(1, RegisterOp::Read { value: Some(7) }, 5, 6),
        ];
        assert!(check_register(&seen, None));
        let unseen = vec![lost, op(1, RegisterOp::Read { value: None }, 5, 6)];
        assert!(check_register(&unseen, None));
    }

    #[test]
    fn a_long_sequential_history_checks_quickly() {
        let mut h = Vec::new();
        for i in 0..2000u64 {
            h.push(op(0, RegisterOp::Write { value: i }, 4 * i, 4 * i + 1));
            h.push(op(
                1,
                RegisterOp::Read { value: Some(i) },
                4 * i + 2,
                4 * i + 3,
            ));
        }
        assert!(check_register(&h, None));
        h.push(op(
            1,
            RegisterOp::Read { value: Some(5) },
            10_000_000,
            10_000_001,
        ));
        assert!(!check_register(&h, None));
    }
}
