/*
 * Large buffers backed by transparent huge pages (Linux), for the multicast sender's and receiver's pools of
 * chunk and piece buffers. Each 4 KiB page of fresh memory costs a page fault when first written; where faults
 * are dear (measured on a virtual machine here: sealing 100 MiB into fresh memory took 0.2–0.5 s of CPU against
 * 0.04 s into reused memory), one fault per 2 MiB page instead of 512 removes nearly all of it.
 *
 * hugeBuffer(bytes) → a Buffer of `bytes` (rounded up to 2 MiB) from mmap, advised MADV_HUGEPAGE; unmapped
 * when the Buffer is collected. The kernel gives huge pages only where THP is "always" or "madvise"; elsewhere
 * this is an ordinary anonymous mapping.
 *
 * addressModulo(view, n) → the address of a Uint8Array's first byte modulo n (a power of two): whether a buffer
 * meets the alignment that O_DIRECT writes need, which JavaScript cannot see.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

typedef struct {
  void *base;
  size_t len;
} mapping_t;

/* Collected: unmapped, and the engine told (it was told of the size, so that it collects such buffers when
 * they add up rather than when its own heap does). */
static void unmap(napi_env env, void *data, void *hint) {
  mapping_t *m = hint;
  int64_t now;
  napi_adjust_external_memory(env, -(int64_t)m->len, &now);
  munmap(m->base, m->len);
  free(m);
}

static napi_value huge_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_double(env, argv[0], &want) != napi_ok ||
      !(want >= 1) || want > (double)((size_t)1 << 40)) {
    napi_throw_range_error(env, NULL, "hugeBuffer needs a size in bytes (at least 1)");
    return NULL;
  }
  size_t bytes = ((size_t)want + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  /* One huge page more, so that the buffer can start on a 2 MiB boundary. */
  size_t len = bytes + HUGE_PAGE;
  uint8_t *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    napi_throw_error(env, "ERR_SHOAL_MEM", "mmap failed");
    return NULL;
  }
  uint8_t *start = (uint8_t *)(((uintptr_t)base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  madvise(start, bytes, MADV_HUGEPAGE); /* advice only: where refused, ordinary pages */
  mapping_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(base, len);
    napi_throw_error(env, "ERR_SHOAL_MEM", "out of memory");
    return NULL;
  }
  m->base = base;
  m->len = len;
  napi_value out;
  if (napi_create_external_buffer(env, bytes, start, unmap, m, &out) != napi_ok) {
    munmap(base, len);
    free(m);
    napi_throw_error(env, "ERR_SHOAL_MEM", "could not wrap the mapping");
    return NULL;
  }
  int64_t now;
  napi_adjust_external_memory(env, (int64_t)len, &now);
  return out;
}

static napi_value address_modulo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_typedarray_type type;
  size_t length;
  void *data;
  uint32_t n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      napi_get_value_uint32(env, argv[1], &n) != napi_ok || n == 0 || (n & (n - 1)) != 0) {
    napi_throw_type_error(env, NULL, "addressModulo needs a Uint8Array and a power of two");
    return NULL;
  }
  napi_value out;
  napi_create_uint32(env, (uint32_t)((uintptr_t)data & (uintptr_t)(n - 1)), &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"hugeBuffer", NULL, huge_buffer, NULL, NULL, NULL, napi_default, NULL},
      {"addressModulo", NULL, address_modulo, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
