//! The `reconad` binary: parse the command line, run the command, exit 0 or 1.

mod cli;

/// mimalloc keeps freed memory for reuse a little while: the CPU kernels allocate and free
/// activation buffers of tens of MB per layer, which glibc hands back to the kernel at once, so
/// every layer paid page faults again (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_purge_delay` (its index in `mi_option_e`, `mimalloc.h`;
/// libmimalloc-sys 0.1.49 names no constant for it in v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc v3's default purge delay in ms: what the option reads before we set it.
const MI_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Keep freed memory mapped for reuse instead of handing it back to the OS after 1 s: a training
/// step frees and reallocates the same activation buffers every few hundred ms, and each page
/// handed back costs a fault and zeroing when it is touched again (8 % of a step in `perf`;
/// BENCHMARKS.md). RSS stays at its high-water mark until the process ends, which is what a
/// training or scoring run reaches anyway. `MIMALLOC_PURGE_DELAY` in the environment wins.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_get` / `mi_option_set` read and write one option of the allocator; the
    // default check guards against a changed option index (then nothing is set).
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    cli::main()
}
