/*
 * Image writer (see imagewrite.h). Every multi-byte field is written byte
 * by byte little-endian, the mirror image of runtime/image.c, so the file
 * is the same whatever the host's byte order.
 */
#include "imagewrite.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/moeflash.h"
#include "../../runtime/quant.h"

static int iw_fail(mf_image_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return -1;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void putf32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}

void mf_image_encode_header(const mf_image_header *h, uint8_t *b)
{
    memset(b, 0, MF_HEADER_BYTES);
    memcpy(b + MF_H_MAGIC, MF_MAGIC, 8);
    put32(b + MF_H_VERSION, h->version);
    put32(b + MF_H_HEADER_BYTES, MF_HEADER_BYTES);
    put64(b + MF_H_IMAGE_BYTES, h->image_bytes);
    put32(b + MF_H_ARCH, h->arch);
    put32(b + MF_H_FLAGS, h->flags);
    put32(b + MF_H_VOCAB, h->vocab);
    put32(b + MF_H_HIDDEN, h->hidden);
    put32(b + MF_H_LAYERS, h->n_layers);
    put32(b + MF_H_HEADS, h->n_heads);
    put32(b + MF_H_KV_HEADS, h->n_kv_heads);
    put32(b + MF_H_HEAD_DIM, h->head_dim);
    put32(b + MF_H_EXPERT_FFN, h->expert_ffn);
    put32(b + MF_H_EXPERTS, h->n_experts);
    put32(b + MF_H_TOP_K, h->top_k);
    put32(b + MF_H_SHARED_FFN, h->shared_ffn);
    put32(b + MF_H_MAX_SEQ, h->max_seq);
    putf32(b + MF_H_RMS_EPS, h->rms_eps);
    putf32(b + MF_H_ROPE_THETA, h->rope_theta);
    put32(b + MF_H_PAGE_SIZE, h->page_size);
    put32(b + MF_H_GROUP_SIZE, h->group_size);
    put32(b + MF_H_N_SECTIONS, h->n_sections);
    for (uint32_t i = 0; i < h->n_sections && i < MF_MAX_SECTIONS; i++) {
        uint8_t *s = b + MF_H_SECTIONS + i * MF_SECTION_BYTES;
        put32(s, h->sections[i].kind);
        put32(s + 4, h->sections[i].count);
        put64(s + 8, h->sections[i].offset);
        put64(s + 16, h->sections[i].bytes);
        put32(s + 24, h->sections[i].crc32);
    }
    put32(b + MF_HEADER_CRC_OFFSET, mf_crc32(0, b, MF_HEADER_CRC_OFFSET));
}

/* Writes n bytes at the current end of the file. */
static int put_bytes(mf_image_writer *w, const void *data, uint64_t n)
{
    if (n && fwrite(data, 1, (size_t)n, w->f) != n)
        return iw_fail(w, "%s: write failed (disk full?)", w->path);
    w->pos += n;
    return 0;
}

/* Zero padding up to a multiple of align. */
static int pad_to(mf_image_writer *w, uint64_t align)
{
    static const uint8_t zeros[4096];
    uint64_t r = w->pos % align, n = r ? align - r : 0;
    while (n) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        if (put_bytes(w, zeros, k)) return -1;
        n -= k;
    }
    return 0;
}

static void free_writer(mf_image_writer *w)
{
    free(w->path);
    free(w->res);
    free(w->dir);
    free(w->fdir);
    free(w->dir_set);
    free(w->fdir_set);
    for (size_t i = 0; i < w->n_extra; i++) free(w->extra[i].data);
    w->path = NULL;
    w->res = NULL;
    w->dir = w->fdir = NULL;
    w->dir_set = w->fdir_set = NULL;
    w->n_extra = 0;
}

