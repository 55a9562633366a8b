/*
 * AES-256-GCM of whole multicast chunks into buffers the caller owns (src/crypto/chunk-seal.ts), through the
 * OpenSSL that Node.js itself carries (its EVP functions are resolved in the running process). node:crypto
 * returns every update as a new buffer: per 64 KiB chunk that is an allocation, its page faults and, for the
 * sender, one more copy into the datagram buffers, which cost more CPU than the cipher itself.
 *
 * seal(key, nonce, aad, plaintext, out): writes ciphertext ‖ 16-byte tag at the start of `out`.
 * open(key, nonce, aad, sealed, out) → true when the tag authenticates `sealed` (ciphertext ‖ tag); the
 * plaintext is then at the start of `out`, which may be `sealed` itself (decrypted in place). When the tag
 * does not authenticate, `out` is zeroed over the ciphertext's length and false is returned.
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define TAG_BYTES 16
#define KEY_BYTES 32
#define NONCE_BYTES 12

static int bytes_of(napi_env env, napi_value v, uint8_t **p, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, len, &data, &ab, &off) != napi_ok || t != napi_uint8_array) return -1;
  *p = data;
  return 0;
}

typedef struct {
  uint8_t *key, *nonce, *aad, *in, *out;
  size_t key_len, nonce_len, aad_len, in_len, out_len;
} args_t;

static int get_args(napi_env env, napi_callback_info info, args_t *a) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      bytes_of(env, argv[0], &a->key, &a->key_len) || bytes_of(env, argv[1], &a->nonce, &a->nonce_len) ||
      bytes_of(env, argv[2], &a->aad, &a->aad_len) || bytes_of(env, argv[3], &a->in, &a->in_len) ||
      bytes_of(env, argv[4], &a->out, &a->out_len)) {
    napi_throw_type_error(env, NULL, "expected (key, nonce, aad, input, output) as Uint8Arrays");
    return -1;
  }
  if (a->key_len != KEY_BYTES || a->nonce_len != NONCE_BYTES || a->in_len > (size_t)INT32_MAX || a->aad_len > (size_t)INT32_MAX) {
    napi_throw_range_error(env, NULL, "key must be 32 bytes, nonce 12, input under 2 GiB");
    return -1;
  }
  return 0;
}

/* Input and output either start at the same byte or do not overlap (what OpenSSL allows). */
static int aliasing_ok(const uint8_t *in, size_t in_len, const uint8_t *out, size_t out_len) {
  return in == out || out + out_len <= in || in + in_len <= out;
}

static napi_value seal(napi_env env, napi_callback_info info) {
  args_t a;
  if (get_args(env, info, &a)) return NULL;
  if (a.out_len < a.in_len + TAG_BYTES || !aliasing_ok(a.in, a.in_len, a.out, a.in_len + TAG_BYTES)) {
    napi_throw_range_error(env, NULL, "seal output must hold plaintext + 16 bytes, apart from the input or at its start");
    return NULL;
  }
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, f = 0;
  int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, a.key, a.nonce) == 1 &&
           (a.aad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, a.aad, (int)a.aad_len) == 1) &&
           EVP_EncryptUpdate(ctx, a.out, &n, a.in, (int)a.in_len) == 1 && EVP_EncryptFinal_ex(ctx, a.out + n, &f) == 1 &&
           (size_t)(n + f) == a.in_len && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, a.out + a.in_len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) napi_throw_error(env, "ERR_SHOAL_GCM", "AES-256-GCM seal failed");
  return NULL;
}

static napi_value open_sealed(napi_env env, napi_callback_info info) {
  args_t a;
  if (get_args(env, info, &a)) return NULL;
  if (a.in_len < TAG_BYTES) {
    napi_throw_range_error(env, NULL, "sealed input shorter than its tag");
    return NULL;
  }
  size_t len = a.in_len - TAG_BYTES;
  if (a.out_len < len || !aliasing_ok(a.in, a.in_len, a.out, len)) {
    napi_throw_range_error(env, NULL, "open output must hold the plaintext, apart from the input or at its start");
    return NULL;
  }
  uint8_t tag[TAG_BYTES];
  memcpy(tag, a.in + len, TAG_BYTES); /* before an in-place decryption could reach it */
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, f = 0;
  int ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, a.key, a.nonce) == 1 &&
           (a.aad_len == 0 || EVP_DecryptUpdate(ctx, NULL, &n, a.aad, (int)a.aad_len) == 1) &&
           EVP_DecryptUpdate(ctx, a.out, &n, a.in, (int)len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1 && EVP_DecryptFinal_ex(ctx, a.out + n, &f) == 1 &&
           (size_t)(n + f) == len;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) memset(a.out, 0, len); /* never leave unauthenticated plaintext behind */
  napi_value result;
  if (napi_get_boolean(env, ok, &result) != napi_ok) return NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"seal", NULL, seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_sealed, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
