//! The autodiff step shared by the conv kernels ([`super::Conv3x3Ops`], [`super::up::Up2x2Ops`]):
//! the inner backend's forward with the input and the weight checkpointed, and a backward that
//! takes the input gradient and the weight and bias gradients from the kernel.

use core::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

/// A conv with a bias, as its inner-backend calls.
pub(super) trait ConvKernel<B: Backend>: core::fmt::Debug + Send + Sync + 'static {
    /// `y = conv(x, weight) + bias`.
    fn forward(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B>;
    /// The input gradient for the output gradient `grad`.
    fn x_grad(weight: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B>;
    /// The weight and bias gradients for the output gradient `grad`.
    fn param_grads(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>);
}

#[derive(Debug)]
struct ConvBackward<K>(PhantomData<K>);

impl<B: Backend, K: ConvKernel<B>> Backward<B, 3> for ConvBackward<K> {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, K::x_grad(weight.clone(), grad.clone()));
        }
        if node_weight.is_some() || node_bias.is_some() {
            let (dw, db) = K::param_grads(x, weight, grad);
            if let Some(node) = node_weight {
                grads.register::<B>(node.id, dw);
            }
            if let Some(node) = node_bias {
                grads.register::<B>(node.id, db);
            }
        }
    }
}

/// `K`'s conv as one tracked op of the autodiff backend.
pub(super) fn tracked_conv<B: Backend, C: CheckpointStrategy, K: ConvKernel<B>>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    match ConvBackward::<K>(PhantomData)
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let y = K::forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            prep.finish((x_state, weight_state), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(K::forward(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        )),
    }
}
