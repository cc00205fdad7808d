//! PostgreSQL result values as AWS `Field`s: each column's binary value is
//! decoded by type OID (integers → longValue, bool → booleanValue, floats →
//! doubleValue, text-like / numeric / uuid / json / dates and times →
//! stringValue, bytea → blobValue, 1-D arrays → arrayValue, NULL → isNull);
//! anything the Data API cannot return is an UnsupportedResultException.
//! Also `columnMetadata` and the raw size of a row (for the 64 KB limit).

use std::error::Error;

use serde_json::{json, Value};
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::Row;

use super::wire::{base64_encode, ApiError, ResultSetOptions};

/// Any column's raw binary value.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw<'a>, Box<dyn Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The raw values of a row (None = NULL).
pub fn raw_values(row: &Row) -> Vec<Option<&[u8]>> {
    (0..row.len())
        .map(|i| row.try_get::<_, Option<Raw>>(i).expect("raw accepts every type").map(|r| r.0))
        .collect()
}

/// The size of a row as the database sends it (the sum of its values' bytes).
pub fn row_size(values: &[Option<&[u8]>]) -> usize {
    values.iter().map(|v| v.map_or(0, <[u8]>::len)).sum()
}

fn unsupported(ty: &Type) -> ApiError {
    ApiError::unsupported_result(format!("The result contains the unsupported data type {}.", ty.name()))
}

fn be<const N: usize>(raw: &[u8], ty: &Type) -> Result<[u8; N], ApiError> {
    raw.try_into()
        .map_err(|_| ApiError::internal(format!("bad binary value for {}", ty.name())))
}

fn text(raw: &[u8], ty: &Type) -> Result<String, ApiError> {
    String::from_utf8(raw.to_vec()).map_err(|_| ApiError::internal(format!("non-UTF-8 value for {}", ty.name())))
}

/// One value as a `Field`.
pub fn field(ty: &Type, raw: Option<&[u8]>, opts: &ResultSetOptions) -> Result<Value, ApiError> {
    let Some(raw) = raw else {
        return Ok(json!({"isNull": true}));
    };
    let long_as_string = opts.long_return_type.as_deref() == Some("STRING");
    let decimal_as_number = opts.decimal_return_type.as_deref() == Some("DOUBLE_OR_LONG");
    let long = |n: i64| {
        if long_as_string {
            json!({"stringValue": n.to_string()})
        } else {
            json!({"longValue": n})
        }
    };
    let v = match *ty {
        Type::INT2 => long(i16::from_be_bytes(be(raw, ty)?).into()),
        Type::INT4 => long(i32::from_be_bytes(be(raw, ty)?).into()),
        Type::INT8 => long(i64::from_be_bytes(be(raw, ty)?)),
        Type::OID => long(u32::from_be_bytes(be(raw, ty)?).into()),
        Type::BOOL => json!({"booleanValue": raw == [1]}),
        Type::FLOAT4 => double(f32::from_be_bytes(be(raw, ty)?).into()),
        Type::FLOAT8 => double(f64::from_be_bytes(be(raw, ty)?)),
        Type::NUMERIC => {
            let s = numeric(raw).ok_or_else(|| ApiError::internal("bad numeric value"))?;
            match (decimal_as_number, s.parse::<i64>(), s.parse::<f64>()) {
                (true, Ok(n), _) => json!({"longValue": n}),
                (true, _, Ok(f)) => double(f),
                _ => json!({"stringValue": s}),
            }
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON | Type::XML => {
            json!({"stringValue": text(raw, ty)?})
        }
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => json!({"stringValue": text(rest, ty)?}),
            _ => return Err(ApiError::internal("bad jsonb value")),
        },
        Type::CHAR => json!({"stringValue": (raw.first().copied().unwrap_or(0) as char).to_string()}),
        Type::UUID => json!({"stringValue": uuid(&be::<16>(raw, ty)?)}),
        Type::DATE => json!({"stringValue": date(i32::from_be_bytes(be(raw, ty)?))}),
        Type::TIME => json!({"stringValue": time_of_day(i64::from_be_bytes(be(raw, ty)?))}),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => json!({"stringValue": timestamp(i64::from_be_bytes(be(raw, ty)?))}),
        Type::BYTEA => json!({"blobValue": base64_encode(raw)}),
        // `SELECT pg_sleep(1)`: PostgreSQL prints void as an empty string.
        Type::VOID => json!({"stringValue": ""}),
        _ => match ty.kind() {
            Kind::Enum(_) => json!({"stringValue": text(raw, ty)?}),
            Kind::Simple if ty.name() == "citext" => json!({"stringValue": text(raw, ty)?}),
            Kind::Array(elem) => array(ty, elem, raw, opts)?,
            _ => return Err(unsupported(ty)),
        },
    };
    Ok(v)
}

