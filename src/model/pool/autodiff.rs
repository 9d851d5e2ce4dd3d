//! [`MaxPool2x2Ops`] under autodiff: the inner backend's forward as one tracked op, whose backward
//! is [`MaxPool2x2Ops::max_pool2x2_x_grad`] on the checkpointed input.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::MaxPool2x2Ops;

impl<B: Backend + MaxPool2x2Ops, C: CheckpointStrategy> MaxPool2x2Ops for Autodiff<B, C> {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaxPoolBackward;

        impl<B: Backend + MaxPool2x2Ops> Backward<B, 1> for MaxPoolBackward {
            type State = NodeId;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::max_pool2x2_x_grad(x, grad));
                }
            }
        }

        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = B::max_pool2x2(x.into_primitive());
                prep.finish(x_state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
        }
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn max_pool2x2_x_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::max_pool2x2_x_grad(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }
}
