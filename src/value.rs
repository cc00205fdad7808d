//! Durations and whole numbers a user types — flags, `chatmigrate.toml`,
//! environment variables, directives, URL parameters, file-name versions —
//! parsed and range-checked here, once, with one error for all of them
//! ([`Invalid`]). Each setting's accepted range is a [`Limits`] constant
//! below, so the check, the error and the docs name the same bounds.
//!
//! The parsers never panic and never overflow: a number too large for any
//! type is "out of range", like one that fits but exceeds the maximum.

use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const TENTH: Duration = Duration::from_millis(100);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// What a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `500ms`, `30s`, `5min`, `1h` or a bare number of seconds, from `min`
    /// to `max`; with `off`, also `off` and `0` (no timeout).
    Duration { min: Duration, max: Duration, off: bool },
    /// A whole number from `min` to `max`.
    Count { min: i64, max: i64 },
    /// A memory size as PostgreSQL writes it (`512MB`, `2GB`, `65536kB`),
    /// from `min_kb` to `max_kb`, or `auto`.
    Memory { min_kb: u64, max_kb: u64 },
}

/// One setting's range, and a value to show in the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub kind: Kind,
    pub example: &'static str,
}

/// The limits of a duration setting (see [`duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationLimits(Limits);

/// The limits of a whole-number setting (see [`count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountLimits(Limits);

/// The limits of a memory setting (see [`memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits(Limits);

const fn duration_limits(min: Duration, max: Duration, off: bool, example: &'static str) -> DurationLimits {
    DurationLimits(Limits {
        kind: Kind::Duration { min, max, off },
        example,
    })
}

const fn count_limits(min: i64, max: i64, example: &'static str) -> CountLimits {
    CountLimits(Limits {
        kind: Kind::Count { min, max },
        example,
    })
}

const fn memory_limits(min_kb: u64, max_kb: u64, example: &'static str) -> MemoryLimits {
    MemoryLimits(Limits {
        kind: Kind::Memory { min_kb, max_kb },
        example,
    })
}

impl Limits {
    /// `1ms to 24h`, `1ms to 24h, or off`, `1 to 65535`.
    pub fn range(&self) -> String {
        match self.kind {
            Kind::Duration { min, max, off } => {
                format!("{} to {}{}", show(min), show(max), if off { ", or off" } else { "" })
            }
            Kind::Count { min, max } => format!("{min} to {max}"),
            Kind::Memory { min_kb, max_kb } => format!("{} to {}, or auto", show_kb(min_kb), show_kb(max_kb)),
        }
    }

    fn what(&self) -> &'static str {
        match self.kind {
            Kind::Duration { .. } => "a duration",
            Kind::Count { .. } => "a whole number",
            Kind::Memory { .. } => "a size",
        }
    }
}

/// `wait --timeout`: how long `chatmigrate wait` waits.
pub const WAIT_TIMEOUT: DurationLimits = duration_limits(Duration::from_secs(1), DAY, false, "30s");
/// `lock_wait` / `--lock-wait`: 0 tries the lock once.
pub const LOCK_WAIT: DurationLimits = duration_limits(Duration::ZERO, DAY, false, "5min");
/// `connect_timeout` (config key and URL parameter): the whole connect.
pub const CONNECT_TIMEOUT: DurationLimits = duration_limits(MS, DAY, false, "30s");
/// The same in a URL, where libpq writes whole seconds.
pub const CONNECT_TIMEOUT_URL: DurationLimits = duration_limits(MS, DAY, false, "10");
/// `lock_timeout`, `statement_timeout` and their directives.
pub const LOCK_TIMEOUT: DurationLimits = duration_limits(MS, DAY, true, "5s");
pub const STATEMENT_TIMEOUT: DurationLimits = duration_limits(MS, DAY, true, "10min");
/// `resume_timeout`: 0 gives up on the first failed attempt.
pub const RESUME_TIMEOUT: DurationLimits = duration_limits(Duration::ZERO, DAY, false, "120s");
/// `refused_timeout`: 0 gives up on the first refused connection.
pub const REFUSED_TIMEOUT: DurationLimits = duration_limits(Duration::ZERO, DAY, false, "10s");
/// `request_timeout`: one AWS call.
pub const REQUEST_TIMEOUT: DurationLimits = duration_limits(MS, DAY, false, "65s");
/// `lease_ttl`: renewed every third of it (tests use a few seconds).
pub const LEASE_TTL: DurationLimits = duration_limits(TENTH, DAY, false, "60s");
/// `transaction_keepalive`: useful below the Data API's 3-minute idle
/// limit; longer turns it off in effect (a test does that on purpose).
pub const TRANSACTION_KEEPALIVE: DurationLimits = duration_limits(TENTH, DAY, false, "120s");
/// `citus_node_wait`: 0 reports a Citus worker that fails at once.
pub const CITUS_NODE_WAIT: DurationLimits = duration_limits(Duration::ZERO, DAY, false, "0s");
/// `chatmigrate lambda --margin` / `CHATMIGRATE_LAMBDA_MARGIN`: time kept
/// before an invocation's deadline (Lambda runs 15 minutes at most).
pub const LAMBDA_MARGIN: DurationLimits = duration_limits(Duration::ZERO, Duration::from_secs(900), false, "10s");
/// `port`, `PGPORT`, the URL's port.
pub const PORT: CountLimits = count_limits(1, 65535, "5432");
/// `lock_retries`.
pub const LOCK_RETRIES: CountLimits = count_limits(0, 100, "3");
/// `lint_large_table_rows`: 0 makes every table with a row large.
pub const LARGE_TABLE_ROWS: CountLimits = count_limits(0, i64::MAX, "10000");
/// `lint_large_table_mb` (up to 1 PB).
pub const LARGE_TABLE_MB: CountLimits = count_limits(0, 1 << 30, "10");
/// A migration's version (`V{version}__`); 0 is reserved.
pub const VERSION: CountLimits = count_limits(1, i64::MAX, "20250101120000");

