//! The one all-reduce per training step, and the broadcasts and the check that keep every rank's model the same.

use super::Communicator;
use crate::nn::Module;
use crate::{Error, Result, Tensor};

/// Sums the ranks' gradients into the gradient of the mean loss over the global batch, and returns that loss.
///
/// Each rank's loss is the mean over its `local` images, so its gradient is weighted by `local / global` before
/// the sum: Σ_r (n_r/n)·∇mean_r = ∇(Σ every image's loss / n), the gradient one process gets on the whole batch,
/// up to float rounding. A rank with no images (a short last batch) adds zeros; a parameter that no rank has a
/// gradient for keeps none, as it would in one process (an optimizer skips it). The loss and those flags ride in
/// the same buffer, so a step costs one all-reduce.
///
/// One buffer for all parameters, not DDP's buckets: buckets pay by overlapping the all-reduce of the last layers'
/// gradients with the backward pass through the first ones, and crest's backward returns only once every gradient
/// is there; cut into buckets, the same bytes would only pay the latency more often.
pub fn all_reduce_gradients(comm: &dyn Communicator, params: &[Tensor], local: usize, global: usize, loss: f32) -> f32 {
    let weight = local as f32 / global as f32;
    let values: usize = params.iter().map(Tensor::numel).sum();
    let mut buf = Vec::with_capacity(values + params.len() + 1);
    for p in params {
        match p.grad_ref().as_ref() {
            Some(g) => buf.extend(g.iter().map(|v| v * weight)),
            None => buf.resize(buf.len() + p.numel(), 0.0),
        }
    }
    buf.extend(params.iter().map(|p| if p.grad_ref().is_some() { 1.0 } else { 0.0 }));
    buf.push(loss * weight);
    comm.all_reduce_sum(&mut buf);
    let (grads, flags) = buf.split_at(values);
    let mut rest = grads;
    for (p, &had) in params.iter().zip(flags) {
        let (g, tail) = rest.split_at(p.numel());
        *p.grad_ref() = (had > 0.0).then(|| g.to_vec());
        rest = tail;
    }
    flags[params.len()]
}

/// Rank 0's values of `tensors` on every rank, in one broadcast.
fn broadcast_values(comm: &dyn Communicator, tensors: &[Tensor]) {
    if comm.size() == 1 || tensors.is_empty() {
        return;
    }
    let mut buf: Vec<f32> = tensors.iter().flat_map(|t| t.to_vec()).collect();
    comm.broadcast(&mut buf);
    let mut rest = &buf[..];
    for t in tensors {
        let (v, tail) = rest.split_at(t.numel());
        t.data_mut().copy_from_slice(v);
        rest = tail;
    }
}

/// Rank 0's parameters on every rank, before a fit's first step: the ranks start from the same model even if
/// something in their initialisation differed, as DDP does at construction.
pub fn broadcast_parameters(comm: &dyn Communicator, model: &dyn Module) {
    broadcast_values(comm, &model.parameters());
}

/// Rank 0's buffers (BatchNorm's running statistics, gathered from its shards) on every rank, after each epoch's
/// training: every rank then validates, and rank 0 saves, the same model.
pub fn broadcast_buffers(comm: &dyn Communicator, model: &dyn Module) {
    let buffers: Vec<Tensor> = model.named_buffers().into_iter().map(|(_, b)| b).collect();
    broadcast_values(comm, &buffers);
}

/// Checks, after an epoch, that every rank holds the same weights, bit for bit: they took the same steps only if
/// every rank's all-reduce gave the same sums. Ranks that drifted would go on training different models silently.
pub fn check_same_weights(comm: &dyn Communicator, model: &dyn Module, epoch: usize) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut crc = crc32fast::Hasher::new();
    for p in model.parameters() {
        p.data().iter().for_each(|v| crc.update(&v.to_bits().to_le_bytes()));
    }
    let sums = comm.all_gather(&[u64::from(crc.finalize())]);
    match sums.iter().position(|&s| s != sums[0]) {
        Some(rank) => Err(Error::Data(format!(
            "rank {rank}'s weights differ from rank 0's after epoch {epoch}: the ranks' gradient sums disagreed"
        ))),
        None => Ok(()),
    }
}
