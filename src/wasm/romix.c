// scrypt's ROMix (RFC 7914 §5) for one lane or two at once, with Salsa20/8 on 128-bit vectors
// (WebAssembly SIMD). Lanes are independent, so callers can run scrypt's p lanes on several threads.
//
// Each 64-byte Salsa block is kept as four vectors in "diagonal" word order, so a column round and a
// row round are each four vector quarter-rounds, with lane rotations in between and no per-word work:
//   a = (x0, x5, x10, x15)  b = (x12, x1, x6, x11)  c = (x8, x13, x2, x7)  d = (x4, x9, x14, x3)
// A lane is put into this order once before ROMix and back once after. Word 0 (Integerify) stays
// first, and BlockMix, XOR and copies do not care about word order.
//
// One lane's Salsa20/8 is a single chain of dependent vector operations, which leaves most of the
// CPU's vector units idle. Two lanes with their instructions interleaved run in ~1.3 times the time of
// one, so a thread with two lanes to do runs them together.
#include <wasm_simd128.h>

typedef unsigned int u32;
typedef unsigned long size_t;

extern unsigned char __heap_base;

// Per lane: its 128·r-byte state, a scratch block and its 128·r·N-byte table.
static v128_t *lane[2], *T[2], *V[2];
static u32 laneCount, laneR, laneN;

static inline v128_t rotl(v128_t x, int n) {
  return wasm_v128_or(wasm_i32x4_shl(x, n), wasm_u32x4_shr(x, 32 - n));
}

// Quarter-rounds on the vectors of one block (a..d) and, interleaved, of a second one (e..h).
#define QUARTER(a, b, c, d)                                 \
  d = wasm_v128_xor(d, rotl(wasm_i32x4_add(a, b), 7));      \
  c = wasm_v128_xor(c, rotl(wasm_i32x4_add(d, a), 9));      \
  b = wasm_v128_xor(b, rotl(wasm_i32x4_add(c, d), 13));     \
  a = wasm_v128_xor(a, rotl(wasm_i32x4_add(b, c), 18));
#define QUARTER2(a, b, c, d, e, f, g, h)                                                                       \
  d = wasm_v128_xor(d, rotl(wasm_i32x4_add(a, b), 7));  h = wasm_v128_xor(h, rotl(wasm_i32x4_add(e, f), 7));   \
  c = wasm_v128_xor(c, rotl(wasm_i32x4_add(d, a), 9));  g = wasm_v128_xor(g, rotl(wasm_i32x4_add(h, e), 9));   \
  b = wasm_v128_xor(b, rotl(wasm_i32x4_add(c, d), 13)); f = wasm_v128_xor(f, rotl(wasm_i32x4_add(g, h), 13));  \
  a = wasm_v128_xor(a, rotl(wasm_i32x4_add(b, c), 18)); e = wasm_v128_xor(e, rotl(wasm_i32x4_add(f, g), 18));
// Between column and row rounds: d -> (x3,x4,x9,x14), b -> (x1,x6,x11,x12), c -> (x2,x7,x8,x13); and back.
#define TO_ROWS(b, c, d)                    \
  d = wasm_i32x4_shuffle(d, d, 3, 0, 1, 2); \
  b = wasm_i32x4_shuffle(b, b, 1, 2, 3, 0); \
  c = wasm_i32x4_shuffle(c, c, 2, 3, 0, 1);
#define TO_COLUMNS(b, c, d)                 \
  d = wasm_i32x4_shuffle(d, d, 1, 2, 3, 0); \
  b = wasm_i32x4_shuffle(b, b, 3, 0, 1, 2); \
  c = wasm_i32x4_shuffle(c, c, 2, 3, 0, 1);

