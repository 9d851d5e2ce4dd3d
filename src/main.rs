//! The `reconad` binary: parse the command line, run the command, exit 0 or 1.

mod cli;

/// mimalloc keeps freed memory for reuse a little while: the CPU kernels allocate and free
/// activation buffers of tens of MB per layer, which glibc hands back to the kernel at once, so
/// every layer paid page faults again (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
