//! The encryptors alone, on the bundled sample's video samples (no storage, no muxing): CENC
//! `cenc` (AES-128 CTR over each slice's whole blocks) and `cbcs` (AES-128 CBC, 1 block in 10 after
//! the slice header), and Apple's SAMPLE-AES for MPEG-TS (the same pattern on escaped slices),
//! each as bytes per second of samples. The AES is RustCrypto's `aes` 0.8 (AES-NI detected at run
//! time) with `ctr` 0.9 and `cbc` 0.1.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estuary::packaging::cenc::{
    ContentKey, KeyId, SampleCipher, SampleLayout, Scheme, SliceHeaders, sample_aux_with, sample_iv,
};
use estuary::packaging::inspect::moov_of;
use estuary::packaging::mp4::{IndexLimits, build_index};
use estuary::packaging::ts::sample_aes::SampleAes;

/// The sample's video samples, and its track's layout and slice headers.
fn samples() -> (Vec<Vec<u8>>, SampleLayout, SliceHeaders) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sample/sample.mp4");
    let file = std::fs::read(path).expect("the bundled sample");
    let moov = moov_of(&file, 64 << 20).expect("its moov");
    let index = build_index(moov, file.len() as u64, IndexLimits::default()).expect("its index");
    let track = index.video().next().expect("a video track");
    let samples = track
        .samples
        .offsets
        .iter()
        .zip(&track.samples.sizes)
        .map(|(&o, &s)| file[o as usize..o as usize + s as usize].to_vec())
        .collect();
    let layout = SampleLayout::of_stsd(&track.stsd).expect("H.264");
    (samples, layout, SliceHeaders::of_stsd(&track.stsd))
}

fn encryptor(c: &mut Criterion) {
    let (samples, layout, headers) = samples();
    let bytes: usize = samples.iter().map(Vec::len).sum();
    let key = ContentKey::new(KeyId([7; 16]), [9; 16]);
    let mut group = c.benchmark_group("encryptor");
    group.sample_size(20).throughput(Throughput::Bytes(bytes as u64));
    for scheme in [Scheme::Cenc, Scheme::Cbcs] {
        let cipher = SampleCipher::new(&key, scheme);
        // As a segment build does: every sample's subsamples worked out, then the samples
        // encrypted in place all at once (cbcs runs its chains eight side by side).
        group.bench_function(format!("{}_16s_video", scheme.name()), |b| {
            let mut work = samples.clone();
            b.iter(|| {
                let aux: Vec<_> = work
                    .iter()
                    .enumerate()
                    .map(|(i, s)| sample_aux_with(scheme, sample_iv(0, i as u64), (layout, &headers), s).unwrap())
                    .collect();
                cipher
                    .encrypt_samples_in_place(layout, aux.iter().zip(work.iter_mut().map(Vec::as_mut_slice)))
                    .unwrap();
                black_box(&work);
            })
        });
    }
    let seal = SampleAes::new(&key, [3; 16]);
    group.bench_function("sample_aes_16s_video", |b| {
        let mut out = BytesMut::with_capacity(bytes + bytes / 8);
        b.iter(|| {
            out.clear();
            for sample in &samples {
                let mut rest = &sample[..];
                while rest.len() > 4 {
                    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    seal.write_nal(&rest[4..4 + len], &mut out);
                    rest = &rest[4 + len..];
                }
            }
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, encryptor);
criterion_main!(benches);
