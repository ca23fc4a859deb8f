#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_fuzz::decode_roundtrip::<outpost_shared::Batch>(data);
});
