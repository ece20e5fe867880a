/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SHA-256 (a policy's identity, its lists'): OpenSSL's own block code,
 * which uses the CPU's SHA extensions, called directly. EVP_Digest*() runs
 * the same code, but its first call fetches it from the default provider:
 * that set up OpenSSL's providers and name store, and OPENSSL_cleanup()
 * took them down at exit, about 15% of the CPU of a `weir run` through a
 * daemon (docs/performance.md) for one hash of a few hundred bytes.
 * SHA256_Init() and co. are deprecated in OpenSSL 3, not removed.
 */
#ifndef WEIR_SHA256_H
#define WEIR_SHA256_H

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/sha.h>

typedef SHA256_CTX weir_sha256_ctx;

static inline void weir_sha256_init(weir_sha256_ctx *c)
{
	SHA256_Init(c);
}

static inline void weir_sha256_update(weir_sha256_ctx *c, const void *buf, size_t len)
{
	SHA256_Update(c, buf, len);
}

static inline void weir_sha256_final(weir_sha256_ctx *c, unsigned char out[32])
{
	SHA256_Final(out, c);
}

static inline void weir_sha256(const void *buf, size_t len, unsigned char out[32])
{
	SHA256(buf, len, out);
}

#endif /* WEIR_SHA256_H */
