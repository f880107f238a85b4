//! Kubernetes' protobuf wire form (`application/vnd.kubernetes.protobuf`), read into the JSON
//! form of the same object.
//!
//! Stock clients built on client-go (kubectl's typed clients among them) send built-in kinds as
//! the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope, whose `raw` field holds the
//! proto2 message of the kind named by its `typeMeta`. [`decode`] turns such a body into exactly
//! the JSON that kube-apiserver would print for the object it decodes, so the rest of the server
//! only ever sees JSON.
//!
//! The decoder is generic: it walks the generated field table in `table.rs` (written by
//! `examples/proto_table.rs`; see there for its sources). What it encodes besides field numbers
//! and names is when a field appears in JSON: Go's protobuf code writes every non-pointer field,
//! empty or not, and Go's JSON encoder then leaves out empty `omitempty` fields, writes empty
//! non-`omitempty` fields as zero values (or `null` for slices and maps), and always writes
//! structs. A handful of apimachinery types have a JSON form unlike their message and are
//! rendered by name: `Time`, `MicroTime`, `Duration`, `Quantity`, `IntOrString`,
//! `RawExtension`, `FieldsV1` and `Unknown`.
//!
//! What it is not: it does not encode protobuf (responses stay JSON), and unknown field numbers
//! are skipped, as upstream's decoder skips them.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

#[rustfmt::skip]
mod table;

#[cfg(test)]
mod tests;

/// The media type of the protobuf wire form.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every protobuf-encoded object.
const MAGIC: &[u8; 4] = b"k8s\0";

/// How deep messages may nest before a body is refused (Go's limit for JSON is 10000; no
/// Kubernetes object comes near this).
const MAX_DEPTH: usize = 100;

/// How many messages one body may decode to, zero-valued ones included. Go writes every struct
/// field, so an empty message on the wire (two bytes) can stand for a JSON object with several
/// zero-valued members: 3 MiB of empty containers decoded to 40 MB of JSON and over a gigabyte
/// of memory. This bounds the expansion to the order of what 3 MiB of JSON can build, far above
/// any real object (a Pod with a thousand containers is tens of thousands of messages).
const MAX_MESSAGES: usize = 250_000;

std::thread_local! {
    /// Messages the body being decoded on this thread may still produce; decoding is
    /// synchronous, so one body has the thread to itself.
    static MESSAGES_LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_MESSAGES) };
}

/// Kinds of `meta.k8s.io/v1` that every group version registers.
const OPTIONS_KINDS: &[&str] = &[
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "ListOptions",
    "PatchOptions",
    "UpdateOptions",
];

/// The Go type of a field's value, as it travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
    /// A message: the index of its entry in `MESSAGES`.
    Msg(u16),
}

/// Whether a field holds one value, a list, or a string-keyed map of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    One,
    Repeated,
    Map,
}

/// When a field appears in the JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    /// Whenever it is on the wire (Go pointers: present exactly when set).
    IfSet,
    /// When on the wire and not empty (Go values tagged `omitempty`).
    IfNonZero,
    /// Always; when absent, as Go's zero value (values without `omitempty`, and structs).
    Always,
}

/// One field of a message.
#[derive(Debug)]
struct Field {
    tag: u32,
    /// The JSON name; empty for an embedded struct whose fields are inlined.
    json: &'static str,
    kind: Kind,
    card: Card,
    emit: Emit,
}

/// One message.
#[derive(Debug)]
struct Message {
    /// The full proto name, such as `io.k8s.api.core.v1.Pod`.
    name: &'static str,
    /// A Go named slice (`type ExtraValue []string`): its one field is the whole JSON value.
    array: bool,
    fields: &'static [Field],
}

/// Why a body could not be read as protobuf.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The body does not start with the protobuf magic number.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotProtobuf,
    /// The body is not well-formed protobuf, or a value cannot have a JSON form.
    #[error("{0}")]
    Malformed(String),
    /// The envelope names a kind no message is known for.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
}

type Result<T> = std::result::Result<T, DecodeError>;

fn malformed(message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(message.into())
}

