/*
 * Reading and validating a moeflash image through a port (see image.h and
 * docs/image-format.md). Nothing here allocates and nothing outside
 * string.h is used, so the same code runs on a microcontroller: every field
 * is decoded byte by byte (little-endian), never by casting flash to a
 * struct, and the tables stay in flash and are decoded one entry at a time.
 *
 * The order of the checks matters for the error a caller sees:
 *   magic (MF_E_FORMAT) -> version (MF_E_VERSION: a newer writer may have
 *   moved anything else, so nothing after it can be trusted) -> header CRC
 *   (MF_E_CRC) -> sizes against the image and the port (MF_E_RANGE) ->
 *   hyper-parameters and table shapes (MF_E_FORMAT / MF_E_UNSUPPORTED) ->
 *   optional table CRCs (MF_E_CRC).
 */
#include "image.h"

#include <string.h>

#include "moeflash.h"
#include "quant.h"

#include "crc32_tables.h"
#if defined(MF_HAVE_ARM_KERNELS)
#include "kernels_arm.h"
#endif
#if defined(MF_CRC32_A64)
#include <arm_acle.h>
#endif

/* CRC-32/IEEE, slicing by 4: four bytes per step through four tables
 * (3.50 instructions per byte on a Cortex-M55 against 5.1 for the byte
 * loop). The word is assembled from bytes, so any alignment and byte order
 * works; compilers turn it into one load on little-endian cores. On Helium
 * cores a long buffer goes to the folding kernel (kernels_arm.c), whose
 * ~300 instructions of set-up and join pay from a few hundred bytes; on
 * AArch64 cores with the CRC32 instructions (MF_CRC32_A64) they do it all. */
uint32_t mf_crc32(uint32_t crc, const void *data, size_t n)
{
#if defined(MF_HAVE_ARM_KERNELS) && defined(MF_ARM_KERNEL_MVE)
    if (n >= 256) return mf_crc32_arm(crc, data, n);
#endif
    const uint8_t *p = data;
#if defined(MF_CRC32_A64)
    /* One CRC32X per 8 bytes, a serial chain: its latency (2-3 cycles on
     * the A53/A57/A72 class) is the cost, about 0.3-0.4 cycles per byte. */
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        crc = __crc32d(crc, w);
    }
    while (n--) crc = __crc32b(crc, *p++);
    return ~crc;
#else
    const uint32_t *t0 = crc_tables[0], *t1 = crc_tables[1], *t2 = crc_tables[2],
                   *t3 = crc_tables[3];
    crc = ~crc;
    for (; n >= 4; n -= 4, p += 4) {
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24);
        crc = t3[a & 0xFFu] ^ t2[(a >> 8) & 0xFFu] ^ t1[(a >> 16) & 0xFFu] ^ t0[a >> 24];
    }
    while (n--) crc = t0[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
#endif
}

/* Port errors mapped onto the public codes. */
static int port_err(int rc)
{
    if (rc == MF_PORT_ERANGE) return MF_E_RANGE;
    return MF_E_IO;
}

static int read_at(const mf_port *port, uint64_t off, void *dst, size_t len)
{
    int rc = mf_port_read(port, off, dst, len);
    return rc == MF_PORT_OK ? MF_OK : port_err(rc);
}

static float le_f32(const uint8_t *p)
{
    uint32_t u = mf_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Positive and finite, tested on the bits (no math.h): exponent not all ones,
 * sign clear, not zero. */
static int positive_finite(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u >> 31) == 0 && ((u >> 23) & 0xFFu) != 0xFFu && u != 0;
}

/* [off, off+len) inside [0, limit) without overflow. */
static int inside(uint64_t off, uint64_t len, uint64_t limit)
{
    return off <= limit && len <= limit - off;
}

