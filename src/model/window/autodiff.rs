//! [`WindowOps`] under autodiff: the inner backend's filter as one tracked op, whose backward
//! is [`WindowOps::window_filter_x_grad`] (the taps are constants: no gradient).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::WindowOps;

impl<B: Backend + WindowOps, C: CheckpointStrategy> WindowOps for Autodiff<B, C> {
    fn window_filter(x: FloatTensor<Self>, taps: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct WindowBackward;

        impl<B: Backend + WindowOps> Backward<B, 2> for WindowBackward {
            type State = NodeId;

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, _] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let taps = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::window_filter_x_grad(taps, grad));
                }
            }
        }

        match WindowBackward
            .prepare::<C>([x.node(), taps.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let taps_state = prep.checkpoint(&taps);
                let y = B::window_filter(x.into_primitive(), taps.into_primitive());
                prep.finish(taps_state, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::window_filter(x.into_primitive(), taps.into_primitive()))
            }
        }
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn window_filter_x_grad(taps: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::window_filter_x_grad(
            taps.into_primitive(),
            grad.into_primitive(),
        ))
    }
}