/// `index_build_memory`: the cap of the `maintenance_work_mem` chatmigrate
/// sets for a vector index build; PostgreSQL's own range (1MB to
/// 2147483647kB).
pub const INDEX_BUILD_MEMORY: MemoryLimits = memory_limits(1024, i32::MAX as u64, "2GB");
/// `index_build_workers`: `max_parallel_maintenance_workers` for an index
/// build (PostgreSQL's range).
pub const INDEX_BUILD_WORKERS: CountLimits = count_limits(0, 1024, "2");

/// Where a value was written: chooses the hint's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    EnvVar,
    ConfigKey,
    Directive,
    UrlParam,
    FileName,
}

/// What is wrong with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Nothing was given where a value is required.
    Missing,
    /// Not in the grammar at all.
    Malformed,
    /// Well-formed, but below the minimum or above the maximum (or too
    /// large for any type).
    OutOfRange,
}

/// A value that is not accepted: the one error for every duration and
/// number. `Display` is `<key> `<value>` <problem>`; the caller adds where
/// (file:line, URL) through [`crate::Error::BadValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// As the user wrote it: `--lock-wait`, `lock_wait`, `PGPORT`, `lock-timeout`.
    pub key: String,
    /// The value as given (shown shortened and escaped).
    pub text: String,
    pub problem: Problem,
    pub limits: Limits,
    pub origin: Origin,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (key, range) = (&self.key, self.limits.range());
        match self.problem {
            Problem::Missing => write!(f, "{key} needs {} ({range})", self.limits.what()),
            Problem::Malformed => match self.limits.kind {
                Kind::Duration { .. } => write!(f, "{key} `{}` is not a duration (e.g. 500ms, 30s, 5min, 1h)", shown(&self.text)),
                Kind::Count { .. } => write!(f, "{key} `{}` is not a whole number", shown(&self.text)),
                Kind::Memory { .. } => write!(f, "{key} `{}` is not a size (e.g. 512MB, 2GB, auto)", shown(&self.text)),
            },
            Problem::OutOfRange => write!(f, "{key} `{}` is out of range ({range})", shown(&self.text)),
        }
    }
}

impl Invalid {
    /// The next step, in the words of the place the value came from.
    pub fn hint(&self) -> String {
        let (key, range, example, what) = (&self.key, self.limits.range(), self.limits.example, self.limits.what());
        match self.origin {
            Origin::Flag => format!("give {key} {what} from {range}, e.g. {key} {example}"),
            Origin::EnvVar => format!("set {key} to {what} from {range}, or unset it"),
            Origin::ConfigKey => {
                let example = match self.limits.kind {
                    Kind::Duration { .. } | Kind::Memory { .. } => format!("\"{example}\""),
                    Kind::Count { .. } => example.to_string(),
                };
                format!("set {key} to {what} from {range}, e.g. {key} = {example} (every key: docs/config.reference.toml)")
            }
            Origin::Directive => format!("write it as `-- chatmigrate:{key} {example}`, with {what} from {range}"),
            Origin::UrlParam if key == "port" => {
                format!("give the port {what} from {range}, e.g. postgres://user@host:{example}/dbname")
            }
            Origin::UrlParam => format!("give {key} {what} from {range} in the URL, e.g. ?{key}={example}"),
            Origin::FileName => {
                format!("rename the file with a {key} from {range}, e.g. V{example}__name.sql (`chatmigrate new <name>` picks a free one)")
            }
        }
    }
}

