//! Running a model over images: each image's class probabilities, and from them its loss.

use super::Interpretation;
use crate::data::transforms::Augment;
use crate::data::{Batch, Dataset, Inputs};
use crate::loss::{softmax_in_place, Loss};
use crate::nn::Module;
use crate::tensor::{no_grad, sigmoid};
use crate::{Error, Result};

/// The most an image's loss can be: PyTorch's `BCELoss` clamps its logs at -100 the same way, so that a
/// probability of 0 for the true class is a large finite loss rather than infinity.
pub const LOSS_CAP: f32 = 100.0;

/// Class probabilities from one image's logits: for a one-logit binary model `[σ(−x), σ(x)]` (each computed
/// directly, so a confident prediction keeps its other class's small probability instead of rounding `1 − p` to 0),
/// softmax otherwise.
pub fn probabilities(logits: &[f32], loss: Loss) -> Vec<f32> {
    match loss {
        Loss::Mnist | Loss::Bce => vec![sigmoid(-logits[0]), sigmoid(logits[0])],
        Loss::CrossEntropy => {
            let mut p = logits.to_vec();
            softmax_in_place(&mut p);
            p
        }
    }
}

/// fastai's `Learner.tta(n=4, beta=0.25)`: each image's probabilities are `beta` of the plain image's plus
/// `1 - beta` of the mean over `n` augmented copies (`torch.lerp(aug_preds, preds, beta)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tta {
    pub augment: Augment,
    pub n: usize,
    pub beta: f32,
}

impl Tta {
    /// fastai's defaults: four copies, a quarter of the weight on the plain image.
    pub fn new(augment: Augment) -> Tta {
        Tta { augment, n: 4, beta: 0.25 }
    }
}

/// The copies' draws come from their own stream, apart from any training run's (whose streams are keyed by the
/// run's seed): copy `j` of image `i` is `Augment::apply` with `image_rng(TTA_SEED, j, i)`.
const TTA_SEED: u64 = 0x7e57_71e4_a0c0_0001;

/// Each image's class probabilities, n × k row-major, from one batch of u8 images (`inputs` says what the model
/// sees of them), averaged over augmented copies with `tta`. The one place where a model's outputs become
/// probabilities, for `evaluate`, `predict` and [`Interpretation::from_model`] alike. `name(i)` names image `i` of
/// the batch in the error for outputs that are not finite (finite weights can still overflow on an image).
///
/// The model should be in evaluation mode; this runs it without gradients.
pub fn image_probabilities(
    model: &dyn Module,
    loss: Loss,
    batch: &Batch,
    inputs: &Inputs,
    tta: Option<&Tta>,
    name: &dyn Fn(usize) -> String,
) -> Result<Vec<f32>> {
    let mut probs = plain_probabilities(model, loss, batch, inputs, name)?;
    let Some(tta) = tta.filter(|t| t.n > 0) else { return Ok(probs) };
    let mut augmented = vec![0.0f32; probs.len()];
    for copy in 0..tta.n {
        let mut b = batch.clone();
        tta.augment.augment_batch(&mut b, TTA_SEED, copy);
        for (sum, p) in augmented.iter_mut().zip(plain_probabilities(model, loss, &b, inputs, name)?) {
            *sum += p;
        }
    }
    for (p, sum) in probs.iter_mut().zip(augmented) {
        let aug = sum / tta.n as f32;
        *p = aug + tta.beta * (*p - aug);
    }
    Ok(probs)
}

fn plain_probabilities(
    model: &dyn Module,
    loss: Loss,
    batch: &Batch,
    inputs: &Inputs,
    name: &dyn Fn(usize) -> String,
) -> Result<Vec<f32>> {
    let _g = no_grad();
    let x = batch.inputs(inputs);
    let logits = model.forward(&x);
    let outputs = logits.numel() / batch.n.max(1);
    if logits.shape().first() != Some(&batch.n) || outputs == 0 || loss.outputs(outputs) != outputs {
        return Err(Error::Shape(format!(
            "the model's outputs {:?} for a batch of {} images are not what a {loss:?} model gives",
            logits.shape(),
            batch.n
        )));
    }
    let logits = logits.to_vec();
    let mut probs = Vec::with_capacity(batch.n * outputs.max(2));
    for (i, row) in logits.chunks_exact(outputs).enumerate() {
        if !row.iter().all(|v| v.is_finite()) {
            return Err(Error::Data(format!(
                "the model's outputs for {} are not finite numbers: its weights are too large",
                name(i)
            )));
        }
        probs.extend(probabilities(row, loss));
    }
    Ok(probs)
}

