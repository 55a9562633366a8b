/*
 * Cauchy Reed–Solomon over GF(2^8) (polynomial 0x11d) for multicast repair: the fast path of
 * src/transfer/multicast/erasure.ts, which defines the code and gives byte-identical results in JavaScript.
 *
 * encode(sealed, k, from, count, out): parity fragments from..from+count-1 of `sealed` cut into k fragments of
 * size = ceil(len / k) bytes (the last ones short or empty, zero-padded), back to back in out.
 * recover(sealed, k, missing[], parityIndex[], parityBytes[]): the listed data fragments, written into sealed
 * (truncated at its end), from as many parity fragments as missing ones.
 *
 * Both reduce to dst_r = Σ_s coef[r][s] · src_s over fragments. With AVX2 each product takes two pshufb lookups
 * (low and high nibble tables) per 32 bytes, four output rows at a time so each source is loaded once per
 * group; without AVX2 (checked at run time, or with SHOAL_ERASURE_NO_AVX2 set, for tests) a 64 KiB multiplication
 * table. Every argument is checked here too; the module exports `simd` (true when AVX2 is used).
 */
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#define SHOAL_X86 1
#include <immintrin.h>
#endif

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, "ERR_SHOAL_ERASURE", "N-API call failed");  \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

#define GROUP 4

static uint8_t gf_exp[512], gf_log[256], gf_mul[256][256];
static int have_avx2;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void) {
  int x = 1;
  for (int i = 0; i < 255; i++) {
    gf_exp[i] = (uint8_t)x;
    gf_log[x] = (uint8_t)i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (int i = 255; i < 512; i++) gf_exp[i] = gf_exp[i - 255];
  for (int a = 1; a < 256; a++)
    for (int b = 1; b < 256; b++) gf_mul[a][b] = gf_exp[gf_log[a] + gf_log[b]];
#ifdef SHOAL_X86
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2") && !getenv("SHOAL_ERASURE_NO_AVX2");
#endif
}

static inline uint8_t gf_inv(uint8_t a) { return gf_exp[255 - gf_log[a]]; }
static inline uint8_t cauchy(int j, int i) { return gf_inv((uint8_t)((255 - j) ^ i)); }

/* ---- kernels: dst[r][0..n) = Σ_s coef[r * nsrc + s] · src[s][0..n), for rows r < nrows ------------------------ */

static void dot_scalar(int nrows, int nsrc, const uint8_t *coef, const uint8_t *const *src, uint8_t *const *dst, size_t n) {
  for (int r = 0; r < nrows; r++) {
    uint8_t *d = dst[r];
    memset(d, 0, n);
    for (int s = 0; s < nsrc; s++) {
      uint8_t c = coef[r * nsrc + s];
      const uint8_t *p = src[s];
      if (c == 0) continue;
      const uint8_t *t = gf_mul[c];
      for (size_t i = 0; i < n; i++) d[i] ^= t[p[i]];
    }
  }
}

#ifdef SHOAL_X86
/* tables: per (row in group, source) 64 bytes: c·x for x = 0..15, then c·(x << 4). */
__attribute__((target("avx2"))) static void dot_avx2(int nrows, int nsrc, const uint8_t *coef, const uint8_t *const *src,
                                                     uint8_t *const *dst, size_t n, uint8_t *tables) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t vec = n & ~(size_t)31;
  for (int r0 = 0; r0 < nrows; r0 += GROUP) {
    int g = nrows - r0 < GROUP ? nrows - r0 : GROUP;
    for (int s = 0; s < nsrc; s++) {
      for (int r = 0; r < g; r++) {
        uint8_t c = coef[(r0 + r) * nsrc + s];
        uint8_t *t = tables + ((size_t)s * GROUP + r) * 64;
        for (int x = 0; x < 16; x++) {
          t[x] = gf_mul[c][x];
          t[16 + x] = gf_mul[c][x];
          t[32 + x] = gf_mul[c][x << 4];
          t[48 + x] = gf_mul[c][x << 4];
        }
      }
    }
    for (size_t i = 0; i < vec; i += 32) {
      __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      for (int s = 0; s < nsrc; s++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(src[s] + i));
        __m256i lo = _mm256_and_si256(v, mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi64(v, 4), mask);
        const uint8_t *t = tables + (size_t)s * GROUP * 64;
#define ROW(R, ACC)                                                                                             \
  ACC = _mm256_xor_si256(ACC, _mm256_xor_si256(                                                                 \
                                  _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)(t + (R) * 64)), lo), \
                                  _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)(t + (R) * 64 + 32)), hi)))
        ROW(0, acc0);
        if (g > 1) ROW(1, acc1);
        if (g > 2) ROW(2, acc2);
        if (g > 3) ROW(3, acc3);
