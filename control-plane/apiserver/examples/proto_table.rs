//! Writes `src/protobuf/table.rs`, the field table the protobuf decoder reads.
//!
//! k8s-pb 0.9.0 carries the messages of Kubernetes 1.35, so the other sources are read at 1.35
//! too; field numbers never change between versions, so the table serves 1.33 clients as well.
//!
//! The table says, for every message of the built-in API groups (`k8s.io/api`) and of
//! `k8s.io/apimachinery`, which field number carries which JSON field, with what wire type, and
//! when the field appears in the JSON form. Three sources are joined, and any disagreement
//! between them stops the generator:
//!
//! - the `k8s-pb` crate (prost code generated from Kubernetes' `generated.proto` files) gives
//!   the messages, field numbers, wire types and message types;
//! - the `k8s-openapi` crate (generated from the OpenAPI spec) gives the exact JSON names;
//! - the Go types of `k8s.io/api` and `k8s.io/apimachinery` give what neither crate knows: which
//!   fields are pointers, which are `omitempty` and which are inlined (`json:",inline"`). Go's
//!   protobuf code writes every non-pointer field, even when empty, and its JSON encoder leaves
//!   out empty `omitempty` fields, so the JSON form of a decoded message depends on it.
//!
//! Run it from the repository root after bumping the Kubernetes version:
//!
//! ```text
//! git clone --depth 1 --branch v0.35.0 https://github.com/kubernetes/api /tmp/k8s-api
//! git clone --depth 1 --branch v0.35.0 https://github.com/kubernetes/apimachinery /tmp/k8s-apimachinery
//! cargo run -p apiserver --example proto_table -- \
//!     ~/.cargo/registry/src/*/k8s-pb-0.9.0 ~/.cargo/registry/src/*/k8s-openapi-0.29.0 \
//!     /tmp/k8s-api /tmp/k8s-apimachinery > control-plane/apiserver/src/protobuf/table.rs
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The k8s-openapi feature whose definitions name the JSON fields.
const OPENAPI_VERSION: &str = "v1_35";

/// One field of a k8s-pb message.
#[derive(Debug)]
struct PbField {
    tag: u32,
    rust_name: String,
    /// `string`, `bool`, `int32`, `int64`, `double`, `bytes` or `message`.
    kind: String,
    card: Card,
    /// The full proto name of the message type (or map value type), if a message.
    message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Card {
    One,
    Repeated,
    Map,
}

/// What the Go type says about a field.
#[derive(Debug, Clone)]
struct GoField {
    json: String,
    omitempty: bool,
    pointer: bool,
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [pb, openapi, go_api, go_machinery] = args.as_slice() else {
        eprintln!(
            "usage: proto_table K8S_PB_DIR K8S_OPENAPI_DIR K8S_API_GO_DIR K8S_APIMACHINERY_GO_DIR"
        );
        return ExitCode::FAILURE;
    };
    match generate(pb, openapi, go_api, go_machinery) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} errors; no table written", errors.len());
            ExitCode::FAILURE
        }
    }
}

