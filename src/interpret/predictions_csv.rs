//! One CSV row per image: which image, its label, the prediction, and the probability of each class.

use super::Interpretation;

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, its quotes doubled. Paths and class
/// names are anyone's text, and must not be able to add a column or a row.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl Interpretation {
    /// The header `<image_column>,label,prediction,<class>,...`, then one row per image, `images[i]` naming image `i`
    /// (its path, or its index when it has none). Probabilities are written in full (the shortest text that reads
    /// back as the same f32).
    pub fn predictions_csv(&self, image_column: &str, images: &[String]) -> String {
        assert_eq!(images.len(), self.len(), "predictions_csv: one name per image");
        let mut out: Vec<String> = [image_column, "label", "prediction"].iter().map(|h| field(h)).collect();
        out.extend(self.classes.iter().map(|c| field(c)));
        let mut csv = out.join(",") + "\n";
        for (i, predicted) in self.predictions().into_iter().enumerate() {
            let mut row = vec![
                field(&images[i]),
                field(&self.classes[self.labels[i] as usize]),
                field(&self.classes[predicted as usize]),
            ];
            row.extend(self.probs_of(i).iter().map(|p| p.to_string()));
            csv += &(row.join(",") + "\n");
        }
        csv
    }
}

#[cfg(test)]
mod tests {
    use crate::interpret::Interpretation;

    #[test]
    fn rows_hold_names_escaped_and_probabilities() {
        let classes = vec!["plain".to_string(), "a,\"b\"\nc".to_string()];
        let i = Interpretation::new(classes, vec![0, 1], vec![0.25, 0.75, 0.5, 0.5], vec![1.0, 0.5]).unwrap();
        let csv = i.predictions_csv("path", &["x/1.png".into(), "y,z.png".into()]);
        assert_eq!(
            csv,
            "path,label,prediction,plain,\"a,\"\"b\"\"\nc\"\n\
             x/1.png,plain,\"a,\"\"b\"\"\nc\",0.25,0.75\n\
             \"y,z.png\",\"a,\"\"b\"\"\nc\",plain,0.5,0.5\n"
        );
    }
}
