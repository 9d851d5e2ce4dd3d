//! `reconad info`: versions, compiled backends, and a smoke test of one.

use std::process::ExitCode;

use anyhow::{bail, Result};
use reconad::device::{self, Backend, BURN_VERSION};

/// Print versions, the compiled backends, and check that a backend runs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backend to try.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// GPU index (cuda).
    #[arg(long, default_value_t = 0)]
    gpu: usize,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    println!("reconad {}", env!("CARGO_PKG_VERSION"));
    println!("burn {BURN_VERSION}");
    let names: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
    println!("backends compiled in: {}", names.join(", "));
    let device = device::device(args.backend, args.gpu)?;
    let value = device::smoke_test(&device);
    if (value - 6.0).abs() > 1e-5 {
        bail!("backend {} computed 1+2+3 = {value}", args.backend.name());
    }
    println!("backend {} ok: {device:?}", args.backend.name());
    println!("threads: {} (rayon)", rayon::current_num_threads());
    Ok(ExitCode::SUCCESS)
}