fn generate(
    pb: &Path,
    openapi: &Path,
    go_api: &Path,
    go_machinery: &Path,
) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut messages: BTreeMap<String, Vec<PbField>> = BTreeMap::new();
    let mut kinds: Vec<(String, String, String)> = Vec::new();
    let mut go_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (top, go_root) in [("api", go_api), ("apimachinery", go_machinery)] {
        for file in rust_files(&pb.join("src").join(top)) {
            let rel = file
                .parent()
                .expect("in a folder")
                .strip_prefix(pb.join("src"))
                .expect("under src");
            let module: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
            if module.iter().any(|m| m == "testapigroup") {
                continue;
            }
            let package = format!("io.k8s.{}", module.join("."));
            let go_dir = go_root.join(module[1..].iter().collect::<PathBuf>());
            let text = fs::read_to_string(&file).expect("readable k8s-pb source");
            let found = parse_pb(&text, &module, &package, &mut kinds, &mut errors);
            if !found.is_empty() {
                go_dirs.insert(package.clone(), go_dir);
            }
            messages.extend(found);
        }
    }
    let json_names = parse_openapi(&openapi.join("src").join(OPENAPI_VERSION));
    let mut go: BTreeMap<String, BTreeMap<u32, GoField>> = BTreeMap::new();
    let mut slices = std::collections::BTreeSet::new();
    for (package, dir) in &go_dirs {
        let (structs, named_slices) = parse_go_dir(dir);
        for (name, fields) in structs {
            go.insert(format!("{package}.{name}"), fields);
        }
        slices.extend(named_slices.into_iter().map(|s| (package.clone(), s)));
    }

    // prost renames acronyms (`ISCSIVolumeSource` becomes `IscsiVolumeSource`): match the
    // other sources' names without case.
    let json_names: BTreeMap<String, (String, BTreeMap<String, String>)> = json_names
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (k, v)))
        .collect();
    let go: BTreeMap<String, (String, BTreeMap<u32, GoField>)> = go
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (k, v)))
        .collect();
    let index: BTreeMap<&str, usize> = messages
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut out = String::new();
    out.push_str(
        "// @generated by `cargo run -p apiserver --example proto_table`; do not edit.\n\
         // Sources: k8s-pb 0.9.0, k8s-openapi 0.29.0 (v1_35), k8s.io/api and\n\
         // k8s.io/apimachinery v0.35.0 (Kubernetes 1.35). See examples/proto_table.rs.\n\n\
         use super::{Card::*, Emit::*, Field, Kind::*, Message};\n\n\
         const fn f(tag: u32, json: &'static str, kind: super::Kind, card: super::Card, emit: super::Emit) -> Field {\n    \
         Field { tag, json, kind, card, emit }\n}\n\n",
    );
    let _ = writeln!(
        out,
        "/// Every message, sorted by full proto name.\npub(super) static MESSAGES: [Message; {}] = [",
        messages.len()
    );
    let mut unresolved_go = 0;
    for (name, fields) in &messages {
        let lower = name.to_ascii_lowercase();
        let names = json_names.get(&lower).map(|(_, n)| n);
        let go_fields = go.get(&lower).map(|(_, g)| g);
        let proper = go
            .get(&lower)
            .map(|(n, _)| n)
            .or(json_names.get(&lower).map(|(n, _)| n))
            .unwrap_or(name);
        let mut rendered = Vec::new();
        let mut sorted: Vec<&PbField> = fields.iter().collect();
        sorted.sort_by_key(|f| f.tag);
        for field in sorted {
            let go_field = go_fields.and_then(|g| g.get(&field.tag));
            if is_special(name) {
                // Rendered by name at run time; the field names are never used.
            } else if go_field.is_none() {
                unresolved_go += 1;
                warnings.push(format!(
                    "{name}.{} (tag {}): no Go field with this protobuf tag; written when set",
                    field.rust_name, field.tag
                ));
            }
            let wanted = normalize(&field.rust_name);
            let from_openapi = names.and_then(|n| n.get(&wanted)).cloned();
            let json = match (go_field, from_openapi) {
                (Some(g), _) if g.json.is_empty() => String::new(),
                (Some(g), Some(o)) if g.json != o => {
                    errors.push(format!(
                        "{name}.{}: Go calls it {:?}, k8s-openapi {o:?}",
                        field.rust_name, g.json
                    ));
                    o
                }
                (_, Some(o)) => o,
                (Some(g), None) if names.is_none() || is_special(name) => g.json.clone(),
                (Some(g), None) => {
                    errors.push(format!(
                        "{name}.{}: k8s-openapi's definition has no field like it (Go: {:?})",
                        field.rust_name, g.json
                    ));
                    g.json.clone()
                }
                (None, None) => {
                    let camel = lower_camel(&field.rust_name);
                    if !is_special(name) {
                        warnings.push(format!(
                            "{name}.{}: neither Go nor k8s-openapi names it; using {camel:?}",
                            field.rust_name
                        ));
                    }
                    camel
                }
            };
            let kind = match (field.kind.as_str(), &field.message) {
                ("message", Some(m)) => match index.get(m.as_str()) {
                    Some(i) => format!("Msg({i})"),
                    None => {
                        errors.push(format!("{name}.{}: unknown message {m}", field.rust_name));
                        "Msg(0)".into()
                    }
                },
                ("string", _) => "Str".into(),
                ("bool", _) => "Bool".into(),
                ("int32", _) => "I32".into(),
                ("int64", _) => "I64".into(),
                ("double", _) => "F64".into(),
                ("bytes", _) => "Bytes".into(),
                (other, _) => {
                    errors.push(format!("{name}.{}: wire kind {other}", field.rust_name));
                    "Str".into()
                }
            };
            let emit = match go_field {
                None => "IfSet",
                Some(g) if g.pointer => "IfSet",
                // Go's JSON encoder writes structs even when empty and `omitempty`.
                Some(_) if field.card == Card::One && field.kind == "message" => "Always",
                Some(g) if g.omitempty => "IfNonZero",
                Some(_) => "Always",
            };
            let card = match field.card {
                Card::One => "One",
                Card::Repeated => "Repeated",
                Card::Map => "Map",
            };
            rendered.push(format!(
                "f({}, {json:?}, {kind}, {card}, {emit})",
                field.tag
            ));
        }
        // Go's named slices (`type ExtraValue []string`) travel as a message holding one
        // repeated field, and are a bare array in JSON.
        let short = proper.rsplit('.').next().unwrap_or_default();
        let package = &proper[..proper.len() - short.len() - 1];
        let array = fields.len() == 1
            && fields[0].card == Card::Repeated
            && slices.contains(&(package.to_owned(), short.to_owned()));
        let _ = writeln!(
            out,
            "    Message {{ name: {proper:?}, array: {array}, fields: &[{}] }},",
            rendered.join(", ")
        );
    }
    out.push_str("];\n\n");
    // Every message of a group version's package may be sent as a kind of that version (the
    // scheme registers subresource kinds such as Eviction and Scale too); the Resource impls
    // tell which package serves which apiVersion.
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    for (api_version, _, message) in &kinds {
        let package = &message[..message.rfind('.').expect("qualified")];
        if let Some(other) = versions.insert(api_version.clone(), package.to_owned())
            && other != package
        {
            errors.push(format!("{api_version} is served by {other} and {package}"));
        }
    }
    let _ = writeln!(
        out,
        "/// Proto package of each apiVersion, sorted.\npub(super) static VERSIONS: [(&str, &str); {}] = [",
        versions.len()
    );
    for (api_version, package) in &versions {
        let _ = writeln!(out, "    ({api_version:?}, {package:?}),");
    }
    out.push_str("];\n");
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "{} messages, {} fields, {} versions, {unresolved_go} fields without Go type",
        messages.len(),
        messages.values().map(Vec::len).sum::<usize>(),
        versions.len()
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Messages the decoder renders by name rather than field by field.
fn is_special(name: &str) -> bool {
    matches!(
        name,
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.Timestamp"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.Duration"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
            | "io.k8s.apimachinery.pkg.api.resource.Quantity"
            | "io.k8s.apimachinery.pkg.api.resource.QuantityValue"
            | "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
            | "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apimachinery.pkg.runtime.Unknown"
            | "io.k8s.apimachinery.pkg.runtime.TypeMeta"
    )
}