/* B = Salsa20/8(B ^ X), all in diagonal order. */
static inline void salsa_xor(v128_t *restrict B, const v128_t *restrict X) {
  v128_t a = B[0] = wasm_v128_xor(B[0], X[0]);
  v128_t b = B[1] = wasm_v128_xor(B[1], X[1]);
  v128_t c = B[2] = wasm_v128_xor(B[2], X[2]);
  v128_t d = B[3] = wasm_v128_xor(B[3], X[3]);
  for (int i = 0; i < 4; i++) {
    QUARTER(a, b, c, d)
    TO_ROWS(b, c, d)
    QUARTER(a, d, c, b)
    TO_COLUMNS(b, c, d)
  }
  B[0] = wasm_i32x4_add(B[0], a);
  B[1] = wasm_i32x4_add(B[1], b);
  B[2] = wasm_i32x4_add(B[2], c);
  B[3] = wasm_i32x4_add(B[3], d);
}

/* salsa_xor(B, X) and salsa_xor(C, Y), interleaved. */
static inline void salsa_xor2(v128_t *restrict B, const v128_t *restrict X, v128_t *restrict C, const v128_t *restrict Y) {
  v128_t a = B[0] = wasm_v128_xor(B[0], X[0]), e = C[0] = wasm_v128_xor(C[0], Y[0]);
  v128_t b = B[1] = wasm_v128_xor(B[1], X[1]), f = C[1] = wasm_v128_xor(C[1], Y[1]);
  v128_t c = B[2] = wasm_v128_xor(B[2], X[2]), g = C[2] = wasm_v128_xor(C[2], Y[2]);
  v128_t d = B[3] = wasm_v128_xor(B[3], X[3]), h = C[3] = wasm_v128_xor(C[3], Y[3]);
  for (int i = 0; i < 4; i++) {
    QUARTER2(a, b, c, d, e, f, g, h)
    TO_ROWS(b, c, d)
    TO_ROWS(f, g, h)
    QUARTER2(a, d, c, b, e, h, g, f)
    TO_COLUMNS(b, c, d)
    TO_COLUMNS(f, g, h)
  }
  B[0] = wasm_i32x4_add(B[0], a), C[0] = wasm_i32x4_add(C[0], e);
  B[1] = wasm_i32x4_add(B[1], b), C[1] = wasm_i32x4_add(C[1], f);
  B[2] = wasm_i32x4_add(B[2], c), C[2] = wasm_i32x4_add(C[2], g);
  B[3] = wasm_i32x4_add(B[3], d), C[3] = wasm_i32x4_add(C[3], h);
}

/* Where BlockMix puts its i-th output block: even ones in Y's first half, odd ones in its second. */
static inline u32 mixed(u32 i, u32 r) {
  return ((i & 1) * r + (i >> 1)) * 4;
}

/* Y = BlockMix(B) (RFC 7914 §4). */
static void blockmix(const v128_t *restrict B, v128_t *restrict Y, u32 r) {
  v128_t X[4];
  for (int k = 0; k < 4; k++) X[k] = B[(2 * r - 1) * 4 + k];
  for (u32 i = 0; i < 2 * r; i++) {
    salsa_xor(X, &B[i * 4]);
    for (int k = 0; k < 4; k++) Y[mixed(i, r) + k] = X[k];
  }
}

/* Y = BlockMix(B) and Z = BlockMix(C), interleaved. */
static void blockmix2(const v128_t *restrict B, v128_t *restrict Y, const v128_t *restrict C, v128_t *restrict Z, u32 r) {
  v128_t X[4], W[4];
  for (int k = 0; k < 4; k++) X[k] = B[(2 * r - 1) * 4 + k], W[k] = C[(2 * r - 1) * 4 + k];
  for (u32 i = 0; i < 2 * r; i++) {
    salsa_xor2(X, &B[i * 4], W, &C[i * 4]);
    for (int k = 0; k < 4; k++) Y[mixed(i, r) + k] = X[k], Z[mixed(i, r) + k] = W[k];
  }
}

