//! Breakers shared by a fleet (placeholder doc, rewritten after measuring).

fn main() -> std::process::ExitCode {
    resilience::fleet::cli::main()
}
