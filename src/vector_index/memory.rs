//! The `maintenance_work_mem` a pgvector index build needs, derived from
//! pgvector's source at tag v0.8.6 (the version of the suite's server and of
//! the Citus lab) and PostgreSQL 18's, and checked against the real server
//! (docs/vector-indexes.md has the measurements; the tests below hold them).
//!
//! # HNSW
//!
//! The build inserts the rows into a graph held in memory until the graph
//! reaches `maintenance_work_mem`; then pgvector says `NOTICE: hnsw graph no
//! longer fits into maintenance_work_mem after N tuples`, writes the graph
//! out and inserts every remaining row into the on-disk index one by one,
//! many times more slowly (src/hnswbuild.c:1-35, 530-550).
//!
//! One element of the graph (src/hnsw.h:182-214, src/hnswutils.c:205-268,
//! src/hnswbuild.c:553-554), on a 64-bit server:
//! - `HnswElementData`, 128 bytes: the next pointer, 10 heap TIDs, level and
//!   flags, hash, neighbour pointer, block and offsets, value pointer, an LWLock;
//! - the list of neighbour-array pointers, 8 × (level + 1) bytes;
//! - one neighbour array per level, 8 + 16 × lm bytes, lm = 2m at level 0 and
//!   m above (`HNSW_NEIGHBOR_ARRAY_SIZE`, `HnswGetLayerM`, hnsw.h:84, 127);
//! - the value, detoasted (`VARSIZE_ANY`, hnswbuild.c:504): vector 8 + 4d,
//!   halfvec 8 + 2d, bit 8 + ⌈d/8⌉, sparsevec 16 + 8 × nnz.
//!
//! A row's level is ⌊−ln U / ln m⌋ (`HnswInitElement`, hnswutils.c:249;
//! `HnswGetMl`, hnsw.h:130), capped by `HnswGetMaxLevel` (hnsw.h:133): a row
//! reaches level l with probability m^−l, so it has Σ m^−l ≈ 1/(m − 1) upper
//! levels on average. `ef_construction` changes no allocation of the graph:
//! the search it sizes uses a context reset after every row (hnswbuild.c:594-608).
//!
//! **Serial build.** The graph lives in a generation memory context of 1 MiB
//! blocks (hnswbuild.c:729-734). Before each row pgvector compares the
//! context's allocated memory, whole blocks, with `maintenance_work_mem`
//! (hnswbuild.c:530, 646-655, 724). Every allocation is MAXALIGNed and carries
//! a chunk header: 8 bytes (`MemoryChunk`, PostgreSQL 16 and later) or 24
//! (`GenerationChunk`, up to 15). A block loses its 56-byte header and, on
//! average, half of the allocation that no longer fits at its end; the first
//! block shares its malloc with the 128-byte context (PostgreSQL's
//! generation.c:229, 268, 569). So the NOTICE comes with the first row after
//! the block that reaches `maintenance_work_mem` has been allocated.
//!
//! **Parallel build.** The leader allocates one shared area of
//! `maintenance_work_mem` − 3 MiB (hnswbuild.c:958-966), carved without
//! headers (hnswbuild.c:660-678), and stops 1 MiB short of its end
//! (hnswbuild.c:506-507, 530): the graph gets `maintenance_work_mem` − 4 MiB,
//! all of it reserved in shared memory (/dev/shm) when the build starts.
//!
//! **Serial or parallel** (hnswbuild.c:1067-1083 with PostgreSQL's
//! `plan_create_index_workers`, planner.c:7114-7238, and
//! `compute_parallel_worker`, allpaths.c:4453): PostgreSQL plans no worker for
//! a table smaller than `min_parallel_table_scan_size` (8 MB) or with
//! `maintenance_work_mem` below 32 MB per participant (64 MB for one worker);
//! otherwise pgvector asks for `max_parallel_maintenance_workers` (or the
//! table's `parallel_workers`), whatever PostgreSQL planned. When no worker
//! starts, the build falls back to serial with the graph in private memory.
//!
//! # IVFFlat
//!
//! IVFFlat has no slow path: when its k-means does not fit, the build fails
//! with `memory required is X MB, maintenance_work_mem is Y MB`
//! (src/ivfutils.c:121-129). It holds the centers and a sample of
//! max(50 × lists, 10,000) rows (ivfbuild.c:391-396, 437-461) and the
//! buffers of Elkan's k-means (src/ivfkmeans.c:265-290); the sort that
//! follows spills to disk and needs no minimum.

