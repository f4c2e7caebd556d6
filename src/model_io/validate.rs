//! Everything a model file says, checked against everything else it says, before anything is built from it: the
//! metadata (classes, image shape, pixel scale or mean and std) against itself, the architecture against the images and the
//! classes, and every tensor against the architecture. What is built after is then the size of the tensors really
//! in the file, and `predict` can index classes by output and read images of the stored shape without a panic.

use super::layout::Layout;
use super::ModelMeta;
use crate::loss::Loss;
use crate::nn::SpecShapes;
use crate::text::printable;
use safetensors::tensor::Dtype;
use std::collections::HashSet;

/// The tensors the metadata's architecture holds, once the metadata is consistent; else why not, as the end of a
/// sentence about the file.
pub(super) fn metadata(meta: &ModelMeta) -> Result<SpecShapes, String> {
    let classes = &meta.classes;
    if classes.len() < 2 {
        return Err(format!("it has {} class(es); a classifier tells at least 2 apart", classes.len()));
    }
    let mut seen = HashSet::with_capacity(classes.len());
    for (i, class) in classes.iter().enumerate() {
        if class.is_empty() {
            return Err(format!("class {i}'s name is empty"));
        }
        if !seen.insert(class.as_str()) {
            return Err(format!("class name {} appears twice", printable(class)));
        }
    }
    let (c, h, w) = (meta.channels, meta.height, meta.width);
    if ![1, 3, 4].contains(&c) {
        return Err(format!("its images have {c} channels; crest reads images of 1, 3 or 4"));
    }
    if h == 0 || w == 0 {
        return Err(format!("its image size {w}x{h} is empty"));
    }
    // Pixels are bytes: a scale above 1 only makes inputs in the hundreds, a scale of 1e39 (infinite in f32)
    // makes every output NaN.
    if !(meta.scale > 0.0 && meta.scale <= 1.0) {
        return Err(format!("its pixel scale {} is not a number above 0 and at most 1", meta.scale));
    }
    if let Some(p) = &meta.preprocess {
        p.check(c)?;
        if (h, w) != (p.crop, p.crop) {
            return Err(format!("its images are {w}x{h}, but its preprocessing crops {0}x{0}", p.crop));
        }
    }
    if let Some(n) = &meta.normalize {
        if meta.preprocess.is_some() {
            return Err(
                "it has both a preprocessing and a normalisation; a model's inputs have one mean and std".into()
            );
        }
        n.check(c, "its normalisation")?;
    }
    let input = [c, h, w];
    let shapes = meta
        .spec
        .shapes(&input)
        .map_err(|e| format!("its architecture does not fit its {input:?} images: {}", printable(&e.to_string())))?;
    let outputs = meta.loss.outputs(classes.len());
    if matches!(meta.loss, Loss::Mnist | Loss::Bce) && classes.len() != 2 {
        return Err(format!("it has {} classes, but its binary loss tells 2 apart", classes.len()));
    }
    if shapes.output != [outputs] {
        return Err(format!(
            "it has {} classes, which need output [{outputs}], but its architecture gives {:?}",
            classes.len(),
            shapes.output
        ));
    }
    Ok(shapes)
}

/// Each of `expected` is in the file as F32 of that shape, with finite values (and variances not negative);
/// else why not, as the end of a sentence about the file.
pub(super) fn tensors(file: &Layout, expected: &[(String, Vec<usize>)]) -> Result<(), String> {
    for (name, shape) in expected {
        let t = file.tensor(name).ok_or_else(|| format!("tensor {name} is missing"))?;
        if t.dtype != Dtype::F32 || t.shape != shape.as_slice() {
            return Err(format!("tensor {name} is {:?} {:?}, expected F32 {shape:?}", t.dtype, t.shape));
        }
        if !t.values().all(f32::is_finite) {
            return Err(format!("tensor {name} holds NaN or infinite values"));
        }
        // A negative variance makes BatchNorm take the square root of a negative number.
        if name.ends_with("running_var") && t.values().any(|v| v < 0.0) {
            return Err(format!("tensor {name} holds negative variances"));
        }
    }
    Ok(())
}