/// A value for messages: at most 40 characters, control characters escaped,
/// so the error stays one line whatever was typed.
fn shown(text: &str) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 40 {
        format!("{}…", escaped.chars().take(40).collect::<String>())
    } else {
        escaped
    }
}

/// `0s`, `1ms`, `3s`, `5min`, `24h`: the largest unit that divides it.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}min", ms / 60_000),
        _ if ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// A time that passed, for people: `12 ms`, `3.4 s`, `2 min 5 s`.
pub fn elapsed(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// Parses the duration grammar without a range: `<number>[unit]`, the
/// number digits with an optional fraction, the unit `ms`, `s`/`sec`/`secs`,
/// `m`/`min`/`mins` or `h` (none: seconds). Surrounding blanks are allowed.
/// A leading `-` or a value past `u64` seconds is [`Problem::OutOfRange`].
pub fn parse_duration(text: &str) -> Result<Duration, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Problem::Missing);
    }
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t),
    };
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(Problem::Malformed);
    }
    let nanos_per_unit: u128 = match unit.trim() {
        "ms" => 1_000_000,
        "" | "s" | "sec" | "secs" => 1_000_000_000,
        "m" | "min" | "mins" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(Problem::Malformed),
    };
    // Whole units, then the fraction to nanosecond precision; u128 holds
    // any 38-digit product, and longer inputs are out of range anyway.
    let mut nanos: u128 = 0;
    for b in int.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(b - b'0')))
            .ok_or(Problem::OutOfRange)?;
    }
    nanos = nanos.checked_mul(nanos_per_unit).ok_or(Problem::OutOfRange)?;
    let mut scale = nanos_per_unit;
    for b in frac.bytes() {
        scale /= 10;
        nanos += u128::from(b - b'0') * scale;
    }
    if negative && nanos > 0 {
        return Err(Problem::OutOfRange);
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| Problem::OutOfRange)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a whole number: optional sign, then digits (blanks around allowed).
/// Too large for an i64 is [`Problem::OutOfRange`].
pub fn parse_count(text: &str) -> Result<i64, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Problem::Missing);
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::Malformed);
    }
    t.parse::<i64>().map_err(|_| Problem::OutOfRange)
}

/// `1MB`, `1536MB`, `2GB`, `65537kB`: the largest unit that divides it.
pub fn show_kb(kb: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "TB"), (1 << 20, "GB"), (1 << 10, "MB")];
    for (size, unit) in UNITS {
        if kb != 0 && kb % size == 0 {
            return format!("{}{unit}", kb / size);
        }
    }
    format!("{kb}kB")
}

/// Parses a memory size in PostgreSQL's units: a whole number, then `kB`,
/// `MB`, `GB` or `TB` (any case; blanks allowed in between), in kB. A bare
/// number is refused: PostgreSQL reads it as kB, people often mean MB.
pub fn parse_memory_kb(text: &str) -> Result<u64, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Problem::Missing);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = (&t[..split], t[split..].trim_start());
    if digits.is_empty() {
        return Err(Problem::Malformed);
    }
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "kb" => 1,
        "mb" => 1 << 10,
        "gb" => 1 << 20,
        "tb" => 1 << 30,
        _ => return Err(Problem::Malformed),
    };
    let n: u64 = digits.parse().map_err(|_| Problem::OutOfRange)?;
    n.checked_mul(factor).ok_or(Problem::OutOfRange)
}

/// A memory setting: `None` for `auto`, else the size in kB.
pub fn memory(key: &str, origin: Origin, text: &str, limits: MemoryLimits) -> Result<Option<u64>, Invalid> {
    let invalid = |problem| Invalid {
        key: key.to_string(),
        text: text.to_string(),
        problem,
        limits: limits.0,
        origin,
    };
    let Kind::Memory { min_kb, max_kb } = limits.0.kind else {
        return Err(invalid(Problem::Malformed));
    };
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    let kb = parse_memory_kb(text).map_err(invalid)?;
    if kb < min_kb || kb > max_kb {
        return Err(invalid(Problem::OutOfRange));
    }
    Ok(Some(kb))
}