#undef ROW
      }
      _mm256_storeu_si256((__m256i *)(dst[r0] + i), acc0);
      if (g > 1) _mm256_storeu_si256((__m256i *)(dst[r0 + 1] + i), acc1);
      if (g > 2) _mm256_storeu_si256((__m256i *)(dst[r0 + 2] + i), acc2);
      if (g > 3) _mm256_storeu_si256((__m256i *)(dst[r0 + 3] + i), acc3);
    }
    if (vec < n) {
      const uint8_t *tail_src[256];
      uint8_t *tail_dst[GROUP];
      for (int s = 0; s < nsrc; s++) tail_src[s] = src[s] + vec;
      for (int r = 0; r < g; r++) tail_dst[r] = dst[r0 + r] + vec;
      dot_scalar(g, nsrc, coef + (size_t)r0 * nsrc, tail_src, tail_dst, n - vec);
    }
  }
}

#endif

/* Runs the product with sources shorter than n zero-padded and outputs shorter than n truncated (byte positions
 * are independent, but the kernel reads and writes whole rows). Returns 0, or -1 when out of memory. */
static int dot(int nrows, int nsrc, const uint8_t *coef, const uint8_t *const *src, const size_t *src_len,
               uint8_t *const *dst, const size_t *dst_len, size_t n) {
  int nshort = 0;
  for (int s = 0; s < nsrc; s++) nshort += src_len[s] < n;
  for (int r = 0; r < nrows; r++) nshort += dst_len[r] < n;
  size_t tables_bytes = have_avx2 ? (size_t)nsrc * GROUP * 64 : 0;
  size_t mem_bytes = (tables_bytes + (size_t)nshort * n + 32) & ~(size_t)31; /* aligned_alloc wants a multiple */
  uint8_t *mem = aligned_alloc(32, mem_bytes);
  const uint8_t **s2 = malloc(sizeof *s2 * (size_t)nsrc);
  uint8_t **d2 = malloc(sizeof *d2 * (size_t)nrows);
  if (!mem || !s2 || !d2) { free(mem); free(s2); free(d2); return -1; }
  uint8_t *pad = mem + tables_bytes;
  for (int s = 0; s < nsrc; s++) {
    if (src_len[s] >= n) { s2[s] = src[s]; continue; }
    memcpy(pad, src[s], src_len[s]);
    memset(pad + src_len[s], 0, n - src_len[s]);
    s2[s] = pad;
    pad += n;
  }
  for (int r = 0; r < nrows; r++) {
    if (dst_len[r] >= n) { d2[r] = dst[r]; continue; }
    d2[r] = pad;
    pad += n;
  }
#ifdef SHOAL_X86
  if (have_avx2) dot_avx2(nrows, nsrc, coef, s2, d2, n, mem);
  else
#endif
    dot_scalar(nrows, nsrc, coef, s2, d2, n);
  for (int r = 0; r < nrows; r++) if (d2[r] != dst[r] && dst_len[r] > 0) memcpy(dst[r], d2[r], dst_len[r]);
  free(mem);
  free(s2);
  free(d2);
  return 0;
}

/* ---- N-API ---------------------------------------------------------------------------------------------------- */

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  void *p;
  if (napi_get_typedarray_info(env, v, &tt, len, &p, &ab, &off) != napi_ok || tt != napi_uint8_array) return -1;
  *data = p;
  return 0;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (!(d >= -1e15 && d <= 1e15) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  return 0;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_SHOAL_ERASURE", msg);
  return NULL;
}

