//! Loss functions: `(predictions, targets) -> scalar`. Binary losses take one logit per example and targets of
//! 0/1 shaped `[n, 1]`; `cross_entropy` takes `[n, K]` logits and class indices shaped `[n]`.

use crate::tensor::Tensor;

/// The post's `logo_loss` (fastbook's `mnist_loss`): how far the sigmoid is from the target, averaged.
pub fn mnist_loss(predictions: &Tensor, targets: &Tensor) -> Tensor {
    let predictions = predictions.sigmoid();
    Tensor::where_(&targets.eq_scalar(1.0), &(1.0 - &predictions), &predictions).mean()
}

/// Binary cross-entropy on logits, fused so it never takes the log of a saturated sigmoid:
/// mean(max(x,0) − x·t + log(1 + e^−|x|)), gradient (σ(x) − t)/n.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Tensor {
    assert_eq!(
        logits.shape(),
        targets.shape(),
        "bce_with_logits: logits {:?} vs targets {:?}",
        logits.shape(),
        targets.shape()
    );
    let n = logits.numel() as f32;
    let (x, t) = (logits.to_vec(), targets.to_vec());
    let total: f64 = x.iter().zip(&t).map(|(&x, &t)| (x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()) as f64).sum();
    Tensor::from_op(
        vec![(total / n as f64) as f32],
        &[],
        "BinaryCrossEntropyWithLogitsBackward",
        &[logits],
        move |ctx| {
            let g = ctx.g[0] / n;
            vec![Some(x.iter().zip(&t).map(|(&x, &t)| g * (crate::tensor::sigmoid(x) - t)).collect())]
        },
    )
}

/// Softmax cross-entropy, fused and stable: `mean(logsumexp(x) − x[target])`, gradient `(softmax − onehot)/n`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    assert!(
        logits.ndim() == 2 && targets.shape() == [logits.shape()[0]],
        "cross_entropy: logits {:?} need [n, classes] and targets [n], got targets {:?}",
        logits.shape(),
        targets.shape()
    );
    let (n, k) = (logits.shape()[0], logits.shape()[1]);
    let labels: Vec<usize> = targets.data().iter().map(|&t| t as usize).collect();
    assert!(labels.iter().all(|&l| l < k), "cross_entropy: a target is not below {k} classes");
    let mut softmax = logits.to_vec();
    let mut total = 0.0f64;
    for (row, &label) in softmax.chunks_exact_mut(k).zip(&labels) {
        let x_label = row[label];
        total += (softmax_in_place(row) - x_label) as f64;
    }
    Tensor::from_op(vec![(total / n as f64) as f32], &[], "CrossEntropyBackward", &[logits], move |ctx| {
        let g = ctx.g[0] / n as f32;
        let mut grad = softmax.clone();
        for (row, &label) in grad.chunks_exact_mut(k).zip(&labels) {
            row[label] -= 1.0;
            row.iter_mut().for_each(|v| *v *= g);
        }
        vec![Some(grad)]
    })
}

/// Replaces logits by their softmax (shifted by the max, so no exp overflows) and returns their logsumexp.
pub fn softmax_in_place(row: &mut [f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|v| *v = (*v - max).exp());
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|v| *v /= sum);
    max + sum.ln()
}

/// The loss functions crest's command line offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// The post's loss; binary only.
    Mnist,
    /// Binary cross-entropy with logits; binary only.
    Bce,
    CrossEntropy,
}

impl Loss {
    pub fn compute(&self, predictions: &Tensor, targets: &Tensor) -> Tensor {
        match self {
            Loss::Mnist => mnist_loss(predictions, targets),
            Loss::Bce => bce_with_logits(predictions, targets),
            Loss::CrossEntropy => cross_entropy(predictions, targets),
        }
    }

    /// Binary losses score one logit per example; cross-entropy one per class.
    pub fn outputs(&self, classes: usize) -> usize {
        match self {
            Loss::Mnist | Loss::Bce => 1,
            Loss::CrossEntropy => classes,
        }
    }
}
