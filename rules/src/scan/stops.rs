//! Where strings can end, for the whole document at once: one bit per byte that ends a run of plain string
//! content (a quote, a backslash, or a control character, which is invalid inside a string), 64 bytes to a word.
//! Finding a string's end is then a shift and a count of trailing zeros, the same for a two-byte key and a
//! hundred-byte value, instead of a search that starts afresh at every string.

/// The stop bits of `b`, one word per 64 bytes, and one more word for the bytes after the last whole block (none
/// past the end of the document). `out` is reused between documents.
pub(super) fn string_stops(b: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let blocks = b.chunks_exact(64);
    let rest = blocks.remainder().len();
    out.extend(blocks.map(|block| block_stops(block.try_into().expect("64 bytes"))));
    out.push(match b.len().checked_sub(64) {
        // The last 64 bytes of the document, shifted so that the bytes after the last whole block come first.
        Some(from) if rest > 0 => {
            block_stops(b[from..].try_into().expect("64 bytes")) >> (64 - rest)
        }
        Some(_) => 0,
        // A document shorter than one block, padded with spaces, which stop nothing.
        None => {
            let mut padded = [b' '; 64];
            padded[..b.len()].copy_from_slice(b);
            block_stops(&padded)
        }
    });
}

/// The stop bits of one 64-byte block, bit `k` for byte `k`: SSE2 compares and a byte mask per 16 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
#[allow(unsafe_code)]
fn block_stops(block: &[u8; 64]) -> u64 {
    // SAFETY: `block_stops_sse2` needs nothing but SSE2, which this build already requires of the CPU
    // (`target_feature = "sse2"`; every x86-64 processor has it). Calling it is unsafe only because Rust
    // checks target features per function, not per build. Done the portable way, the byte masks (SSE2's
    // `pmovmskb`, which the compiler does not produce from safe code) cost about 650 more instructions per
    // 1 KB event, 5% of all the matcher spends on it with 1,000 rules.
    unsafe { block_stops_sse2(block) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn block_stops_sse2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8, _mm_xor_si128,
    };
    let mut bits = 0;
    for (k, sixteen) in block.chunks_exact(16).enumerate() {
        // Two word loads, which the compiler merges into one vector load.
        let low = i64::from_le_bytes(sixteen[..8].try_into().expect("eight bytes"));
        let high = i64::from_le_bytes(sixteen[8..].try_into().expect("eight bytes"));
        let v = _mm_set_epi64x(high, low);
        // As in `block_stops_portable`: bytes at most 0x20 once bit 1 is flipped, and backslashes.
        let flipped = _mm_xor_si128(v, _mm_set1_epi8(0x02));
        let quote_or_control = _mm_cmpeq_epi8(_mm_min_epu8(flipped, _mm_set1_epi8(0x20)), flipped);
        let hit = _mm_or_si128(
            quote_or_control,
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
        );
        bits |= u64::from(_mm_movemask_epi8(hit) as u16) << (16 * k);
    }
    bits
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn block_stops(block: &[u8; 64]) -> u64 {
    block_stops_portable(block)
}

/// [`block_stops`] in safe, portable code. The first loop becomes vector compares; each group of eight flags then
/// becomes eight bits in one multiplication.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn block_stops_portable(block: &[u8; 64]) -> u64 {
    let mut flags = [0u8; 64];
    for (f, &c) in flags.iter_mut().zip(block) {
        // Flipping bit 1 maps the quote (0x22) to 0x20 and the control characters onto themselves, so one
        // comparison finds both.
        *f = u8::from(c ^ 0x02 <= 0x20) | u8::from(c == b'\\');
    }
    let mut bits = 0;
    for (k, eight) in flags.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        // Each byte is 0 or 1; the multiplier moves byte j's bit to bit 56 + j, and the products do not overlap.
        bits |= (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    bits
}

/// The first stop at or after `i`, if any (`stops` from [`string_stops`]; `i` at most the document's length).
#[inline(always)]
pub(super) fn next_stop(stops: &[u64], i: usize) -> Option<usize> {
    let mut w = i / 64;
    let bits = stops[w] >> (i % 64);
    if bits != 0 {
        return Some(i + bits.trailing_zeros() as usize);
    }
    loop {
        w += 1;
        let bits = *stops.get(w)?;
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_stop(c: u8) -> bool {
        c == b'"' || c == b'\\' || c < 0x20
    }

    /// Random documents over an alphabet of stops, their neighbours and multi-byte UTF-8, of every length
    /// around the block size: the bits and the search agree with a byte loop from every position.
    #[test]
    fn stops_agree_with_a_byte_loop() {
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xc3, 0xe2,
            0xff, b'\n', b'\t',
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut stops = Vec::new();
        for len in 0..200 {
            for _ in 0..20 {
                // Some documents mostly plain, so that stops are far apart and searches cross blocks.
                let sparse = state.is_multiple_of(3);
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        if sparse && !state.is_multiple_of(29) {
                            b'x'
                        } else {
                            alphabet[(state / 29 % alphabet.len() as u64) as usize]
                        }
                    })
                    .collect();
                string_stops(&bytes, &mut stops);
                assert_eq!(stops.len(), len / 64 + 1);
                for (k, &c) in bytes.iter().enumerate() {
                    assert_eq!(
                        stops[k / 64] >> (k % 64) & 1 == 1,
                        is_stop(c),
                        "{bytes:?} at {k}"
                    );
                }
                for start in 0..=len {
                    let want = bytes[start..]
                        .iter()
                        .position(|&c| is_stop(c))
                        .map(|p| start + p);
                    assert_eq!(next_stop(&stops, start), want, "{bytes:?} from {start}");
                }
            }
        }
    }

    /// The portable block function (the only one on other processors) agrees with the one in use.
    #[test]
    fn portable_blocks_agree() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let block: [u8; 64] = std::array::from_fn(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Half the bytes from the interesting few, half anything.
                match state % 8 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (state >> 8) as u8 & 0x3f,
                    3 => 0x20 + (state >> 8) as u8 % 4,
                    _ => (state >> 8) as u8,
                }
            });
            assert_eq!(
                block_stops_portable(&block),
                block_stops(&block),
                "{block:?}"
            );
        }
    }

    /// Every byte value is classified alike in every position of a block.
    #[test]
    fn every_byte_in_every_position() {
        let mut stops = Vec::new();
        for c in 0..=255u8 {
            for at in 0..130 {
                let mut bytes = vec![b'x'; 130];
                bytes[at] = c;
                string_stops(&bytes, &mut stops);
                let want = if is_stop(c) { Some(at) } else { None };
                assert_eq!(next_stop(&stops, 0), want, "{c:#x} at {at}");
            }
        }
    }
}
