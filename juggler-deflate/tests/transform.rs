//! The frame transform: round trips under every negotiated parameter set,
//! fragmentation, context takeover, and the peer's violations.

use juggler_deflate::codec::compress_message;
use juggler_deflate::frames::{frame, parse_frame, CHUNK};
use juggler_deflate::{Inbound, Negotiated, Outbound, Violation};
use miniz_oxide::deflate::core::{
    compress_to_output, CompressionStrategy, CompressorOxide, TDEFLFlush,
};
use miniz_oxide::DataFormat;
use proptest::prelude::*;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// Feeds `wire` to `inbound` in pieces of `piece` bytes, draining it, and
/// returns the plain frames (fin, opcode, payload).
fn run_inbound(
    inbound: &mut Inbound,
    wire: &[u8],
    piece: usize,
) -> Result<Vec<(bool, u8, Vec<u8>)>, Violation> {
    let mut out = Vec::new();
    let mut frames = Vec::new();
    let mut rest = wire;
    loop {
        let take = piece.min(rest.len());
        let before = out.len();
        let consumed = inbound.feed(&rest[..take], &mut out)?;
        assert!(out.len() <= (64 << 10) + CHUNK + 64, "output bounded");
        rest = &rest[consumed..];
        let produced = out.len() > before;
        let mut offset = 0;
        while let Some((fin, rsv1, opcode, payload, size)) = parse_frame(&out[offset..]) {
            assert!(!rsv1);
            frames.push((fin, opcode, payload));
            offset += size;
        }
        out.drain(..offset);
        if rest.is_empty() && !produced {
            break;
        }
    }
    assert!(out.is_empty(), "no partial frame left");
    Ok(frames)
}

/// Messages as (opcode, payload).
type Messages = Vec<(u8, Vec<u8>)>;

/// The data messages among plain frames, joined, and the control frames.
fn messages(frames: &[(bool, u8, Vec<u8>)]) -> (Messages, Vec<Vec<u8>>) {
    let mut messages = Vec::new();
    let mut controls = Vec::new();
    let mut current: Option<(u8, Vec<u8>)> = None;
    for (fin, opcode, payload) in frames {
        if *opcode >= 8 {
            controls.push(payload.clone());
            continue;
        }
        match (&mut current, *opcode) {
            (None, op) => {
                assert_ne!(op, CONTINUATION);
                current = Some((op, payload.clone()));
            }
            (Some((_, data)), CONTINUATION) => data.extend_from_slice(payload),
            (Some(_), _) => panic!("a new message inside one"),
        }
        if *fin {
            messages.push(current.take().unwrap());
        }
    }
    assert!(current.is_none());
    (messages, controls)
}

fn negotiated() -> impl Strategy<Value = Negotiated> {
    (9u8..=15, any::<bool>(), 1u8..=9).prop_map(|(bits, takeover, level)| Negotiated {
        own_window_bits: bits,
        // Both ways the same: one value serves sender and receiver.
        own_context_takeover: takeover,
        peer_context_takeover: takeover,
        threshold: 0,
        level,
    })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        // Repetitive JSON-like text, which compresses.
        (
            proptest::collection::vec("[a-c\"{}:, ]{1,12}", 0..40),
            1usize..200
        )
            .prop_map(|(words, times)| words.concat().repeat(times).into_bytes()),
    ]
}

