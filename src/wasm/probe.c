// A quick look at a small blob before zstd runs on it, for wasm32: a histogram of its bytes, and
// the bytes that a greedy LZ pass finds as repeats (matches of 4 bytes or more against a
// one-entry-per-hash table of earlier positions). The caller estimates zstd's best case from them:
// with few repeats and bytes of near-maximal entropy zstd cannot shrink the blob, and finding that
// out costs zstd far more than this does. Like zstd's fast levels, the LZ pass looks at fewer
// positions the longer it finds nothing, so on random data it touches a small fraction of them.
//
// The caller copies the blob into `in_buf` and calls scan(len); the histogram is then at hist_ptr().

#include <stdint.h>

#define IN_SIZE (64 * 1024)
#define HASH_LOG 12

// 3 bytes of padding so a 4-byte read at any position below `len` stays inside the buffer.
static uint8_t in_buf[IN_SIZE + 3];
static uint32_t hist[256];
static uint32_t matches;
// Position + `base` of the last 4-byte sequence with each hash. Every scan starts `base` past all
// positions stored before, so older entries read as absent without clearing the table.
static uint32_t table[1 << HASH_LOG];
static uint32_t base = 1;

__attribute__((export_name("in_ptr"))) uint8_t *in_ptr(void) { return in_buf; }
__attribute__((export_name("in_size"))) uint32_t in_size(void) { return IN_SIZE; }
__attribute__((export_name("hist_ptr"))) uint32_t *hist_ptr(void) { return hist; }
__attribute__((export_name("match_count"))) uint32_t match_count(void) { return matches; }

static inline uint32_t le32(const uint8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

/** Returns the bytes covered by matches; fills `hist` (all bytes) and `matches`. */
__attribute__((export_name("scan"))) uint32_t scan(uint32_t len) {
  if (len > IN_SIZE) return 0;
  if (base > 0xffffffffu - IN_SIZE - 1) {
    __builtin_memset(table, 0, sizeof table);
    base = 1;
  }
  // Four histograms, summed at the end, so consecutive equal bytes do not wait on each other's store.
  static uint32_t part[4][256];
  __builtin_memset(part, 0, sizeof part);
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) {
    part[0][in_buf[i]]++;
    part[1][in_buf[i + 1]]++;
    part[2][in_buf[i + 2]]++;
    part[3][in_buf[i + 3]]++;
  }
  for (; i < len; i++) part[0][in_buf[i]]++;
  for (int b = 0; b < 256; b++) hist[b] = part[0][b] + part[1][b] + part[2][b] + part[3][b];

  uint32_t covered = 0, count = 0, since = 0;
  i = 0;
  while (i + 4 <= len) {
    uint32_t v = le32(in_buf + i);
    uint32_t h = (v * 2654435761u) >> (32 - HASH_LOG);
    uint32_t seen = table[h];
    table[h] = base + i;
    if (seen >= base && le32(in_buf + (seen - base)) == v) {
      const uint8_t *a = in_buf + (seen - base);
      uint32_t n = 4;
      while (i + n < len && a[n] == in_buf[i + n]) n++;
      covered += n, count++, i += n, since = 0;
    } else {
      // One more position skipped for every 256 bytes without a match (zstd's fast levels do so).
      uint32_t step = 1 + (since >> 8);
      i += step, since += step;
    }
  }
  base += len + 1;
  matches = count;
  return covered;
}
