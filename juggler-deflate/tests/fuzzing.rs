//! The fuzz target's logic on generated inputs (the `fuzzing` feature):
//! hostile bytes never panic, and payloads survive the round trip.
#![cfg(feature = "fuzzing")]

use juggler_deflate::codec::compress_message;
use juggler_deflate::frames::frame;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        juggler_deflate::fuzzing::run(&data);
    }

    /// Near-valid input: compressed frames (RSV1, masked or not), cut or
    /// corrupted at a chosen byte.
    #[test]
    fn compressed_frames_cut_and_corrupted(
        control in any::<u8>(),
        text in "[a-c{}\\[\\]\":, ]{0,400}",
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let compressed = compress_message(text.as_bytes(), 15, 6);
        let mut wire = frame(1, true, true, Some([1, 2, 3, 4]), &compressed);
        wire.extend(frame(1, false, true, None, &compressed));
        wire.extend(frame(0, true, false, None, &compressed));
        let at = flip.index(wire.len());
        wire[at] ^= 0x55;
        wire.truncate(cut.index(wire.len() + 1).max(1));
        let mut input = vec![control];
        input.extend(wire);
        juggler_deflate::fuzzing::run(&input);
    }
}
