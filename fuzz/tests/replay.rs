//! Every fuzz target on stable, in every `cargo test`: its corpus (`fuzz/corpus/TARGET/`,
//! which holds the seeds and every input that once found a bug), then inputs mutated from
//! the corpus with a fixed seed. A failure names the target and the input, written to
//! `target/fuzz-failures/` so that `cargo fuzz run TARGET FILE` replays it.

use std::path::{Path, PathBuf};

use edgeplane_fuzz::{TARGETS, Target, mutate};

/// Mutated inputs per target: enough to reach past the seeds, few enough for CI (the
/// slowest target, the API server, takes about a millisecond an input in a debug build).
const MUTATED: usize = 1500;
const SEED: u64 = 0x5eed_f022;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

fn replay(name: &str, target: Target) {
    let corpus = corpus(name);
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty");
    let mutated = mutate::inputs(&corpus, SEED ^ name.len() as u64, MUTATED);
    for (i, input) in corpus.iter().chain(&mutated).enumerate() {
        let outcome = std::panic::catch_unwind(|| target(input));
        if let Err(panic) = outcome {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{i}"));
            let _ = std::fs::write(&file, input);
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "fuzz target {name} failed on input {i} (saved as {}): {message}\ninput: {:?}",
                file.display(),
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_a_wrapper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in TARGETS {
        assert!(
            root.join("corpus").join(name).is_dir(),
            "no corpus for {name}"
        );
        // The STAMP parser's wrapper is in its own package (fuzz/stamp).
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file()
                || root
                    .join("stamp/fuzz_targets")
                    .join(format!("{name}.rs"))
                    .is_file(),
            "no fuzz_targets/{name}.rs"
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            let (_, target) = TARGETS
                .iter()
                .find(|(n, _)| *n == stringify!($name))
                .expect("the target is listed in TARGETS");
            replay(stringify!($name), *target);
        }
    )*};
}

replay_tests!(
    admission,
    api_request,
    grpc,
    manifests,
    patch,
    planner,
    selector,
    stamp,
    values
);
