// Poly1305 (RFC 8439 §2.5; Bernstein, "The Poly1305-AES message-authentication code") for wasm32.
//
// The accumulator and r are held in five 26-bit limbs so every limb product fits in 64 bits and a
// sum of five of them still leaves headroom: wasm has a native i64 multiply but no 64×64→128 one.
// Reduction uses 2^130 ≡ 5 (mod 2^130 − 5): a product limb of weight 2^(26·k), k ≥ 5, folds back
// into limb k − 5 multiplied by 5.
//
// The caller drives one MAC at a time through fixed buffers:
//   key (32 bytes: r ‖ s) → init(); input chunks → blocks(len), len a multiple of 16;
//   the last 0..15 bytes → finish(len), which writes the 16-byte tag over key.

#include <stdint.h>

#define IN_SIZE (64 * 1024)
#define MASK26 0x3ffffffu

static uint8_t key_buf[32];
static uint8_t in_buf[IN_SIZE];

static uint32_t r0, r1, r2, r3, r4;
// 5·r_i, the factors of products that wrap past 2^130.
static uint32_t f1, f2, f3, f4;
static uint32_t h0, h1, h2, h3, h4;

static inline uint32_t le32(const uint8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4); // wasm is little endian; compiles to one unaligned i32.load
  return v;
}

static inline void put_le32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

__attribute__((export_name("key_ptr"))) uint8_t *key_ptr(void) { return key_buf; }
__attribute__((export_name("in_ptr"))) uint8_t *in_ptr(void) { return in_buf; }
__attribute__((export_name("in_size"))) uint32_t in_size(void) { return IN_SIZE; }

__attribute__((export_name("init"))) void init(void) {
  // Clamp r (clear the bits the spec requires to be zero), then cut its 128 bits into 26-bit limbs:
  // limb i holds bits 26i .. 26i+25, read from the little-endian word that starts at byte ⌊26i/8⌋.
  uint8_t r[16];
  __builtin_memcpy(r, key_buf, 16);
  r[3] &= 15, r[7] &= 15, r[11] &= 15, r[15] &= 15;
  r[4] &= 252, r[8] &= 252, r[12] &= 252;
  r0 = le32(r + 0) & MASK26;
  r1 = (le32(r + 3) >> 2) & MASK26;
  r2 = (le32(r + 6) >> 4) & MASK26;
  r3 = (le32(r + 9) >> 6) & MASK26;
  r4 = le32(r + 12) >> 8;
  f1 = r1 * 5, f2 = r2 * 5, f3 = r3 * 5, f4 = r4 * 5;
  h0 = h1 = h2 = h3 = h4 = 0;
}

// h = (h + m)·r mod 2^130 − 5 (partially reduced) for each 16-byte block m, plus `top` at bit 128.
static void absorb(const uint8_t *p, uint32_t len, uint32_t top) {
  uint64_t a0 = h0, a1 = h1, a2 = h2, a3 = h3, a4 = h4;
  const uint64_t R0 = r0, R1 = r1, R2 = r2, R3 = r3, R4 = r4;
  const uint64_t F1 = f1, F2 = f2, F3 = f3, F4 = f4;
  for (; len >= 16; len -= 16, p += 16) {
    a0 += le32(p + 0) & MASK26;
    a1 += (le32(p + 3) >> 2) & MASK26;
    a2 += (le32(p + 6) >> 4) & MASK26;
    a3 += (le32(p + 9) >> 6) & MASK26;
    a4 += (le32(p + 12) >> 8) | top;

    // Limbs are < 2^27 and r_i < 2^26, 5·r_i < 2^29: each sum of five products stays below 2^60.
    uint64_t d0 = a0 * R0 + a1 * F4 + a2 * F3 + a3 * F2 + a4 * F1;
    uint64_t d1 = a0 * R1 + a1 * R0 + a2 * F4 + a3 * F3 + a4 * F2;
    uint64_t d2 = a0 * R2 + a1 * R1 + a2 * R0 + a3 * F4 + a4 * F3;
    uint64_t d3 = a0 * R3 + a1 * R2 + a2 * R1 + a3 * R0 + a4 * F4;
    uint64_t d4 = a0 * R4 + a1 * R3 + a2 * R2 + a3 * R1 + a4 * R0;

    // One carry pass; the carry out of limb 4 has weight 2^130 and re-enters limb 0 times 5.
    d1 += d0 >> 26;
    d2 += d1 >> 26;
    d3 += d2 >> 26;
    d4 += d3 >> 26;
    a0 = (d0 & MASK26) + (d4 >> 26) * 5;
    a1 = (d1 & MASK26) + (a0 >> 26);
    a0 &= MASK26;
    a2 = d2 & MASK26;
    a3 = d3 & MASK26;
    a4 = d4 & MASK26;
  }
  h0 = (uint32_t)a0, h1 = (uint32_t)a1, h2 = (uint32_t)a2, h3 = (uint32_t)a3, h4 = (uint32_t)a4;
}

__attribute__((export_name("blocks"))) void blocks(uint32_t len) { absorb(in_buf, len, 1u << 24); }

__attribute__((export_name("finish"))) void finish(uint32_t len) {
  if (len) {
    // A short final block gets a 1 byte appended and zero padding instead of the 2^128 bit.
    uint8_t last[16] = {0};
    __builtin_memcpy(last, in_buf, len);
    last[len] = 1;
    absorb(last, 16, 0);
  }

  // Full carry so every limb is < 2^26 and h < 2^130 + small.
  uint32_t c;
  c = h1 >> 26, h1 &= MASK26, h2 += c;
  c = h2 >> 26, h2 &= MASK26, h3 += c;
  c = h3 >> 26, h3 &= MASK26, h4 += c;
  c = h4 >> 26, h4 &= MASK26, h0 += c * 5;
  c = h0 >> 26, h0 &= MASK26, h1 += c;

  // g = h + 5 − 2^130; if that does not borrow, h ≥ p and g is the reduced value. Select without branching.
  uint32_t g0 = h0 + 5;
  c = g0 >> 26, g0 &= MASK26;
  uint32_t g1 = h1 + c;
  c = g1 >> 26, g1 &= MASK26;
  uint32_t g2 = h2 + c;
  c = g2 >> 26, g2 &= MASK26;
  uint32_t g3 = h3 + c;
  c = g3 >> 26, g3 &= MASK26;
  uint32_t g4 = h4 + c - (1u << 26);
  uint32_t use_g = (g4 >> 31) - 1; // all ones when g4 did not go negative
  h0 = (h0 & ~use_g) | (g0 & use_g);
  h1 = (h1 & ~use_g) | (g1 & use_g);
  h2 = (h2 & ~use_g) | (g2 & use_g);
  h3 = (h3 & ~use_g) | (g3 & use_g);
  h4 = (h4 & ~use_g) | (g4 & use_g);

  // tag = (h + s) mod 2^128, with h repacked into 32-bit words.
  uint64_t t;
  t = (uint64_t)(h0 | (h1 << 26)) + le32(key_buf + 16);
  put_le32(key_buf + 0, (uint32_t)t);
  t = (uint64_t)((h1 >> 6) | (h2 << 20)) + le32(key_buf + 20) + (t >> 32);
  put_le32(key_buf + 4, (uint32_t)t);
  t = (uint64_t)((h2 >> 12) | (h3 << 14)) + le32(key_buf + 24) + (t >> 32);
  put_le32(key_buf + 8, (uint32_t)t);
  t = (uint64_t)((h3 >> 18) | (h4 << 8)) + le32(key_buf + 28) + (t >> 32);
  put_le32(key_buf + 12, (uint32_t)t);
}
