//! Harnesses over the request decoding path, shared by the cargo-fuzz targets in `fuzz/` and by
//! the corpus test that runs in CI (`fuzzing::tests`).
//!
//! Each harness takes arbitrary bytes and must return without panicking, whatever they are;
//! errors are the expected outcome for almost every input. They are not an API.

use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};

/// The media types [`decode`] feeds bodies as: every type `decode_body` and the patch paths
/// accept, and one it refuses.
pub const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    crate::protobuf::MEDIA_TYPE,
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
];

/// The methods [`request`] picks from.
const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
];

/// The object patches are applied to.
fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
    })
}

/// The first byte picks the content type, the rest is the body: decoded with `decode_body`
/// and, raw, with the protobuf decoder; a decoded body is then applied as each kind of patch to
/// a Pod (the engines `apply_patch` runs).
pub fn decode(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    let _ = crate::protobuf::decode(body);
    let Ok(value) = crate::handlers::decode_body(&headers, body) else {
        return;
    };
    // Whatever decodes is serializable again (no NaN, no non-string keys).
    let _ = value.to_string();
    let current = pod();
    match pick % 3 {
        0 => {
            let _ = objects::patch::json_patch(&current, &value);
        }
        1 => {
            if objects::patch::validate_merge_patch(&value).is_ok() {
                let _ = objects::patch::json_merge(&current, &value);
            }
        }
        _ => {
            let _ =
                crate::rules::strategic_merge(objects::GroupKind::new("", "Pod"), &current, &value);
        }
    }
}

/// The first byte picks the method, the rest is a request target (path and query): parsed as a
/// URI, then routed to a cluster, parsed as a resource request and its query parameters read,
/// as `serve` does. Targets that are not valid UTF-8 are also routed lossily.
pub fn request(data: &[u8]) {
    let Some((&pick, target)) = data.split_first() else {
        return;
    };
    let method = &METHODS[usize::from(pick) % METHODS.len()];
    let watch = pick & 0x80 != 0;
    if let Ok(uri) = axum::http::Uri::try_from(target) {
        route(method, uri.path(), uri.query(), watch);
    }
    let lossy = String::from_utf8_lossy(target);
    let (path, query) = match lossy.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*lossy, None),
    };
    route(method, path, query, watch);
}

fn route(method: &Method, path: &str, query: Option<&str>, watch: bool) {
    let _ = crate::query::Params::parse(query);
    if let Some(routed) = crate::request::route(path) {
        let _ = crate::request::parse(method, routed.path, watch);
    }
}

/// A seeded xorshift64* generator, so the corpus test is the same on every run.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced, since xorshift stays at 0).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (which must not be 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Bytes a mutation inserts: structure characters of every format and boundary bytes.
const INTERESTING: &[u8] =
    b"{}[]\":,&*!|-?#\n\\\x00\x08\x0a\x12\x1a\x22\x7f\x80\xbf\xc0\xed\xf0\xf4\xff";

/// `seed` changed a few times (flip, insert, delete, duplicate a slice, truncate).
pub fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                out.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i + 1).min(16);
                out.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i + 1).min(64);
                let slice = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, slice);
            }
            4 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                out.insert(i, rng.next_u64() as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
