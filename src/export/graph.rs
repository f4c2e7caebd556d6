//! An ONNX graph built one node at a time: each method adds one node (or one constant) and returns the name of the
//! value it makes, which the next node takes as its input. A layer's export is then a few calls; a model's is its
//! layers' exports in order.

use super::onnx_proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use prost::Message;

/// The ONNX operator set the graphs use: 17, the first with every operator here in its current form (and what
/// PyTorch's exporter has long defaulted to).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
/// The symbolic batch dimension of inputs and outputs.
pub const BATCH: &str = "N";

/// A graph under construction. Value names are `op_n`, except constants (named by the caller: the weights keep
/// their PyTorch names, `0.weight`) and the inputs and outputs the finished model declares.
#[derive(Default)]
pub struct OnnxGraph {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
}

/// An ONNX attribute of one node.
fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

/// A float32 tensor's type, its dimensions either fixed or the batch's symbolic one.
fn float_type(dims: &[Dim]) -> TypeProto {
    let dim = |d: &Dim| tensor_shape_proto::Dimension {
        value: Some(match d {
            Dim::Batch => tensor_shape_proto::dimension::Value::DimParam(BATCH.into()),
            Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
        }),
        ..Default::default()
    };
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(DataType::Float as i32),
            shape: Some(TensorShapeProto { dim: dims.iter().map(dim).collect() }),
        })),
        ..Default::default()
    }
}

/// One dimension of a graph input or output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dim {
    Batch,
    Fixed(usize),
}

/// A graph input or output: its name, dimensions and what it holds.
pub struct Port<'a> {
    pub name: &'a str,
    pub dims: Vec<Dim>,
    pub doc: String,
}

impl Port<'_> {
    fn value_info(&self) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(self.name.into()),
            r#type: Some(float_type(&self.dims)),
            doc_string: Some(self.doc.clone()),
            ..Default::default()
        }
    }
}

/// What a finished model says about itself besides its graph.
pub struct ModelInfo<'a> {
    pub graph_name: &'a str,
    pub doc: String,
    /// Key/value pairs every runtime shows (`onnxruntime`'s `custom_metadata_map`).
    pub metadata: Vec<(&'a str, String)>,
}

impl OnnxGraph {
    pub fn new() -> OnnxGraph {
        OnnxGraph::default()
    }

    /// A float32 constant (a layer's weights), named `name`, of `shape`.
    pub fn constant(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "constant {name}: {} values for {shape:?}",
            values.len()
        );
        self.constants.push(TensorProto {
            name: Some(name.into()),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a node of operator `op`; returns the name of its one output.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let output = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|&i| i.into()).collect(),
            output: vec![output.clone()],
            name: Some(output.clone()),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
        output
    }

    /// Element-wise product, with NumPy broadcasting (a scalar constant scales every value).
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.node("Mul", &[a, b], vec![])
    }

    /// Element-wise sum, with NumPy broadcasting: a residual connection.
    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], vec![])
    }

    /// Element-wise difference and quotient, with NumPy broadcasting: per-channel normalisation.
    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.node("Sub", &[a, b], vec![])
    }

    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.node("Div", &[a, b], vec![])
    }

    pub fn neg(&mut self, x: &str) -> String {
        self.node("Neg", &[x], vec![])
    }

    /// A square `kernel`×`kernel` convolution of NCHW `x` with weight `[out, in, k, k]` and an optional bias `[out]`
    /// (torchvision's ResNets have none: a BatchNorm follows), as PyTorch's `Conv2d`.
    pub fn conv(
        &mut self,
        x: &str,
        weight: &str,
        bias: Option<&str>,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let inputs: Vec<&str> = [x, weight].into_iter().chain(bias).collect();
        let attributes =
            vec![ints("kernel_shape", &[kernel; 2]), ints("strides", &[stride; 2]), ints("pads", &[padding; 4])];
        self.node("Conv", &inputs, attributes)
    }

    /// Batch normalisation in evaluation mode, over axis 1 of `[N, C]` or `[N, C, H, W]`: `scale` and `bias` are
    /// PyTorch's `weight` and `bias`, `mean` and `var` its running statistics.
    pub fn batch_norm(&mut self, x: &str, scale: &str, bias: &str, mean: &str, var: &str, eps: f32) -> String {
        self.node("BatchNormalization", &[x, scale, bias, mean, var], vec![float("epsilon", eps)])
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![])
    }

    pub fn sigmoid(&mut self, x: &str) -> String {
        self.node("Sigmoid", &[x], vec![])
    }

    /// A square max-pool of NCHW `x`; `padding` pads each side with values never chosen (torchvision's ResNet stem
    /// pools 3×3, stride 2, padding 1).
    pub fn max_pool(&mut self, x: &str, kernel: usize, stride: usize, padding: usize) -> String {
        let attributes =
            vec![ints("kernel_shape", &[kernel; 2]), ints("strides", &[stride; 2]), ints("pads", &[padding; 4])];
        self.node("MaxPool", &[x], attributes)
    }

    /// A square average pool of NCHW `x`, without padding.
    pub fn average_pool(&mut self, x: &str, kernel: usize, stride: usize) -> String {
        self.node("AveragePool", &[x], vec![ints("kernel_shape", &[kernel; 2]), ints("strides", &[stride; 2])])
    }

    /// The mean of each channel of NCHW `x`: `[N, C, 1, 1]`.
    pub fn global_average_pool(&mut self, x: &str) -> String {
        self.node("GlobalAveragePool", &[x], vec![])
    }

    /// `[N, …]` → `[N, product of the rest]`, as PyTorch's `Flatten`.
    pub fn flatten(&mut self, x: &str) -> String {
        self.node("Flatten", &[x], vec![int("axis", 1)])
    }

    /// `x @ weightᵀ + bias` for `x` `[N, in]`, weight `[out, in]` and bias `[out]`: PyTorch's `Linear`.
    pub fn gemm(&mut self, x: &str, weight: &str, bias: &str) -> String {
        self.node("Gemm", &[x, weight, bias], vec![int("transB", 1)])
    }

    /// The softmax of each row of `[N, K]`.
    pub fn softmax(&mut self, x: &str) -> String {
        self.node("Softmax", &[x], vec![int("axis", 1)])
    }

    /// `[N, a]` and `[N, b]` side by side: `[N, a + b]`.
    pub fn concat_columns(&mut self, a: &str, b: &str) -> String {
        self.node("Concat", &[a, b], vec![int("axis", 1)])
    }

    /// Gives the value `from` the name `to` (a graph output's public name), wherever it is made or taken.
    pub fn rename(&mut self, from: &str, to: &str) {
        for node in &mut self.nodes {
            node.input.iter_mut().chain(node.output.iter_mut()).filter(|v| *v == from).for_each(|v| *v = to.into());
        }
    }

    /// The model file's bytes: this graph with `inputs` and `outputs` (values of the graph, by name).
    pub fn finish(self, inputs: &[Port], outputs: &[Port], info: ModelInfo) -> Vec<u8> {
        let graph = GraphProto {
            node: self.nodes,
            name: Some(info.graph_name.into()),
            initializer: self.constants,
            input: inputs.iter().map(Port::value_info).collect(),
            output: outputs.iter().map(Port::value_info).collect(),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some("crest".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            doc_string: Some(info.doc),
            graph: Some(graph),
            metadata_props: info
                .metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto { key: Some(key.into()), value: Some(value) })
                .collect(),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}