int mf_iw_open(mf_image_writer *w, const char *path, const mf_image_header *params, int has_fallback)
{
    memset(w, 0, sizeof *w);
    w->h = *params;
    w->h.version = MF_FORMAT_VERSION;
    w->h.n_sections = 0;
    w->has_fallback = has_fallback;
    if (!w->h.page_size || (w->h.page_size & (w->h.page_size - 1)) || w->h.page_size < MF_IW_RESIDENT_ALIGN)
        return iw_fail(w, "page size %u must be a power of two >= %u", w->h.page_size, MF_IW_RESIDENT_ALIGN);
    if (!w->h.n_layers || !w->h.n_experts) return iw_fail(w, "no layers or no experts");
    size_t n = (size_t)w->h.n_layers * w->h.n_experts;
    size_t plen = strlen(path) + 1;
    w->path = malloc(plen);
    w->dir = calloc(n, sizeof *w->dir);
    w->dir_set = calloc(n, 1);
    if (has_fallback) {
        w->fdir = calloc(n, sizeof *w->fdir);
        w->fdir_set = calloc(n, 1);
    }
    if (!w->path || !w->dir || !w->dir_set || (has_fallback && (!w->fdir || !w->fdir_set))) {
        free_writer(w);
        return iw_fail(w, "out of memory");
    }
    memcpy(w->path, path, plen);
    w->f = fopen(path, "wb");
    if (!w->f) {
        iw_fail(w, "%s: cannot create", path);
        free_writer(w);
        return -1;
    }
    uint8_t zero[MF_HEADER_BYTES] = {0};
    if (put_bytes(w, zero, sizeof zero)) {
        mf_iw_abort(w);
        return -1;
    }
    w->res_start = w->pos;
    return 0;
}

int mf_iw_add_resident(mf_image_writer *w, uint32_t kind, uint32_t layer, uint32_t encoding,
                       uint32_t rows, uint32_t cols, const void *data, uint64_t bytes)
{
    if (w->phase != 0) return iw_fail(w, "resident tensor added after the expert blobs");
    if (bytes != mf_matrix_bytes((int)encoding, rows, cols, w->h.group_size) || !bytes)
        return iw_fail(w, "resident tensor kind %u layer %u: %llu bytes, encoding %u [%u, %u] needs %zu",
                       kind, layer, (unsigned long long)bytes, encoding, rows, cols,
                       mf_matrix_bytes((int)encoding, rows, cols, w->h.group_size));
    if (w->n_res == w->cap_res) {
        size_t cap = w->cap_res ? 2 * w->cap_res : 64;
        mf_resident_entry *r = realloc(w->res, cap * sizeof *r);
        if (!r) return iw_fail(w, "out of memory");
        w->res = r;
        w->cap_res = cap;
    }
    if (pad_to(w, MF_IW_RESIDENT_ALIGN)) return -1;
    mf_resident_entry *e = &w->res[w->n_res++];
    memset(e, 0, sizeof *e);
    e->kind = (uint16_t)kind;
    e->layer = (uint16_t)layer;
    e->encoding = encoding;
    e->rows = rows;
    e->cols = cols;
    e->offset = w->pos;
    e->bytes = bytes;
    e->crc32 = mf_crc32(0, data, (size_t)bytes);
    return put_bytes(w, data, bytes);
}

int mf_iw_add_expert(mf_image_writer *w, int fallback, uint32_t layer, uint32_t expert,
                     uint32_t encoding, const void *blob, uint32_t bytes)
{
    if (w->phase == 2) return iw_fail(w, "writer already finished");
    if (fallback && !w->has_fallback) return iw_fail(w, "fallback expert without a fallback directory");
    if (layer >= w->h.n_layers || expert >= w->h.n_experts)
        return iw_fail(w, "expert %u of layer %u out of range", expert, layer);
    if (w->phase == 0) {
        /* First blob: the resident data ends, the page-aligned expert data begins. */
        if (pad_to(w, w->h.page_size)) return -1;
        w->exp_start = w->pos;
        w->phase = 1;
    }
    uint32_t H = w->h.hidden, F = w->h.expert_ffn, G = w->h.group_size;
    size_t want = 2 * mf_matrix_bytes((int)encoding, F, H, G) + mf_matrix_bytes((int)encoding, H, F, G);
    if (!want || bytes != want)
        return iw_fail(w, "expert %u of layer %u: %u bytes, encoding %u needs %zu", expert, layer,
                       bytes, encoding, want);
    size_t i = (size_t)layer * w->h.n_experts + expert;
    uint8_t *set = fallback ? w->fdir_set : w->dir_set;
    if (set[i]) return iw_fail(w, "expert %u of layer %u added twice", expert, layer);
    if (pad_to(w, w->h.page_size)) return -1;
    mf_expert_entry *e = fallback ? &w->fdir[i] : &w->dir[i];
    e->layer = (uint16_t)layer;
    e->expert = (uint16_t)expert;
    e->encoding = (uint8_t)encoding;
    e->offset = w->pos;
    e->bytes = bytes;
    e->crc32 = mf_crc32(0, blob, bytes);
    set[i] = 1;
    return put_bytes(w, blob, bytes);
}