/// A name with case, underscores, dashes and `$` removed: how k8s-pb's snake_case names and
/// the JSON camelCase names are matched (`host_ipc` and `hostIPC`).
fn normalize(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `snake_case` as `lowerCamelCase`.
fn lower_camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.trim_start_matches("r#").chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("readable folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The messages of one k8s-pb module, and its `Resource` impls into `kinds`.
fn parse_pb(
    text: &str,
    module: &[String],
    package: &str,
    kinds: &mut Vec<(String, String, String)>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, Vec<PbField>> {
    let mut messages = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut current: Option<(String, Vec<PbField>)> = None;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            if let Some(name) = rest.strip_suffix(" {}") {
                messages.insert(format!("{package}.{}", name.trim()), Vec::new());
            } else {
                let name = rest.trim_end_matches(" {").trim().to_owned();
                current = Some((name, Vec::new()));
            }
        } else if line == "}" {
            if let Some((name, fields)) = current.take() {
                messages.insert(format!("{package}.{name}"), fields);
            }
        } else if let Some(attr) = line.strip_prefix("#[prost(") {
            let Some((_, fields)) = current.as_mut() else {
                i += 1;
                continue;
            };
            // The declaration follows the attribute, possibly over several lines.
            let mut decl = String::new();
            let mut j = i + 1;
            while j < lines.len() {
                decl.push_str(lines[j].trim());
                let open = decl.matches('<').count();
                if decl.ends_with(',') && open == decl.matches('>').count() {
                    break;
                }
                j += 1;
            }
            i = j;
            match parse_pb_field(attr, &decl, module) {
                Ok(f) => fields.push(f),
                Err(e) => errors.push(format!("{package}: {e}: {attr} {decl}")),
            }
        } else if let Some(rest) = line.strip_prefix("impl crate::Resource for ") {
            let name = rest.trim_end_matches(" {").trim();
            let konst = |key: &str| {
                lines[i..]
                    .iter()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix(&format!("const {key}: &'static str = \""))
                            .map(|v| v.trim_end_matches("\";").to_owned())
                    })
                    .expect("Resource impls name their constants")
            };
            kinds.push((
                konst("API_VERSION"),
                konst("KIND"),
                format!("{package}.{name}"),
            ));
        }
        i += 1;
    }
    messages
}