/* Checks sealed and k; returns the fragment size, or 0 after throwing. */
static size_t chunk_args(napi_env env, napi_value vs, napi_value vk, uint8_t **sealed, size_t *len, int *k) {
  int64_t kk;
  if (get_bytes(env, vs, sealed, len) != 0) { range_error(env, "erasure: sealed must be a Uint8Array"); return 0; }
  if (get_int(env, vk, &kk) != 0 || kk < 1 || kk > 255) { range_error(env, "erasure: k must be an integer in 1..255"); return 0; }
  if (*len < (size_t)kk) { range_error(env, "erasure: chunk shorter than k bytes"); return 0; }
  *k = (int)kk;
  return (*len + (size_t)kk - 1) / (size_t)kk;
}

static size_t frag_len(size_t len, size_t size, int i) {
  size_t off = (size_t)i * size;
  return off >= len ? 0 : (len - off < size ? len - off : size);
}

static napi_value encode(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return range_error(env, "erasure: encode needs 5 arguments");
  uint8_t *sealed, *out;
  size_t len, out_len;
  int k;
  size_t size = chunk_args(env, argv[0], argv[1], &sealed, &len, &k);
  if (!size) return NULL;
  int64_t from, count;
  if (get_int(env, argv[2], &from) != 0 || get_int(env, argv[3], &count) != 0 || from < 0 || count < 0 || from + count > 256 - k)
    return range_error(env, "erasure: parity indices out of range");
  if (get_bytes(env, argv[4], &out, &out_len) != 0 || out_len < (size_t)count * size)
    return range_error(env, "erasure: out too short for the parity fragments");
  if (count == 0) return NULL;
  uint8_t coef[255 * 255];
  const uint8_t *src[255];
  size_t src_len[255];
  uint8_t *dst[255];
  size_t dst_len[255];
  for (int i = 0; i < k; i++) {
    src[i] = sealed + (size_t)i * size < sealed + len ? sealed + (size_t)i * size : sealed;
    src_len[i] = frag_len(len, size, i);
  }
  for (int r = 0; r < count; r++) {
    for (int i = 0; i < k; i++) coef[r * k + i] = cauchy((int)from + r, i);
    dst[r] = out + (size_t)r * size;
    dst_len[r] = size;
  }
  if (dot((int)count, k, coef, src, src_len, dst, dst_len, size) != 0) napi_throw_error(env, "ERR_SHOAL_ERASURE", "out of memory");
  return NULL;
}

