//! Golden examples: one file per message kind, decoded and re-encoded without loss.
//! These files are the protocol documentation (linked from the README).

use std::path::Path;

use outpost_shared::{
    Ack, Batch, Birth, EscalationList, Presence, decode, encode, message::Message,
};

fn golden<T: Message + std::fmt::Debug + PartialEq>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let value: T = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Re-encoding gives the same JSON document (field order aside).
    let original: serde_json::Value = serde_json::from_slice(&bytes).expect("golden file is JSON");
    let reencoded: serde_json::Value =
        serde_json::from_slice(&encode(&value)).expect("we emit JSON");
    assert_eq!(original, reencoded, "{name} does not survive a round trip");
    let again: T = decode(&encode(&value)).expect("our own output decodes");
    assert_eq!(again, value);
    value
}

#[test]
fn birth() {
    let b: Birth = golden("birth.json");
    assert_eq!(b.checks.len(), 2);
    assert_eq!(b.checks[1].depends_on[0].as_str(), "router");
}

#[test]
fn presence() {
    assert_eq!(golden::<Presence>("state.json"), Presence::ONLINE);
    assert_eq!(golden::<Presence>("state-offline.json"), Presence::OFFLINE);
    assert_eq!(golden::<Presence>("collector-state.json"), Presence::ONLINE);
}

#[test]
fn records() {
    let batch: Batch = golden("records.json");
    let types: Vec<_> = batch
        .records
        .iter()
        .map(outpost_shared::Record::type_name)
        .collect();
    assert_eq!(types, ["result", "result", "note", "note", "gap"]);
    assert!(batch.records[1].as_result().is_some_and(|r| r.historical));
}

#[test]
fn ack() {
    let ack: Ack = golden("ack.json");
    assert_eq!(ack.seq, 45);
}

#[test]
fn escalations() {
    let list: EscalationList = golden("escalations.json");
    assert_eq!(list.escalations.len(), 2);
}
