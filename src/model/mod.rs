//! The model (SPEC §3): a U-Net convolutional autoencoder and its reconstruction loss.

pub mod loss;
pub mod unet;
