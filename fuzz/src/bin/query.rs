//! afl.rs target: `akte::fuzzing::query`. See fuzz/README.md.
fn main() {
    // No panic hook: a panic that akte catches itself (a parser under catch_unwind) is
    // not a crash; one that escapes aborts, and afl records it.
    afl::fuzz_nohook!(|data: &[u8]| {
        akte::fuzzing::query(data);
    });
}