/// A duration setting. Where the limits allow `off`, `off` and `0` give
/// [`Duration::ZERO`] (PostgreSQL's "no timeout").
pub fn duration(key: &str, origin: Origin, text: &str, limits: DurationLimits) -> Result<Duration, Invalid> {
    let invalid = |problem| Invalid {
        key: key.to_string(),
        text: text.to_string(),
        problem,
        limits: limits.0,
        origin,
    };
    let Kind::Duration { min, max, off } = limits.0.kind else {
        return Err(invalid(Problem::Malformed));
    };
    if off && text.trim() == "off" {
        return Ok(Duration::ZERO);
    }
    let d = parse_duration(text).map_err(invalid)?;
    if off && d.is_zero() {
        return Ok(d);
    }
    if d < min || d > max {
        return Err(invalid(Problem::OutOfRange));
    }
    Ok(d)
}

/// A whole-number setting.
pub fn count(key: &str, origin: Origin, text: &str, limits: CountLimits) -> Result<i64, Invalid> {
    let invalid = |problem| Invalid {
        key: key.to_string(),
        text: text.to_string(),
        problem,
        limits: limits.0,
        origin,
    };
    let Kind::Count { min, max } = limits.0.kind else {
        return Err(invalid(Problem::Malformed));
    };
    let n = parse_count(text).map_err(invalid)?;
    if n < min || n > max {
        return Err(invalid(Problem::OutOfRange));
    }
    Ok(n)
}

/// The largest migration file read (32 MiB): a larger one is refused before
/// it is read. 20 MB of INSERTs still applies (about 30 s in a debug build);
/// bulk data belongs in COPY, not in a migration's SQL text.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// serde: a duration as a string (`"30s"`) or a whole number of seconds,
/// kept as text for [`duration`] (which knows the key's range).
pub fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\" or \"5min\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Text).map(Some)
}

