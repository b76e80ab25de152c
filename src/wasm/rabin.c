// The chunker's hot loop for wasm32: restic's 64-byte-window Rabin fingerprint over GF(2) modulo a
// degree-53 polynomial P, looking for the first byte after which the digest's low 20 bits are zero.
//
// One byte step, with b entering and o leaving the window (o's term is added after the shift, so
// its table is o·x^(8·64) mod P rather than o·x^(8·63)):
//     d' = d·x^8 + b + o·x^512   (mod P)
// Two steps at once only need d's top 16 bits reduced, so the next digest no longer waits on the
// intermediate one; the intermediate digest is still computed, off that dependency chain, to test it:
//     d'' = d·x^16 + b1·x^8 + b2 + o1·x^520 + o2·x^512   (mod P)
// with d·x^16 = (d mod x^37)·x^16 + (d's bits 45..52)·x^61 + (d's bits 37..44)·x^53.
//
// The caller puts the 64 bytes before the range (the window's contents) and then the range into
// `buf`, and calls scan(n, digest) with the digest split into 32-bit halves.

#include <stdint.h>

#define WINDOW 64
#define CHUNK (64 * 1024)
#define DEGREE 53
#define SPLIT_MASK ((1u << 20) - 1)
#define LOW37 ((1ull << 37) - 1)
#define LOW53 ((1ull << DEGREE) - 1)

// Tables indexed by a byte value t: t times x^61, x^53, x^520, x^512, all reduced mod P.
static uint64_t x61[256], x53[256], x520[256], x512[256];
static uint8_t buf[WINDOW + CHUNK];
static uint64_t digest;

__attribute__((export_name("buf_ptr"))) uint8_t *buf_ptr(void) { return buf; }
__attribute__((export_name("chunk_size"))) uint32_t chunk_size(void) { return CHUNK; }
__attribute__((export_name("digest_hi"))) uint32_t digest_hi(void) { return (uint32_t)(digest >> 32); }
__attribute__((export_name("digest_lo"))) uint32_t digest_lo(void) { return (uint32_t)digest; }

// x^n mod P by n multiplications by x.
static uint64_t xpow(uint32_t n, uint64_t pol) {
  uint64_t r = 1;
  while (n--) {
    r <<= 1;
    if (r >> DEGREE) r ^= pol;
  }
  return r;
}

// Fills one table: t·x^n mod P is linear in t, so it is the XOR of x^(n+k) over t's set bits k.
static void fill(uint64_t *table, uint32_t n, uint64_t pol) {
  uint64_t base[8];
  for (uint32_t k = 0; k < 8; k++) base[k] = xpow(n + k, pol);
  for (uint32_t t = 0; t < 256; t++) {
    uint64_t v = 0;
    for (uint32_t k = 0; k < 8; k++)
      if (t >> k & 1) v ^= base[k];
    table[t] = v;
  }
}

// P must have degree 53 (the caller checks).
__attribute__((export_name("set_pol"))) void set_pol(uint32_t hi, uint32_t lo) {
  uint64_t pol = (uint64_t)hi << 32 | lo;
  fill(x61, 61, pol);
  fill(x53, 53, pol);
  fill(x520, 8 * WINDOW + 8, pol);
  fill(x512, 8 * WINDOW, pol);
}

// Rolls buf[WINDOW, WINDOW + n) into the digest. Returns how many bytes were consumed up to and
// including the first one whose digest matches the split mask (its digest is then in `digest`),
// or -1 when none does (then `digest` is the digest after all n bytes).
__attribute__((export_name("scan"))) int32_t scan(uint32_t n, uint32_t hi, uint32_t lo) {
  const uint8_t *in = buf + WINDOW;
  const uint8_t *out = buf;
  uint64_t d = (uint64_t)hi << 32 | lo;
  uint32_t i = 0;
  for (; i + 2 <= n; i += 2) {
    uint32_t b1 = in[i], b2 = in[i + 1], o1 = out[i], o2 = out[i + 1];
    uint32_t top = (uint32_t)(d >> 45);
    uint64_t d1 = ((d << 8) | b1) ^ x53[top] ^ x512[o1]; // bits 53.. not cleared: only the low 20 are tested
    uint64_t d2 = ((d & LOW37) << 16) ^ (b1 << 8 | b2) ^ x61[top] ^ x53[(uint32_t)(d >> 37) & 255] ^ x520[o1] ^
                  x512[o2];
    if (((uint32_t)d1 & SPLIT_MASK) == 0) {
      digest = d1 & LOW53;
      return (int32_t)i + 1;
    }
    d = d2;
    if (((uint32_t)d & SPLIT_MASK) == 0) {
      digest = d;
      return (int32_t)i + 2;
    }
  }
  if (i < n) {
    d = (((d << 8) | in[i]) & LOW53) ^ x53[d >> 45] ^ x512[out[i]];
    digest = d;
    return ((uint32_t)d & SPLIT_MASK) == 0 ? (int32_t)i + 1 : -1;
  }
  digest = d;
  return -1;
}