/// One mebibyte: PostgreSQL's "MB" in memory settings.
pub const MIB: u64 = 1 << 20;

/// The largest `maintenance_work_mem` PostgreSQL accepts on a 64-bit server,
/// in kB (`MAX_KILOBYTES` = INT_MAX, guc.h:27).
pub const MAX_MAINTENANCE_WORK_MEM_KB: u64 = i32::MAX as u64;

/// The smallest, in kB (guc_tables.c: 1024).
pub const MIN_MAINTENANCE_WORK_MEM_KB: u64 = 1024;

/// The margin chatmigrate adds to an estimate, in percent. The formula is
/// within 0.1% of the tuple where the real server's NOTICE fires (see the
/// tests); the margin is for the row count, which is an estimate that moves
/// (rows written since the last ANALYZE, dead rows a non-concurrent build
/// still indexes).
pub const MARGIN_PERCENT: u64 = 10;

/// pgvector's index types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorType {
    Vector,
    Halfvec,
    Bit,
    Sparsevec,
}

impl VectorType {
    /// The type of a column or cast, by its name as the parser gives it.
    pub fn from_type_name(name: &str) -> Option<VectorType> {
        match name {
            "vector" => Some(VectorType::Vector),
            "halfvec" => Some(VectorType::Halfvec),
            "bit" => Some(VectorType::Bit),
            "sparsevec" => Some(VectorType::Sparsevec),
            _ => None,
        }
    }

    /// The type an operator class indexes: `vector_l2_ops` → vector,
    /// `halfvec_cosine_ops` → halfvec, `bit_hamming_ops` → bit (pgvector's
    /// sql/vector.sql names them all `<type>_<distance>_ops`).
    pub fn from_opclass(opclass: &str) -> Option<VectorType> {
        let rest = opclass.strip_suffix("_ops")?;
        let (ty, distance) = rest.split_once('_')?;
        if distance.is_empty() {
            return None;
        }
        VectorType::from_type_name(ty)
    }

    pub fn name(self) -> &'static str {
        match self {
            VectorType::Vector => "vector",
            VectorType::Halfvec => "halfvec",
            VectorType::Bit => "bit",
            VectorType::Sparsevec => "sparsevec",
        }
    }

    /// Bytes of one value of `dims` dimensions as the build copies it
    /// (`VECTOR_SIZE`, vector.h:13; `HALFVEC_SIZE`, halfvec.h:62;
    /// `VARBITTOTALLEN`). `None` for sparsevec, whose size follows its
    /// non-zero elements: [`sparsevec_bytes`].
    pub fn value_bytes(self, dims: u32) -> Option<u64> {
        let d = u64::from(dims);
        match self {
            VectorType::Vector => Some(8 + 4 * d),
            VectorType::Halfvec => Some(8 + 2 * d),
            VectorType::Bit => Some(8 + d.div_ceil(8)),
            VectorType::Sparsevec => None,
        }
    }
}

/// Bytes of a sparsevec with `nnz` non-zero elements (`SPARSEVEC_SIZE`,
/// sparsevec.h:33): for a column, use its average (`pg_stats.avg_width`).
pub fn sparsevec_bytes(nnz: u32) -> u64 {
    16 + 8 * u64::from(nnz)
}

fn maxalign(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

/// How a server's memory contexts lay out the serial build's graph, by
/// `server_version_num`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocator {
    /// Bytes of the header in front of every allocation.
    pub chunk_header: u64,
    /// Bytes of the first block taken by the context itself.
    pub first_block_loss: u64,
}

impl Allocator {
    /// PostgreSQL 16 and later: `MemoryChunk` (8 bytes) and a first block that
    /// holds the 128-byte `GenerationContext`; 15: `GenerationChunk` (block,
    /// size and context pointers: 24 bytes), same first block; up to 14: no
    /// first block in the context's malloc.
    pub fn for_server(version_num: u32) -> Allocator {
        match version_num {
            160000.. => Allocator {
                chunk_header: 8,
                first_block_loss: 128,
            },
            150000.. => Allocator {
                chunk_header: 24,
                first_block_loss: 128,
            },
            _ => Allocator {
                chunk_header: 24,
                first_block_loss: 0,
            },
        }
    }
}

/// Whether the graph is built by one process in private memory or by the
/// leader and workers in one shared area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    Serial,
    Parallel,
}

