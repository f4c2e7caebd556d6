//! A trained model leaves its thread: it moves to another one, and several threads predict with it at once, each
//! getting exactly what one thread alone gets.

use crest::data::{self, DataLoader, Inputs, LoadOptions, Order, Targets};
use crest::learner::{DataLoaders, Learner};
use crest::nn::{fuse, Arch, Module, Sequential};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;
use std::sync::Arc;

fn send_sync<T: Send + Sync>() {}

#[test]
fn tensors_layers_and_models_are_send_and_sync() {
    send_sync::<Tensor>();
    send_sync::<Sequential>();
    send_sync::<Box<dyn Module>>();
    send_sync::<crest::nn::Linear>();
    send_sync::<crest::nn::Conv2d>();
    send_sync::<crest::nn::BatchNorm>();
    send_sync::<crest::nn::Dropout>();
    send_sync::<crest::data::Dataset>();
    fn send<T: Send>() {}
    send::<Learner>();
}

/// Every image of the sample as batches of up to 1000 (the size at which the kernels split work over threads).
fn batches(split: &data::Split) -> Vec<Tensor> {
    let all = Arc::new(split.train.clone());
    let dl = DataLoader::new(all, 1000, Order::Sequential);
    dl.batches(0).map(|b| b.into_xy(&Inputs::Scaled(1.0 / 255.0), Targets::Classes).0).collect()
}

fn predict(model: &dyn Module, xs: &[Tensor]) -> Vec<Vec<u32>> {
    let _g = no_grad();
    xs.iter().map(|x| model.forward(x).to_vec().iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn four_threads_predict_exactly_what_one_does() {
    let split = data::load("data/mnist_sample".as_ref(), &LoadOptions::default()).expect("the shipped sample");
    let xs = batches(&split);
    for arch in [Arch::Mlp(vec![256]), Arch::Cnn] {
        let model = fuse(arch.spec([1, 28, 28], 2).build(&mut Rng::new(1)));
        let dls = DataLoaders {
            train: DataLoader::new(Arc::new(split.train.clone()), 64, Order::Shuffled { seed: 1 }),
            valid: DataLoader::new(Arc::new(split.valid.clone()), 256, Order::Sequential),
        };
        let mut learn = Learner::builder(dls, model).quiet().build().expect("the model fits the sample");
        learn.fit_one_cycle(1, 3e-3).expect("training runs");
        let mut model = learn.model;
        model.set_training(false);
        let alone = predict(model.as_ref(), &xs);
        // Moved to another thread, then shared by four predicting at once.
        let model = std::thread::spawn(move || model).join().expect("the thread returns the model");
        let answers: Vec<Vec<Vec<u32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| predict(model.as_ref(), &xs))).collect();
            handles.into_iter().map(|h| h.join().expect("a predicting thread")).collect()
        });
        for (t, answer) in answers.iter().enumerate() {
            assert!(answer == &alone, "{arch}: thread {t} predicted differently from one thread alone");
        }
        // The model is trained: it tells most 3s from 7s.
        let labels: Vec<u32> = split.train.labels.clone();
        let logits: Vec<f32> = alone.iter().flatten().map(|&b| f32::from_bits(b)).collect();
        let correct = logits.chunks(2).zip(&labels).filter(|(l, &y)| (l[1] > l[0]) as u32 == y).count();
        assert!(correct as f32 > 0.95 * labels.len() as f32, "{arch}: {correct} of {} right", labels.len());
    }
}
