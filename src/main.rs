fn main() -> std::process::ExitCode {
    akte::cli::main()
}