/// Reads a protobuf-encoded object (magic, `runtime.Unknown` envelope, message) into its JSON
/// form, with `apiVersion` and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value> {
    let rest = body.strip_prefix(MAGIC).ok_or(DecodeError::NotProtobuf)?;
    MESSAGES_LEFT.set(MAX_MESSAGES);
    unknown(rest, 0)
}

/// A `runtime.Unknown`: type meta (1), raw (2), content encoding (3), content type (4).
fn unknown(bytes: &[u8], depth: usize) -> Result<Value> {
    let (mut api_version, mut kind, mut raw, mut encoding, mut content_type) = (
        String::new(),
        String::new(),
        &[][..],
        String::new(),
        String::new(),
    );
    for item in Fields::new(bytes) {
        let (tag, wire) =
            item.map_err(|e| malformed(format!("{e} in io.k8s.apimachinery.pkg.runtime.Unknown")))?;
        match tag {
            1 => {
                for item in Fields::new(wire.bytes("typeMeta")?) {
                    match item? {
                        (1, w) => api_version = w.string("apiVersion")?,
                        (2, w) => kind = w.string("kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = wire.bytes("raw")?,
            3 => encoding = wire.string("contentEncoding")?,
            4 => content_type = wire.string("contentType")?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(malformed(format!(
            "unsupported content encoding {encoding:?}"
        )));
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == "application/json" {
        return serde_json::from_slice(raw)
            .map_err(|e| malformed(format!("embedded JSON object: {e}")));
    }
    let message = kind_message(&api_version, &kind).ok_or_else(|| DecodeError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    match decode_message(message, raw, depth + 1)? {
        Value::Object(fields) => out.extend(fields),
        _ => return Err(malformed("a kind must be a struct")),
    }
    Ok(Value::Object(out))
}

/// The message of `kind` in `api_version`.
fn kind_message(api_version: &str, kind: &str) -> Option<&'static Message> {
    let package = if OPTIONS_KINDS.contains(&kind) {
        "io.k8s.apimachinery.pkg.apis.meta.v1"
    } else {
        let i = table::VERSIONS
            .binary_search_by(|(v, _)| (*v).cmp(api_version))
            .ok()?;
        table::VERSIONS[i].1
    };
    table::MESSAGES.iter().find(|m| {
        m.name
            .strip_prefix(package)
            .and_then(|rest| rest.strip_prefix('.'))
            == Some(kind)
    })
}

/// The JSON form of one message of type `message`.
fn decode_message(message: &'static Message, bytes: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(malformed("objects nest too deeply"));
    }
    let left = MESSAGES_LEFT.get();
    if left == 0 {
        return Err(malformed(format!(
            "{}: the object has more than {MAX_MESSAGES} messages",
            message.name
        )));
    }
    MESSAGES_LEFT.set(left - 1);
    let short = message.name.rsplit('.').next().unwrap_or_default();
    let package = &message.name[..message.name.len() - short.len()];
    match (package, short) {
        ("io.k8s.apimachinery.pkg.apis.meta.v1.", "Time") => return time(bytes, false),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.", "MicroTime") => return time(bytes, true),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.", "Duration") => return duration(bytes),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.", "FieldsV1") => return raw_json(bytes, depth),
        ("io.k8s.apimachinery.pkg.api.resource.", "Quantity" | "QuantityValue") => {
            return quantity(bytes);
        }
        ("io.k8s.apimachinery.pkg.util.intstr.", "IntOrString") => return int_or_string(bytes),
        ("io.k8s.apimachinery.pkg.runtime.", "RawExtension") => return raw_json(bytes, depth),
        ("io.k8s.apimachinery.pkg.runtime.", "Unknown") => return unknown(bytes, depth),
        _ => {}
    }
    let mut values: Vec<Option<Value>> = vec![None; message.fields.len()];
    for item in Fields::new(bytes) {
        // Says in which message the wire breaks; errors of its fields' values name the field.
        let (tag, wire) = item.map_err(|e| malformed(format!("{e} in {}", message.name)))?;
        // Unknown field numbers are skipped, as upstream's decoder skips them.
        let Some(i) = message.fields.iter().position(|f| f.tag == tag) else {
            continue;
        };
        let field = &message.fields[i];
        let what = || format!("{}.{}", short, field.json);
        match field.card {
            Card::One => values[i] = Some(scalar(field.kind, wire, depth, &what)?),
            Card::Repeated => {
                let list = values[i].get_or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(list) = list else {
                    unreachable!("lists are arrays")
                };
                match (wire, field.kind) {
                    // Packed numbers: proto2 writes them unpacked, but readers take both.
                    (Wire::Bytes(packed), Kind::Bool | Kind::I32 | Kind::I64 | Kind::F64) => {
                        let mut r = Reader(packed);
                        while !r.0.is_empty() {
                            let w = if field.kind == Kind::F64 {
                                Wire::Fixed64(r.fixed64()?)
                            } else {
                                Wire::Varint(r.varint()?)
                            };
                            list.push(scalar(field.kind, w, depth, &what)?);
                        }
                    }
                    _ => list.push(scalar(field.kind, wire, depth, &what)?),
                }
            }
            Card::Map => {
                let map = values[i].get_or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(map) = map else {
                    unreachable!("maps are objects")
                };
                let (mut key, mut value) = (String::new(), None);
                for item in Fields::new(wire.bytes(&what())?) {
                    match item? {
                        (1, w) => key = w.string(&what())?,
                        (2, w) => value = Some(scalar(field.kind, w, depth, &what)?),
                        _ => {}
                    }
                }
                let value = match value {
                    Some(v) => v,
                    None => zero(field.kind, Card::One, depth)?,
                };
                map.insert(key, value);
            }
        }
    }
    if message.array {
        return Ok(values.pop().flatten().unwrap_or(Value::Null));
    }
    let mut out = Map::new();
    for (field, value) in message.fields.iter().zip(values) {
        let value = match (field.emit, value) {
            (Emit::IfSet, None) => continue,
            (Emit::IfNonZero, None) => continue,
            (Emit::IfNonZero, Some(v)) if is_zero(&v) => continue,
            (_, Some(v)) => v,
            (Emit::Always, None) => zero(field.kind, field.card, depth)?,
        };
        if field.json.is_empty() {
            // An embedded struct: its fields are the parent's.
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
        } else {
            out.insert(field.json.to_owned(), value);
        }
    }
    Ok(Value::Object(out))
}

/// One value of `kind`.
fn scalar(kind: Kind, wire: Wire<'_>, depth: usize, what: &dyn Fn() -> String) -> Result<Value> {
    Ok(match (kind, wire) {
        (Kind::Str, w) => Value::String(w.string(&what())?),
        (Kind::Bytes, w) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(w.bytes(&what())?))
        }
        (Kind::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // Go truncates to the field's width.
        (Kind::I32, Wire::Varint(v)) => Value::from(v as i32),
        (Kind::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Kind::F64, Wire::Fixed64(v)) => Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .ok_or_else(|| malformed(format!("{}: not a finite number", what())))?,
        (Kind::Msg(i), w) => decode_message(
            &table::MESSAGES[usize::from(i)],
            w.bytes(&what())?,
            depth + 1,
        )?,
        (_, _) => return Err(malformed(format!("{}: wrong wire type", what()))),
    })
}

/// Go's zero value of a field, in JSON.
fn zero(kind: Kind, card: Card, depth: usize) -> Result<Value> {
    Ok(match (card, kind) {
        (Card::Repeated | Card::Map, _) | (Card::One, Kind::Bytes) => Value::Null,
        (Card::One, Kind::Str) => Value::String(String::new()),
        (Card::One, Kind::Bool) => Value::Bool(false),
        (Card::One, Kind::I32 | Kind::I64) => Value::from(0),
        (Card::One, Kind::F64) => Value::from(0.0),
        (Card::One, Kind::Msg(i)) => {
            decode_message(&table::MESSAGES[usize::from(i)], &[], depth + 1)?
        }
    })
}

/// Whether Go's `omitempty` leaves `v` out.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// `Time` (seconds only, as upstream keeps it) or `MicroTime`: RFC 3339 in UTC, or `null` when
/// the message is empty (Go's zero time).
fn time(bytes: &[u8], micro: bool) -> Result<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for item in Fields::new(bytes) {
        match item? {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i32,
            (1 | 2, _) => return Err(malformed("time: wrong wire type")),
            _ => {}
        }
    }
    let nanos = if micro { nanos - nanos % 1000 } else { 0 };
    let at = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| malformed(format!("time out of range: {e}")))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(at.strftime(format).to_string()))
}