/// Bytes of `HnswElementData` (hnsw.h:182-198; 128 on 64-bit servers).
const ELEMENT_BYTES: u64 = 128;
/// A generation block's size and header (hnswbuild.c:729-734; generation.c:47).
const BLOCK_BYTES: u64 = MIB;
const BLOCK_HEADER: u64 = 56;
/// The shared area's reserve: 3 MiB left for other objects (hnswbuild.c:962)
/// and 1 MiB kept free so allocations never fail (hnswbuild.c:507).
const SHARED_RESERVE: u64 = 3 * MIB;
const SHARED_MARGIN: u64 = MIB;

/// The HNSW graph of one index build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hnsw {
    /// Bytes of one indexed value ([`VectorType::value_bytes`]).
    pub value_bytes: u64,
    /// The index's `m` (default 16).
    pub m: u32,
    pub allocator: Allocator,
}

impl Hnsw {
    pub fn new(value_bytes: u64, m: u32, server_version_num: u32) -> Hnsw {
        Hnsw {
            value_bytes,
            m: m.clamp(2, 100),
            allocator: Allocator::for_server(server_version_num),
        }
    }

    /// The highest level a row can get (`HnswGetMaxLevel`, hnsw.h:133: the
    /// neighbour tuple must fit on an 8 kB page, and the level in a uint8).
    fn max_level(&self) -> u32 {
        // (BLCKSZ - page header - opaque - neighbour tuple header - item id) / TID / m - 2
        let per_page = (8192 - 24 - 8 - 4 - 4) / 6;
        (per_page / self.m).saturating_sub(2).min(63)
    }

    /// The expected number of levels above 0 of one row: Σ m^−l.
    fn upper_levels(&self) -> f64 {
        let m = f64::from(self.m);
        (1..=self.max_level()).map(|l| m.powi(-(l as i32))).sum()
    }

    /// The allocations of one element as (bytes, expected count per row),
    /// header included: the element, its neighbour-pointer list, the level-0
    /// array, one array per upper level, the value.
    fn allocations(&self, build: Build) -> [(f64, f64); 5] {
        let h = match build {
            Build::Serial => self.allocator.chunk_header,
            Build::Parallel => 0,
        };
        let m = u64::from(self.m);
        let up = self.upper_levels();
        [
            ((ELEMENT_BYTES + h) as f64, 1.0),
            // 8 × (level + 1), one allocation whatever the level.
            ((8 + h) as f64 + 8.0 * up, 1.0),
            ((8 + 16 * 2 * m + h) as f64, 1.0),
            ((8 + 16 * m + h) as f64, up),
            ((maxalign(self.value_bytes) + h) as f64, 1.0),
        ]
    }

    /// The expected bytes one row takes in the graph.
    pub fn element_bytes(&self, build: Build) -> f64 {
        self.allocations(build).iter().map(|(bytes, n)| bytes * n).sum()
    }

    /// The expected bytes a generation block leaves unused at its end: half
    /// of the allocation that no longer fits, weighted by how often each size
    /// is the one that straddles the end (in proportion to its size).
    fn block_waste(&self) -> f64 {
        let a = self.allocations(Build::Serial);
        let total: f64 = a.iter().map(|(b, n)| b * n).sum();
        let squares: f64 = a.iter().map(|(b, n)| b * b * n).sum();
        squares / (2.0 * total)
    }

    /// The number of rows the graph holds with this `maintenance_work_mem`
    /// (kB): on a larger table the NOTICE says "after N tuples" with this N.
    pub fn tuples_fitting(&self, maintenance_work_mem_kb: u64, build: Build) -> u64 {
        let limit = maintenance_work_mem_kb.saturating_mul(1024);
        let element = self.element_bytes(build);
        match build {
            Build::Serial => {
                // Blocks allocated when the check first fails: k × 1 MiB − loss ≥ limit.
                let loss = self.allocator.first_block_loss;
                let blocks = (limit + loss).div_ceil(BLOCK_BYTES);
                let full = blocks.saturating_sub(1) as f64;
                let usable =
                    full * (BLOCK_BYTES - BLOCK_HEADER) as f64 - full * self.block_waste() - if full > 0.0 { loss as f64 } else { 0.0 };
                // The row whose allocations opened the last block is in the graph too.
                (usable.max(0.0) / element).floor() as u64 + 1
            }
            Build::Parallel => {
                let area = if limit > SHARED_RESERVE { limit - SHARED_RESERVE } else { limit };
                let room = area.saturating_sub(SHARED_MARGIN);
                (room as f64 / element).ceil() as u64
            }
        }
    }

