//! `reconad bench`: training and scoring throughput and scoring memory, one `BENCH …` line per
//! measurement (see `reconad::bench`), to compare with `../shared/bench/torch_reference.py`
//! on the same machine.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use reconad::bench::{self, BenchLine};
use reconad::calibrate::{calibrate_best, calibrate_model, default_candidates, MapFamily};
use reconad::data::collect_image_files;
use reconad::detector::single::TrainedModel;
use reconad::device::Backend;
use reconad::model::unet::Preset;
use reconad::score::ScoringConfig;
use reconad::train::TrainConfig;
use reconad::util::progress::NoProgress;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Everything below.
    All,
    /// Optimizer steps and a training epoch.
    Train,
    /// Scoring images/s: the default profile and the SPEC §5 multi-scale profile.
    Score,
    /// Peak memory of scoring one image (run in a child process by `all`).
    Memory,
    /// Each 3x3 conv shape of --preset at --size: burn's conv against ours, and our two
    /// lowerings (im2col, Winograd) forward and for the input gradient (not in `all`).
    Conv,
}

/// Measure training and scoring throughput and scoring memory.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = What::All)]
    what: What,
    /// Images per training batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Training side in pixels.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Timed optimizer steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// `--what conv`: the preset whose conv shapes are timed.
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    preset: Preset,
    /// Images (files or folders) to score; default: generated 256-px images.
    #[arg(long, value_name = "PATH")]
    images: Vec<PathBuf>,
    /// Score at most this many of them.
    #[arg(long, default_value_t = 16)]
    limit: usize,
    /// Working folder (generated data, benchmark models); default: a temporary folder.
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Working size of the SPEC §5 scoring profile (windows ¼, ½ and all of it); 512 is SPEC
    /// §5, smaller values only make the benchmark itself quick (tests).
    #[arg(long, value_name = "PX", default_value_t = 512, hide = true)]
    spec_working_size: usize,
    /// `--what memory`: the model to open.
    #[arg(long, value_name = "RUN", hide = true)]
    model: Option<PathBuf>,
    /// `--what memory`: the image to score.
    #[arg(long, value_name = "FILE", hide = true)]
    image: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if args.what == What::Memory {
        return memory(args);
    }
    if args.what == What::Conv {
        for line in bench::conv::conv_layers(args.preset, args.batch, args.size, args.steps)? {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let temp = tempfile::tempdir()?;
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let print = |line: BenchLine| println!("{line}");
    let data = bench::bench_data(&work.join("data"), 48, 256)?;
    if matches!(args.what, What::All | What::Train) {
        // The step alone, as torch_reference.py: the SPEC U-Net with skips (small and default
        // widths), then the CPU default (small, no skips).
        for (preset, no_skips) in [
            (Preset::Small, false),
            (Preset::Default, false),
            (Preset::Small, true),
        ] {
            print(bench::train_step(
                preset,
                no_skips,
                args.batch,
                args.size,
                args.steps,
                Backend::Cpu,
            )?);
        }
        let config = TrainConfig {
            batch_size: args.batch,
            ..TrainConfig::default()
        }
        .with_whole_image(args.size);
        print(bench::train_epoch(&data, &work.join("run-epoch"), config)?);
    }
    if matches!(args.what, What::All | What::Score) {
        let mut files = if args.images.is_empty() {
            let mut folders: Vec<PathBuf> = std::fs::read_dir(data.join("test"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            folders.sort();
            collect_image_files(&folders)?
        } else {
            collect_image_files(&args.images)?
        };
        files.truncate(args.limit);
        // The default: the CPU training default (at --size), calibrated as `reconad train` does,
        // once among each family's candidates: a head map runs the head's network beside the
        // U-Net, and which family a briefly trained model's calibration picks is chance, so each
        // family's cost gets its own line.
        let config = TrainConfig::default().with_whole_image(args.size);
        let run = work.join("run-default");
        let model = bench::prepare_model(&data, &run, config.clone())?;
        for family in [MapFamily::Reconstruction, MapFamily::Head] {
            let candidates: Vec<ScoringConfig> = default_candidates(&model)
                .into_iter()
                .filter(|c| MapFamily::of(c.error) == family)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let model = TrainedModel::open(&run, config.backend)?;
            let profile = calibrate_best(&model, candidates, &NoProgress)?;
            let line = bench::score_files("default", model, profile, &files)?;
            print(line.with("family", format!("{family:?}").to_lowercase()));
        }
        // SPEC §5: the default preset, working size 512, windows 128/256/512, stride ½.
        let spec_run = work.join("run-spec5");
        let spec = spec5_model(&data, &spec_run, args.size)?;
        let spec_config = ScoringConfig::for_working_size(args.spec_working_size);
        let profile = calibrate_model(&spec, spec_config, &NoProgress)?;
        print(bench::score_files("spec5", spec, profile.clone(), &files)?);
        if args.what == What::All {
            // Peak memory in a fresh process: the SPEC §5 profile on one 1024 x 1024 image.
            reconad::util::fs::write_json_atomic(
                &spec_run.join(reconad::score::profile::SCORING_FILE),
                &profile,
            )?;
            let image = work.join("image-1024.png");
            let src = image::open(&files[0])
                .with_context(|| format!("reading {}", files[0].display()))?;
            src.resize_exact(1024, 1024, image::imageops::FilterType::Triangle)
                .save(&image)?;
            let out = Command::new(std::env::current_exe()?)
                .args(["bench", "--what", "memory", "--model"])
                .arg(&spec_run)
                .arg("--image")
                .arg(&image)
                .output()?;
            if !out.status.success() {
                bail!(
                    "the memory benchmark failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The SPEC §3 U-Net (default preset, skips) trained for one epoch on crops of `size` px, for
/// the SPEC §5 scoring benchmark (which scores at 512 px whatever the training size).
fn spec5_model(data: &std::path::Path, run: &std::path::Path, size: usize) -> Result<TrainedModel> {
    let config = TrainConfig {
        preset: Preset::Default,
        no_skips: false,
        ..TrainConfig::default()
    }
    .with_image_size(size);
    Ok(bench::prepare_model(data, run, config)?)
}

/// `--what memory`: opens `--model`, scores `--image` once, prints the peak RSS.
fn memory(args: &Args) -> Result<ExitCode> {
    let (Some(model), Some(image)) = (&args.model, &args.image) else {
        bail!("--what memory needs --model RUN and --image FILE");
    };
    let trained = TrainedModel::open(model, Backend::Cpu)?;
    let profile = trained.load_profile()?;
    let line = bench::score_files("spec5", trained, profile, std::slice::from_ref(image))?;
    let rss = bench::peak_rss_bytes().context("peak RSS is read from /proc (Linux only)")?;
    let (w, h) = image::image_dimensions(image)?;
    println!(
        "BENCH kind=score_memory profile=spec5 image={w}x{h} working_size={} windows={} peak_rss_mb={:.1}",
        line.get("working_size").unwrap_or("?"),
        line.get("windows").unwrap_or("?"),
        rss as f64 / (1u64 << 20) as f64
    );
    Ok(ExitCode::SUCCESS)
}
