//! `crest evaluate` and `crest predict` on folders, end to end on the shipped sample.

mod common;

use common::{crest, temp_dir, text};
use std::path::{Path, PathBuf};

/// Trains the linear model on the sample with `args`, returning the model's path and train's stdout.
fn train(dir: &Path, args: &[&str]) -> (PathBuf, String) {
    let model = dir.join("m.safetensors");
    let out = crest(&[&["train", "--epochs", "2", "--out", model.to_str().unwrap()], args].concat());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    (model, stdout)
}

fn value<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {stdout}"))
}

/// The confusion matrix's rows as printed (class name, counts, row total), without the header and totals lines.
fn confusion_rows(stdout: &str) -> Vec<(String, Vec<usize>)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .skip(2)
        .take_while(|l| !l.starts_with("total"))
        .map(|l| {
            let mut cells = l.split_whitespace();
            let name = cells.next().unwrap().to_string();
            (name, cells.map(|c| c.parse().unwrap()).collect())
        })
        .collect()
}

/// Copies the first `n` images of each of the sample's classes into `dir/<class name>/`.
fn copy_sample(dir: &Path, names: [&str; 2], n: usize) {
    for (class, name) in ["3", "7"].iter().zip(names) {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for i in 0..n {
            let file = format!("{i:05}.png");
            std::fs::copy(Path::new("data/mnist_sample").join(class).join(&file), dir.join(name).join(file)).unwrap();
        }
    }
}

