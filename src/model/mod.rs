//! The model (SPEC §3): a U-Net convolutional autoencoder, its reconstruction loss and its
//! published weights; optionally a discriminative head ([`head`]) beside it.

pub mod activation;
pub mod conv;
pub mod head;
pub mod loss;
pub mod norm;
pub mod pool;
#[cfg(test)]
mod test_data;
pub mod unet;
pub mod weights;
pub mod window;

/// The networks a run scores with: the reconstruction U-Net and, when the run trained one, the
/// discriminative head.
#[derive(Debug)]
pub struct Networks {
    /// The autoencoder.
    pub unet: unet::UNet,
    /// The discriminative head.
    pub head: Option<head::SegHead>,
}
