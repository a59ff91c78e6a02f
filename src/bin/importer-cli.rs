//! The importer example as a binary, so tests can run it as a child process (and kill it) through
//! `env!("CARGO_BIN_EXE_importer-cli")`. Same program as `cargo run --example importer`.

fn main() -> std::process::ExitCode {
    resilience::cli::main()
}