#[test]
fn evaluate_on_the_validation_split_reproduces_train() {
    let dir = temp_dir("evaluate-split");
    let split = ["--valid-pct", "0.3", "--seed", "7"];
    let (model, trained) = train(&dir, &split);
    let valid: usize =
        value(&trained, "split: ").split(", ").nth(1).unwrap().trim_end_matches(" valid").parse().unwrap();
    let csv = dir.join("preds.csv");
    let out = crest(
        &[
            &[
                "evaluate",
                model.to_str().unwrap(),
                "data/mnist_sample",
                "--split",
                "valid",
                "--csv",
                csv.to_str().unwrap(),
            ],
            &split[..],
        ]
        .concat(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&format!(": {valid} images of 28x28x1, the validation set")), "{stdout}");
    assert_eq!(value(&stdout, "accuracy: "), value(&trained, "valid accuracy: "), "{stdout}");

    let rows = confusion_rows(&stdout);
    assert_eq!(rows.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["3", "7"], "{stdout}");
    let cells: usize = rows.iter().map(|(_, r)| r[..2].iter().sum::<usize>()).sum();
    assert_eq!(cells, valid, "{stdout}");
    assert!(rows.iter().all(|(_, r)| r[2] == r[0] + r[1]), "{stdout}");

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("path,label,prediction,3,7"));
    let mut counts = [[0usize; 2]; 2];
    let mut rows_seen = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (label, prediction) = (f[1].parse::<usize>().unwrap() / 7, f[2].parse::<usize>().unwrap() / 7);
        assert!(f[0].starts_with(&format!("data/mnist_sample/{}/", f[1])), "{line}");
        let p: Vec<f32> = f[3..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6, "{line}");
        assert_eq!(prediction, (p[1] > p[0]) as usize, "{line}");
        counts[label][prediction] += 1;
        rows_seen += 1;
    }
    assert_eq!(rows_seen, valid);
    assert_eq!(counts.map(|r| r.to_vec()).to_vec(), rows.iter().map(|(_, r)| r[..2].to_vec()).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn which_images_a_split_folder_gives() {
    let dir = temp_dir("evaluate-which");
    let (model, _) = train(&dir, &[]);
    let data = dir.join("data");
    copy_sample(&data.join("train"), ["3", "7"], 5);
    copy_sample(&data.join("valid"), ["3", "7"], 3);
    let evaluate = |extra: &[&str]| {
        let out = crest(&[&["evaluate", model.to_str().unwrap(), data.to_str().unwrap()], extra].concat());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        stdout.lines().next().unwrap().to_string()
    };
    assert!(evaluate(&[]).ends_with(": 6 images of 28x28x1, the validation set (train/ and valid/ folders)"));
    assert!(evaluate(&["--split", "all"]).ends_with(": 16 images of 28x28x1, all of them"));
    assert!(evaluate(&["--split", "train"]).contains(": 10 images of"));
    // Without --split, a folder that is not split is evaluated whole.
    let flat = crest(&["evaluate", model.to_str().unwrap(), data.join("valid").to_str().unwrap()]);
    assert!(text(&flat).0.starts_with(&format!("evaluating {} on", model.display())), "{}", text(&flat).1);
    assert!(text(&flat).0.lines().next().unwrap().contains(": 6 images of 28x28x1, all of them"));
    // --valid-pct and --seed say how to split, so they need --split.
    let out = crest(&["evaluate", model.to_str().unwrap(), "data/mnist_sample", "--seed", "3"]);
    assert!(!out.status.success() && text(&out).1.contains("--split"), "{}", text(&out).1);
    let out =
        crest(&["evaluate", model.to_str().unwrap(), "data/mnist_sample", "--split", "valid", "--valid-pct", "0"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out).1,
        "error: the validation set is empty: --split valid needs a --valid-pct above 0 and classes of two images or \
         more\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn other_classes_are_refused_in_one_line_naming_both() {
    let dir = temp_dir("evaluate-classes");
    let (model, _) = train(&dir, &[]);
    let data = dir.join("pets");
    copy_sample(&data, ["cat", "dog"], 2);
    let out = crest(&["evaluate", model.to_str().unwrap(), data.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty());
    assert_eq!(stderr, format!("error: {} has the classes [cat, dog]; the model's are [3, 7]\n", data.display()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn predict_on_a_folder_classifies_every_image_inside() {
    let dir = temp_dir("predict-folder");
    let (model, _) = train(&dir, &[]);
    let images = dir.join("unlabelled");
    copy_sample(&images, ["a", "a/deeper"], 2);
    std::fs::write(images.join("README"), "not an image").unwrap();
    let out = crest(&["predict", model.to_str().unwrap(), images.to_str().unwrap(), "--top", "1"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<(&str, &str)> = stdout
        .lines()
        .map(|l| l.split_once('\t').unwrap())
        .map(|(path, top)| (path.strip_prefix(images.to_str().unwrap()).unwrap(), top.split(' ').next().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [("/a/00000.png", "3"), ("/a/00001.png", "3"), ("/a/deeper/00000.png", "7"), ("/a/deeper/00001.png", "7")]
    );
    assert_eq!(
        stderr,
        format!("warning: skipped 1 file that is not an image (e.g. {})\n", images.join("README").display())
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = crest(&["predict", model.to_str().unwrap(), empty.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty());
    assert!(stderr.ends_with("error: 1 folder held no images\n"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// sklearn's precision of a class no image was predicted as is 0, with a warning; so is crest's, with a note.
#[test]
fn a_class_never_predicted_gets_a_note() {
    let dir = temp_dir("evaluate-never");
    let (model, _) = train(&dir, &[]);
    // Images of 3s under both class names: the model calls them all 3.
    let data = dir.join("threes");
    for class in ["3", "7"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..3 {
            let file = format!("{i:05}.png");
            std::fs::copy(Path::new("data/mnist_sample/3").join(&file), data.join(class).join(file)).unwrap();
        }
    }
    let out = crest(&["evaluate", model.to_str().unwrap(), data.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(value(&stdout, "accuracy: "), "0.5000");
    assert!(stdout.contains("\n           7     0.0000    0.0000    0.0000         3\n"), "{stdout}");
    assert!(stdout.contains("\nnote: no image was predicted as 7, so its precision is taken as 0 (as sklearn does)\n"));
    let _ = std::fs::remove_dir_all(dir);
}
