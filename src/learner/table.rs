//! The results table fastai prints during `fit`, and the same rows as CSV (fastai's CSVLogger columns).

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f32,
    /// None when there is no validation set (fastai prints `None` too).
    pub valid_loss: Option<f32>,
    pub metrics: Vec<Option<f32>>,
    /// The whole epoch (training and validation), as the table's `time` column shows it.
    pub seconds: f64,
    /// The training pass alone.
    pub train_seconds: f64,
}

pub fn header(metric_names: &[&str]) -> Vec<String> {
    let mut h: Vec<String> = ["epoch", "train_loss", "valid_loss"].map(String::from).to_vec();
    h.extend(metric_names.iter().map(|s| s.to_string()));
    h.push("time".into());
    h
}

impl EpochRow {
    /// The row's cells as the table prints them (for a report that shows the table).
    pub fn cells(&self) -> Vec<String> {
        let num = |v: Option<f32>| v.map_or("None".to_string(), |v| format!("{v:.6}"));
        let secs = self.seconds.round() as u64;
        let mut c = vec![self.epoch.to_string(), num(Some(self.train_loss)), num(self.valid_loss)];
        c.extend(self.metrics.iter().map(|&m| num(m)));
        c.push(format!("{:02}:{:02}", secs / 60, secs % 60));
        c
    }
}

/// Columns as wide as their header (at least 8), two spaces apart, left-aligned: fastai's console layout.
pub fn format_line(items: &[String], header: &[String]) -> String {
    let parts: Vec<String> = items.iter().zip(header).map(|(v, h)| format!("{v:<w$}", w = h.len().max(8))).collect();
    parts.join("  ").trim_end().to_string()
}

pub fn format_row(row: &EpochRow, header: &[String]) -> String {
    format_line(&row.cells(), header)
}

/// The rows as CSV under the header (fastai's `CSVLogger` columns), the whole log of a run.
pub fn csv(header: &[String], rows: &[EpochRow]) -> String {
    let mut text = header.join(",") + "\n";
    for row in rows {
        text += &(row.cells().join(",") + "\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_like_fastai() {
        let h = header(&["batch_accuracy"]);
        let row = EpochRow {
            epoch: 0,
            train_loss: 0.504162,
            valid_loss: Some(0.499413),
            metrics: vec![Some(0.515)],
            seconds: 0.2,
            train_seconds: 0.1,
        };
        assert_eq!(format_line(&h, &h), "epoch     train_loss  valid_loss  batch_accuracy  time");
        assert_eq!(format_row(&row, &h), "0         0.504162    0.499413    0.515000        00:00");
        assert_eq!(
            csv(&h, &[row]),
            "epoch,train_loss,valid_loss,batch_accuracy,time\n0,0.504162,0.499413,0.515000,00:00\n"
        );
    }
}
