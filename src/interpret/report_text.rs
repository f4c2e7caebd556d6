//! An interpretation as text tables for a terminal: sklearn's `classification_report` and the confusion matrix.
//! Class names come from folder names and model files: they are escaped, so none can break a table's lines.

use super::{ClassScores, Interpretation};
use crate::text::printable;

/// Text width in characters, not bytes, so that names in any script line up.
fn width(s: &str) -> usize {
    s.chars().count()
}

fn right(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

impl Interpretation {
    fn printable_classes(&self) -> Vec<String> {
        self.classes.iter().map(|c| printable(c).into_owned()).collect()
    }

    /// sklearn's `classification_report(y, y_pred, target_names=classes, digits=digits)`, character for character:
    /// per-class precision, recall, F1 and support, then accuracy and the macro and weighted averages.
    pub fn classification_report(&self, digits: usize) -> String {
        let names = self.printable_classes();
        let w = names.iter().map(|n| width(n)).chain([width("weighted avg"), digits]).max().unwrap_or(0);
        let mut out =
            format!("{}  {:>9} {:>9} {:>9} {:>9}\n\n", " ".repeat(w), "precision", "recall", "f1-score", "support");
        let row = |name: &str, s: &ClassScores| {
            format!(
                "{}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}\n",
                right(name, w),
                s.precision,
                s.recall,
                s.f1,
                s.support
            )
        };
        let scores = self.per_class();
        for (name, s) in names.iter().zip(&scores) {
            out += &row(name, s);
        }
        out += "\n";
        let accuracy = self.accuracy().unwrap_or(0.0);
        out += &format!("{}  {:>9} {:>9} {accuracy:>9.digits$} {:>9}\n", right("accuracy", w), "", "", self.len());
        out += &row("macro avg", &ClassScores::macro_average(&scores));
        out += &row("weighted avg", &ClassScores::weighted_average(&scores));
        out
    }

    /// The confusion matrix with class names, rows actual and columns predicted, and a total for each row and
    /// column.
    pub fn confusion_table(&self) -> String {
        let names = self.printable_classes();
        let matrix = self.confusion_matrix();
        let count_cells = |label: &str, counts: Vec<usize>| {
            std::iter::once(label.to_string()).chain(counts.iter().map(|n| n.to_string())).collect::<Vec<_>>()
        };
        let mut rows = vec![std::iter::once("actual \\ predicted")
            .chain(names.iter().map(String::as_str))
            .chain(["total"])
            .map(String::from)
            .collect::<Vec<_>>()];
        for (name, row) in names.iter().zip(&matrix) {
            rows.push(count_cells(name, row.iter().copied().chain([row.iter().sum()]).collect()));
        }
        let column_totals = (0..names.len()).map(|p| matrix.iter().map(|row| row[p]).sum::<usize>());
        rows.push(count_cells("total", column_totals.chain([self.len()]).collect()));
        // Each column as wide as its widest cell; names left-aligned, counts right-aligned.
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| width(&r[c])).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let label = format!("{}{}", row[0], " ".repeat(widths[0] - width(&row[0])));
            let cells: Vec<String> = row[1..].iter().zip(&widths[1..]).map(|(c, &w)| right(c, w)).collect();
            out += &format!("{label}  {}\n", cells.join("  "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::interpret::tests::three_classes;
    use crate::interpret::Interpretation;

    /// What sklearn 1.9.1 prints for `classification_report([0,0,0,0,1,1,1,2,2,2], [0,0,1,2,1,1,0,0,0,1],
    /// target_names=['a','b','c'], digits=4)`.
    #[test]
    fn classification_report_is_sklearns() {
        let expected = "              precision    recall  f1-score   support

           a     0.4000    0.5000    0.4444         4
           b     0.5000    0.6667    0.5714         3
           c     0.0000    0.0000    0.0000         3

    accuracy                         0.4000        10
   macro avg     0.3000    0.3889    0.3386        10
weighted avg     0.3100    0.4000    0.3492        10
";
        assert_eq!(three_classes().classification_report(4), expected);
    }

    #[test]
    fn confusion_table_has_names_and_totals() {
        let expected = "\
actual \\ predicted  a  b  c  total
a                   2  1  1      4
b                   1  2  0      3
c                   2  1  0      3
total               5  4  1     10
";
        assert_eq!(three_classes().confusion_table(), expected);
    }

    /// Long, non-ASCII and line-breaking names keep the columns aligned.
    #[test]
    fn names_are_escaped_and_aligned() {
        let classes = vec!["chat noir 🐈".to_string(), "two\nlines".to_string()];
        let i = Interpretation::new(classes, vec![0, 1], vec![0.9, 0.1, 0.2, 0.8], vec![0.1, 0.2]).unwrap();
        let table = i.confusion_table();
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.contains("two\\nlines"), "{table}");
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{table}");
        let report = i.classification_report(2);
        assert!(report.lines().nth(2).unwrap().starts_with(" chat noir 🐈       1.00"), "{report}");
    }
}
