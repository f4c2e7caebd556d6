//! A user's callback, written outside crest, sees fastai's events in order and can stop a fit.

use crest::data::{DataLoader, Dataset, Order};
use crest::learner::{BatchRow, Callback, DataLoaders, EpochRow, FitStart, Learner};
use crest::metrics::Metric;
use crest::nn::{Flatten, Linear, Module, Sequential};
use crest::rng::Rng;
use std::ops::ControlFlow;
use std::sync::Arc;

#[derive(Debug, PartialEq)]
enum Event {
    BeforeFit { epochs: usize, first_epoch: usize, batches: usize, metrics: Vec<&'static str>, validates: bool },
    BeforeEpoch(usize),
    AfterBatch(BatchRow),
    AfterEpoch { epoch: usize, valid_loss: Option<f32>, parameters: usize },
    AfterFit,
}

/// Records every event; stops the fit after epoch `stop_after`, if given.
#[derive(Default)]
struct Log {
    events: Vec<Event>,
    stop_after: Option<usize>,
}

impl Callback for Log {
    fn before_fit(&mut self, fit: &FitStart) -> crest::Result<()> {
        self.events.push(Event::BeforeFit {
            epochs: fit.epochs,
            first_epoch: fit.first_epoch,
            batches: fit.batches,
            metrics: fit.metric_names.to_vec(),
            validates: fit.validates,
        });
        Ok(())
    }

    fn before_epoch(&mut self, epoch: usize) {
        self.events.push(Event::BeforeEpoch(epoch));
    }

    fn after_batch(&mut self, batch: &BatchRow) {
        self.events.push(Event::AfterBatch(*batch));
    }

    fn after_epoch(&mut self, row: &EpochRow, model: &dyn Module) -> ControlFlow<String> {
        let parameters = model.parameters().iter().map(|p| p.data().len()).sum();
        self.events.push(Event::AfterEpoch { epoch: row.epoch, valid_loss: row.valid_loss, parameters });
        match self.stop_after {
            Some(last) if row.epoch >= last => ControlFlow::Break(format!("stopped by the test after epoch {last}")),
            _ => ControlFlow::Continue(()),
        }
    }

    fn after_fit(&mut self, _model: &dyn Module) {
        self.events.push(Event::AfterFit);
    }
}

/// `n` images of 1x1x2 pixels, two classes told apart by which pixel is bright.
fn dataset(n: usize) -> Arc<Dataset> {
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let pixels = labels.iter().flat_map(|&l| if l == 0 { [200, 30] } else { [30, 200] }).collect();
    Arc::new(Dataset {
        pixels,
        labels,
        classes: vec!["a".into(), "b".into()],
        channels: 1,
        height: 1,
        width: 2,
        paths: Default::default(),
    })
}

/// Ten training images in batches of 4 (3 batches an epoch), four validation images.
fn learner(log: Log) -> Learner {
    let dls = DataLoaders {
        train: DataLoader::new(dataset(10), 4, Order::Shuffled { seed: 1 }),
        valid: DataLoader::new(dataset(4), 4, Order::Sequential),
    };
    let model = Sequential::default().push(Flatten).push(Linear::new(2, 1, &mut Rng::new(1)));
    Learner::builder(dls, Box::new(model))
        .metrics([Metric::ACCURACY])
        .callback(Box::new(log))
        .quiet()
        .build()
        .expect("the model fits the data")
}

fn events(learn: &Learner) -> &[Event] {
    &learn.callback::<Log>().expect("the learner keeps its callback").events
}

#[test]
fn a_users_callback_sees_every_event_in_fastais_order() {
    let mut learn = learner(Log::default());
    learn.fit(2, 0.1).unwrap();
    let rows = &learn.recorder;
    let batch = |epoch: usize, batch: usize| Event::AfterBatch(learn.batches[epoch * 3 + batch]);
    let after_epoch = |epoch: usize| Event::AfterEpoch { epoch, valid_loss: rows[epoch].valid_loss, parameters: 3 };
    let expected = vec![
        Event::BeforeFit { epochs: 2, first_epoch: 0, batches: 3, metrics: vec!["accuracy"], validates: true },
        Event::BeforeEpoch(0),
        batch(0, 0),
        batch(0, 1),
        batch(0, 2),
        after_epoch(0),
        Event::BeforeEpoch(1),
        batch(1, 0),
        batch(1, 1),
        batch(1, 2),
        after_epoch(1),
        Event::AfterFit,
    ];
    assert_eq!(events(&learn), expected);
    // The per-batch log numbers its rows by epoch and batch, at the learning rate each step took (constant here).
    let index: Vec<(usize, usize, f32)> = learn.batches.iter().map(|b| (b.epoch, b.batch, b.lr)).collect();
    assert_eq!(index, [(0, 0, 0.1), (0, 1, 0.1), (0, 2, 0.1), (1, 0, 0.1), (1, 1, 0.1), (1, 2, 0.1)]);
    assert!(learn.batches.iter().all(|b| b.loss.is_finite() && b.loss > 0.0));
    // The epoch's train loss is the per-image mean of its batches' losses (batches of 4, 4 and 2).
    let epoch0 = (learn.batches[0].loss * 4.0 + learn.batches[1].loss * 4.0 + learn.batches[2].loss * 2.0) / 10.0;
    assert!((rows[0].train_loss - epoch0).abs() < 1e-6, "{} vs {epoch0}", rows[0].train_loss);
}

#[test]
fn a_callback_stops_the_fit_after_an_epoch_and_the_next_fit_counts_on() {
    let mut learn = learner(Log { stop_after: Some(0), ..Log::default() });
    learn.fit(5, 0.1).unwrap();
    assert_eq!(learn.recorder.len(), 1);
    assert_eq!(learn.batches.len(), 3);
    let seen = events(&learn);
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(matches!(seen[5], Event::AfterEpoch { epoch: 0, .. }), "{seen:?}");
    assert_eq!(seen[6], Event::AfterFit);
    // A second fit starts at the learner's next epoch, and the callback stops it there again.
    learn.fit(5, 0.1).unwrap();
    let seen = &events(&learn)[7..];
    assert_eq!(
        seen[0],
        Event::BeforeFit { epochs: 5, first_epoch: 1, batches: 3, metrics: vec!["accuracy"], validates: true }
    );
    assert_eq!(seen[1], Event::BeforeEpoch(1));
    assert_eq!(learn.recorder.iter().map(|r| r.epoch).collect::<Vec<_>>(), [0, 1]);
}