fn double(f: f64) -> Value {
    if f.is_finite() {
        json!({"doubleValue": f})
    } else if f.is_nan() {
        json!({"doubleValue": "NaN"})
    } else if f > 0.0 {
        json!({"doubleValue": "Infinity"})
    } else {
        json!({"doubleValue": "-Infinity"})
    }
}

/// A one-dimensional array as `arrayValue` (NULL elements as JSON null);
/// multidimensional arrays and bytea elements are unsupported.
fn array(ty: &Type, elem: &Type, raw: &[u8], opts: &ResultSetOptions) -> Result<Value, ApiError> {
    let int = |at: usize| -> Result<i32, ApiError> {
        raw.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
            .ok_or_else(|| ApiError::internal("bad array value"))
    };
    let ndim = int(0)?;
    if ndim > 1 {
        return Err(ApiError::unsupported_result("The result contains a multidimensional array."));
    }
    let key = match *elem {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => "longValues",
        Type::BOOL => "booleanValues",
        Type::FLOAT4 | Type::FLOAT8 => "doubleValues",
        Type::BYTEA => return Err(unsupported(ty)),
        _ => "stringValues",
    };
    let mut items = Vec::new();
    if ndim == 1 {
        let n = int(12)?;
        let mut at = 20;
        for _ in 0..n {
            let len = int(at)?;
            at += 4;
            if len < 0 {
                items.push(Value::Null);
                continue;
            }
            let bytes = raw
                .get(at..at + len as usize)
                .ok_or_else(|| ApiError::internal("bad array value"))?;
            at += len as usize;
            let f = field(elem, Some(bytes), opts)?;
            let (_, v) = f.as_object().and_then(|o| o.iter().next()).ok_or_else(|| unsupported(ty))?;
            items.push(v.clone());
        }
    }
    Ok(json!({"arrayValue": {key: items}}))
}

