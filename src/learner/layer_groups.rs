//! Layer groups (fastai's `splitter`): a model's parameters split into groups from its body's first layers to its
//! head, which fine-tuning freezes and trains at different learning rates. Found from the parameters' names and
//! shapes and the buffers' names alone, so any model that names its tensors as PyTorch does splits without code
//! of its own:
//!
//! - **ResNet** (torchvision's names: `conv1`, `bn1`, `layer1`…`layer4`, `fc`): fastai's `_resnet_split`, three
//!   groups: `conv1, bn1, layer1, layer2` / `layer3, layer4` / `fc`.
//! - **Any other model** (a `Sequential` names its layers `0`, `1`, …): two groups, the body and the head, the head
//!   being the layer of the last two-dimensional `weight` (the last `Linear`) and everything after it. A model
//!   with no such layer, or nothing before it, is one group.
//!
//! A normalisation layer is one with a `running_mean` buffer (BatchNorm); its `weight` and `bias` are marked, so
//! that freezing leaves them trainable (fastai's `train_bn=True`): a pretrained body's statistics must adapt to
//! the new data, which costs little and helps much.

use crate::nn::Module;

/// Which group each of a model's parameters belongs to, in `named_parameters` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerGroups {
    /// The group of each parameter, from 0 (the first layers) to `count - 1` (the head).
    pub group: Vec<usize>,
    /// Whether each parameter belongs to a normalisation layer (trained even in a frozen group).
    pub norm: Vec<bool>,
    pub count: usize,
}

/// torchvision's ResNet top-level names, in fastai's groups.
const RESNET_GROUPS: [&[&str]; 3] = [&["conv1", "bn1", "layer1", "layer2"], &["layer3", "layer4"], &["fc"]];

impl LayerGroups {
    pub fn of(model: &dyn Module) -> LayerGroups {
        let params: Vec<(String, Vec<usize>)> =
            model.named_parameters().into_iter().map(|(n, p)| (n, p.shape().to_vec())).collect();
        let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
        LayerGroups::split(&params, &buffers)
    }

    /// The groups of parameters named and shaped as `params`, in a model whose buffers are named `buffers`.
    pub fn split(params: &[(String, Vec<usize>)], buffers: &[String]) -> LayerGroups {
        let top = |name: &str| name.split('.').next().unwrap_or("").to_string();
        let is_resnet = params.iter().any(|(n, _)| n == "fc.weight") && params.iter().any(|(n, _)| top(n) == "layer1");
        let group = if is_resnet {
            // A top-level name fastai's split doesn't know joins the first group: it is not the head.
            let resnet_group = |name: &str| RESNET_GROUPS.iter().position(|g| g.contains(&top(name).as_str()));
            params.iter().map(|(n, _)| resnet_group(n).unwrap_or(0)).collect()
        } else {
            let head_layer = params.iter().rposition(|(n, shape)| n.ends_with(".weight") && shape.len() == 2);
            match head_layer.map(|i| prefix(&params[i].0)) {
                Some(layer) => {
                    let start = params.iter().position(|(n, _)| prefix(n) == layer).unwrap_or(0);
                    (0..params.len()).map(|i| usize::from(start > 0 && i >= start)).collect()
                }
                None => vec![0; params.len()],
            }
        };
        let norm = params.iter().map(|(n, _)| buffers.contains(&format!("{}.running_mean", prefix(n)))).collect();
        let count = group.iter().max().map_or(0, |g| g + 1);
        LayerGroups { group, norm, count }
    }
}

/// The layer a tensor belongs to: its name without the last part (`layer1.0.bn1` of `layer1.0.bn1.weight`).
fn prefix(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(layer, _)| layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        names.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
    }

    #[test]
    fn resnet_splits_as_fastai_and_marks_every_batchnorm() {
        let params = named(&[
            ("conv1.weight", &[64, 3, 7, 7]),
            ("bn1.weight", &[64]),
            ("bn1.bias", &[64]),
            ("layer1.0.conv1.weight", &[64, 64, 3, 3]),
            ("layer2.0.conv1.weight", &[128, 64, 3, 3]),
            ("layer3.0.downsample.0.weight", &[256, 128, 1, 1]),
            ("layer3.0.downsample.1.weight", &[256]),
            ("layer4.1.bn2.bias", &[512]),
            ("fc.weight", &[10, 512]),
            ("fc.bias", &[10]),
        ]);
        let buffers: Vec<String> = ["bn1", "layer3.0.downsample.1", "layer4.1.bn2"]
            .iter()
            .flat_map(|l| [format!("{l}.running_mean"), format!("{l}.running_var")])
            .collect();
        let g = LayerGroups::split(&params, &buffers);
        assert_eq!(g.group, [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(g.norm, [false, true, true, false, false, false, true, true, false, false]);
        assert_eq!(g.count, 3);
    }

    #[test]
    fn a_sequential_splits_before_its_last_linear() {
        // cnn: Conv2d 0, BatchNorm 1, Linear 5 and the head Linear 7.
        let params = named(&[
            ("0.weight", &[32, 1, 3, 3]),
            ("0.bias", &[32]),
            ("1.weight", &[32]),
            ("1.bias", &[32]),
            ("5.weight", &[128, 6272]),
            ("5.bias", &[128]),
            ("7.weight", &[10, 128]),
            ("7.bias", &[10]),
        ]);
        let g = LayerGroups::split(&params, &["1.running_mean".into(), "1.running_var".into()]);
        assert_eq!(g.group, [0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(g.norm, [false, false, true, true, false, false, false, false]);
        // The post's linear model is all head: one group.
        let linear = LayerGroups::split(&named(&[("1.weight", &[1, 784]), ("1.bias", &[1])]), &[]);
        assert_eq!((linear.group, linear.count), (vec![0, 0], 1));
    }
}
