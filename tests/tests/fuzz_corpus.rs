//! The fuzz targets (fuzz/, nightly + cargo-fuzz) on stable: every target's check runs over
//! the seed corpus (golden payloads, example configs, whatever fuzz/corpus and fuzz/artifacts
//! hold) and a few thousand deterministic mutations of each seed. Not a fuzzer, but it keeps
//! the targets' properties under CI and replays any crash saved in fuzz/artifacts.

use std::path::{Path, PathBuf};

use outpost_shared::{Ack, Batch, Birth, EscalationList, Presence};

/// The fuzz targets' checks themselves (the fuzz crate is not a workspace member).
#[path = "../../fuzz/src/lib.rs"]
mod checks;

use checks::decode_roundtrip;

/// Mutations per payload seed (decoding is cheap).
const PAYLOAD_MUTATIONS: usize = 3000;
/// Mutations per config seed (a config parse reads the system time zone: slower).
const CONFIG_MUTATIONS: usize = 600;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The seeds of fuzz target `target`: `extra` files plus its corpus and saved artifacts.
fn seeds(target: &str, extra: &[PathBuf]) -> Vec<Vec<u8>> {
    let fuzz = root().join("fuzz");
    let mut paths = extra.to_vec();
    paths.extend(files(&fuzz.join("corpus").join(target)));
    paths.extend(files(&fuzz.join("artifacts").join(target)));
    let seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes and tokens that tend to break parsers.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"\\",
    b"\xff",
    b"\x00",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"null",
    b"true",
    b"\"\\ud800\"",
    b"[[[[[[[[",
    b"\"\"",
    b"[[check]]\n",
    b"[mqtt]\n",
    b"\"9999999999s\"",
    b"\"99999999TB\"",
    b"\"25:61\"",
    b"\"\xc3\xa9\"",
    b"inf",
    b"nan",
];

/// A deterministic mutation of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 => out.truncate(at),
            1 if at < out.len() => out[at] = TOKENS[rng.below(TOKENS.len())][0],
            2 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

/// Runs `check` over every seed, prefixes of it, and `mutations` mutations of it.
fn exercise(target: &str, extra: &[PathBuf], mutations: usize, check: impl Fn(&[u8])) {
    let mut rng = Rng(0x0u64.wrapping_add(target.len() as u64 * 7919 + 1));
    for seed in seeds(target, extra) {
        check(&seed);
        let step = (seed.len() / 400).max(1);
        for cut in (0..seed.len()).step_by(step) {
            check(&seed[..cut]);
        }
        for _ in 0..mutations {
            check(&mutate(&seed, &mut rng));
        }
    }
}

fn golden(names: &[&str]) -> Vec<PathBuf> {
    let dir = root().join("shared/tests/golden");
    names.iter().map(|n| dir.join(n)).collect()
}

#[test]
fn decode_batch() {
    exercise(
        "decode_batch",
        &golden(&["records.json"]),
        PAYLOAD_MUTATIONS,
        decode_roundtrip::<Batch>,
    );
}

#[test]
fn decode_birth() {
    exercise(
        "decode_birth",
        &golden(&["birth.json"]),
        PAYLOAD_MUTATIONS,
        decode_roundtrip::<Birth>,
    );
}

#[test]
fn decode_presence() {
    let seeds = golden(&["state.json", "state-offline.json", "collector-state.json"]);
    exercise(
        "decode_presence",
        &seeds,
        PAYLOAD_MUTATIONS,
        decode_roundtrip::<Presence>,
    );
}

#[test]
fn decode_ack() {
    exercise(
        "decode_ack",
        &golden(&["ack.json"]),
        PAYLOAD_MUTATIONS,
        decode_roundtrip::<Ack>,
    );
}

#[test]
fn decode_escalations() {
    exercise(
        "decode_escalations",
        &golden(&["escalations.json"]),
        PAYLOAD_MUTATIONS,
        decode_roundtrip::<EscalationList>,
    );
}

#[test]
fn agent_config() {
    let examples = root().join("deploy/examples");
    exercise(
        "agent_config",
        &[examples.join("agent-small-plant.toml")],
        CONFIG_MUTATIONS,
        checks::agent_config,
    );
}

#[test]
fn collector_config() {
    let examples = root().join("deploy/examples");
    let seeds = [
        examples.join("collector-minimal.toml"),
        examples.join("collector-production.toml"),
    ];
    exercise(
        "collector_config",
        &seeds,
        CONFIG_MUTATIONS,
        checks::collector_config,
    );
}
