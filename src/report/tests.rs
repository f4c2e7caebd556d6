//! The whole page, rendered from a small report whose every part is known.

use super::*;

fn known_report() -> Report {
    let classes = vec!["3".to_string(), "<script>alert(1)</script>".to_string()];
    let run = |name: &str, last: f32| Run {
        name: name.into(),
        train_loss: vec![Some(0.6), Some(0.3), Some(0.2)],
        valid_loss: vec![Some(0.5), Some(f32::NAN), Some(0.25)],
        metric: vec![Some(0.8), Some(0.9), Some(last)],
        batch_loss: vec![0.7, 0.6, 0.5, 0.45, 0.3, 0.2],
        batch_lr: vec![0.001, 0.01, 0.01, 0.005, 0.001, 0.0001],
    };
    Report {
        title: "3 & 7".into(),
        command: "crest train data/mnist_sample --epochs 3".into(),
        dataset: Some(DatasetSummary {
            source: "data/mnist_sample".into(),
            classes: classes.clone(),
            train_counts: vec![800, 900],
            valid_counts: vec![200, 225],
            image_shape: [1, 28, 28],
        }),
        samples: vec![Picture {
            pixels: vec![0, 50, 100, 150, 200, 250],
            channels: 1,
            height: 2,
            width: 3,
            caption: "3".into(),
        }],
        samples_note: "a training batch".into(),
        table: Some(Table {
            header: vec!["epoch".into(), "train_loss".into()],
            rows: vec![vec!["0".into(), "0.600000".into()]],
        }),
        metric_name: "accuracy".into(),
        runs: vec![run("seed 42", 0.95), run("seed 43", 0.93)],
        lr_find: Some(LrCurve {
            lrs: vec![1e-7, 1e-5, 1e-3, 1e-1, 10.0],
            losses: vec![0.7, 0.69, 0.4, 0.3, 5.0],
            suggestions: vec![Suggestion { name: "valley".into(), lr: 1e-3 }],
        }),
        confusion: Some(Confusion { classes, counts: vec![vec![190, 10], vec![5, 220]] }),
        top_losses: vec![Picture {
            pixels: vec![9; 4],
            channels: 1,
            height: 2,
            width: 2,
            caption: "7 / 3 / 2.31 / 0.10".into(),
        }],
        class_weights: vec![weights_picture(&[1.0, -1.0], 1, 1, 2, "3")],
        notes: vec!["saved the model of epoch 2".into()],
    }
}

/// The pixels of every `data:image/png;base64,` image on the page, decoded with the `png` crate.
fn images(page: &str) -> Vec<(png::ColorType, u32, u32, Vec<u8>)> {
    page.split("data:image/png;base64,")
        .skip(1)
        .map(|rest| {
            let bytes = decode_base64(rest.split('"').next().unwrap());
            let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
            let mut out = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut out).unwrap();
            out.truncate(info.buffer_size());
            (info.color_type, info.width, info.height, out)
        })
        .collect()
}

/// The test's own decoder, so that the encoder is checked against something it doesn't share code with.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    } as u32;
    let mut out = Vec::new();
    for quad in text.as_bytes().chunks(4) {
        let data: Vec<u32> = quad.iter().filter(|&&c| c != b'=').map(|&c| value(c)).collect();
        let group = data.iter().enumerate().fold(0u32, |g, (i, v)| g | v << (18 - 6 * i));
        out.extend((0..data.len() - 1).map(|i| (group >> (16 - 8 * i)) as u8));
    }
    out
}

#[test]
fn every_part_of_a_known_report_is_on_the_page() {
    let page = render(&known_report());
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    assert!(page.contains("<title>3 &amp; 7</title>"));
    // Loss, metric, loss per batch, learning rate, the runs, lr_find: six charts, each with its title.
    assert_eq!(page.matches("<svg").count(), 6);
    for title in [
        "Loss per epoch",
        "Validation accuracy per epoch",
        "Training loss per batch",
        "Learning rate per batch",
        "Validation accuracy of 2 runs",
        "Learning-rate finder",
    ] {
        assert!(page.contains(&format!("<title>{title}</title>")), "{title}");
    }
    assert!(page.contains(">valley: 1e-3</text>"));
    assert!(page.contains("1 value was not a finite number"));
    assert!(page.contains("mean 0.9400 ± 0.0141"));
    // The class name from a folder shows as text, in the data table, the confusion matrix and nowhere as markup.
    assert!(!page.contains("<script"));
    assert_eq!(page.matches("<th>&lt;script&gt;alert(1)&lt;/script&gt;</th>").count(), 3);
    assert!(page.contains("<td class=\"total\">425</td>"));
    assert!(page.contains("410 of 425 on the diagonal"));
    assert!(page.contains("<li>saved the model of epoch 2</li>"));
}

#[test]
fn images_decode_back_to_their_pixels() {
    let page = render(&known_report());
    let found = images(&page);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0], (png::ColorType::Grayscale, 3, 2, vec![0, 50, 100, 150, 200, 250]));
    assert_eq!((found[1].1, found[1].2, &found[1].3[..]), (2, 2, &[9u8; 4][..]));
    // The weights: red then blue, 140 pixels a weight.
    let (colour, w, h, rgb) = &found[2];
    assert_eq!((*colour, *w, *h), (png::ColorType::Rgb, 280, 140));
    assert_eq!((&rgb[..3], &rgb[3 * 140..3 * 141]), (&[255, 0, 0][..], &[0, 0, 255][..]));
}

#[test]
fn the_page_reaches_for_nothing_outside_itself() {
    let page = render(&known_report());
    for outside in ["http://", "https://", "<script", "src=\"//", "url("] {
        assert!(!page.contains(outside), "{outside}");
    }
    assert!(page.contains("default-src 'none'"));
}

#[test]
fn an_empty_report_is_a_page_with_a_title() {
    let page = render(&Report::new("nothing yet"));
    assert!(page.contains("<h1>nothing yet</h1>"));
    assert!(!page.contains("<section") && !page.contains("<svg") && !page.contains("<pre"));
}

#[test]
fn write_replaces_the_file_and_refuses_a_missing_folder() {
    let dir = std::env::temp_dir().join(format!("crest-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.html");
    std::fs::write(&path, "old").unwrap();
    write(&Report::new("new"), &path).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("<h1>new</h1>"));
    let missing = dir.join("no/such/folder/report.html");
    let err = write(&Report::new("x"), &missing).unwrap_err().to_string();
    assert!(err.contains("cannot write the report to") && err.contains("does not exist"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