/// A compressed message split into `parts` frames (RSV1 on the first),
/// masked or not, with a ping after the first frame.
fn fragmented(compressed: &[u8], opcode: u8, parts: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
    let size = compressed.len().div_ceil(parts.max(1)).max(1);
    let chunks: Vec<&[u8]> = if compressed.is_empty() {
        vec![&[]]
    } else {
        compressed.chunks(size).collect()
    };
    let mut wire = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let first = index == 0;
        let last = index == chunks.len() - 1;
        wire.extend(frame(
            if first { opcode } else { CONTINUATION },
            last,
            first,
            mask,
            chunk,
        ));
        if first {
            wire.extend(frame(PING, true, false, mask, b"ping"));
        }
    }
    wire
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any message survives compress then inflate, whole or in fragments,
    /// in any pieces, under every parameter set.
    #[test]
    fn any_message_survives(
        negotiated in negotiated(),
        message in payload(),
        parts in 1usize..6,
        piece in 1usize..5000,
        masked in any::<bool>(),
        binary in any::<bool>(),
    ) {
        let compressed = compress_message(&message, negotiated.own_window_bits, negotiated.level);
        let opcode = if binary { BINARY } else { TEXT };
        let mask = masked.then_some([0x12, 0x34, 0x56, 0x78]);
        let mut wire = fragmented(&compressed, opcode, parts, mask);
        // And a second message, plain, after it.
        wire.extend(frame(TEXT, true, false, mask, b"plain"));
        let mut inbound = Inbound::new(negotiated, usize::MAX);
        let frames = run_inbound(&mut inbound, &wire, piece).unwrap();
        for (_, _, payload) in &frames {
            prop_assert!(payload.len() <= CHUNK.max(5));
        }
        let (messages, controls) = messages(&frames);
        prop_assert_eq!(messages, vec![(opcode, message), (TEXT, b"plain".to_vec())]);
        prop_assert_eq!(controls, vec![b"ping".to_vec()]);
        prop_assert!(negotiated.peer_context_takeover || !inbound.holds_state());
    }

    /// What `Outbound` writes, `Inbound` reads back, masked or not,
    /// compressed at or above the threshold only.
    #[test]
    fn outbound_then_inbound(
        negotiated in negotiated(),
        messages_in in proptest::collection::vec(payload(), 1..4),
        threshold in 0usize..200,
        masked in any::<bool>(),
        piece in 1usize..3000,
    ) {
        let negotiated = Negotiated { threshold, ..negotiated };
        let mask = masked.then_some([9, 8, 7, 6]);
        let mut outbound = Outbound::new(negotiated);
        let mut wire = Vec::new();
        for message in &messages_in {
            let plain = frame(TEXT, true, false, mask, message);
            // Written in two pieces, as a WebSocket implementation may.
            let (a, b) = plain.split_at(plain.len() / 2);
            outbound.feed(a, &mut wire);
            outbound.feed(b, &mut wire);
            outbound.feed(&frame(PING, true, false, mask, b"p"), &mut wire);
        }
        let mut offset = 0;
        let mut index = 0;
        while let Some((_, rsv1, opcode, _, size)) = parse_frame(&wire[offset..]) {
            if opcode == TEXT {
                let len = messages_in[index].len();
                let shrinks = negotiated.own_context_takeover
                    || compress_message(&messages_in[index], negotiated.own_window_bits, negotiated.level).len() < len;
                prop_assert_eq!(
                    rsv1,
                    len >= threshold && len > 0 && shrinks,
                    "RSV1 iff at least the threshold and smaller compressed"
                );
                index += 1;
            } else {
                prop_assert!(!rsv1, "control frames are never compressed");
            }
            offset += size;
        }
        prop_assert_eq!(offset, wire.len());
        let mut inbound = Inbound::new(negotiated, usize::MAX);
        let frames = run_inbound(&mut inbound, &wire, piece).unwrap();
        let (messages, controls) = messages(&frames);
        let expected: Vec<(u8, Vec<u8>)> = messages_in.iter().map(|m| (TEXT, m.clone())).collect();
        prop_assert_eq!(messages, expected);
        prop_assert_eq!(controls.len(), messages_in.len());
    }
}

/// Messages compressed by one compressor that keeps its context.
fn with_context(messages: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut compressor =
        CompressorOxide::with_params(DataFormat::Raw, 6, CompressionStrategy::Default, 15);
    messages
        .iter()
        .map(|message| {
            let mut out = Vec::new();
            compress_to_output(&mut compressor, message, TDEFLFlush::Sync, |chunk| {
                out.extend_from_slice(chunk);
                true
            });
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            out
        })
        .collect()
}

#[test]
fn context_takeover_is_followed_when_negotiated() {
    let first: Vec<u8> = (0..400u32).map(|i| (i * 7919 % 251) as u8).collect();
    let second: Vec<u8> = [&first[..], b"!"].concat();
    let (first, second) = (&first[..], &second[..]);
    let compressed = with_context(&[first, second]);
    // The second refers back to the first: much smaller.
    assert!(
        compressed[1].len() * 4 < compressed[0].len(),
        "{} {}",
        compressed[0].len(),
        compressed[1].len()
    );
    let mut wire = frame(TEXT, true, true, None, &compressed[0]);
    wire.extend(frame(TEXT, true, true, None, &compressed[1]));
    let keeping = Negotiated {
        own_window_bits: 15,
        own_context_takeover: false,
        peer_context_takeover: true,
        threshold: 0,
        level: 6,
    };
    let mut inbound = Inbound::new(keeping, 1 << 20);
    let (messages, _) = messages(&run_inbound(&mut inbound, &wire, 7).unwrap());
    assert_eq!(
        messages,
        vec![(TEXT, first.to_vec()), (TEXT, second.to_vec())]
    );
    assert!(inbound.holds_state());
    // Without it the second message cannot be read as sent.
    let mut fresh = Inbound::new(
        Negotiated {
            peer_context_takeover: false,
            ..keeping
        },
        1 << 20,
    );
    match run_inbound(&mut fresh, &wire, 7) {
        Err(Violation::Corrupt) => {}
        Ok(frames) => assert_ne!(messages_of(&frames)[1].1, second),
        Err(other) => panic!("{other}"),
    }
}

