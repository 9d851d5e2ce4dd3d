//! An ensemble's calibration: the threshold of its fused score on the members' common
//! validation set.

use super::threshold::{choose_threshold, THRESHOLD_RULE};
use crate::data::anomaly::cutpaste::build_val_set;
use crate::data::split::Split;
use crate::detector::ensemble::{Ensemble, EnsembleCalibration};
use crate::detector::Scorer;
use crate::error::{fail_file, Context, Result};
use crate::image::ChwImage;
use crate::metrics::auroc;
use crate::util::fs::write_json_atomic;
use crate::util::progress::Progress;

/// Calibrates an ensemble's fused score on the members' common validation set (CutPaste copies
/// made at the largest member working resolution, as a single model's calibration makes them at
/// its own), with the threshold rule of single models. Fails when the members' splits differ.
pub fn calibrate_ensemble(
    ensemble: &Ensemble,
    progress: &dyn Progress,
) -> Result<EnsembleCalibration> {
    let first = &ensemble.members[0].model;
    let split = Split::load(&first.run.split())?;
    for m in &ensemble.members[1..] {
        let other = Split::load(&m.model.run.split())?;
        if (&other.train, &other.val) != (&split.train, &split.val) {
            fail_file!(
                ensemble.path,
                "members {} and {} were trained on different train/val splits; the ensemble threshold needs their common validation set (train members with one split seed, e.g. `reconad ensemble train`)",
                first.run.root.display(),
                m.model.run.root.display()
            );
        }
    }
    let images = first.val_images(Some(ensemble.max_working_size()))?;
    let val_set = build_val_set(
        &images,
        &first.config.train.cutpaste,
        first.config.train.seed,
    );
    let labels: Vec<u8> = val_set.iter().map(|s| s.label).collect();
    progress.start("calibrating", val_set.len() as u64);
    let mut fused = Vec::with_capacity(val_set.len());
    let mut per_member: Vec<Vec<f64>> = vec![Vec::new(); ensemble.members.len()];
    for part in val_set.chunks(8) {
        let imgs: Vec<ChwImage> = part.iter().map(|s| s.image.clone()).collect();
        for s in ensemble.score(imgs)? {
            fused.push(s.score);
            for (all, v) in per_member.iter_mut().zip(&s.member_scores) {
                all.push(*v);
            }
        }
        progress.advance(part.len() as u64);
    }
    progress.finish();
    let threshold = choose_threshold(&fused, &labels)?;
    Ok(EnsembleCalibration {
        threshold: threshold.threshold,
        threshold_rule: THRESHOLD_RULE.to_string()
            + ", on the fused z-scores of the members' common validation set",
        val_auroc: auroc(&fused, &labels).context("validation AUROC needs both classes")?,
        member_val_auroc: per_member
            .iter()
            .map(|s| auroc(s, &labels).unwrap_or(f64::NAN))
            .collect(),
        val_f1: threshold.at_threshold,
        val_normal: labels.iter().filter(|&&l| l == 0).count(),
        val_anomalous: labels.iter().filter(|&&l| l != 0).count(),
    })
}

/// [`calibrate_ensemble`], saved into the ensemble's definition file (atomically).
pub fn calibrate_ensemble_and_save(
    ensemble: &mut Ensemble,
    progress: &dyn Progress,
) -> Result<EnsembleCalibration> {
    let calibration = calibrate_ensemble(ensemble, progress)?;
    ensemble.def.calibration = Some(calibration.clone());
    write_json_atomic(&ensemble.path, &ensemble.def)?;
    Ok(calibration)
}
