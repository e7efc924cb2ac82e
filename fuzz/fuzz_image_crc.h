/*
 * Makes every checksum of a fuzzed image right again. A mutated byte almost
 * always breaks the header's CRC (or a table's, a tensor's, a blob's), so
 * without this the fuzzer spends its time on the first check and never
 * reaches the validation of the fields behind it (a page size of 0, which
 * the parser divided by, was never reached that way). The harnesses run each input twice: as it is
 * (the checksum checks) and through this (everything after them).
 *
 * Order: the CRCs in the resident table and the expert directories (which
 * cover tensor and blob bytes), then each section's CRC (which covers those
 * tables), then the header's (which covers the section entries). Entries
 * that point outside the buffer are left alone.
 */
#ifndef MF_FUZZ_IMAGE_CRC_H
#define MF_FUZZ_IMAGE_CRC_H

#include <stddef.h>
#include <stdint.h>

#include "../runtime/image.h"
#include "../runtime/image_format.h"

static uint64_t fuzz_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void fuzz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC of [off, off + len) into at, if the range is inside b[0, n). */
static void fuzz_crc_into(uint8_t *b, size_t n, uint8_t *at, uint64_t off, uint64_t len)
{
    if (off <= n && len <= n - off) fuzz_put32(at, mf_crc32(0, b + off, (size_t)len));
}

static void fuzz_fix_crcs(uint8_t *b, size_t n)
{
    if (n < MF_HEADER_BYTES) return;
    uint32_t ns = (uint32_t)fuzz_le(b + MF_H_N_SECTIONS, 4);
    if (ns > MF_MAX_SECTIONS) ns = MF_MAX_SECTIONS;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < ns; i++) {
            uint8_t *s = b + MF_H_SECTIONS + (size_t)i * MF_SECTION_BYTES;
            uint32_t kind = (uint32_t)fuzz_le(s, 4);
            uint64_t off = fuzz_le(s + 8, 8), bytes = fuzz_le(s + 16, 8);
            if (off > n || bytes > n - off) continue;
            if (pass == 0) { /* the entries' CRCs of the bytes they name */
                size_t eb = kind == MF_SEC_RESIDENT_TABLE ? MF_RESIDENT_ENTRY_BYTES
                            : kind == MF_SEC_EXPERT_DIR || kind == MF_SEC_FALLBACK_DIR
                                ? MF_EXPERT_ENTRY_BYTES
                                : 0;
                for (uint64_t e = 0; eb && e + eb <= bytes; e += eb) {
                    uint8_t *en = b + off + e;
                    if (eb == MF_RESIDENT_ENTRY_BYTES)
                        fuzz_crc_into(b, n, en + 32, fuzz_le(en + 16, 8), fuzz_le(en + 24, 8));
                    else
                        fuzz_crc_into(b, n, en + 20, fuzz_le(en + 8, 8), fuzz_le(en + 16, 4));
                }
            } else if (kind != MF_SEC_EXPERT_DATA) {
                fuzz_crc_into(b, n, s + 24, off, bytes);
            }
        }
    }
    fuzz_put32(b + MF_HEADER_CRC_OFFSET, mf_crc32(0, b, MF_HEADER_CRC_OFFSET));
}

#endif
