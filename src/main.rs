#![deny(clippy::unwrap_used)]
fn main() -> std::process::ExitCode {
    akte::cli::main()
}
