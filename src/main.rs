//! The `reconad` binary: parse the command line, run the command, exit 0 or 1.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