    /// The smallest `maintenance_work_mem` (kB) with which all `rows` fit,
    /// so that no NOTICE comes. `None` when not even PostgreSQL's largest
    /// setting holds them.
    pub fn required_kb(&self, rows: u64, build: Build) -> Option<u64> {
        let fits = |kb: u64| self.tuples_fitting(kb, build) >= rows;
        if fits(MIN_MAINTENANCE_WORK_MEM_KB) {
            return Some(MIN_MAINTENANCE_WORK_MEM_KB);
        }
        if !fits(MAX_MAINTENANCE_WORK_MEM_KB) {
            return None;
        }
        let (mut lo, mut hi) = (MIN_MAINTENANCE_WORK_MEM_KB, MAX_MAINTENANCE_WORK_MEM_KB);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// What a build of `rows` needs whichever way it runs: a parallel build
    /// can fall back to serial when no worker starts, and raising
    /// `maintenance_work_mem` to 64 MB can make a serial build parallel.
    pub fn required_kb_any(&self, rows: u64) -> Option<u64> {
        Some(self.required_kb(rows, Build::Serial)?.max(self.required_kb(rows, Build::Parallel)?))
    }

    /// The rows that go the slow way with this `maintenance_work_mem`: the
    /// rows after the NOTICE, or 0 when the graph holds them all.
    pub fn rows_on_disk(&self, rows: u64, maintenance_work_mem_kb: u64, build: Build) -> u64 {
        rows.saturating_sub(self.tuples_fitting(maintenance_work_mem_kb, build))
    }
}

/// What decides whether PostgreSQL and pgvector build an HNSW index in
/// parallel, read from the server and the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParallelInputs {
    /// The table's size now, in 8 kB blocks of its main fork
    /// (`pg_relation_size(t, 'main') / 8192`: PostgreSQL reads the current
    /// size, not `relpages`). Vectors stored out of line (TOAST) do not count.
    pub heap_blocks: u64,
    pub maintenance_work_mem_kb: u64,
    pub max_parallel_maintenance_workers: u32,
    /// `min_parallel_table_scan_size` in blocks (1024 = 8 MB by default).
    pub min_parallel_table_scan_size_blocks: u64,
    /// The table's `parallel_workers` storage parameter, when set.
    pub table_parallel_workers: Option<u32>,
    /// False for a temporary table or an index with a parallel-unsafe
    /// expression or predicate: always serial.
    pub parallel_safe: bool,
}

/// The workers pgvector asks for (0: a serial build). How many start also
/// depends on `max_parallel_workers` and `max_worker_processes`.
pub fn hnsw_workers(p: &ParallelInputs) -> u32 {
    let max = p.max_parallel_maintenance_workers;
    if max == 0 || !p.parallel_safe {
        return 0;
    }
    if let Some(w) = p.table_parallel_workers {
        return w.min(max);
    }
    // compute_parallel_worker: one worker from min_parallel_table_scan_size,
    // one more at every tripling.
    let threshold = p.min_parallel_table_scan_size_blocks.max(1);
    if p.heap_blocks < p.min_parallel_table_scan_size_blocks {
        return 0;
    }
    let (mut planned, mut t) = (1u32, threshold);
    while p.heap_blocks >= t.saturating_mul(3) {
        planned += 1;
        t = t.saturating_mul(3);
        if t > i32::MAX as u64 / 3 {
            break;
        }
    }
    planned = planned.min(max);
    // plan_create_index_workers: at least 32 MB of maintenance_work_mem per participant.
    while planned > 0 && p.maintenance_work_mem_kb / (u64::from(planned) + 1) < 32 * 1024 {
        planned -= 1;
    }
    // pgvector then asks for max_parallel_maintenance_workers, not for what was planned.
    if planned == 0 {
        0
    } else {
        max
    }
}

/// Heap tuples per 8 kB page at most (`MaxHeapTuplesPerPage`, htup_details.h:629).
const MAX_HEAP_TUPLES_PER_PAGE: u64 = 291;
/// `sizeof(VectorArrayData)` (ivfflat.h:318).
const VECTOR_ARRAY_HEADER: u64 = 32;

/// The k-means of one IVFFlat build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ivfflat {
    /// Bytes of one value ([`VectorType::value_bytes`]; IVFFlat takes no sparsevec).
    pub value_bytes: u64,
    pub dims: u32,
    /// The index's `lists` (default 100).
    pub lists: u32,
}