/// `Duration`: nanoseconds (1), as Go's `time.Duration.String`.
fn duration(bytes: &[u8]) -> Result<Value> {
    let mut nanos = 0i64;
    for item in Fields::new(bytes) {
        match item? {
            (1, Wire::Varint(v)) => nanos = v as i64,
            (1, _) => return Err(malformed("duration: wrong wire type")),
            _ => {}
        }
    }
    Ok(Value::String(go_duration(nanos)))
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let fraction = |value: u64, digits: u32| {
        let scale = 10u64.pow(digits);
        let frac = format!("{:0width$}", value % scale, width = digits as usize);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{}", value / scale)
        } else {
            format!("{}.{frac}", value / scale)
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", fraction(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(u, 6));
    }
    let seconds = u / 1_000_000_000;
    let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
    let mut out = sign.to_owned();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if seconds >= 60 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fraction(u % 60_000_000_000, 9));
    out.push('s');
    out
}

/// `Quantity`: its string (1); Go's zero quantity is `"0"`.
fn quantity(bytes: &[u8]) -> Result<Value> {
    let mut s = "0".to_owned();
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            s = w.string("quantity")?;
        }
    }
    Ok(Value::String(s))
}

/// `IntOrString`: type (1; 1 is a string), intVal (2), strVal (3).
fn int_or_string(bytes: &[u8]) -> Result<Value> {
    let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
    for item in Fields::new(bytes) {
        match item? {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = v as i32,
            (3, w) => string = w.string("strVal")?,
            (1 | 2, _) => return Err(malformed("intOrString: wrong wire type")),
            _ => {}
        }
    }
    Ok(if is_string {
        Value::String(string)
    } else {
        Value::from(int)
    })
}

