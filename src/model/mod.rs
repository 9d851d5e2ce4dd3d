//! The model (SPEC §3): a U-Net convolutional autoencoder, its reconstruction loss and its
//! published weights.

pub mod loss;
pub mod unet;
pub mod weights;