fn parse_pb_field(attr: &str, decl: &str, module: &[String]) -> Result<PbField, String> {
    let attr = attr.trim_end_matches(")]");
    // `btree_map = "string, message"` holds the only comma inside quotes.
    let (map, rest) = match attr.strip_prefix("btree_map = \"") {
        Some(m) => {
            let (types, rest) = m.split_once('"').ok_or("map")?;
            (Some(types), rest)
        }
        None => (None, attr),
    };
    let parts: Vec<&str> = rest.split(", ").collect();
    let tag: u32 = parts
        .iter()
        .find_map(|p| p.strip_prefix("tag = \""))
        .and_then(|t| t.trim_end_matches('"').parse().ok())
        .ok_or("no tag")?;
    let rust_name = decl
        .strip_prefix("pub ")
        .and_then(|d| d.split(':').next())
        .ok_or("no field name")?
        .trim()
        .to_owned();
    let ty = decl.split_once(':').map(|(_, t)| t).unwrap_or_default();
    let ty = ty.trim().trim_end_matches(',').replace(' ', "");
    let (kind, card) = if let Some(map) = map {
        let value = map.split(", ").nth(1).ok_or("map")?;
        (value.to_owned(), Card::Map)
    } else {
        let kind = parts[0].split(' ').next().unwrap_or_default().to_owned();
        let card = if parts.contains(&"repeated") {
            Card::Repeated
        } else {
            Card::One
        };
        (kind, card)
    };
    let message = (kind == "message").then(|| {
        // The innermost type argument: the last path before the closing brackets.
        let inner = ty.trim_end_matches(['>', ',']);
        let path = inner.rsplit(['<', ',']).next().unwrap_or(inner);
        resolve(path, module)
    });
    Ok(PbField {
        tag,
        rust_name,
        kind,
        card,
        message,
    })
}

/// The full proto name of a Rust type path written inside `module`.
fn resolve(path: &str, module: &[String]) -> String {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = module.iter().map(String::as_str).collect();
    if segments.first() == Some(&"crate") {
        segments.remove(0);
        base.clear();
    }
    while segments.first() == Some(&"super") {
        segments.remove(0);
        base.pop();
    }
    base.extend(segments);
    format!("io.k8s.{}", base.join("."))
}

/// k8s-openapi's JSON names, by definition and normalized name.
fn parse_openapi(dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for file in rust_files(dir) {
        let text = fs::read_to_string(&file).expect("readable k8s-openapi source");
        let Some(definition) = text.lines().find_map(|l| {
            l.strip_prefix("// Generated from definition ")
                .map(|d| d.trim().to_owned())
        }) else {
            continue;
        };
        let mut names = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix('"')
                && let Some((json, target)) = rest.split_once("\" => Field::Key_")
            {
                let _ = target;
                names.insert(normalize(json), json.to_owned());
            }
        }
        out.insert(definition, names);
    }
    out
}

/// The protobuf-tagged fields of every Go struct in `dir`, by struct and field number.
#[allow(clippy::type_complexity)]
fn parse_go_dir(dir: &Path) -> (BTreeMap<String, BTreeMap<u32, GoField>>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut slices = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return (out, slices);
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("folder entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".go") && !name.ends_with("_test.go") && !name.starts_with("generated.")
        })
        .collect();
    files.sort();
    for file in files {
        let text = fs::read_to_string(&file).expect("readable Go source");
        let mut current: Option<(String, BTreeMap<u32, GoField>)> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = line.strip_prefix("type ")
                && let Some((name, ty)) = rest.split_once(' ')
                && ty.starts_with("[]")
            {
                slices.push(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("type ")
                && let Some(name) = rest.strip_suffix(" struct {")
            {
                current = Some((name.trim().to_owned(), BTreeMap::new()));
            } else if line == "}" {
                if let Some((name, fields)) = current.take() {
                    out.insert(name, fields);
                }
            } else if let Some((_, fields)) = current.as_mut()
                && !trimmed.starts_with("//")
                && let Some((decl, tags)) = trimmed.split_once('`')
                && let Some(proto) = tag_value(tags, "protobuf")
            {
                let words: Vec<&str> = decl.split_whitespace().collect();
                let ty = words.last().copied().unwrap_or_default();
                let Some(number) = proto.split(',').nth(1).and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let json = tag_value(tags, "json").unwrap_or_default();
                let mut parts = json.split(',');
                let name = parts.next().unwrap_or_default().to_owned();
                let omitempty = parts.any(|p| p == "omitempty");
                fields.insert(
                    number,
                    GoField {
                        json: name,
                        omitempty,
                        pointer: ty.starts_with('*'),
                    },
                );
            }
        }
    }
    (out, slices)
}

/// The value of `key:"…"` in a Go struct tag.
fn tag_value<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
    let end = tags[start..].find('"')? + start;
    Some(&tags[start..end])
}