/// An image's loss from the probability its true class got: the cross-entropy −ln(p), capped at [`LOSS_CAP`]. For
/// the binary and cross-entropy losses this is the training loss of that image; for the post's `mnist_loss` it is
/// the cross-entropy all the same, so that losses compare across models.
fn image_loss(p_true: f32) -> f32 {
    (-(p_true as f64).ln()).min(LOSS_CAP as f64) as f32
}

impl Interpretation {
    /// Runs `model` over `dataset` in batches of `batch_size`, in evaluation mode and without gradients, on the
    /// `inputs` it was trained on (with test-time augmentation if `tta` is given), and interprets the outcome. Takes
    /// the model `&mut` to switch it to evaluation mode (BatchNorm's running statistics, no Dropout); it is left
    /// there.
    pub fn from_model(
        model: &mut dyn Module,
        loss: Loss,
        dataset: &Dataset,
        inputs: &Inputs,
        batch_size: usize,
        tta: Option<&Tta>,
    ) -> Result<Interpretation> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument("the batch size must be at least 1".into()));
        }
        model.set_training(false);
        let k = dataset.classes.len();
        let item_len = dataset.item_len();
        let mut probs = Vec::with_capacity(dataset.len() * k);
        for start in (0..dataset.len()).step_by(batch_size) {
            let end = (start + batch_size).min(dataset.len());
            let idx: Vec<usize> = (start..end).collect();
            let batch = Batch::of(dataset, &idx, dataset.pixels[start * item_len..end * item_len].to_vec());
            dataset.release(&idx);
            let name = |i: usize| match dataset.paths.get(start + i) {
                Some(path) => path.display().to_string(),
                None => format!("image {}", start + i),
            };
            probs.extend(image_probabilities(model, loss, &batch, inputs, tta, &name)?);
        }
        if probs.len() != dataset.len() * k {
            return Err(Error::Shape(format!(
                "the model gives {} class probabilities per image for a dataset of {k} classes",
                probs.len() / dataset.len().max(1)
            )));
        }
        let losses = dataset.labels.iter().enumerate().map(|(i, &l)| image_loss(probs[i * k + l as usize])).collect();
        Interpretation::new(dataset.classes.clone(), dataset.labels.clone(), probs, losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{bce_with_logits, cross_entropy};
    use crate::nn::{Flatten, Linear, Sequential};
    use crate::Tensor;

    /// Four 1x1x2 images with a 2-in model whose weights are set by hand.
    fn dataset(classes: usize) -> Dataset {
        Dataset {
            pixels: vec![0, 0, 10, 0, 0, 10, 10, 10].into(),
            labels: vec![0, 1, 1, 0].into_iter().map(|l: u32| l % classes as u32).collect(),
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            channels: 1,
            height: 1,
            width: 2,
            paths: Default::default(),
        }
    }

    /// Flatten, then a Linear layer with the given weights `[outputs, 2]` and bias.
    fn linear(outputs: usize, weights: &[f32], bias: &[f32]) -> Sequential {
        let weight = Tensor::from_vec(weights.to_vec(), &[outputs, 2]);
        let layer = Linear::from_parts(weight, Tensor::from_vec(bias.to_vec(), &[outputs]));
        Sequential::new(vec![Box::new(Flatten), Box::new(layer)])
    }

    #[test]
    fn tta_weighs_the_plain_image_a_quarter_and_the_mean_of_four_augmented_copies_the_rest() {
        use crate::data::transforms::image_rng;
        let ds = dataset(2);
        let model = linear(2, &[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0]);
        let batch = Batch {
            pixels: ds.pixels.to_vec(),
            labels: ds.labels.clone(),
            indices: vec![0, 1, 2, 3],
            n: 4,
            channels: 1,
            height: 1,
            width: 2,
        };
        let flip = Augment { flip: true, ..Augment::none() };
        let name = |i: usize| format!("image {i}");
        let plain = image_probabilities(&model, Loss::CrossEntropy, &batch, &Inputs::Scaled(0.1), None, &name).unwrap();
        let tta =
            image_probabilities(&model, Loss::CrossEntropy, &batch, &Inputs::Scaled(0.1), Some(&Tta::new(flip)), &name)
                .unwrap();
        let mut differs = false;
        for i in 0..4 {
            let mut copies = [0.0f32; 2];
            for j in 0..4 {
                let mut out = [0u8; 2];
                flip.apply(ds.image(i), 1, 1, 2, &mut image_rng(TTA_SEED, j, i), &mut out);
                let mut p = [out[0] as f32 * 0.1, out[1] as f32 * 0.1];
                softmax_in_place(&mut p);
                copies.iter_mut().zip(p).for_each(|(c, p)| *c += p / 4.0);
            }
            for k in 0..2 {
                let want = copies[k] + 0.25 * (plain[2 * i + k] - copies[k]);
                assert!((tta[2 * i + k] - want).abs() < 1e-6, "image {i} class {k}: {} vs {want}", tta[2 * i + k]);
            }
            differs |= (tta[2 * i] - plain[2 * i]).abs() > 1e-3;
        }
        assert!(differs, "no image's probabilities changed under flip TTA: {tta:?} vs {plain:?}");
    }

    #[test]
    fn binary_probabilities_and_losses_match_bce() {
        // logit = x0 - 2 x1 + 0.5 on pixels / 10: 0.5, 1.5, -1.5, -0.5.
        let mut model = linear(1, &[1.0, -2.0], &[0.5]);
        let ds = dataset(2);
        let i = Interpretation::from_model(&mut model, Loss::Bce, &ds, &Inputs::Scaled(0.1), 3, None).unwrap();
        let logits = [0.5f32, 1.5, -1.5, -0.5];
        for (n, &x) in logits.iter().enumerate() {
            let p = 1.0 / (1.0 + (-x as f64).exp());
            assert!((i.probs_of(n)[1] as f64 - p).abs() < 1e-7 && (i.probs_of(n)[0] as f64 - (1.0 - p)).abs() < 1e-7);
        }
        assert_eq!(i.predictions(), [1, 1, 0, 0]);
        // Each loss is that image's binary cross-entropy.
        for (n, &x) in logits.iter().enumerate() {
            let target = Tensor::from_vec(vec![ds.labels[n] as f32], &[1, 1]);
            let bce = bce_with_logits(&Tensor::from_vec(vec![x], &[1, 1]), &target).item();
            assert!((i.losses[n] - bce).abs() < 1e-6, "{n}: {} vs {bce}", i.losses[n]);
        }
    }

    #[test]
    fn softmax_probabilities_and_losses_match_cross_entropy() {
        let mut model = linear(3, &[1.0, 0.0, 0.0, 1.0, -1.0, -1.0], &[0.0, 0.0, 1.0]);
        let ds = dataset(3);
        let i = Interpretation::from_model(&mut model, Loss::CrossEntropy, &ds, &Inputs::Scaled(0.1), 2, None).unwrap();
        for n in 0..4 {
            let sum: f32 = i.probs_of(n).iter().sum();
            assert!((sum - 1.0).abs() < 1e-6);
            let x = [ds.pixels[2 * n] as f32 / 10.0, ds.pixels[2 * n + 1] as f32 / 10.0];
            let logits = Tensor::from_vec(vec![x[0], x[1], 1.0 - x[0] - x[1]], &[1, 3]);
            let ce = cross_entropy(&logits, &Tensor::from_vec(vec![ds.labels[n] as f32], &[1])).item();
            assert!((i.losses[n] - ce).abs() < 1e-6, "{n}: {} vs {ce}", i.losses[n]);
        }
        // Image 0 is all zeros: logits [0, 0, 1].
        assert_eq!(i.predictions()[0], 2);
    }

    #[test]
    fn a_sure_wrong_answer_keeps_a_finite_loss() {
        assert_eq!(probabilities(&[200.0], Loss::Bce), [0.0, 1.0]);
        assert_eq!(image_loss(0.0), LOSS_CAP);
        assert!((image_loss(sigmoid(-30.0)) - 30.0).abs() < 1e-4, "σ(−30) is kept, not rounded to 0");
        assert_eq!(image_loss(1.0), 0.0);
    }

    #[test]
    fn outputs_that_do_not_fit_the_data_are_errors() {
        let ds = dataset(3);
        let mut two = linear(2, &[0.0; 4], &[0.0; 2]);
        let e =
            Interpretation::from_model(&mut two, Loss::CrossEntropy, &ds, &Inputs::Scaled(0.1), 4, None).unwrap_err();
        assert!(e.to_string().contains("3 classes"), "{e}");
        let e =
            Interpretation::from_model(&mut two, Loss::Bce, &dataset(2), &Inputs::Scaled(0.1), 4, None).unwrap_err();
        assert!(e.to_string().contains("Bce"), "{e}");
        let mut huge = linear(3, &[3e38; 6], &[0.0; 3]);
        let e =
            Interpretation::from_model(&mut huge, Loss::CrossEntropy, &ds, &Inputs::Scaled(1.0), 4, None).unwrap_err();
        assert_eq!(e.to_string(), "the model's outputs for image 1 are not finite numbers: its weights are too large");
        assert!(Interpretation::from_model(&mut huge, Loss::CrossEntropy, &ds, &Inputs::Scaled(1.0), 0, None).is_err());
    }
}
