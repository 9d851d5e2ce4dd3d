//! [`Conv3x3Ops`] under autodiff: the inner backend's forward, and a backward step that takes
//! the input gradient from [`Conv3x3Ops::conv3x3_x_grad`] and the weight and bias gradients from
//! [`Conv3x3Ops::conv3x3_param_grads`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::Conv3x3Ops;

impl<B: Backend + Conv3x3Ops, C: CheckpointStrategy> Conv3x3Ops for Autodiff<B, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Conv3x3Backward;

        impl<B: Backend + Conv3x3Ops> Backward<B, 3> for Conv3x3Backward {
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
                let weight =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
                if let Some(node) = node_x {
                    let dx = B::conv3x3_x_grad(weight.clone(), grad.clone());
                    grads.register::<B>(node.id, dx);
                }
                if node_weight.is_some() || node_bias.is_some() {
                    let (dw, db) = B::conv3x3_param_grads(x, weight, grad);
                    if let Some(node) = node_weight {
                        grads.register::<B>(node.id, dw);
                    }
                    if let Some(node) = node_bias {
                        grads.register::<B>(node.id, db);
                    }
                }
            }
        }

        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = B::conv3x3(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish((x_state, weight_state), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv3x3(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn conv3x3_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::conv3x3_x_grad(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradients as constants of the graph.
    fn conv3x3_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::conv3x3_param_grads(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dw), FloatTensor::<Self>::new(db))
    }
}
