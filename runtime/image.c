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

/* CRC-32/IEEE, reflected polynomial 0xEDB88320; one 1 KiB table in
 * read-only memory (flash on a device) for one lookup per byte. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du
};

uint32_t mf_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
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
    rc = check_sections(h);
    if (rc) return rc;
    rc = check_hparams(h);
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