static int decode_header(const uint8_t *b, mf_image_header *h)
{
    memset(h, 0, sizeof *h);
    h->version = mf_le32(b + MF_H_VERSION);
    h->image_bytes = mf_le64(b + MF_H_IMAGE_BYTES);
    h->arch = mf_le32(b + MF_H_ARCH);
    h->flags = mf_le32(b + MF_H_FLAGS);
    h->vocab = mf_le32(b + MF_H_VOCAB);
    h->hidden = mf_le32(b + MF_H_HIDDEN);
    h->n_layers = mf_le32(b + MF_H_LAYERS);
    h->n_heads = mf_le32(b + MF_H_HEADS);
    h->n_kv_heads = mf_le32(b + MF_H_KV_HEADS);
    h->head_dim = mf_le32(b + MF_H_HEAD_DIM);
    h->expert_ffn = mf_le32(b + MF_H_EXPERT_FFN);
    h->n_experts = mf_le32(b + MF_H_EXPERTS);
    h->top_k = mf_le32(b + MF_H_TOP_K);
    h->shared_ffn = mf_le32(b + MF_H_SHARED_FFN);
    h->max_seq = mf_le32(b + MF_H_MAX_SEQ);
    h->rms_eps = le_f32(b + MF_H_RMS_EPS);
    h->rope_theta = le_f32(b + MF_H_ROPE_THETA);
    h->page_size = mf_le32(b + MF_H_PAGE_SIZE);
    h->group_size = mf_le32(b + MF_H_GROUP_SIZE);
    h->n_sections = mf_le32(b + MF_H_N_SECTIONS);
    if (h->n_sections > MF_MAX_SECTIONS) return MF_E_FORMAT;
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const uint8_t *s = b + MF_H_SECTIONS + i * MF_SECTION_BYTES;
        h->sections[i].kind = mf_le32(s);
        h->sections[i].count = mf_le32(s + 4);
        h->sections[i].offset = mf_le64(s + 8);
        h->sections[i].bytes = mf_le64(s + 16);
        h->sections[i].crc32 = mf_le32(s + 24);
    }
    return MF_OK;
}

/* Dimensions bounded so that every product the runtime forms
 * (e.g. vocab * hidden, heads * head_dim * max_seq) fits in 64 bits and
 * sizes fit a u32 expert-blob length where needed. */
#define DIM_MAX (1u << 24)

static int check_hparams(const mf_image_header *h)
{
    if (h->arch < MF_ARCH_MIXTRAL || h->arch > MF_ARCH_OLMOE) return MF_E_UNSUPPORTED;
    const uint32_t known = MF_FLAG_QKV_BIAS | MF_FLAG_QK_NORM_HEAD | MF_FLAG_QK_NORM_FULL |
                           MF_FLAG_SHARED_EXPERT | MF_FLAG_NORM_TOPK;
    if (h->flags & ~known) return MF_E_UNSUPPORTED;
    const uint32_t dims[] = {h->vocab,    h->hidden,    h->n_layers,  h->n_heads, h->n_kv_heads,
                             h->head_dim, h->expert_ffn, h->n_experts, h->top_k,   h->max_seq};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i] == 0 || dims[i] > DIM_MAX) return MF_E_FORMAT;
    if (h->n_layers > 0xFFFFu || h->n_experts > 0xFFFFu) return MF_E_FORMAT; /* u16 in entries */
    if (h->top_k > h->n_experts) return MF_E_FORMAT;
    if (h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads) return MF_E_FORMAT;
    if (h->head_dim % 2) return MF_E_FORMAT; /* RoPE rotates pairs */
    if ((uint64_t)h->n_heads * h->head_dim > DIM_MAX) return MF_E_FORMAT;
    /* The shared expert exists exactly when its flag says so. */
    if (!!(h->flags & MF_FLAG_SHARED_EXPERT) != (h->shared_ffn != 0)) return MF_E_FORMAT;
    if (h->shared_ffn > DIM_MAX) return MF_E_FORMAT;
    if ((h->flags & MF_FLAG_QK_NORM_HEAD) && (h->flags & MF_FLAG_QK_NORM_FULL)) return MF_E_FORMAT;
    if (!positive_finite(h->rms_eps) || !positive_finite(h->rope_theta)) return MF_E_FORMAT;
    /* page_size: a power of two (expert blobs are aligned to it). */
    if (h->page_size == 0 || (h->page_size & (h->page_size - 1))) return MF_E_FORMAT;
    if (h->group_size == 0 || h->group_size > DIM_MAX) return MF_E_FORMAT;
    return MF_OK;
}

