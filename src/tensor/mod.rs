//! `Tensor`: f32, row-major, contiguous, with reverse-mode autograd.
//!
//! A `Tensor` is a cheap-to-clone handle (`Rc`). An op's result remembers its parents and the rule that sends
//! gradients back to them (see `autograd.rs`); `backward()` walks that graph in reverse. Shape errors in arithmetic
//! are programmer errors and panic with both shapes named; anything touching files or user input returns `Result`.

mod autograd;
pub mod broadcast;
pub mod gradcheck;
pub mod kernels;
mod ops;
pub mod stats;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub(crate) use ops::sigmoid;
pub use ops::BatchNormState;
pub use stats::{Histogram, Summary};

use crate::rng::Rng;
use std::cell::{Cell, Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Input pixels kept as u8 (4× fewer bytes than f32); `value = byte * scale`. Matmul reads them directly;
/// any other op sees them converted to f32 on first use.
pub(crate) struct Bytes {
    pub data: Vec<u8>,
    pub scale: f32,
}

pub(crate) struct Inner {
    id: usize,
    shape: Vec<usize>,
    data: Rc<RefCell<Vec<f32>>>,
    bytes: Option<Rc<Bytes>>,
    grad: RefCell<Option<Vec<f32>>>,
    /// The values rearranged for a kernel (a Linear weight's panels), with the [`MUTATIONS`] count they were made at.
    packed: RefCell<Option<(u64, Rc<Vec<f32>>)>>,
    requires_grad: Cell<bool>,
    node: Option<autograd::Node>,
}

#[derive(Clone)]
pub struct Tensor(pub(crate) Rc<Inner>);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Calls of `data_mut` on any tensor so far. A packed copy of some tensor's values is current while this count
/// stays where it was: views share values, so a change through any of them must count.
static MUTATIONS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    fn build(
        shape: Vec<usize>,
        data: Rc<RefCell<Vec<f32>>>,
        bytes: Option<Rc<Bytes>>,
        node: Option<autograd::Node>,
    ) -> Tensor {
        Tensor(Rc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requires_grad: Cell::new(node.is_some()),
            shape,
            data,
            bytes,
            grad: RefCell::new(None),
            packed: RefCell::new(None),
            node,
        }))
    }

    /// A tensor of the given shape over `data` (row-major). Panics if the sizes differ.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        assert_eq!(data.len(), numel(shape), "from_vec: {} values for shape {:?}", data.len(), shape);
        Tensor::build(shape.to_vec(), Rc::new(RefCell::new(data)), None, None)
    }

    /// u8 pixels that read as `byte * scale` (the data loader's batches: scaled once, converted lazily).
    pub fn from_u8(data: Vec<u8>, shape: &[usize], scale: f32) -> Tensor {
        assert_eq!(data.len(), numel(shape), "from_u8: {} bytes for shape {:?}", data.len(), shape);
        let bytes = Rc::new(Bytes { data, scale });
        Tensor::build(shape.to_vec(), Rc::new(RefCell::new(Vec::new())), Some(bytes), None)
    }

    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_vec(vec![v], &[])
    }

    pub fn full(shape: &[usize], v: f32) -> Tensor {
        Tensor::from_vec(vec![v; numel(shape)], shape)
    }

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// Normal samples with mean 0 and the given std: `torch.randn(shape)*std`.
    pub fn randn(shape: &[usize], std: f32, rng: &mut Rng) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|_| rng.normal() * std).collect(), shape)
    }

    /// Uniform samples in [lo, hi).
    pub fn rand_uniform(shape: &[usize], lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|_| rng.uniform_range(lo, hi)).collect(), shape)
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }

    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }

    /// The size of one axis; negative axes count from the end.
    pub fn dim(&self, axis: isize) -> usize {
        self.0.shape[self.axis(axis)]
    }

    pub(crate) fn axis(&self, axis: isize) -> usize {
        let nd = self.ndim() as isize;
        let a = if axis < 0 { axis + nd } else { axis };
        assert!((0..nd.max(1)).contains(&a), "axis {axis} out of range for shape {:?}", self.shape());
        a as usize
    }

    pub(crate) fn id(&self) -> usize {
        self.0.id
    }

    /// The u8 pixels of a batch too large to widen whole: the u8 kernels stream them through cache-sized tiles.
    /// A smaller batch (up to 4 MB as f32) is widened once by `data()` and kept, for the forward and the backward
    /// GEMMs to share — cheaper than tiling twice.
    pub(crate) fn streamed_bytes(&self) -> Option<&Bytes> {
        self.0.bytes.as_deref().filter(|b| b.data.len() > 1 << 20)
    }

    /// The values, read-only. u8 tensors are converted (once) on first call.
    pub fn data(&self) -> Ref<'_, Vec<f32>> {
        if let Some(b) = &self.0.bytes {
            if self.0.data.borrow().is_empty() && !b.data.is_empty() {
                let s = b.scale;
                *self.0.data.borrow_mut() = b.data.iter().map(|&v| v as f32 * s).collect();
            }
        }
        self.0.data.borrow()
    }

    /// The values for an update outside the graph: the post's `p.data -= p.grad*lr`.
    pub fn data_mut(&self) -> RefMut<'_, Vec<f32>> {
        assert!(self.0.bytes.is_none(), "data_mut on a u8 input tensor");
        MUTATIONS.fetch_add(1, Ordering::Relaxed);
        self.0.data.borrow_mut()
    }

    /// `pack` of the values, made once and reused until some tensor's values change through `data_mut`: an
    /// inference pass packs each Linear weight once instead of once per batch; a training step packs it again.
    pub(crate) fn packed_with(&self, pack: impl FnOnce(&[f32]) -> Vec<f32>) -> Rc<Vec<f32>> {
        let now = MUTATIONS.load(Ordering::Relaxed);
        if let Some((at, packed)) = &*self.0.packed.borrow() {
            if *at == now {
                return packed.clone();
            }
        }
        let packed = Rc::new(pack(&self.data()));
        *self.0.packed.borrow_mut() = Some((now, packed.clone()));
        packed
    }

    pub fn to_vec(&self) -> Vec<f32> {
        self.data().clone()
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> f32 {
        assert_eq!(self.numel(), 1, "item() on a tensor of shape {:?}", self.shape());
        self.data()[0]
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Marks a leaf as a parameter whose gradient `backward()` accumulates: `.requires_grad_()`.
    pub fn requires_grad_(self) -> Tensor {
        assert!(self.0.node.is_none(), "requires_grad_ on a non-leaf tensor");
        self.0.requires_grad.set(true);
        self
    }

    /// The accumulated gradient, if `backward()` has reached this tensor.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().as_ref().map(|g| Tensor::from_vec(g.clone(), self.shape()))
    }

    pub(crate) fn grad_ref(&self) -> Ref<'_, Option<Vec<f32>>> {
        self.0.grad.borrow()
    }

    /// `p.grad.zero_()`: forget the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// The same values outside the graph (PyTorch's `.detach()`): shares storage, records no history.
    pub fn detach(&self) -> Tensor {
        self.view_as_shape(self.shape().to_vec(), None)
    }

    /// Same storage seen with another shape (no copy); used by `reshape`.
    pub(crate) fn view_as_shape(&self, shape: Vec<usize>, node: Option<autograd::Node>) -> Tensor {
        Tensor::build(shape, self.0.data.clone(), self.0.bytes.clone(), node)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Prints like PyTorch: up to 6 values per axis, with `...` in between.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn rec(f: &mut fmt::Formatter<'_>, d: &[f32], shape: &[usize], indent: usize) -> fmt::Result {
            let Some((&n, rest)) = shape.split_first() else {
                return write!(f, "{:.4}", d[0]);
            };
            let step = numel(rest);
            let shown: Vec<usize> = if n > 6 { (0..3).chain(n - 3..n).collect() } else { (0..n).collect() };
            write!(f, "[")?;
            for (k, &i) in shown.iter().enumerate() {
                if k > 0 {
                    write!(f, ",")?;
                    if !rest.is_empty() {
                        write!(f, "\n{:indent$}", "", indent = indent + 1)?;
                    } else {
                        write!(f, " ")?;
                    }
                }
                if n > 6 && k == 3 {
                    write!(f, "...,")?;
                    if rest.is_empty() {
                        write!(f, " ")?;
                    } else {
                        write!(f, "\n{:indent$}", "", indent = indent + 1)?;
                    }
                }
                rec(f, &d[i * step..(i + 1) * step], rest, indent + 1)?;
            }
            write!(f, "]")
        }
        write!(f, "tensor(")?;
        rec(f, &self.data(), self.shape(), 7)?;
        if let Some(node) = &self.0.node {
            write!(f, ", grad_fn=<{}>", node.name)?;
        }
        write!(f, ")")
    }
}