int mf_iw_add_section(mf_image_writer *w, uint32_t kind, uint32_t count, const void *data, uint64_t bytes)
{
    if (kind >= MF_SEC_RESIDENT_TABLE && kind <= MF_SEC_EXPERT_DATA)
        return iw_fail(w, "section kind %u is written by the writer itself", kind);
    if (kind == MF_SEC_FALLBACK_DIR) return iw_fail(w, "the fallback directory comes from mf_iw_add_expert");
    if (kind == 0) return iw_fail(w, "section kind 0 is invalid");
    size_t i = 0;
    while (i < w->n_extra && w->extra[i].kind != kind) i++;
    if (i == w->n_extra && 4u + (w->has_fallback ? 1u : 0u) + w->n_extra + 1 > MF_MAX_SECTIONS)
        return iw_fail(w, "too many sections (at most %u)", MF_MAX_SECTIONS);
    uint8_t *copy = malloc(bytes ? (size_t)bytes : 1);
    if (!copy) return iw_fail(w, "out of memory");
    if (bytes) memcpy(copy, data, (size_t)bytes);
    if (i < w->n_extra) free(w->extra[i].data);
    else w->n_extra++;
    w->extra[i].kind = kind;
    w->extra[i].count = count;
    w->extra[i].data = copy;
    w->extra[i].bytes = bytes;
    return 0;
}

static void add_sec(mf_image_header *h, uint32_t kind, uint32_t count, uint64_t offset, uint64_t bytes,
                    uint32_t crc)
{
    mf_section *s = &h->sections[h->n_sections++];
    s->kind = kind;
    s->count = count;
    s->offset = offset;
    s->bytes = bytes;
    s->crc32 = crc;
}

/* Encodes the expert directory entries into a buffer and appends it. */
static int put_dir(mf_image_writer *w, uint32_t kind, const mf_expert_entry *dir, const uint8_t *set)
{
    size_t n = (size_t)w->h.n_layers * w->h.n_experts;
    for (size_t i = 0; i < n; i++)
        if (!set[i])
            return iw_fail(w, "%sexpert %zu of layer %zu was never added", kind == MF_SEC_FALLBACK_DIR ? "fallback " : "",
                           i % w->h.n_experts, i / w->h.n_experts);
    uint8_t *b = calloc(n, MF_EXPERT_ENTRY_BYTES);
    if (!b) return iw_fail(w, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = b + i * MF_EXPERT_ENTRY_BYTES;
        put16(p, dir[i].layer);
        put16(p + 2, dir[i].expert);
        p[4] = dir[i].encoding;
        put64(p + 8, dir[i].offset);
        put32(p + 16, dir[i].bytes);
        put32(p + 20, dir[i].crc32);
    }
    uint64_t bytes = (uint64_t)n * MF_EXPERT_ENTRY_BYTES;
    int rc = pad_to(w, MF_IW_RESIDENT_ALIGN);
    if (!rc) add_sec(&w->h, kind, (uint32_t)n, w->pos, bytes, mf_crc32(0, b, bytes));
    if (!rc) rc = put_bytes(w, b, bytes);
    free(b);
    return rc;
}

