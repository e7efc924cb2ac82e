/*
 * Reading and validating an image's header and tables through a port.
 * Nothing here allocates: tables are decoded entry by entry from flash (or
 * from a caller buffer) on demand.
 */
#ifndef MF_IMAGE_H
#define MF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../port/port.h"
#include "image_format.h"

typedef struct {
    uint32_t kind, count;
    uint64_t offset, bytes;
    uint32_t crc32;
} mf_section;

typedef struct {
    uint32_t version;
    uint64_t image_bytes;
    uint32_t arch, flags;
    uint32_t vocab, hidden, n_layers, n_heads, n_kv_heads, head_dim;
    uint32_t expert_ffn, n_experts, top_k, shared_ffn, max_seq;
    float rms_eps, rope_theta;
    uint32_t page_size, group_size;
    uint32_t n_sections;
    mf_section sections[MF_MAX_SECTIONS];
} mf_image_header;

typedef struct {
    uint16_t kind, layer;
    uint32_t encoding, rows, cols;
    uint64_t offset, bytes;
    uint32_t crc32;
} mf_resident_entry;

typedef struct {
    uint16_t layer, expert;
    uint8_t encoding;
    uint64_t offset;
    uint32_t bytes, crc32;
} mf_expert_entry;

/* Reads the header, checks magic, version, header CRC, that every section
 * lies inside the image and the port, and that hyper-parameters are sane.
 * When verify_tables != 0 also checks the CRC of the table sections
 * (resident table, expert directory, predictor, tokenizer) by streaming them
 * through `scratch` (scratch_bytes >= 256 recommended). Returns MF_OK or a
 * negative MF_E* code from moeflash.h. */
int mf_image_read_header(const mf_port *port, mf_image_header *h, int verify_tables,
                         void *scratch, size_t scratch_bytes);

/* The section of a kind, or NULL. */
const mf_section *mf_image_section(const mf_image_header *h, uint32_t kind);

/* Decodes entry i of the resident table / expert directory (layer-major:
 * index = layer * n_experts + expert) / fallback directory. */
int mf_image_resident_entry(const mf_port *port, const mf_image_header *h, uint32_t i,
                            mf_resident_entry *e);
int mf_image_expert_entry(const mf_port *port, const mf_image_header *h, uint32_t section_kind,
                          uint32_t layer, uint32_t expert, mf_expert_entry *e);

/* CRC-32 (IEEE 802.3, reflected, init/xorout 0xFFFFFFFF). Chainable:
 * crc = mf_crc32(crc, data, n) starting from 0. */
uint32_t mf_crc32(uint32_t crc, const void *data, size_t n);
/* Builds for AArch64 cores with the CRC32 instructions (optional in ARMv8.0,
 * present on the Pi 4's Cortex-A72: -mcpu=cortex-a72 or -march=armv8-a+crc;
 * mandatory from ARMv8.1) compute it with CRC32X, 8 bytes an instruction:
 * the same polynomial, bit-reflected like the tables. Little-endian only. */
#if defined(__aarch64__) && defined(__ARM_FEATURE_CRC32) && !defined(__ARM_BIG_ENDIAN)
#define MF_CRC32_A64 1
#endif

/* Little-endian field access. */
static inline uint16_t mf_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t mf_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t mf_le64(const uint8_t *p)
{
    return (uint64_t)mf_le32(p) | ((uint64_t)mf_le32(p + 4) << 32);
}

#endif