/* Every section inside the image, no kind twice, no two overlapping, and the
 * tables' byte sizes equal to count * entry size. */
static int check_sections(const mf_image_header *h)
{
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const mf_section *s = &h->sections[i];
        if (s->kind == 0) return MF_E_FORMAT;
        if (s->offset < MF_HEADER_BYTES || !inside(s->offset, s->bytes, h->image_bytes))
            return MF_E_RANGE;
        for (uint32_t j = 0; j < i; j++) {
            const mf_section *t = &h->sections[j];
            if (t->kind == s->kind) return MF_E_FORMAT;
            if (s->bytes && t->bytes && s->offset < t->offset + t->bytes &&
                t->offset < s->offset + s->bytes)
                return MF_E_FORMAT;
        }
    }
    static const uint32_t required[] = {MF_SEC_RESIDENT_TABLE, MF_SEC_RESIDENT_DATA,
                                        MF_SEC_EXPERT_DIR, MF_SEC_EXPERT_DATA};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!mf_image_section(h, required[i])) return MF_E_FORMAT;

    const mf_section *rt = mf_image_section(h, MF_SEC_RESIDENT_TABLE);
    if (rt->count == 0 || rt->bytes != (uint64_t)rt->count * MF_RESIDENT_ENTRY_BYTES)
        return MF_E_FORMAT;
    uint64_t n_experts = (uint64_t)h->n_layers * h->n_experts;
    const uint32_t dirs[] = {MF_SEC_EXPERT_DIR, MF_SEC_FALLBACK_DIR};
    for (size_t i = 0; i < 2; i++) {
        const mf_section *d = mf_image_section(h, dirs[i]);
        if (!d) continue;
        if (d->count != n_experts || d->bytes != n_experts * MF_EXPERT_ENTRY_BYTES)
            return MF_E_FORMAT;
    }
    /* Expert blobs start on page boundaries, so their section does too. */
    if (mf_image_section(h, MF_SEC_EXPERT_DATA)->offset % h->page_size) return MF_E_FORMAT;
    return MF_OK;
}

/* CRC of a section, through map() when the flash is memory-mapped, else
 * streamed through the caller's scratch buffer. */
static int section_crc(const mf_port *port, const mf_section *s, void *scratch,
                       size_t scratch_bytes, uint32_t *crc)
{
    uint32_t c = 0;
    const void *m = s->bytes <= (size_t)-1 ? mf_port_map(port, s->offset, (size_t)s->bytes) : NULL;
    if (m) {
        *crc = mf_crc32(0, m, (size_t)s->bytes);
        return MF_OK;
    }
    if (!scratch || scratch_bytes == 0) return MF_E_ARG;
    for (uint64_t done = 0; done < s->bytes;) {
        uint64_t left = s->bytes - done;
        size_t n = left < scratch_bytes ? (size_t)left : scratch_bytes;
        int rc = read_at(port, s->offset + done, scratch, n);
        if (rc) return rc;
        c = mf_crc32(c, scratch, n);
        done += n;
    }
    *crc = c;
    return MF_OK;
}