/// `RawExtension` or `FieldsV1`: raw bytes (1) holding JSON, or a protobuf-encoded object;
/// `null` when unset.
fn raw_json(bytes: &[u8], depth: usize) -> Result<Value> {
    let mut raw: &[u8] = &[];
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            raw = w.bytes("raw")?;
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if let Some(rest) = raw.strip_prefix(MAGIC) {
        return unknown(rest, depth + 1);
    }
    serde_json::from_slice(raw).map_err(|e| malformed(format!("embedded object is not JSON: {e}")))
}

/// One field's value as it was on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// No Kubernetes field is 32-bit fixed; skipped like an unknown field.
    Fixed32,
}

impl<'a> Wire<'a> {
    fn bytes(self, what: &str) -> Result<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Ok(b),
            _ => Err(malformed(format!("{what}: wrong wire type"))),
        }
    }

    /// A string, which must be UTF-8. Go does not check proto2 strings and its JSON encoder
    /// then replaces bad bytes with U+FFFD, silently changing the object; Berth refuses the
    /// body instead, the answer a JSON body with invalid UTF-8 gets.
    fn string(self, what: &str) -> Result<String> {
        let bytes = self.bytes(what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(malformed(format!(
                "{what}: string is not valid UTF-8 (invalid byte at offset {} of {})",
                e.valid_up_to(),
                bytes.len()
            ))),
        }
    }
}

/// The fields of one message, in wire order.
struct Fields<'a>(Reader<'a>);

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields(Reader(bytes))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.0.is_empty() {
            return None;
        }
        let item = self.0.field();
        if item.is_err() {
            // Stop after the first error.
            self.0.0 = &[];
        }
        Some(item)
    }
}

/// A cursor over protobuf bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or_else(|| malformed("proto: unexpected end of data in a varint"))?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(malformed("proto: integer overflow"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed(format!(
                "proto: unexpected end of data: a field of {n} bytes with {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn fixed64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("eight bytes"),
        ))
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>)> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| malformed(format!("proto: illegal field number {}", key >> 3)))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("proto: length out of range"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            other => {
                return Err(malformed(format!(
                    "proto: unsupported wire type {other} for field {tag}"
                )));
            }
        };
        Ok((tag, wire))
    }
}