/// serde: a whole number of any size TOML holds; [`count`] checks
/// the key's range.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
    }
    d.deserialize_any(Whole).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memory_sizes() {
        let m = |t: &str| memory("index_build_memory", Origin::ConfigKey, t, INDEX_BUILD_MEMORY);
        assert_eq!(m("auto"), Ok(None));
        assert_eq!(m(" AUTO "), Ok(None));
        assert_eq!(m("512MB"), Ok(Some(512 * 1024)));
        assert_eq!(m("2 GB"), Ok(Some(2 << 20)));
        assert_eq!(m("1024kB"), Ok(Some(1024)));
        assert_eq!(m("2147483647kB"), Ok(Some(i32::MAX as u64)));
        let e = m("1023kB").unwrap_err();
        assert_eq!(
            e.to_string(),
            "index_build_memory `1023kB` is out of range (1MB to 2147483647kB, or auto)"
        );
        assert_eq!(
            e.hint(),
            "set index_build_memory to a size from 1MB to 2147483647kB, or auto, e.g. index_build_memory = \"2GB\" (every key: docs/config.reference.toml)"
        );
        assert_eq!(m("2TB").unwrap_err().problem, Problem::OutOfRange);
        assert_eq!(m("99999999999999999999MB").unwrap_err().problem, Problem::OutOfRange);
        assert_eq!(m("18446744073709551615GB").unwrap_err().problem, Problem::OutOfRange);
        assert_eq!(
            m("512").unwrap_err().to_string(),
            "index_build_memory `512` is not a size (e.g. 512MB, 2GB, auto)"
        );
        assert_eq!(m("-1MB").unwrap_err().problem, Problem::Malformed);
        assert_eq!(m("1.5GB").unwrap_err().problem, Problem::Malformed);
        assert_eq!(m("").unwrap_err().problem, Problem::Missing);
        assert_eq!(show_kb(1024), "1MB");
        assert_eq!(show_kb(1536 * 1024), "1536MB");
        assert_eq!(show_kb(2 << 20), "2GB");
        assert_eq!(show_kb(65537), "65537kB");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration(" 1.5 h "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("x"), Err(Problem::Malformed));
        assert_eq!(parse_duration("1.2.3s"), Err(Problem::Malformed));
        assert_eq!(parse_duration("."), Err(Problem::Malformed));
        assert_eq!(parse_duration(""), Err(Problem::Missing));
        assert_eq!(parse_duration("-5s"), Err(Problem::OutOfRange));
        assert_eq!(parse_duration("-0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10000000000000000h"), Err(Problem::OutOfRange));
        assert_eq!(parse_duration("18446744073709551616"), Err(Problem::OutOfRange));
        assert_eq!(parse_duration(&"9".repeat(100)), Err(Problem::OutOfRange));
    }

    #[test]
    fn ranges_and_messages() {
        let e = duration("--lock-wait", Origin::Flag, "10000000000000000h", LOCK_WAIT).unwrap_err();
        assert_eq!(e.to_string(), "--lock-wait `10000000000000000h` is out of range (0s to 24h)");
        assert_eq!(e.hint(), "give --lock-wait a duration from 0s to 24h, e.g. --lock-wait 5min");
        let e = duration("lock_timeout", Origin::ConfigKey, "soon", LOCK_TIMEOUT).unwrap_err();
        assert_eq!(e.to_string(), "lock_timeout `soon` is not a duration (e.g. 500ms, 30s, 5min, 1h)");
        assert_eq!(
            e.hint(),
            "set lock_timeout to a duration from 1ms to 24h, or off, e.g. lock_timeout = \"5s\" (every key: docs/config.reference.toml)"
        );
        assert_eq!(duration("lock_timeout", Origin::ConfigKey, "off", LOCK_TIMEOUT), Ok(Duration::ZERO));
        assert_eq!(duration("lock_timeout", Origin::ConfigKey, "0ms", LOCK_TIMEOUT), Ok(Duration::ZERO));
        assert_eq!(duration("--lock-wait", Origin::Flag, "0", LOCK_WAIT), Ok(Duration::ZERO));
        let e = duration("lease_ttl", Origin::ConfigKey, "10ms", LEASE_TTL).unwrap_err();
        assert_eq!(e.to_string(), "lease_ttl `10ms` is out of range (100ms to 24h)");
        let e = count("PGPORT", Origin::EnvVar, "99999", PORT).unwrap_err();
        assert_eq!(e.to_string(), "PGPORT `99999` is out of range (1 to 65535)");
        assert_eq!(e.hint(), "set PGPORT to a whole number from 1 to 65535, or unset it");
        let e = count("PGPORT", Origin::EnvVar, "54x", PORT).unwrap_err();
        assert_eq!(e.to_string(), "PGPORT `54x` is not a whole number");
        let e = duration("lock-timeout", Origin::Directive, "", LOCK_TIMEOUT).unwrap_err();
        assert_eq!(e.to_string(), "lock-timeout needs a duration (1ms to 24h, or off)");
        assert_eq!(
            e.hint(),
            "write it as `-- chatmigrate:lock-timeout 5s`, with a duration from 1ms to 24h, or off"
        );
        let e = duration("k", Origin::Flag, &format!("{}\n", "7".repeat(60)), LOCK_WAIT).unwrap_err();
        assert_eq!(e.to_string(), format!("k `{}…` is out of range (0s to 24h)", "7".repeat(40)));
        assert_eq!(show(Duration::from_secs(170)), "170s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text: a duration within u64 seconds, or one of the three problems.
        #[test]
        fn any_text_is_a_duration_or_a_problem(text in "\\PC{0,30}") {
            let _ = parse_duration(&text);
            match duration("k", Origin::ConfigKey, &text, LOCK_TIMEOUT) {
                Ok(d) => prop_assert!(d.is_zero() || (d >= MS && d <= DAY)),
                Err(e) => {
                    let line = e.to_string();
                    prop_assert!(line.starts_with("k "), "{}", line);
                    prop_assert!(!line.contains('\n'));
                    prop_assert!(!e.hint().is_empty());
                }
            }
        }

        /// Numbers of every size with every unit: exact, or out of range.
        #[test]
        fn numbers_with_units(n in any::<u64>(), frac in proptest::option::of("[0-9]{1,12}"), unit in "(ms|s|sec|secs|m|min|mins|h|)") {
            let text = match &frac {
                Some(f) => format!("{n}.{f}{unit}"),
                None => format!("{n}{unit}"),
            };
            match parse_duration(&text) {
                Ok(d) => {
                    let per: u128 = match unit.as_str() { "ms" => 1_000_000, "m" | "min" | "mins" => 60_000_000_000, "h" => 3_600_000_000_000, _ => 1_000_000_000 };
                    prop_assert!(d.as_nanos() >= u128::from(n) * per);
                    prop_assert!(d.as_nanos() < (u128::from(n) + 1) * per);
                }
                Err(p) => prop_assert_eq!(p, Problem::OutOfRange),
            }
            let in_range = duration("--lock-wait", Origin::Flag, &text, LOCK_WAIT);
            if let Ok(d) = in_range {
                prop_assert!(d <= DAY);
            }
        }

        #[test]
        fn counts(text in "[-+]?[0-9]{0,25}|\\PC{0,12}") {
            match count("port", Origin::ConfigKey, &text, PORT) {
                Ok(n) => prop_assert!((1..=65535).contains(&n)),
                Err(e) => prop_assert!(e.to_string().starts_with("port ")),
            }
        }
    }
}