impl Ivfflat {
    /// The sample k-means runs on: 50 per list, at least 10,000, at most
    /// what the table's pages can hold (ivfbuild.c:446-455).
    pub fn samples(&self, heap_blocks: u64) -> u64 {
        let wanted = (u64::from(self.lists) * 50).max(10_000);
        wanted.min(heap_blocks.saturating_mul(MAX_HEAP_TUPLES_PER_PAGE)).max(1)
    }

    /// The bytes pgvector checks against `maintenance_work_mem` before its
    /// k-means (ivfkmeans.c:265-290): centers, the sample, and Elkan's buffers.
    pub fn required_bytes(&self, rows: u64, heap_blocks: u64) -> u64 {
        let item = maxalign(self.value_bytes);
        let lists = u64::from(self.lists);
        let dims = u64::from(self.dims);
        let allocated = self.samples(heap_blocks);
        // Elkan's buffers are sized by the rows actually sampled.
        let sampled = allocated.min(rows.max(1));
        let centers = VECTOR_ARRAY_HEADER + lists * item;
        let sample = VECTOR_ARRAY_HEADER + allocated * item;
        let new_centers = VECTOR_ARRAY_HEADER + lists * item;
        let agg = 4 * lists * dims;
        let counts = 4 * lists;
        let closest = 4 * sampled;
        let lower_bound = 4 * sampled * lists;
        let upper_bound = 4 * sampled;
        let s = 4 * lists;
        let half_cdist = 4 * lists * lists;
        let new_cdist = 4 * lists;
        centers + sample + new_centers + agg + counts + closest + lower_bound + upper_bound + s + half_cdist + new_cdist
    }

    /// The smallest `maintenance_work_mem` (kB) that passes the check
    /// (`totalSize / 1024 > maintenance_work_mem` fails it).
    pub fn required_kb(&self, rows: u64, heap_blocks: u64) -> u64 {
        (self.required_bytes(rows, heap_blocks) / 1024).max(MIN_MAINTENANCE_WORK_MEM_KB)
    }
}

/// PostgreSQL's own estimate of a table's rows now: the density seen by the
/// last VACUUM or ANALYZE (`reltuples / relpages`) times the table's current
/// size in blocks, as `table_block_relation_estimate_size` does. `None` when
/// the table was never vacuumed or analysed (`reltuples` = −1) or has no
/// density to go by: count its rows instead.
pub fn estimate_rows(reltuples: f64, relpages: u64, current_blocks: u64) -> Option<u64> {
    if !reltuples.is_finite() || reltuples < 0.0 {
        return None;
    }
    if current_blocks == 0 {
        return Some(0);
    }
    if relpages == 0 {
        return None;
    }
    Some((reltuples / relpages as f64 * current_blocks as f64).ceil() as u64)
}

/// The `maintenance_work_mem` chatmigrate sends for one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The estimate, kB.
    pub needed_kb: u64,
    /// The estimate plus [`MARGIN_PERCENT`], rounded up to a whole MiB.
    pub wanted_kb: u64,
    /// What to set for the build; `None` when the server's value already
    /// covers `wanted_kb` (chatmigrate never lowers it).
    pub set_kb: Option<u64>,
    /// The value the build runs with: `set_kb`, else the server's.
    pub effective_kb: u64,
    /// True when even the cap is below the estimate: the NOTICE will come.
    pub short: bool,
}

/// Plans the setting for one build from the estimate (kB), the server's
/// current value and the cap (both kB).
pub fn plan_memory(needed_kb: u64, current_kb: u64, cap_kb: u64) -> MemoryPlan {
    let with_margin = needed_kb.saturating_add(needed_kb.saturating_mul(MARGIN_PERCENT) / 100);
    let wanted_kb = with_margin.div_ceil(1024).saturating_mul(1024).min(MAX_MAINTENANCE_WORK_MEM_KB);
    let target = wanted_kb.min(cap_kb);
    let set_kb = (target > current_kb).then_some(target);
    let effective_kb = set_kb.unwrap_or(current_kb);
    MemoryPlan {
        needed_kb,
        wanted_kb,
        set_kb,
        effective_kb,
        short: effective_kb < needed_kb,
    }
}

