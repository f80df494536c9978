//! The fuzz target's logic: arbitrary peer bytes through [`Inbound`] in
//! arbitrary pieces must give a violation or plain frames, never a panic
//! nor more than the limit; and any payload must survive [`Outbound`]
//! then [`Inbound`].

use crate::frames::{frame, parse_frame};
use crate::{Inbound, Negotiated, Outbound};

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let negotiated = Negotiated {
        own_window_bits: 9 + control % 7,
        // The same both ways, so that the round trip below agrees.
        own_context_takeover: control & 0x80 != 0,
        peer_context_takeover: control & 0x80 != 0,
        threshold: 0,
        level: 1 + (control >> 3) % 9,
    };
    let limit = 1 << 16;
    // Hostile bytes, fed in pieces of a size the input chooses.
    let piece = 1 + usize::from(control & 0x1f);
    let mut inbound = Inbound::new(negotiated, limit);
    let mut out = Vec::new();
    let mut rest_in = rest;
    loop {
        let take = piece.min(rest_in.len());
        let before = out.len();
        let result = inbound.feed(&rest_in[..take], &mut out);
        let Ok(consumed) = result else { break };
        rest_in = &rest_in[consumed..];
        let produced = out.len() > before;
        // Plain frames out: none with RSV1.
        let mut offset = 0;
        while let Some((_, rsv1, opcode, payload, size)) = parse_frame(&out[offset..]) {
            // RSV1 frames are inflated or refused, never handed on.
            assert!(!rsv1, "RSV1 handed on");
            let _ = (opcode, payload);
            offset += size;
        }
        out.drain(..offset);
        if consumed == 0 && (!produced || offset == 0) {
            break;
        }
    }
    // The round trip of the payload as one masked text or binary message.
    let mut outbound = Outbound::new(negotiated);
    let mut wire = Vec::new();
    outbound.feed(
        &frame(0x2, true, false, Some([1, 2, 3, 4]), rest),
        &mut wire,
    );
    let mut inbound = Inbound::new(negotiated, usize::MAX);
    let mut plain = Vec::new();
    let consumed = inbound
        .feed(&wire, &mut plain)
        .expect("our own frames inflate");
    assert_eq!(consumed, wire.len());
    loop {
        let before = plain.len();
        inbound
            .feed(&[], &mut plain)
            .expect("our own frames inflate");
        if plain.len() == before {
            break;
        }
    }
    let mut message = Vec::new();
    let mut offset = 0;
    while let Some((_, rsv1, _, payload, size)) = parse_frame(&plain[offset..]) {
        assert!(!rsv1);
        message.extend_from_slice(&payload);
        offset += size;
    }
    assert_eq!(offset, plain.len());
    assert_eq!(message, rest);
}
