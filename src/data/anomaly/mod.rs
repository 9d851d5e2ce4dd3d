//! Synthetic anomalies made from normal images: the pseudo-defects that validation and
//! restoration training need because the training set has no real ones. Generator families
//! that validation uses are not the ones training uses, so that what selects a model is not what
//! trained it:
//! - [`cutpaste`]: CutPaste patches and thin scars (SPEC §4), for validation (image scores);
//! - [`blend`]: soft-edged in-place stains and grain, an opt-in pixel proxy for validation;
//! - [`restoration`]: DRAEM-style Perlin-mask regions filled with an altered other normal image
//!   ([`perlin`] masks, [`texture`] ops), for restoration training.

pub mod blend;
pub mod cutpaste;
pub mod perlin;
pub mod restoration;
pub mod texture;