fn uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Days since 2000-01-01 as `YYYY-MM-DD` (PostgreSQL's ISO output, BC years suffixed).
fn date(days: i32) -> String {
    match days {
        i32::MAX => return "infinity".into(),
        i32::MIN => return "-infinity".into(),
        _ => {}
    }
    // Howard Hinnant's civil_from_days, counting from 1970-01-01.
    let z = i64::from(days) + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]` (trailing zeros trimmed, like PostgreSQL).
fn time_of_day(us: i64) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        s.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    s
}

/// Microseconds since 2000-01-01 00:00 (UTC for timestamptz) as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn timestamp(us: i64) -> String {
    match us {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    const DAY: i64 = 86_400_000_000;
    let d = date(us.div_euclid(DAY) as i32);
    let t = time_of_day(us.rem_euclid(DAY));
    match d.strip_suffix(" BC") {
        Some(d) => format!("{d} {t} BC"),
        None => format!("{d} {t}"),
    }
}

/// PostgreSQL's binary numeric as its text form.
fn numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digit = |e: i32| -> Option<u16> {
        let j = i32::from(weight) - e;
        if j >= 0 && (j as usize) < ndigits {
            word(4 + j as usize)
        } else {
            Some(0)
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for e in (0..=i32::from(weight)).rev() {
            let d = digit(e)?;
            if e == i32::from(weight) {
                s.push_str(&d.to_string());
            } else {
                s.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut e = -1;
        while frac.len() < usize::from(dscale) {
            frac.push_str(&format!("{:04}", digit(e)?));
            e -= 1;
        }
        frac.truncate(usize::from(dscale));
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

/// JDBC `java.sql.Types` code for a PostgreSQL type (what `columnMetadata.type` carries).
fn jdbc_type(ty: &Type) -> i32 {
    match *ty {
        Type::INT2 => 5,
        Type::INT4 => 4,
        Type::INT8 => -5,
        Type::OID => -5,
        Type::BOOL => -7,
        Type::FLOAT4 => 7,
        Type::FLOAT8 => 8,
        Type::NUMERIC => 2,
        Type::BPCHAR | Type::CHAR => 1,
        Type::TEXT | Type::VARCHAR | Type::NAME => 12,
        Type::DATE => 91,
        Type::TIME => 92,
        Type::TIMESTAMP => 93,
        Type::TIMESTAMPTZ => 2014,
        Type::BYTEA => -2,
        _ if matches!(ty.kind(), Kind::Array(_)) => 2003,
        _ => 1111,
    }
}

/// Where a result column comes from (for `columnMetadata`): (schema, table, NOT NULL).
pub type ColumnOrigin = Option<(String, String, bool)>;

/// `columnMetadata` for the statement's columns.
pub fn column_metadata(columns: &[tokio_postgres::Column], origins: &[ColumnOrigin]) -> Value {
    let items: Vec<Value> = columns
        .iter()
        .zip(origins)
        .map(|(c, origin)| {
            let ty = c.type_();
            let (schema, table, not_null) = origin.clone().unwrap_or_default();
            let numeric_signed = matches!(
                *ty,
                Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC
            );
            let (precision, scale) = match (ty, c.type_modifier()) {
                (&Type::NUMERIC, m) if m >= 4 => (((m - 4) >> 16) & 0xffff, (m - 4) & 0xffff),
                (&Type::VARCHAR | &Type::BPCHAR, m) if m >= 4 => (m - 4, 0),
                (&Type::INT2, _) => (5, 0),
                (&Type::INT4, _) => (10, 0),
                (&Type::INT8, _) => (19, 0),
                _ => (0, 0),
            };
            let array_base = match ty.kind() {
                Kind::Array(e) => jdbc_type(e),
                _ => 0,
            };
            json!({
                "name": c.name(),
                "label": c.name(),
                "type": jdbc_type(ty),
                "typeName": ty.name(),
                "schemaName": schema,
                "tableName": table,
                "isAutoIncrement": false,
                "isSigned": numeric_signed,
                "isCurrency": false,
                "isCaseSensitive": matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::CHAR),
                "nullable": if origin.is_none() { 2 } else if not_null { 0 } else { 1 },
                "precision": precision,
                "scale": scale,
                "arrayBaseColumnType": array_base,
            })
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(8766), "2024-01-01");
        assert_eq!(date(-730_485), "0001-01-01 BC");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(time_of_day(3_723_000_500), "01:02:03.0005");
        assert_eq!(timestamp(-1), "1999-12-31 23:59:59.999999");
    }

    #[test]
    fn numerics() {
        // 12345.678: ndigits 3, weight 1, sign +, dscale 3, digits 1 2345 6780
        let raw: Vec<u8> = [3u16, 1, 0, 3, 1, 2345, 6780].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(numeric(&raw).unwrap(), "12345.678");
        // -0.0012: ndigits 1, weight -1, sign -, dscale 4, digits 12
        let raw: Vec<u8> = [1u16, 0xffff, 0x4000, 4, 12].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(numeric(&raw).unwrap(), "-0.0012");
        let raw: Vec<u8> = [0u16, 0, 0, 2].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(numeric(&raw).unwrap(), "0.00");
    }
}
