//! [`LeakyReluOps`] under autodiff: the inner backend's forward as one tracked op, whose backward
//! is [`LeakyReluOps::leaky_relu_x_grad`] on the checkpointed input.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::LeakyReluOps;

impl<B: Backend + LeakyReluOps, C: CheckpointStrategy> LeakyReluOps for Autodiff<B, C> {
    fn leaky_relu_op(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LeakyReluBackward;

        impl<B: Backend + LeakyReluOps> Backward<B, 1> for LeakyReluBackward {
            type State = (NodeId, f32);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, slope) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::leaky_relu_x_grad(x, grad, slope));
                }
            }
        }

        match LeakyReluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = B::leaky_relu_op(x.into_primitive(), slope);
                prep.finish((x_state, slope), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::leaky_relu_op(x.into_primitive(), slope)),
        }
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn leaky_relu_x_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::leaky_relu_x_grad(
            x.into_primitive(),
            grad.into_primitive(),
            slope,
        ))
    }
}
