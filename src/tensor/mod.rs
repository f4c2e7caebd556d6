//! `Tensor`: f32, row-major, contiguous, with reverse-mode autograd.
//!
//! A `Tensor` is a cheap-to-clone handle (`Arc`), `Send + Sync`: a trained model can move to another thread and
//! serve several at once. An op's result remembers its parents and the rule that sends gradients back to them (see
//! `autograd.rs`); `backward()` walks that graph in reverse. Shape errors in arithmetic are programmer errors and
//! panic with both shapes named; anything touching files or user input returns `Result`.

mod autograd;
pub mod broadcast;
pub mod gradcheck;
pub(crate) mod kernels;
mod ops;
pub mod stats;
mod storage;

pub use autograd::{is_grad_enabled, no_grad, GradCtx, NoGradGuard};
pub(crate) use ops::sigmoid;
pub use ops::BatchNormState;
pub(crate) use ops::PackedCache;
pub use stats::{Histogram, Summary};
pub use storage::{Values, ValuesMut};

use crate::rng::Rng;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use storage::{Storage, U8Pixels};

pub(crate) struct Inner {
    id: usize,
    shape: Vec<usize>,
    storage: Arc<Storage>,
    grad: Mutex<Option<Vec<f32>>>,
    requires_grad: AtomicBool,
    node: Option<autograd::Node>,
}

#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    fn build(shape: Vec<usize>, storage: Arc<Storage>, node: Option<autograd::Node>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requires_grad: AtomicBool::new(node.is_some()),
            shape,
            storage,
            grad: Mutex::new(None),
            node,
        }))
    }

    /// A tensor of the given shape over `data` (row-major). Panics if the sizes differ.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        assert_eq!(data.len(), numel(shape), "from_vec: {} values for shape {:?}", data.len(), shape);
        Tensor::build(shape.to_vec(), Storage::f32(data), None)
    }

    /// u8 pixels that read as `byte * scale` (the data loader's batches: scaled once, 4× fewer bytes than f32).
    /// Matmul and Linear read the bytes directly; other ops see them widened to f32.
    pub fn from_u8(data: Vec<u8>, shape: &[usize], scale: f32) -> Tensor {
        assert_eq!(data.len(), numel(shape), "from_u8: {} bytes for shape {:?}", data.len(), shape);
        Tensor::build(shape.to_vec(), Storage::u8(data, scale), None)
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

    /// How many times the values have been written through `data_mut` (by this handle or any view sharing its
    /// storage): PyTorch's `tensor._version`. A copy derived from the values is current while this is unchanged.
    pub fn version(&self) -> u64 {
        self.0.storage.version()
    }

    /// The storage's identity and version together: equal keys mean the same values.
    pub(crate) fn values_key(&self) -> (u64, u64) {
        (self.0.storage.id(), self.0.storage.version())
    }

    /// The u8 pixels behind this tensor, if it holds pixels rather than f32 values.
    pub(crate) fn pixels(&self) -> Option<&U8Pixels> {
        self.0.storage.pixels()
    }

    /// The u8 pixels of a batch too large to widen whole: the u8 kernels stream them through cache-sized tiles.
    /// A smaller batch is widened once by [`Tensor::dense`] and shared by the forward and backward GEMMs, which is
    /// cheaper than tiling twice.
    pub(crate) fn streamed_pixels(&self) -> Option<&U8Pixels> {
        self.pixels().filter(|p| p.bytes.len() > 1 << 20)
    }

    /// This tensor, or for u8 pixels a tensor of them widened to f32 once, for an op that reads its input more
    /// than once (its forward pass and its backward). The result records no graph: the op keeps `self` as parent.
    pub(crate) fn dense(&self) -> Tensor {
        match self.pixels() {
            Some(_) => Tensor::from_vec(self.data().into_vec(), self.shape()),
            None => self.clone(),
        }
    }

    /// The values, read-only: a snapshot that writes made later (`data_mut`) do not change. u8 pixels are widened
    /// to f32 on each call.
    pub fn data(&self) -> Values {
        self.0.storage.values()
    }

    /// The values for an update outside the graph: the post's `p.data -= p.grad*lr`. Bumps [`Tensor::version`].
    /// Panics on u8 pixels (inputs are read-only).
    pub fn data_mut(&self) -> ValuesMut<'_> {
        self.0.storage.values_mut()
    }

    pub fn to_vec(&self) -> Vec<f32> {
        self.data().into_vec()
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> f32 {
        assert_eq!(self.numel(), 1, "item() on a tensor of shape {:?}", self.shape());
        self.data()[0]
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as a parameter whose gradient `backward()` accumulates: `.requires_grad_()`.
    pub fn requires_grad_(self) -> Tensor {
        assert!(self.0.node.is_none(), "requires_grad_ on a non-leaf tensor");
        self.0.requires_grad.store(true, Ordering::Relaxed);
        self
    }

    /// Freezes (`false`) or unfreezes (`true`) a parameter, as PyTorch's `p.requires_grad_(flag)` on a leaf: a
    /// frozen parameter gets no gradient, so an optimizer leaves it as it is. Freezing forgets its gradient.
    pub fn set_requires_grad(&self, requires: bool) {
        assert!(self.0.node.is_none(), "set_requires_grad on a non-leaf tensor");
        self.0.requires_grad.store(requires, Ordering::Relaxed);
        if !requires {
            self.zero_grad();
        }
    }

    /// The accumulated gradient, if `backward()` has reached this tensor.
    pub fn grad(&self) -> Option<Tensor> {
        self.grad_ref().as_ref().map(|g| Tensor::from_vec(g.clone(), self.shape()))
    }

    pub(crate) fn grad_ref(&self) -> MutexGuard<'_, Option<Vec<f32>>> {
        self.0.grad.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `p.grad.zero_()`: forget the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.grad_ref() = None;
    }

    /// The same values outside the graph (PyTorch's `.detach()`): shares storage, records no history.
    pub fn detach(&self) -> Tensor {
        self.view_as_shape(self.shape().to_vec(), None)
    }

    /// Same storage seen with another shape (no copy); used by `reshape`.
    pub(crate) fn view_as_shape(&self, shape: Vec<usize>, node: Option<autograd::Node>) -> Tensor {
        Tensor::build(shape, self.0.storage.clone(), node)
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