fn messages_of(frames: &[(bool, u8, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
    messages(frames).0
}

fn server() -> Negotiated {
    Negotiated {
        own_window_bits: 15,
        own_context_takeover: false,
        peer_context_takeover: false,
        threshold: 0,
        level: 6,
    }
}

#[test]
fn rsv1_on_a_control_frame_is_a_protocol_violation() {
    let mut inbound = Inbound::new(server(), 1 << 20);
    let wire = frame(PING, true, true, Some([1, 2, 3, 4]), b"x");
    assert_eq!(
        run_inbound(&mut inbound, &wire, 100),
        Err(Violation::Protocol("RSV1 set on a control frame"))
    );
    assert_eq!(Violation::Protocol("").close_code(), 1002);
    // And it stays failed.
    assert!(inbound
        .feed(&frame(TEXT, true, false, None, b"a"), &mut Vec::new())
        .is_err());
}

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_violation() {
    let compressed = compress_message(b"hello hello", 15, 6);
    let mut wire = frame(TEXT, false, true, None, &compressed);
    wire.extend(frame(CONTINUATION, true, true, None, b""));
    let mut inbound = Inbound::new(server(), 1 << 20);
    assert!(matches!(
        run_inbound(&mut inbound, &wire, 100),
        Err(Violation::Protocol(_))
    ));
}

#[test]
fn a_corrupt_stream_is_invalid_payload_data() {
    let mut inbound = Inbound::new(server(), 1 << 20);
    let wire = frame(TEXT, true, true, Some([5, 6, 7, 8]), &[0xff, 0xff, 0xff]);
    assert_eq!(
        run_inbound(&mut inbound, &wire, 100),
        Err(Violation::Corrupt)
    );
    assert_eq!(Violation::Corrupt.close_code(), 1007);
}

/// 64 MiB of one letter, compressed, whole and in fragments: inflation
/// stops at the limit, having handed on plain frames of at most a chunk
/// and holding at most 64 KiB of output at any time (`run_inbound`
/// asserts it).
#[test]
fn bombs_stop_at_the_limit() {
    let letters = vec![b'a'; 64 << 20];
    let compressed = compress_message(&letters, 15, 9);
    assert!(compressed.len() < 128 << 10, "{}", compressed.len());
    drop(letters);
    let limit = 4 << 20;
    for parts in [1, 2, 64] {
        let wire = fragmented(&compressed, TEXT, parts, Some([1, 1, 1, 1]));
        let mut inbound = Inbound::new(server(), limit);
        let mut out = Vec::new();
        let mut handed_on = 0;
        let mut rest = &wire[..];
        let err = loop {
            match inbound.feed(rest, &mut out) {
                Ok(consumed) => {
                    assert!(out.len() <= (64 << 10) + CHUNK + 64);
                    rest = &rest[consumed..];
                    handed_on += out.len();
                    out.clear();
                }
                Err(err) => break err,
            }
        };
        assert_eq!(
            err,
            Violation::TooLarge {
                size: limit + 1,
                limit
            },
            "{parts} parts"
        );
        assert_eq!(err.close_code(), 1009);
        assert!(handed_on <= limit + 4096, "{handed_on}");
        assert!(!inbound.holds_state(), "nothing held after the violation");
    }
}

/// Our context takeover, when negotiated: a stream of one-key patches
/// compresses to a fraction of what it does message by message, and reads
/// back whole.
#[test]
fn our_context_takeover_shrinks_a_stream_of_patches() {
    let patches: Vec<Vec<u8>> = (1..=200u32)
        .map(|round| {
            format!(
                r#"{{"type":"DATA","payload":[{{"op":"replace","path":"/k{:06}/v","value":{round}}}]}}"#,
                round * 7919 % 100_000
            )
            .into_bytes()
        })
        .collect();
    let mut sizes = Vec::new();
    for takeover in [false, true] {
        let negotiated = Negotiated {
            own_window_bits: 15,
            own_context_takeover: takeover,
            peer_context_takeover: takeover,
            threshold: 0,
            level: 6,
        };
        let mut outbound = Outbound::new(negotiated);
        let mut wire = Vec::new();
        for patch in &patches {
            outbound.feed(&frame(TEXT, true, false, None, patch), &mut wire);
        }
        sizes.push(wire.len());
        let mut inbound = Inbound::new(negotiated, 1 << 20);
        let (messages, _) = messages(&run_inbound(&mut inbound, &wire, 1000).unwrap());
        let expected: Vec<(u8, Vec<u8>)> = patches.iter().map(|p| (TEXT, p.clone())).collect();
        assert_eq!(messages, expected);
    }
    assert!(sizes[1] * 2 < sizes[0], "{sizes:?}");
}
