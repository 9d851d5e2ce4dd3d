//! [`LeakyReluOps`] on Flex: flex's fused forward, and the input gradient as one parallel pass
//! (f32; other dtypes use burn's generic ops).

use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::BoolDType;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::LeakyReluOps;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

impl LeakyReluOps for Flex {
    fn leaky_relu_op(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        Self::leaky_relu(x, slope.into())
    }

    fn leaky_relu_x_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self> {
        let shape = x.shape();
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let (Some(xs), Some(gs), DType::F32) =
            (x.as_slice::<f32>(), grad.as_slice::<f32>(), x.dtype())
        else {
            // slope · grad where x < 0, with burn's ops (as its generic composite).
            let negative = Self::float_lower_elem(x, 0f32.into(), BoolDType::Native);
            let scaled = Self::float_mul_scalar(grad.clone(), slope.into());
            return Self::float_mask_where(grad, negative, scaled);
        };
        let mut dx = vec![0f32; xs.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
            .for_each(|(d, (x, g))| {
                for ((d, &x), &g) in d.iter_mut().zip(x).zip(g) {
                    *d = if x >= 0.0 { g } else { slope * g };
                }
            });
        FlexTensor::from_data(TensorData::new(dx, shape))
    }
}