/* Standard <-> diagonal word order of every 64-byte block of the lanes. */
static const unsigned char DIAGONAL[16] = {0, 5, 10, 15, 12, 1, 6, 11, 8, 13, 2, 7, 4, 9, 14, 3};

static void reorder(int toDiagonal) {
  u32 *w = (u32 *)lane[0];
  for (u32 blk = 0; blk < 2 * laneR * laneCount; blk++, w += 16) {
    u32 t[16];
    for (int k = 0; k < 16; k++) t[k] = toDiagonal ? w[DIAGONAL[k]] : w[k];
    for (int k = 0; k < 16; k++) {
      if (toDiagonal) w[k] = t[k];
      else w[DIAGONAL[k]] = t[k];
    }
  }
}

/*
 * Room for `count` (1 or 2) lanes of 128·r bytes, one after the other, and their tables (128·r·N bytes
 * each); returns the lanes' offset, 0 if out of memory.
 */
__attribute__((export_name("prepare"))) u32 prepare(u32 r, u32 N, u32 count) {
  if (count < 1 || count > 2) return 0;
  size_t block = 128 * (size_t)r;
  size_t base = ((size_t)&__heap_base + 15) & ~(size_t)15;
  // In 64 bits: the tables alone can pass the 4 GiB a wasm32 memory can address.
  unsigned long long need = base + (unsigned long long)count * block * ((unsigned long long)N + 2);
  unsigned long long have = (unsigned long long)__builtin_wasm_memory_size(0) * 65536;
  if (need > 0xffffffffull) return 0;
  if (need > have && __builtin_wasm_memory_grow(0, (size_t)((need - have + 65535) / 65536)) == (size_t)-1) return 0;
  size_t tables = base + 2 * count * block;
  for (u32 c = 0; c < count; c++) {
    lane[c] = (v128_t *)(base + c * block);
    T[c] = (v128_t *)(base + (count + c) * block);
    V[c] = (v128_t *)(tables + c * block * N);
  }
  laneCount = count;
  laneR = r;
  laneN = N;
  return (u32)base;
}

/*
 * ROMix steps [from, to) of the lanes at prepare()'s offset: steps [0, N) fill the tables, [N, 2N) mix.
 * Callers may run it in slices; the lanes are in diagonal order between the first and the last step.
 */
__attribute__((export_name("romix"))) void romix(u32 from, u32 to) {
  u32 r = laneR, N = laneN, vecs = 8 * r, last = (2 * r - 1) * 4;
  if (to > 2 * N) to = 2 * N;
  if (from == 0 && to > 0) reorder(1);
  v128_t *X = lane[0], *Y = lane[1];
  for (u32 i = from; i < to && i < N; i++) {
    v128_t *v = &V[0][(size_t)i * vecs];
    for (u32 k = 0; k < vecs; k++) v[k] = X[k];
    if (laneCount == 1) {
      blockmix(v, X, r);
      continue;
    }
    v128_t *w = &V[1][(size_t)i * vecs];
    for (u32 k = 0; k < vecs; k++) w[k] = Y[k];
    blockmix2(v, X, w, Y, r);
  }
  for (u32 i = from > N ? from : N; i < to; i++) {
    v128_t *v = &V[0][(size_t)(wasm_i32x4_extract_lane(X[last], 0) & (N - 1)) * vecs];
    for (u32 k = 0; k < vecs; k++) T[0][k] = wasm_v128_xor(X[k], v[k]);
    if (laneCount == 1) {
      blockmix(T[0], X, r);
      continue;
    }
    v128_t *w = &V[1][(size_t)(wasm_i32x4_extract_lane(Y[last], 0) & (N - 1)) * vecs];
    for (u32 k = 0; k < vecs; k++) T[1][k] = wasm_v128_xor(Y[k], w[k]);
    blockmix2(T[0], X, T[1], Y, r);
  }
  if (to == 2 * N && from < to) reorder(0);
}
