//! [`Up2x2Ops`] under autodiff: the inner backend's forward, and a backward step that takes the
//! input gradient from [`Up2x2Ops::up2x2_x_grad`] and the weight and bias gradients from
//! [`Up2x2Ops::up2x2_param_grads`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::Up2x2Ops;

impl<B: Backend + Up2x2Ops, C: CheckpointStrategy> Up2x2Ops for Autodiff<B, C> {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Up2x2Backward;

        impl<B: Backend + Up2x2Ops> Backward<B, 3> for Up2x2Backward {
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
                    let dx = B::up2x2_x_grad(weight.clone(), grad.clone());
                    grads.register::<B>(node.id, dx);
                }
                if node_weight.is_some() || node_bias.is_some() {
                    let (dw, db) = B::up2x2_param_grads(x, weight, grad);
                    if let Some(node) = node_weight {
                        grads.register::<B>(node.id, dw);
                    }
                    if let Some(node) = node_bias {
                        grads.register::<B>(node.id, db);
                    }
                }
            }
        }

        match Up2x2Backward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = B::up2x2(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish((x_state, weight_state), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::up2x2(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn up2x2_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::up2x2_x_grad(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradients as constants of the graph.
    fn up2x2_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::up2x2_param_grads(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dw), FloatTensor::<Self>::new(db))
    }
}
