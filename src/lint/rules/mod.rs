//! One module per lint rule; each exposes `pub static RULE`.

pub mod transaction_incompatible;