int mf_image_read_header(const mf_port *port, mf_image_header *h, int verify_tables,
                         void *scratch, size_t scratch_bytes)
{
    if (!port || !h) return MF_E_ARG;
    uint8_t b[MF_HEADER_BYTES];

    /* Magic first, on whatever part of the header the device holds, so that
     * a small non-image file is "not an image" rather than "too short". */
    size_t have = port->size < MF_HEADER_BYTES ? (size_t)port->size : MF_HEADER_BYTES;
    if (have < 8) return MF_E_FORMAT;
    int rc = read_at(port, 0, b, have);
    if (rc) return rc;
    if (memcmp(b, MF_MAGIC, 8) != 0) return MF_E_FORMAT;
    if (have < 12) return MF_E_RANGE;
    uint32_t version = mf_le32(b + MF_H_VERSION);
    if (version == 0) return MF_E_FORMAT;
    if (version > MF_FORMAT_VERSION) return MF_E_VERSION;
    if (have < MF_HEADER_BYTES) return MF_E_RANGE;
    if (mf_crc32(0, b, MF_HEADER_CRC_OFFSET) != mf_le32(b + MF_HEADER_CRC_OFFSET)) return MF_E_CRC;
    if (mf_le32(b + MF_H_HEADER_BYTES) != MF_HEADER_BYTES) return MF_E_FORMAT;

    rc = decode_header(b, h);
    if (rc) return rc;
    if (h->image_bytes < MF_HEADER_BYTES) return MF_E_FORMAT;
    if (h->image_bytes > port->size) return MF_E_RANGE; /* truncated copy */
    /* hyper-parameters first: check_sections divides by page_size */
    rc = check_hparams(h);
    if (rc) return rc;
    rc = check_sections(h);
    if (rc) return rc;

    if (verify_tables) {
        /* Table sections only: the data sections are large and are checked
         * piece by piece (resident tensor / expert blob CRCs) as they load. */
        for (uint32_t i = 0; i < h->n_sections; i++) {
            const mf_section *s = &h->sections[i];
            if (s->kind == MF_SEC_EXPERT_DATA || s->kind == MF_SEC_RESIDENT_DATA) continue;
            uint32_t c;
            rc = section_crc(port, s, scratch, scratch_bytes, &c);
            if (rc) return rc;
            if (c != s->crc32) return MF_E_CRC;
        }
    }
    return MF_OK;
}

const mf_section *mf_image_section(const mf_image_header *h, uint32_t kind)
{
    if (!h) return NULL;
    for (uint32_t i = 0; i < h->n_sections && i < MF_MAX_SECTIONS; i++)
        if (h->sections[i].kind == kind) return &h->sections[i];
    return NULL;
}

/* Per-layer tensor kinds carry a layer index < n_layers; the three global
 * ones (embed, final norm, lm_head) have layer 0. */
static int is_global_kind(uint32_t kind)
{
    return kind == MF_T_EMBED || kind == MF_T_FINAL_NORM || kind == MF_T_LM_HEAD;
}

/* Norm weights and biases: one row, always f32. */
static int is_vector_kind(uint32_t kind)
{
    switch (kind) {
    case MF_T_FINAL_NORM:
    case MF_T_ATTN_NORM:
    case MF_T_FFN_NORM:
    case MF_T_BQ:
    case MF_T_BK:
    case MF_T_BV:
    case MF_T_Q_NORM:
    case MF_T_K_NORM: return 1;
    default: return 0;
    }
}

