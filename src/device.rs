//! Backend and device selection. The code is backend-independent: burn 0.22 picks the backend
//! through the [`Device`]. The CPU backend (`flex`) is always built; `wgpu` and `cuda` are cargo
//! features.

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::BackendUnavailable;

/// The burn version reconad is built against (pinned in Cargo.toml).
pub const BURN_VERSION: &str = "0.22.1";

/// A compute backend a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's pure-Rust CPU backend (`flex`); always available.
    #[default]
    Cpu,
    /// GPU through wgpu (Vulkan, Metal, DX12); needs the `wgpu` cargo feature.
    Wgpu,
    /// NVIDIA GPU through CUDA; needs the `cuda` cargo feature.
    Cuda,
}

impl Backend {
    /// Backends compiled into this binary.
    pub fn available() -> Vec<Backend> {
        let mut list = vec![Backend::Cpu];
        if cfg!(feature = "wgpu") {
            list.push(Backend::Wgpu);
        }
        if cfg!(feature = "cuda") {
            list.push(Backend::Cuda);
        }
        list
    }

    /// Short name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }
}

/// The device of `backend` (GPU `index` for `cuda`; `wgpu` takes the best adapter).
pub fn device(backend: Backend, index: usize) -> Result<Device, BackendUnavailable> {
    let _ = index;
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(Device::cuda(index)),
        #[allow(unreachable_patterns)]
        other => Err(BackendUnavailable {
            asked: other.name(),
            available: Backend::available()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Runs a tiny computation on `device` and returns its result (6.0), proving the backend works.
pub fn smoke_test(device: &Device) -> f32 {
    Tensor::<1>::from_floats([1.0, 2.0, 3.0], device)
        .sum()
        .into_scalar::<f32>()
}

/// Whether `device` is the Flex CPU backend, with or without autodiff (where the model's own
/// CPU kernels, `model::conv` and its siblings, apply).
#[allow(unreachable_patterns)] // only Flex exists in builds without a GPU backend
pub fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}
