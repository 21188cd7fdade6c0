//! A small seeded mutator for the stable replay of the targets: what libFuzzer's default
//! mutations do, without its coverage guidance, so that every `cargo test` feeds each
//! target the same few thousand inputs near its corpus.

use edgeplane_core::rng::Rng;

/// Tokens that the text targets' grammars care about; inserting them reaches deeper than
/// flipping bits.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"-1",
    b"1e999",
    b"0.5",
    b"\n---\n",
    b"\n",
    b" ",
    b"=",
    b"!=",
    b"==",
    b"in (",
    b"notin (",
    b")",
    b"!",
    b"/",
    b"~1",
    b"~0",
    b"ms",
    b"us",
    b"Gbps",
    b"Mi",
    b"\xff",
    b"\0",
    b"99999999999999999999",
    b"apiVersion",
    b"kind",
    b"metadata",
    b"spec",
    b"op",
    b"add",
    b"remove",
    b"replace",
    b"move",
    b"path",
    b"value",
    b"$patch",
    b"delete",
    b"*",
    b"&a",
    b"*a",
    b"!!binary",
    b"<<",
];

/// `count` inputs derived from `corpus` with the fixed `seed`: each a corpus entry with
/// one to four mutations, sometimes spliced with another entry.
pub fn inputs(corpus: &[Vec<u8>], seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let empty = Vec::new();
    (0..count)
        .map(|_| {
            let base = corpus.get(rng.below(corpus.len().max(1))).unwrap_or(&empty);
            let mut input = base.clone();
            for _ in 0..1 + rng.below(4) {
                mutate_once(&mut input, corpus, &mut rng);
            }
            input
        })
        .collect()
}

fn mutate_once(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
    match rng.below(7) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = [0u8, 0xff, b'0', b'9', b' ', b'"', b'-', 0x7f][rng.below(8)];
        }
        2 if !input.is_empty() => {
            let start = rng.below(input.len());
            let end = (start + 1 + rng.below(16)).min(input.len());
            input.drain(start..end);
        }
        3 if !input.is_empty() => {
            let start = rng.below(input.len());
            let end = (start + 1 + rng.below(32)).min(input.len());
            let copy = input[start..end].to_vec();
            let to = at(rng, input.len());
            input.splice(to..to, copy);
        }
        4 if !corpus.is_empty() => {
            let other = &corpus[rng.below(corpus.len())];
            let cut = at(rng, input.len());
            let from = at(rng, other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        _ => {
            let token = TOKENS[rng.below(TOKENS.len())];
            let to = at(rng, input.len());
            input.splice(to..to, token.iter().copied());
        }
    }
}