int mf_image_resident_entry(const mf_port *port, const mf_image_header *h, uint32_t i,
                            mf_resident_entry *e)
{
    if (!port || !h || !e) return MF_E_ARG;
    const mf_section *t = mf_image_section(h, MF_SEC_RESIDENT_TABLE);
    const mf_section *d = mf_image_section(h, MF_SEC_RESIDENT_DATA);
    if (!t || !d) return MF_E_FORMAT;
    if (i >= t->count) return MF_E_ARG;
    uint8_t b[MF_RESIDENT_ENTRY_BYTES];
    int rc = read_at(port, t->offset + (uint64_t)i * MF_RESIDENT_ENTRY_BYTES, b, sizeof b);
    if (rc) return rc;
    e->kind = mf_le16(b);
    e->layer = mf_le16(b + 2);
    e->encoding = mf_le32(b + 4);
    e->rows = mf_le32(b + 8);
    e->cols = mf_le32(b + 12);
    e->offset = mf_le64(b + 16);
    e->bytes = mf_le64(b + 24);
    e->crc32 = mf_le32(b + 32);
    if (e->encoding >= MF_ENC_COUNT) return MF_E_UNSUPPORTED;
    if (e->rows == 0 || e->cols == 0) return MF_E_FORMAT;
    if (is_global_kind(e->kind) ? e->layer != 0 : e->layer >= h->n_layers) return MF_E_FORMAT;
    if (is_vector_kind(e->kind) && (e->rows != 1 || e->encoding != MF_ENC_F32)) return MF_E_FORMAT;
    /* The stored size is exactly what the encoding needs for this shape. */
    size_t need = mf_matrix_bytes((int)e->encoding, e->rows, e->cols, h->group_size);
    if (need == 0) return MF_E_UNSUPPORTED;
    if (e->bytes != need) return MF_E_FORMAT;
    /* The tensor lies inside the resident data section. */
    if (e->offset < d->offset || !inside(e->offset - d->offset, e->bytes, d->bytes))
        return MF_E_RANGE;
    return MF_OK;
}

int mf_image_expert_entry(const mf_port *port, const mf_image_header *h, uint32_t section_kind,
                          uint32_t layer, uint32_t expert, mf_expert_entry *e)
{
    if (!port || !h || !e) return MF_E_ARG;
    if (section_kind != MF_SEC_EXPERT_DIR && section_kind != MF_SEC_FALLBACK_DIR) return MF_E_ARG;
    if (layer >= h->n_layers || expert >= h->n_experts) return MF_E_ARG;
    const mf_section *dir = mf_image_section(h, section_kind);
    const mf_section *data = mf_image_section(h, MF_SEC_EXPERT_DATA);
    if (!dir) return section_kind == MF_SEC_FALLBACK_DIR ? MF_E_UNSUPPORTED : MF_E_FORMAT;
    if (!data) return MF_E_FORMAT;
    uint64_t index = (uint64_t)layer * h->n_experts + expert;
    if (index >= dir->count) return MF_E_FORMAT;
    uint8_t b[MF_EXPERT_ENTRY_BYTES];
    int rc = read_at(port, dir->offset + index * MF_EXPERT_ENTRY_BYTES, b, sizeof b);
    if (rc) return rc;
    e->layer = mf_le16(b);
    e->expert = mf_le16(b + 2);
    e->encoding = b[4];
    e->offset = mf_le64(b + 8);
    e->bytes = mf_le32(b + 16);
    e->crc32 = mf_le32(b + 20);
    /* Layer-major order is part of the format: the entry names itself. */
    if (e->layer != layer || e->expert != expert) return MF_E_FORMAT;
    if (e->encoding >= MF_ENC_COUNT) return MF_E_UNSUPPORTED;
    /* Both directories point into the one expert data section. */
    if (e->offset < data->offset || !inside(e->offset - data->offset, e->bytes, data->bytes))
        return MF_E_RANGE;
    if (e->offset % h->page_size) return MF_E_FORMAT;
    /* gate [ffn, hidden] + up [ffn, hidden] + down [hidden, ffn]. */
    size_t gate = mf_matrix_bytes(e->encoding, h->expert_ffn, h->hidden, h->group_size);
    size_t down = mf_matrix_bytes(e->encoding, h->hidden, h->expert_ffn, h->group_size);
    if (gate == 0 || down == 0) return MF_E_UNSUPPORTED;
    if ((uint64_t)e->bytes != 2 * (uint64_t)gate + down) return MF_E_FORMAT;
    return MF_OK;
}