static int finish_inner(mf_image_writer *w)
{
    if (w->phase != 1) return iw_fail(w, "no expert blobs were added");
    if (w->n_res == 0) return iw_fail(w, "no resident tensors were added");
    /* Expert data: from its first page to the end of the last blob, padded to
     * a whole page so page-granular reads of the last blob stay inside. */
    if (pad_to(w, w->h.page_size)) return -1;
    mf_image_header *h = &w->h;
    h->n_sections = 0;
    add_sec(h, MF_SEC_RESIDENT_DATA, (uint32_t)w->n_res, w->res_start, w->exp_start - w->res_start, 0);
    add_sec(h, MF_SEC_EXPERT_DATA, 0, w->exp_start, w->pos - w->exp_start, 0);

    /* The resident data CRC, computed from the entries' CRCs would need a
     * combine step; re-reading the written bytes is simpler and checks the
     * write as well. */
    if (fflush(w->f) != 0) return iw_fail(w, "%s: write failed", w->path);
    {
        FILE *r = fopen(w->path, "rb");
        if (!r) return iw_fail(w, "%s: cannot re-open to checksum", w->path);
        uint8_t buf[1 << 16];
        uint32_t c = 0;
        uint64_t left = h->sections[0].bytes;
        int bad = fseeko(r, (off_t)w->res_start, SEEK_SET) != 0;
        while (!bad && left) {
            size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
            if (fread(buf, 1, k, r) != k) bad = 1;
            else c = mf_crc32(c, buf, k);
            left -= k;
        }
        fclose(r);
        if (bad) return iw_fail(w, "%s: cannot re-read the resident data", w->path);
        h->sections[0].crc32 = c;
    }

    /* Resident table. */
    size_t tb = w->n_res * MF_RESIDENT_ENTRY_BYTES;
    uint8_t *t = calloc(w->n_res, MF_RESIDENT_ENTRY_BYTES);
    if (!t) return iw_fail(w, "out of memory");
    for (size_t i = 0; i < w->n_res; i++) {
        uint8_t *p = t + i * MF_RESIDENT_ENTRY_BYTES;
        const mf_resident_entry *e = &w->res[i];
        put16(p, e->kind);
        put16(p + 2, e->layer);
        put32(p + 4, e->encoding);
        put32(p + 8, e->rows);
        put32(p + 12, e->cols);
        put64(p + 16, e->offset);
        put64(p + 24, e->bytes);
        put32(p + 32, e->crc32);
    }
    add_sec(h, MF_SEC_RESIDENT_TABLE, (uint32_t)w->n_res, w->pos, tb, mf_crc32(0, t, tb));
    int rc = put_bytes(w, t, tb);
    free(t);
    if (rc) return rc;

    if (put_dir(w, MF_SEC_EXPERT_DIR, w->dir, w->dir_set)) return -1;
    if (w->has_fallback && put_dir(w, MF_SEC_FALLBACK_DIR, w->fdir, w->fdir_set)) return -1;
    for (size_t i = 0; i < w->n_extra; i++) {
        const mf_iw_section *s = &w->extra[i];
        if (pad_to(w, MF_IW_RESIDENT_ALIGN)) return -1;
        add_sec(h, s->kind, s->count, w->pos, s->bytes, mf_crc32(0, s->data, (size_t)s->bytes));
        if (put_bytes(w, s->data, s->bytes)) return -1;
    }
    h->image_bytes = w->pos;

    uint8_t hb[MF_HEADER_BYTES];
    mf_image_encode_header(h, hb);
    if (fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(hb, 1, sizeof hb, w->f) != sizeof hb)
        return iw_fail(w, "%s: cannot write the header", w->path);
    w->phase = 2;
    return 0;
}

int mf_iw_finish(mf_image_writer *w)
{
    int rc = finish_inner(w);
    if (rc) {
        char keep[sizeof w->err];
        memcpy(keep, w->err, sizeof keep);
        mf_iw_abort(w);
        memcpy(w->err, keep, sizeof keep);
        return -1;
    }
    rc = fclose(w->f);
    w->f = NULL;
    if (rc != 0) {
        iw_fail(w, "%s: write failed on close", w->path);
        remove(w->path);
    }
    free_writer(w);
    return rc ? -1 : 0;
}

void mf_iw_abort(mf_image_writer *w)
{
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        if (w->path) remove(w->path);
    }
    free_writer(w);
}

/* ------------------------------------------------------------------ copy */

/* Names of the runtime's error codes, local so host tools do not depend on
 * the runtime's mf_strerror being linked. */
const char *mf_iw_error_name(int rc)
{
    static const char *names[] = {"ok", "bad argument", "I/O error", "not a moeflash image or inconsistent",
                                  "format version too new", "checksum mismatch", "offset past the end",
                                  "arena too small", "context full", "out of order", "unsupported", "flash fault",
                                  "token out of range"};
    return rc <= 0 && -rc < (int)(sizeof names / sizeof names[0]) ? names[-rc] : "error";
}

static int copy_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies n bytes from the start of src to dst. */
static int copy_prefix(FILE *src, FILE *dst, uint64_t n)
{
    uint8_t buf[1 << 16];
    if (fseeko(src, 0, SEEK_SET) != 0) return -1;
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (fread(buf, 1, k, src) != k || fwrite(buf, 1, k, dst) != k) return -1;
        n -= k;
    }
    return 0;
}

