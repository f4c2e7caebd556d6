//! crest's half of bench/torch_resnet_check.py: a full-width ResNet (torchvision's resnet18/34/50, 1000 classes) on
//! real images, for PyTorch to run on the same weights and inputs.
//!
//!     cargo run --release --example resnet_logits -- DEPTH SIZE IMAGES_DIR OUT_DIR
//!
//! Loads the image folder IMAGES_DIR at SIZE×SIZE as RGB, builds the ResNet with seed 0, moves every BatchNorm's γ,
//! β and running statistics away from 1, 0, 0, 1 (so that eval mode tests them), and writes to OUT_DIR
//! `weights.safetensors` (crest's `model_io::save_weights`: torchvision's names) and `io.safetensors` (`input`, the
//! images scaled to [0, 1], and `logits`, the eval-mode output).

use crest::data::{self, ChannelsOpt, LoadOptions};
use crest::nn::{Module, ResNet};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [depth, size, images, out] = &args[..] else {
        return Err("usage: resnet_logits DEPTH SIZE IMAGES_DIR OUT_DIR".into());
    };
    let (depth, size, out) = (depth.parse()?, size.parse()?, PathBuf::from(out));
    let opts = LoadOptions {
        size: Some(size),
        channels: ChannelsOpt::Rgb,
        valid_pct: 0.0,
        progress: false,
        ..Default::default()
    };
    let ds = data::load(std::path::Path::new(images), &opts)?.train;
    let x = Tensor::from_vec(ds.pixels.iter().map(|&p| p as f32 / 255.0).collect(), &[ds.len(), 3, size, size]);

    let mut net = ResNet::new(depth, 3, 1000, &mut Rng::new(0))?;
    let mut rng = Rng::new(1);
    for (name, t) in net.named_parameters().into_iter().chain(net.named_buffers()) {
        let (lo, hi) = match name.rsplit('.').next() {
            Some("running_mean") => (-0.3, 0.3),
            Some("running_var") => (0.5, 2.0),
            Some("weight") if name.contains("bn") || name.contains("downsample.1") => (0.5, 1.5),
            Some("bias") if !name.starts_with("fc") => (-0.2, 0.2),
            _ => continue,
        };
        let values = Tensor::rand_uniform(t.shape(), lo, hi, &mut rng);
        t.data_mut().copy_from_slice(&values.data());
    }
    net.set_training(false);
    let logits = {
        let _g = no_grad();
        net.forward(&x)
    };
    std::fs::create_dir_all(&out)?;
    crest::model_io::save_weights(&out.join("weights.safetensors"), &net)?;
    let bytes = |t: &Tensor| t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let (xb, lb) = (bytes(&x), bytes(&logits));
    let view = |t: &Tensor, b| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape().to_vec(), b);
    let tensors = [("input", view(&x, &xb)?), ("logits", view(&logits, &lb)?)];
    safetensors::serialize_to_file(tensors, &None, &out.join("io.safetensors"))?;
    println!("resnet{depth} at {size}x{size}: {} images, logits {:?}", ds.len(), logits.shape());
    Ok(())
}