static napi_value recover(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return range_error(env, "erasure: recover needs 5 arguments");
  uint8_t *sealed;
  size_t len;
  int k;
  size_t size = chunk_args(env, argv[0], argv[1], &sealed, &len, &k);
  if (!size) return NULL;
  bool a1, a2, a3;
  CHECK(napi_is_array(env, argv[2], &a1));
  CHECK(napi_is_array(env, argv[3], &a2));
  CHECK(napi_is_array(env, argv[4], &a3));
  if (!a1 || !a2 || !a3) return range_error(env, "erasure: missing, parity indices and parity bytes must be arrays");
  uint32_t m, np, nb;
  CHECK(napi_get_array_length(env, argv[2], &m));
  CHECK(napi_get_array_length(env, argv[3], &np));
  CHECK(napi_get_array_length(env, argv[4], &nb));
  if (m == 0) return NULL;
  if (m > (uint32_t)k) return range_error(env, "erasure: more missing fragments than k");
  if (np != m || nb != m) return range_error(env, "erasure: need exactly one parity fragment per missing fragment");
  int miss[255], pidx[255];
  uint8_t *pbytes[255];
  uint8_t is_missing[256] = {0}, seen[256] = {0};
  for (uint32_t a = 0; a < m; a++) {
    napi_value v;
    int64_t x;
    size_t bl;
    CHECK(napi_get_element(env, argv[2], a, &v));
    if (get_int(env, v, &x) != 0 || x < 0 || x >= k) return range_error(env, "erasure: missing fragment index out of range");
    if (is_missing[x]) return range_error(env, "erasure: missing fragment listed twice");
    is_missing[x] = 1;
    miss[a] = (int)x;
    CHECK(napi_get_element(env, argv[3], a, &v));
    if (get_int(env, v, &x) != 0 || x < 0 || x >= 256 - k) return range_error(env, "erasure: parity index out of range");
    if (seen[x]) return range_error(env, "erasure: parity index given twice");
    seen[x] = 1;
    pidx[a] = (int)x;
    CHECK(napi_get_element(env, argv[4], a, &v));
    if (get_bytes(env, v, &pbytes[a], &bl) != 0 || bl < size) return range_error(env, "erasure: parity fragment shorter than the fragment size");
  }
  /* A[b][a] = C[P_b][M_a]; invert by Gauss–Jordan (a Cauchy submatrix is never singular). */
  uint8_t *am = malloc((size_t)m * m * 2 + (size_t)m * (size_t)k);
  if (!am) { napi_throw_error(env, "ERR_SHOAL_ERASURE", "out of memory"); return NULL; }
  uint8_t *iv = am + (size_t)m * m, *coef = iv + (size_t)m * m;
  memset(iv, 0, (size_t)m * m);
  for (uint32_t b = 0; b < m; b++) {
    for (uint32_t a = 0; a < m; a++) am[b * m + a] = cauchy(pidx[b], miss[a]);
    iv[b * m + b] = 1;
  }
  for (uint32_t col = 0; col < m; col++) {
    uint32_t piv = col;
    while (piv < m && am[piv * m + col] == 0) piv++;
    if (piv == m) { free(am); return range_error(env, "erasure: singular decoding matrix"); }
    if (piv != col)
      for (uint32_t t = 0; t < m; t++) {
        uint8_t x = am[col * m + t]; am[col * m + t] = am[piv * m + t]; am[piv * m + t] = x;
        x = iv[col * m + t]; iv[col * m + t] = iv[piv * m + t]; iv[piv * m + t] = x;
      }
    const uint8_t *f = gf_mul[gf_inv(am[col * m + col])];
    for (uint32_t t = 0; t < m; t++) { am[col * m + t] = f[am[col * m + t]]; iv[col * m + t] = f[iv[col * m + t]]; }
    for (uint32_t row = 0; row < m; row++) {
      uint8_t g = am[row * m + col];
      if (row == col || g == 0) continue;
      const uint8_t *gm = gf_mul[g];
      for (uint32_t t = 0; t < m; t++) { am[row * m + t] ^= gm[am[col * m + t]]; iv[row * m + t] ^= gm[iv[col * m + t]]; }
    }
  }
  /* Sources: the m parity fragments, then the k − m known data fragments. */
  const uint8_t *src[255];
  size_t src_len[255];
  int known[255], nk = 0;
  for (uint32_t b = 0; b < m; b++) { src[b] = pbytes[b]; src_len[b] = size; }
  for (int i = 0; i < k; i++) {
    if (is_missing[i]) continue;
    known[nk] = i;
    src[m + nk] = sealed + (size_t)i * size < sealed + len ? sealed + (size_t)i * size : sealed;
    src_len[m + nk] = frag_len(len, size, i);
    nk++;
  }
  uint8_t *dst[255];
  size_t dst_len[255];
  for (uint32_t r = 0; r < m; r++) {
    uint8_t *row = coef + (size_t)r * k;
    for (uint32_t b = 0; b < m; b++) row[b] = iv[r * m + b];
    for (int s = 0; s < nk; s++) {
      uint8_t c = 0;
      for (uint32_t b = 0; b < m; b++) c ^= gf_mul[iv[r * m + b]][cauchy(pidx[b], known[s])];
      row[m + s] = c;
    }
    size_t fl = frag_len(len, size, miss[r]);
    dst[r] = fl ? sealed + (size_t)miss[r] * size : sealed;
    dst_len[r] = fl;
  }
  int rc = dot((int)m, k, coef, src, src_len, dst, dst_len, size);
  free(am);
  if (rc != 0) napi_throw_error(env, "ERR_SHOAL_ERASURE", "out of memory");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  pthread_once(&tables_once, init_tables);
  napi_value backend;
  napi_property_descriptor props[] = {
      {"encode", NULL, encode, NULL, NULL, NULL, napi_default, NULL},
      {"recover", NULL, recover, NULL, NULL, NULL, napi_default, NULL},
      {"simd", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_get_boolean(env, have_avx2 != 0, &backend) != napi_ok) return NULL;
  props[2].value = backend;
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
