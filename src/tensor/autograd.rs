//! Reverse-mode autograd, micrograd-style: each op records its parents and a rule that turns the gradient of
//! its output into gradients for its parents; `backward()` sorts the graph and applies the rules in reverse.

use super::kernels::add_assign;
use super::Tensor;
use std::cell::Cell;
use std::collections::HashMap;

/// What a backward rule is given: the op's output, the gradient flowing into it (shaped like the output), and
/// which parents want one.
pub struct GradCtx<'a> {
    pub out: &'a Tensor,
    pub g: &'a [f32],
    pub needs: &'a [bool],
}

/// Rules run on whichever thread calls `backward()`, and a graph can be built on one thread and walked on another.
type Rule = Box<dyn Fn(&GradCtx) -> Vec<Option<Vec<f32>>> + Send + Sync>;

pub(crate) struct Node {
    pub name: &'static str,
    parents: Vec<Tensor>,
    rule: Rule,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While alive, ops record no graph (PyTorch's `torch.no_grad()`); evaluation runs under it.
pub struct NoGradGuard(bool);

pub fn no_grad() -> NoGradGuard {
    NoGradGuard(GRAD_ENABLED.with(|g| g.replace(false)))
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        let previous = self.0;
        GRAD_ENABLED.with(|g| g.set(previous));
    }
}

impl Tensor {
    /// The result of an op: `data` shaped `shape`, and — when grad is on and some parent requires grad — a graph
    /// node whose `rule` turns the gradient of this result into one gradient per parent (`None` where
    /// `ctx.needs` says the parent wants none), each as long as that parent. Every built-in op is made this way;
    /// an op of your own can be too, and `gradcheck::max_grad_error` checks its rule.
    pub fn from_op(
        data: Vec<f32>,
        shape: &[usize],
        name: &'static str,
        parents: &[&Tensor],
        rule: impl Fn(&GradCtx) -> Vec<Option<Vec<f32>>> + Send + Sync + 'static,
    ) -> Tensor {
        assert_eq!(data.len(), super::numel(shape), "{name}: {} values for shape {shape:?}", data.len());
        Tensor::build(shape.to_vec(), super::storage::Storage::f32(data), Node::new(name, parents, rule))
    }

    /// Gradients of this scalar with respect to every tensor that requires grad, accumulated into their
    /// `.grad()` (leaves only, as in PyTorch) until `zero_grad()`.
    pub fn backward(&self) {
        assert_eq!(self.numel(), 1, "backward() needs a scalar, got shape {:?}", self.shape());
        assert!(self.requires_grad(), "backward() on a tensor that does not require grad");
        let order = self.topo_order();
        let mut grads: HashMap<usize, Vec<f32>> = HashMap::new();
        grads.insert(self.id(), vec![1.0]);
        for t in order.iter().rev() {
            let Some(g) = grads.remove(&t.id()) else { continue };
            let Some(node) = &t.0.node else {
                t.accumulate_grad(g);
                continue;
            };
            let needs: Vec<bool> = node.parents.iter().map(|p| p.requires_grad()).collect();
            let pgrads = (node.rule)(&GradCtx { out: t, g: &g, needs: &needs });
            for ((p, pg), need) in node.parents.iter().zip(pgrads).zip(needs) {
                let Some(pg) = pg.filter(|_| need) else { continue };
                assert_eq!(pg.len(), p.numel(), "{}: gradient size for parent {:?}", node.name, p.shape());
                match grads.get_mut(&p.id()) {
                    Some(acc) => add_assign(acc, &pg),
                    None => {
                        grads.insert(p.id(), pg);
                    }
                }
            }
        }
    }

    fn accumulate_grad(&self, g: Vec<f32>) {
        let mut slot = self.grad_ref();
        match slot.as_mut() {
            Some(acc) => add_assign(acc, &g),
            None => *slot = Some(g),
        }
    }

    /// Tensors reachable from `self` that require grad, parents before children (iterative DFS: deep graphs
    /// must not overflow the stack).
    fn topo_order(&self) -> Vec<Tensor> {
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![(self.clone(), false)];
        while let Some((t, expanded)) = stack.pop() {
            if expanded {
                order.push(t);
                continue;
            }
            if !seen.insert(t.id()) {
                continue;
            }
            stack.push((t.clone(), true));
            if let Some(node) = &t.0.node {
                for p in node.parents.iter().filter(|p| p.requires_grad()) {
                    if !seen.contains(&p.id()) {
                        stack.push((p.clone(), false));
                    }
                }
            }
        }
        order
    }
}

impl Node {
    pub(crate) fn new(
        name: &'static str,
        parents: &[&Tensor],
        rule: impl Fn(&GradCtx) -> Vec<Option<Vec<f32>>> + Send + Sync + 'static,
    ) -> Option<Node> {
        let tracked = is_grad_enabled() && parents.iter().any(|p| p.requires_grad());
        tracked.then(|| Node { name, parents: parents.iter().map(|&p| p.clone()).collect(), rule: Box::new(rule) })
    }
}