int mf_image_copy_with_sections(const char *src, const char *dst, const mf_extra_section *secs,
                                size_t n, char *err, size_t errlen)
{
    for (size_t k = 0; k < n; k++) {
        uint32_t kind = secs[k].kind;
        if (kind == 0 || (kind >= MF_SEC_RESIDENT_TABLE && kind <= MF_SEC_EXPERT_DATA))
            return copy_fail(err, errlen, "section kind %u cannot be added or replaced", kind);
        for (size_t j = 0; j < k; j++)
            if (secs[j].kind == kind) return copy_fail(err, errlen, "section kind %u given twice", kind);
    }

    /* Validate the source first: never extend a broken image. */
    mf_port port;
    mf_posix_port_state st;
    if (mf_posix_port_open(&port, &st, src) != MF_PORT_OK)
        return copy_fail(err, errlen, "%s: cannot open", src);
    mf_image_header h;
    uint8_t scratch[4096];
    int rc = mf_image_read_header(&port, &h, 1, scratch, sizeof scratch);
    mf_posix_port_close(&port);
    if (rc) return copy_fail(err, errlen, "%s: not a valid image (%s)", src, mf_iw_error_name(rc));

    /* Drop the replaced sections; keep the file up to the end of the last
     * section kept, so that replaced sections at the end are cut off. */
    uint64_t keep = MF_HEADER_BYTES;
    uint32_t j = 0;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        int replaced = 0;
        for (size_t k = 0; k < n; k++) replaced |= h.sections[i].kind == secs[k].kind;
        if (replaced) continue;
        uint64_t end = h.sections[i].offset + h.sections[i].bytes;
        if (end > keep) keep = end;
        h.sections[j++] = h.sections[i];
    }
    h.n_sections = j;
    size_t n_added = 0;
    for (size_t k = 0; k < n; k++) n_added += secs[k].data != NULL;
    if (h.n_sections + n_added > MF_MAX_SECTIONS)
        return copy_fail(err, errlen, "%s: no room for %zu more sections (%u at most)", src, n,
                         MF_MAX_SECTIONS);

    size_t tl = strlen(dst) + 5;
    char *tmp = malloc(tl);
    if (!tmp) return copy_fail(err, errlen, "out of memory");
    snprintf(tmp, tl, "%s.tmp", dst);
    FILE *in = fopen(src, "rb");
    FILE *out = in ? fopen(tmp, "wb") : NULL;
    rc = 0;
    if (!in || !out) {
        rc = copy_fail(err, errlen, "%s: cannot open", !in ? src : tmp);
    } else if (copy_prefix(in, out, keep)) {
        rc = copy_fail(err, errlen, "copying %s to %s failed", src, tmp);
    } else {
        uint64_t pos = keep;
        static const uint8_t zeros[MF_IW_RESIDENT_ALIGN];
        for (size_t k = 0; k < n && !rc; k++) {
            if (!secs[k].data) continue; /* dropped, not replaced */
            uint64_t pad = (MF_IW_RESIDENT_ALIGN - pos % MF_IW_RESIDENT_ALIGN) % MF_IW_RESIDENT_ALIGN;
            uint64_t bytes = secs[k].bytes;
            if ((pad && fwrite(zeros, 1, (size_t)pad, out) != pad) ||
                (bytes && fwrite(secs[k].data, 1, (size_t)bytes, out) != bytes)) {
                rc = copy_fail(err, errlen, "%s: write failed", tmp);
            } else {
                add_sec(&h, secs[k].kind, secs[k].count, pos + pad, bytes,
                        mf_crc32(0, secs[k].data, (size_t)bytes));
                pos += pad + bytes;
            }
        }
        if (!rc) {
            h.image_bytes = pos;
            uint8_t hb[MF_HEADER_BYTES];
            mf_image_encode_header(&h, hb);
            if (fseeko(out, 0, SEEK_SET) != 0 || fwrite(hb, 1, sizeof hb, out) != sizeof hb)
                rc = copy_fail(err, errlen, "%s: cannot write the header", tmp);
        }
    }
    if (in) fclose(in);
    if (out && fclose(out) != 0 && !rc) rc = copy_fail(err, errlen, "%s: write failed on close", tmp);
    if (!rc && rename(tmp, dst) != 0) rc = copy_fail(err, errlen, "cannot rename %s to %s", tmp, dst);
    if (rc) remove(tmp);
    free(tmp);
    return rc;
}

int mf_image_copy_with_section(const char *src, const char *dst, uint32_t kind, uint32_t count,
                               const void *data, uint64_t bytes, char *err, size_t errlen)
{
    mf_extra_section one = {kind, count, data, bytes};
    return mf_image_copy_with_sections(src, dst, &one, 1, err, errlen);
}
