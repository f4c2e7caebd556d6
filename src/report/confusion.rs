//! The confusion matrix as an HTML table, as fastai's `plot_confusion_matrix` draws it: rows are the actual class,
//! columns the predicted one, each cell shaded from white to dark blue by its count (matplotlib's "Blues"), with
//! totals at the end of each row and column.

use super::html::escape;
use super::Confusion;

/// The darkest shade, for the largest count (the end of matplotlib's "Blues").
const DARKEST: [f64; 3] = [8.0, 48.0, 107.0];

pub fn table(confusion: &Confusion) -> String {
    let classes = &confusion.classes;
    let k = classes.len();
    // A row or cell missing from `counts` counts as none.
    let count = |a: usize, p: usize| confusion.counts.get(a).and_then(|row| row.get(p)).copied().unwrap_or(0);
    let largest = (0..k).flat_map(|a| (0..k).map(move |p| (a, p))).map(|(a, p)| count(a, p)).max().unwrap_or(0);
    let mut html = String::from("<table class=\"confusion\">\n<tr><th class=\"corner\">actual ↓ · predicted →</th>");
    for c in classes {
        html += &format!("<th>{}</th>", escape(c));
    }
    html += "<th class=\"total\">total</th></tr>\n";
    let mut column_totals = vec![0usize; k];
    let mut correct = 0;
    for (a, class) in classes.iter().enumerate() {
        html += &format!("<tr><th>{}</th>", escape(class));
        for (p, total) in column_totals.iter_mut().enumerate() {
            let n = count(a, p);
            *total += n;
            html += &cell(n, largest);
        }
        correct += count(a, a);
        html += &format!("<td class=\"total\">{}</td></tr>\n", (0..k).map(|p| count(a, p)).sum::<usize>());
    }
    html += "<tr><th class=\"total\">total</th>";
    for t in &column_totals {
        html += &format!("<td class=\"total\">{t}</td>");
    }
    let all: usize = column_totals.iter().sum();
    html += &format!("<td class=\"total\">{all}</td></tr>\n</table>\n");
    let accuracy = if all > 0 { format!("{:.2}%", 100.0 * correct as f64 / all as f64) } else { "–".into() };
    html + &format!(
        "<p class=\"note\">Rows: the actual class; columns: the predicted class; darker = more images. {correct} of \
         {all} on the diagonal (accuracy {accuracy}).</p>\n"
    )
}

/// A count shaded by its share of the largest one; white text once the cell is dark.
fn cell(n: usize, largest: usize) -> String {
    let t = if largest > 0 { n as f64 / largest as f64 } else { 0.0 };
    let [r, g, b] = DARKEST.map(|d| (255.0 + (d - 255.0) * t).round() as u8);
    let ink = if t > 0.5 { "#fff" } else { "#000" };
    format!("<td style=\"background:rgb({r},{g},{b});color:{ink}\">{n}</td>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shaded_by_count_with_totals() {
        let c = Confusion { classes: vec!["3".into(), "<7>".into()], counts: vec![vec![8, 2], vec![0, 10]] };
        let html = table(&c);
        assert!(html.contains("<th>&lt;7&gt;</th>"));
        assert!(html.contains(r#"<td style="background:rgb(8,48,107);color:#fff">10</td>"#));
        assert!(html.contains(r#"<td style="background:rgb(57,89,137);color:#fff">8</td>"#));
        assert!(html.contains(r#"<td style="background:rgb(206,214,225);color:#000">2</td>"#));
        assert!(html.contains(r#"<td style="background:rgb(255,255,255);color:#000">0</td>"#));
        // Row totals 10, 10; column totals 8, 12; 18 of 20 right.
        assert_eq!(html.matches("<td class=\"total\">10</td>").count(), 2);
        assert!(html.contains("<td class=\"total\">8</td><td class=\"total\">12</td><td class=\"total\">20</td>"));
        assert!(html.contains("18 of 20 on the diagonal (accuracy 90.00%)"));
    }

    #[test]
    fn missing_counts_are_zero() {
        let c = Confusion { classes: vec!["a".into(), "b".into()], counts: vec![vec![3]] };
        assert!(table(&c).contains("3 of 3 on the diagonal"));
        let empty = Confusion { classes: vec!["a".into()], counts: vec![] };
        assert!(table(&empty).contains("0 of 0 on the diagonal (accuracy –)"));
    }
}