/// A memory value as PostgreSQL reads it in `SET maintenance_work_mem = '...'`
/// and as people read it: `256MB`, `1536MB`, `65537kB`.
pub fn setting(kb: u64) -> String {
    if kb % 1024 == 0 {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}kB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG18: u32 = 180006;
    /// vector(1024), as in the chat schema.
    const CHAT: u64 = 8 + 4 * 1024;

    fn chat() -> Hnsw {
        Hnsw::new(CHAT, 16, PG18)
    }

    #[test]
    fn types_and_values() {
        assert_eq!(VectorType::Vector.value_bytes(1024), Some(4104));
        assert_eq!(VectorType::Halfvec.value_bytes(1024), Some(2056));
        assert_eq!(VectorType::Bit.value_bytes(1024), Some(136));
        assert_eq!(VectorType::Bit.value_bytes(3), Some(9));
        assert_eq!(VectorType::Sparsevec.value_bytes(30_000), None);
        assert_eq!(sparsevec_bytes(100), 816);
        assert_eq!(VectorType::from_opclass("vector_l2_ops"), Some(VectorType::Vector));
        assert_eq!(VectorType::from_opclass("halfvec_cosine_ops"), Some(VectorType::Halfvec));
        assert_eq!(VectorType::from_opclass("bit_jaccard_ops"), Some(VectorType::Bit));
        assert_eq!(VectorType::from_opclass("sparsevec_l1_ops"), Some(VectorType::Sparsevec));
        assert_eq!(VectorType::from_opclass("vector_ops"), None, "the btree opclass");
        assert_eq!(VectorType::from_opclass("text_pattern_ops"), None);
        assert_eq!(VectorType::from_type_name("halfvec").map(VectorType::name), Some("halfvec"));
    }

    #[test]
    fn element_sizes() {
        // 128 + 8 + (8 + 32·16) + 4104 = 4760, plus 1/15 upper level of 8 + (8 + 16·16)
        // each; serial adds an 8-byte header to each of the 4 + 1/15 allocations.
        let g = chat();
        assert!((g.element_bytes(Build::Parallel) - (4760.0 + 272.0 / 15.0)).abs() < 0.01);
        assert!((g.element_bytes(Build::Serial) - (4792.0 + 280.0 / 15.0)).abs() < 0.01);
        let pg15 = Hnsw::new(CHAT, 16, 150010);
        assert!((pg15.element_bytes(Build::Serial) - (4856.0 + 296.0 / 15.0)).abs() < 0.01);
        assert_eq!(Hnsw::new(CHAT, 100, PG18).max_level(), 11);
        assert_eq!(chat().max_level(), 63);
    }

    /// Where the NOTICE fired on the real server (PostgreSQL 18.6, pgvector
    /// 0.8.6, the chat table's `vector(1024)`, m = 16, random normalised
    /// vectors; docs/vector-indexes.md): (rows in the table,
    /// maintenance_work_mem MB, build, the NOTICE's tuple).
    const MEASURED: &[(u64, u64, Build, u64)] = &[
        (2000, 1, Build::Serial, 218),
        (2000, 4, Build::Serial, 871),
        (2000, 8, Build::Serial, 1744),
        (2000, 9, Build::Serial, 1957),
        (20_000, 64, Build::Serial, 13926),
        (20_000, 64, Build::Parallel, 13168),
        (20_000, 91, Build::Serial, 19811),
        (20_000, 94, Build::Parallel, 19754),
        (20_000, 95, Build::Parallel, 19970),
        (50_000, 64, Build::Serial, 13932),
        (50_000, 64, Build::Parallel, 13166),
        (50_000, 229, Build::Serial, 49836),
        (50_000, 231, Build::Parallel, 49820),
    ];

    #[test]
    fn predicts_the_measured_notice() {
        for &(rows, mb, build, tuple) in MEASURED {
            let predicted = chat().tuples_fitting(mb * 1024, build);
            let error = predicted.abs_diff(tuple) as f64 / tuple as f64;
            assert!(error <= 0.002, "{mb}MB {build:?}: predicted {predicted}, measured {tuple}");
            // And the estimate for the table says this setting is too small.
            assert!(
                chat().required_kb(rows, build).unwrap() > mb * 1024,
                "{rows} rows, {mb}MB {build:?}"
            );
        }
    }

    /// Builds that ran without the NOTICE on the real server: (rows, MB,
    /// build). 92 MB serial and 232 MB parallel are the smallest whole-MB
    /// settings the estimate allows for 20,000 and 50,000 rows.
    const FITTED: &[(u64, u64, Build)] = &[
        (2000, 10, Build::Serial),
        (2000, 12, Build::Serial),
        (20_000, 92, Build::Serial),
        (20_000, 96, Build::Parallel),
        (50_000, 230, Build::Serial),
        (50_000, 232, Build::Parallel),
    ];

    #[test]
    fn predicts_the_measured_fits() {
        for &(rows, mb, build) in FITTED {
            assert!(chat().tuples_fitting(mb * 1024, build) >= rows, "{rows} rows in {mb}MB {build:?}");
            assert!(
                chat().required_kb(rows, build).unwrap() <= mb * 1024,
                "{rows} rows, {mb}MB {build:?}"
            );
        }
    }

    /// A replay of generation.c's allocator with pseudo-random levels, to
    /// check the closed form away from the measured points.
    fn simulate(g: &Hnsw, kb: u64) -> u64 {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut uniform = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        };
        let limit = kb * 1024;
        let h = g.allocator.chunk_header;
        let m = u64::from(g.m);
        let mut used = BLOCK_BYTES - g.allocator.first_block_loss;
        let mut free = used - BLOCK_HEADER;
        if g.allocator.first_block_loss == 0 {
            (used, free) = (0, 0);
        }
        let mut rows = 0;
        loop {
            if used >= limit {
                return rows;
            }
            let level = ((-uniform().ln() / f64::from(g.m).ln()) as u64).min(u64::from(g.max_level()));
            let mut sizes = vec![ELEMENT_BYTES, 8 * (level + 1), 8 + 32 * m];
            sizes.extend(std::iter::repeat_n(8 + 16 * m, level as usize));
            sizes.push(g.value_bytes);
            for s in sizes {
                let chunk = maxalign(s) + h;
                if chunk > free {
                    used += BLOCK_BYTES;
                    free = BLOCK_BYTES - BLOCK_HEADER;
                }
                free -= chunk;
            }
            rows += 1;
        }
    }

    #[test]
    fn closed_form_matches_the_allocator() {
        for (ty, dims, m, version) in [
            (VectorType::Vector, 1024, 16, PG18),
            (VectorType::Halfvec, 1024, 16, PG18),
            (VectorType::Vector, 1536, 32, 160004),
            (VectorType::Vector, 384, 8, 150010),
            (VectorType::Bit, 1024, 16, 140015),
            (VectorType::Halfvec, 4000, 48, PG18),
        ] {
            let g = Hnsw::new(ty.value_bytes(dims).unwrap(), m, version);
            for mb in [1, 7, 64, 300] {
                let sim = simulate(&g, mb * 1024);
                let formula = g.tuples_fitting(mb * 1024, Build::Serial);
                let error = sim.abs_diff(formula) as f64 / sim as f64;
                assert!(
                    error <= 0.004 || sim.abs_diff(formula) <= 2,
                    "{ty:?}({dims}) m={m} pg{version} {mb}MB: sim {sim}, formula {formula}"
                );
            }
        }
    }

    #[test]
    fn required_memory_is_the_smallest_that_fits() {
        let g = chat();
        for rows in [0, 1, 2000, 20_000, 50_000, 1_000_000] {
            for build in [Build::Serial, Build::Parallel] {
                let kb = g.required_kb(rows, build).unwrap();
                assert!(g.tuples_fitting(kb, build) >= rows);
                if kb > MIN_MAINTENANCE_WORK_MEM_KB {
                    assert!(g.tuples_fitting(kb - 1, build) < rows, "{rows} {build:?}");
                }
            }
        }
        // The numbers docs/vector-indexes.md quotes.
        assert_eq!(g.required_kb(20_000, Build::Serial).map(|k| k / 1024), Some(92));
        assert_eq!(g.required_kb(20_000, Build::Parallel).map(|k| k / 1024), Some(95));
        assert_eq!(g.required_kb_any(50_000).map(|k| k / 1024), Some(231));
        assert_eq!(g.required_kb_any(1_000_000).map(|k| k / 1024), Some(4596));
        // 440 million 1024-dimension rows do not fit in the largest setting (2 TB).
        assert_eq!(g.required_kb(500_000_000, Build::Serial), None);
        assert_eq!(g.rows_on_disk(50_000, 64 * 1024, Build::Parallel), 50_000 - 13168);
        assert_eq!(g.rows_on_disk(2000, 64 * 1024, Build::Serial), 0);
    }

    #[test]
    fn workers() {
        let p = ParallelInputs {
            heap_blocks: 1819,
            maintenance_work_mem_kb: 64 * 1024,
            max_parallel_maintenance_workers: 2,
            min_parallel_table_scan_size_blocks: 1024,
            table_parallel_workers: None,
            parallel_safe: true,
        };
        assert_eq!(hnsw_workers(&p), 2, "pgvector asks for the setting, not PostgreSQL's plan of 1");
        assert_eq!(hnsw_workers(&ParallelInputs { heap_blocks: 182, ..p }), 0, "below 8 MB");
        assert_eq!(
            hnsw_workers(&ParallelInputs {
                maintenance_work_mem_kb: 63 * 1024,
                ..p
            }),
            0,
            "below 32 MB per participant"
        );
        assert_eq!(
            hnsw_workers(&ParallelInputs {
                max_parallel_maintenance_workers: 0,
                ..p
            }),
            0
        );
        assert_eq!(hnsw_workers(&ParallelInputs { parallel_safe: false, ..p }), 0);
        assert_eq!(
            hnsw_workers(&ParallelInputs {
                table_parallel_workers: Some(1),
                heap_blocks: 10,
                maintenance_work_mem_kb: 1024,
                ..p
            }),
            1,
            "the table's parallel_workers wins over size and memory"
        );
        assert_eq!(
            hnsw_workers(&ParallelInputs {
                table_parallel_workers: Some(8),
                ..p
            }),
            2
        );
        assert_eq!(
            hnsw_workers(&ParallelInputs {
                heap_blocks: 100_000_000,
                maintenance_work_mem_kb: 8 << 20,
                max_parallel_maintenance_workers: 7,
                ..p
            }),
            7
        );
    }

    #[test]
    fn ivfflat() {
        // lists = 100 on vector(1024): 10,000 samples of 4104 bytes and
        // 4 × 10,000 × 100 bytes of lower bounds, about 44 MB: fits in 64 MB.
        let i = Ivfflat {
            value_bytes: CHAT,
            dims: 1024,
            lists: 100,
        };
        assert_eq!(i.samples(4546), 10_000);
        assert_eq!(i.samples(10), 2910);
        let kb = i.required_kb(1_000_000, 100_000);
        assert!((40 * 1024..64 * 1024).contains(&kb), "{kb}");
        // lists = 1000: 50,000 samples (205 MB) and 200 MB of bounds.
        let big = Ivfflat { lists: 1000, ..i };
        assert_eq!(big.required_kb(1_000_000, 100_000) / 1024, 402);
        // A small table: the sample is what its pages hold, Elkan's buffers what was read.
        assert!(i.required_kb(500, 10) < 16 * 1024);
    }

    #[test]
    fn rows() {
        assert_eq!(estimate_rows(50_000.0, 4546, 4546), Some(50_000));
        assert_eq!(estimate_rows(50_000.0, 4546, 9092), Some(100_000), "grown since ANALYZE");
        assert_eq!(estimate_rows(-1.0, 0, 4546), None, "never analysed");
        assert_eq!(estimate_rows(0.0, 0, 0), Some(0));
        assert_eq!(estimate_rows(0.0, 0, 10), None);
        assert_eq!(estimate_rows(f64::NAN, 10, 10), None);
    }

    #[test]
    fn plans() {
        let mb = 1024;
        // 50k chat rows: estimate 231 MB, with the margin 255 MB; the default 64 MB is raised.
        let p = plan_memory(231 * mb, 64 * mb, 2048 * mb);
        assert_eq!(p.wanted_kb, 255 * mb);
        assert_eq!(p.set_kb, Some(255 * mb));
        assert!(!p.short);
        // The server already has enough: nothing is sent, nothing is lowered.
        let p = plan_memory(10 * mb, 64 * mb, 2048 * mb);
        assert_eq!((p.set_kb, p.effective_kb, p.short), (None, 64 * mb, false));
        // The cap is below the estimate: set the cap and warn.
        let p = plan_memory(4590 * mb, 64 * mb, 2048 * mb);
        assert_eq!((p.set_kb, p.short), (Some(2048 * mb), true));
        // The cap is below the server's value: keep the server's.
        let p = plan_memory(4590 * mb, 4096 * mb, 2048 * mb);
        assert_eq!((p.set_kb, p.effective_kb, p.short), (None, 4096 * mb, true));
        assert_eq!(setting(255 * mb), "255MB");
        assert_eq!(setting(65537), "65537kB");
    }
}
