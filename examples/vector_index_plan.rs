//! Prints the `maintenance_work_mem` chatmigrate plans for an HNSW build,
//! from facts read from the server (bench/vector-index.sh passes them; the
//! estimator is `src/vector_index/memory.rs`, reached through the
//! library's `#[doc(hidden)]` `__private` module).
//!
//! usage: vector_index_plan RELTUPLES RELPAGES CURRENT_BLOCKS DIMS M
//!        SERVER_VERSION_NUM CURRENT_KB CAP_KB
//!
//! Prints one line of `key=value` pairs: rows, needed_kb (serial and
//! parallel: the larger), wanted_kb (with the margin), set (the value to
//! send, or `-` to keep the server's), short (true when the cap is below
//! the estimate).

use chatmigrate::__private::vector_index::memory::{estimate_rows, plan_memory, setting, Hnsw, VectorType};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 8 {
        eprintln!("usage: vector_index_plan RELTUPLES RELPAGES CURRENT_BLOCKS DIMS M SERVER_VERSION_NUM CURRENT_KB CAP_KB");
        std::process::exit(2);
    }
    let num = |i: usize| -> u64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("vector_index_plan: argument {} is not a whole number: {:?}", i + 1, args[i]);
            std::process::exit(2)
        })
    };
    let reltuples: f64 = args[0].parse().unwrap_or(-1.0);
    let (relpages, blocks, dims, m) = (num(1), num(2), num(3), num(4));
    let (version, current_kb, cap_kb) = (num(5), num(6), num(7));
    let Some(rows) = estimate_rows(reltuples, relpages, blocks) else {
        eprintln!("vector_index_plan: the table has no row estimate (run ANALYZE)");
        std::process::exit(1);
    };
    let value = VectorType::Vector.value_bytes(u32::try_from(dims).unwrap_or(u32::MAX)).unwrap_or(0);
    let graph = Hnsw::new(value, u32::try_from(m).unwrap_or(16), u32::try_from(version).unwrap_or(0));
    let Some(needed_kb) = graph.required_kb_any(rows) else {
        eprintln!("vector_index_plan: {rows} rows do not fit in the largest maintenance_work_mem");
        std::process::exit(1);
    };
    let plan = plan_memory(needed_kb, current_kb, cap_kb);
    println!(
        "rows={rows} needed_kb={needed_kb} wanted_kb={} set={} short={}",
        plan.wanted_kb,
        plan.set_kb.map_or("-".to_string(), setting),
        plan.short
    );
}
