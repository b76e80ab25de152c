// scrypt's ROMix (RFC 7914 §5) for one lane, with Salsa20/8 on 128-bit vectors (WebAssembly SIMD).
// A lane is independent of the others, so callers can run scrypt's p lanes on several threads.
//
// Each 64-byte Salsa block is kept as four vectors in "diagonal" word order, so a column round and a
// row round are each four vector quarter-rounds, with lane rotations in between and no per-word work:
//   a = (x0, x5, x10, x15)  b = (x12, x1, x6, x11)  c = (x8, x13, x2, x7)  d = (x4, x9, x14, x3)
// The lane is put into this order once before ROMix and back once after. Word 0 (Integerify) stays
// first, and BlockMix, XOR and copies do not care about word order.
#include <wasm_simd128.h>

typedef unsigned int u32;
typedef unsigned long size_t;

extern unsigned char __heap_base;

static v128_t *lane, *V, *T;
static u32 laneR, laneN;

static inline v128_t rotl(v128_t x, int n) {
  return wasm_v128_or(wasm_i32x4_shl(x, n), wasm_u32x4_shr(x, 32 - n));
}

/* B = Salsa20/8(B ^ X), all in diagonal order. */
static inline void salsa_xor(v128_t *restrict B, const v128_t *restrict X) {
  v128_t a = B[0] = wasm_v128_xor(B[0], X[0]);
  v128_t b = B[1] = wasm_v128_xor(B[1], X[1]);
  v128_t c = B[2] = wasm_v128_xor(B[2], X[2]);
  v128_t d = B[3] = wasm_v128_xor(B[3], X[3]);
  for (int i = 0; i < 4; i++) {
    // Column round: d = (x4,x9,x14,x3) ^= (x0+x12, ...) <<< 7, and so on down the columns.
    d = wasm_v128_xor(d, rotl(wasm_i32x4_add(a, b), 7));
    c = wasm_v128_xor(c, rotl(wasm_i32x4_add(d, a), 9));
    b = wasm_v128_xor(b, rotl(wasm_i32x4_add(c, d), 13));
    a = wasm_v128_xor(a, rotl(wasm_i32x4_add(b, c), 18));
    // Row round on rotated lanes: d -> (x3,x4,x9,x14), b -> (x1,x6,x11,x12), c -> (x2,x7,x8,x13).
    d = wasm_i32x4_shuffle(d, d, 3, 0, 1, 2);
    b = wasm_i32x4_shuffle(b, b, 1, 2, 3, 0);
    c = wasm_i32x4_shuffle(c, c, 2, 3, 0, 1);
    b = wasm_v128_xor(b, rotl(wasm_i32x4_add(a, d), 7));
    c = wasm_v128_xor(c, rotl(wasm_i32x4_add(b, a), 9));
    d = wasm_v128_xor(d, rotl(wasm_i32x4_add(c, b), 13));
    a = wasm_v128_xor(a, rotl(wasm_i32x4_add(d, c), 18));
    d = wasm_i32x4_shuffle(d, d, 1, 2, 3, 0);
    b = wasm_i32x4_shuffle(b, b, 3, 0, 1, 2);
    c = wasm_i32x4_shuffle(c, c, 2, 3, 0, 1);
  }
  B[0] = wasm_i32x4_add(B[0], a);
  B[1] = wasm_i32x4_add(B[1], b);
  B[2] = wasm_i32x4_add(B[2], c);
  B[3] = wasm_i32x4_add(B[3], d);
}

/* Y = BlockMix(B) (RFC 7914 §4): even sub-blocks to the first half of Y, odd ones to the second. */
static void blockmix(const v128_t *restrict B, v128_t *restrict Y, u32 r) {
  v128_t X[4];
  for (int k = 0; k < 4; k++) X[k] = B[(2 * r - 1) * 4 + k];
  for (u32 i = 0; i < 2 * r; i++) {
    salsa_xor(X, &B[i * 4]);
    v128_t *out = &Y[((i & 1) * r + (i >> 1)) * 4];
    for (int k = 0; k < 4; k++) out[k] = X[k];
  }
}

/* Standard <-> diagonal word order of every 64-byte block of the lane. */
static const unsigned char DIAGONAL[16] = {0, 5, 10, 15, 12, 1, 6, 11, 8, 13, 2, 7, 4, 9, 14, 3};

static void reorder(int toDiagonal) {
  u32 *w = (u32 *)lane;
  for (u32 blk = 0; blk < 2 * laneR; blk++, w += 16) {
    u32 t[16];
    for (int k = 0; k < 16; k++) t[k] = toDiagonal ? w[DIAGONAL[k]] : w[k];
    for (int k = 0; k < 16; k++) {
      if (toDiagonal) w[k] = t[k];
      else w[DIAGONAL[k]] = t[k];
    }
  }
}

/* Room for one lane (128*r bytes) and V (128*r*N); returns the lane's offset, 0 if out of memory. */
__attribute__((export_name("prepare"))) u32 prepare(u32 r, u32 N) {
  size_t block = 128 * (size_t)r;
  size_t base = ((size_t)&__heap_base + 15) & ~(size_t)15;
  // In 64 bits: the table alone can pass the 4 GiB a wasm32 memory can address.
  unsigned long long need = base + (unsigned long long)block * ((unsigned long long)N + 2);
  unsigned long long have = (unsigned long long)__builtin_wasm_memory_size(0) * 65536;
  if (need > 0xffffffffull) return 0;
  if (need > have && __builtin_wasm_memory_grow(0, (size_t)((need - have + 65535) / 65536)) == (size_t)-1) return 0;
  lane = (v128_t *)base;
  T = (v128_t *)(base + block);
  V = (v128_t *)(base + 2 * block);
  laneR = r;
  laneN = N;
  return (u32)base;
}

/*
 * ROMix steps [from, to) of the lane at prepare()'s offset: steps [0, N) fill V, [N, 2N) mix. Callers
 * may run it in slices; the lane is in diagonal order between the first and the last step.
 */
__attribute__((export_name("romix"))) void romix(u32 from, u32 to) {
  u32 r = laneR, N = laneN, vecs = 8 * r;
  if (to > 2 * N) to = 2 * N;
  if (from == 0 && to > 0) reorder(1);
  v128_t *X = lane;
  for (u32 i = from; i < to && i < N; i++) {
    v128_t *v = &V[(size_t)i * vecs];
    for (u32 k = 0; k < vecs; k++) v[k] = X[k];
    blockmix(v, X, r);
  }
  for (u32 i = from > N ? from : N; i < to; i++) {
    u32 j = wasm_i32x4_extract_lane(X[(2 * r - 1) * 4], 0) & (N - 1);
    v128_t *v = &V[(size_t)j * vecs];
    for (u32 k = 0; k < vecs; k++) T[k] = wasm_v128_xor(X[k], v[k]);
    blockmix(T, X, r);
  }
  if (to == 2 * N && from < to) reorder(0);
}
