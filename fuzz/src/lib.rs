//! What every fuzz target checks, shared so each target is one line. The stable replay in
//! tests/tests/fuzz_corpus.rs includes this file, so both check the same properties.

use std::path::Path;

use outpost_shared::{decode, encode, message::Message};

/// A payload decodes or is refused, never panics; what decodes re-encodes to something that
/// decodes to the same value (numbers within one part in 10^15: serde_json's default float
/// parser is not always correctly rounded, see README.md).
pub fn decode_roundtrip<T: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        let bytes = encode(&value);
        let again: T = match decode(&bytes) {
            Ok(again) => again,
            Err(e) => panic!("our own encoding of {value:?} does not decode: {e}"),
        };
        if again != value {
            let (a, b) = (as_json(&encode(&again)), as_json(&bytes));
            assert!(close(&a, &b), "a round trip changed the value: {a} != {b}");
        }
    }
}

fn as_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("we emit JSON")
}

/// Equal, except numbers may differ in the last digits.
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
            _ => x == y,
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// The agent's config parser accepts or refuses any text with an error that names a line.
pub fn agent_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = outpost_agent::config::Config::parse(Path::new("fuzz.toml"), text) {
        assert!(!e.to_string().is_empty());
    }
}

/// The collector's config parser accepts or refuses any text with an error that names a line.
pub fn collector_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = outpost_collector::config::Config::parse(text, Path::new("fuzz.toml")) {
        if let outpost_collector::config::ConfigError::Invalid { line, .. } = &e {
            assert!(*line >= 1, "line numbers start at 1: {e}");
        }
        assert!(!e.to_string().is_empty());
    }
}
