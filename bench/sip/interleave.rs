//! The recording writer's stereo interleave (issue #12, bridged-call benchmark): the loop it
//! had (a `Vec::push` per sample) against the one it has (silence first, then each leg into
//! its channel), on 20 ms frames, one core. Standalone, so it builds in seconds:
//!   rustc -O --edition 2021 bench/sip/interleave.rs -o /tmp/interleave && /tmp/interleave
//! Both run twice, alternating; the last lines check that both give the same bytes.
use std::hint::black_box;
use std::time::Instant;
const SILENCE: u8 = 0xD5;
fn old(audio: &mut Vec<u8>, caller: &[u8], agent: &[u8]) {
    let n = caller.len().max(agent.len());
    for i in 0..n {
        audio.push(caller.get(i).copied().unwrap_or(SILENCE));
        audio.push(agent.get(i).copied().unwrap_or(SILENCE));
    }
}
fn new(audio: &mut Vec<u8>, caller: &[u8], agent: &[u8]) {
    let n = caller.len().max(agent.len());
    let start = audio.len();
    audio.resize(start + 2 * n, SILENCE);
    let out = &mut audio[start..];
    for (pair, &c) in out.chunks_exact_mut(2).zip(caller) { pair[0] = c; }
    for (pair, &a) in out.chunks_exact_mut(2).zip(agent) { pair[1] = a; }
}
fn main() {
    let c: Vec<u8> = (0..160u32).map(|i| (i * 7) as u8).collect();
    let a: Vec<u8> = (0..160u32).map(|i| (i * 13) as u8).collect();
    for (name, f) in [("old", old as fn(&mut Vec<u8>, &[u8], &[u8])), ("new", new), ("old", old), ("new", new)] {
        let mut buf = Vec::with_capacity(16000);
        let t = Instant::now();
        let frames = 2_000_000;
        for _ in 0..frames {
            f(&mut buf, black_box(&c), black_box(&a));
            if buf.len() >= 16000 { black_box(&buf); buf.clear(); }
        }
        let per = t.elapsed().as_nanos() as f64 / frames as f64;
        println!("{name}: {per:.1} ns per 20 ms stereo frame = {:.2} us per call-second", per * 50.0 / 1000.0);
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (cc, aa) in [(&c[..], &a[..]), (&c[..], &[][..]), (&c[..100], &a[..]), (&[][..], &[][..])] {
        old(&mut x, cc, aa); new(&mut y, cc, aa);
    }
    assert_eq!(x, y);
}
