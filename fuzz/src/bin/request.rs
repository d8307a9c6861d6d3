//! afl.rs target: `akte::fuzzing::request`. See fuzz/README.md.
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        akte::fuzzing::request(data);
    });
}
