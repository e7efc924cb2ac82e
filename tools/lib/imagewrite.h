/*
 * Writing moeflash images (host only). See docs/image-format.md.
 *
 * The writer streams: tensors and expert blobs go to the file as they are
 * added, their table entries are kept in memory, and mf_iw_finish appends the
 * tables and small sections and finally writes the header (with every
 * section's CRC) at offset 0. The file layout is therefore
 *
 *   header | resident data | expert data (main blobs, then fallback blobs)
 *          | resident table | expert dir | fallback dir | other sections
 *
 * which a reader never relies on: it follows the section table. Resident
 * tensors start on 64-byte boundaries, expert blobs on page_size
 * boundaries, and the file is padded to a whole page at the end of the
 * expert data.
 *
 * Order of calls: mf_iw_open, every mf_iw_add_resident, then every
 * mf_iw_add_expert (main copies, then fallback copies), mf_iw_add_section
 * at any time, mf_iw_finish (or mf_iw_abort, which removes the file).
 */
#ifndef MF_IMAGEWRITE_H
#define MF_IMAGEWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../runtime/image.h"

#define MF_IW_RESIDENT_ALIGN 64u

typedef struct {
    uint32_t kind, count;
    uint8_t *data; /* owned copy */
    uint64_t bytes;
} mf_iw_section;

typedef struct {
    FILE *f;
    char *path;
    mf_image_header h;       /* hyper-parameters from the caller; sections at finish */
    uint64_t pos;            /* bytes written so far */
    int phase;               /* 0 resident, 1 expert blobs, 2 finished */
    uint64_t res_start, exp_start;
    mf_resident_entry *res;
    size_t n_res, cap_res;
    mf_expert_entry *dir, *fdir; /* [n_layers * n_experts]; fdir only with fallback */
    uint8_t *dir_set, *fdir_set; /* which entries were added */
    int has_fallback;
    mf_iw_section extra[MF_MAX_SECTIONS];
    size_t n_extra;
    char err[256];
} mf_image_writer;

/* Creates path and writes a placeholder header. `params` gives every
 * hyper-parameter field plus page_size and group_size (its version,
 * image_bytes and sections are ignored). With has_fallback the image gets a
 * MF_SEC_FALLBACK_DIR and every expert must be added twice. */
int mf_iw_open(mf_image_writer *w, const char *path, const mf_image_header *params,
               int has_fallback);

/* Appends one resident tensor already encoded (bytes must equal
 * mf_matrix_bytes(encoding, rows, cols, group)). Layer is 0 for the global
 * kinds (embed, final norm, lm_head). */
int mf_iw_add_resident(mf_image_writer *w, uint32_t kind, uint32_t layer, uint32_t encoding,
                       uint32_t rows, uint32_t cols, const void *data, uint64_t bytes);

/* Appends one expert blob (gate, up, down encoded back to back). */
int mf_iw_add_expert(mf_image_writer *w, int fallback, uint32_t layer, uint32_t expert,
                     uint32_t encoding, const void *blob, uint32_t bytes);

/* Adds a small section (tokenizer, predictor, statistics...), copied. A
 * kind given twice replaces the earlier one. */
int mf_iw_add_section(mf_image_writer *w, uint32_t kind, uint32_t count, const void *data,
                      uint64_t bytes);

/* Writes the tables, the sections and the header; closes the file. The
 * writer is freed either way. */
int mf_iw_finish(mf_image_writer *w);

/* Closes, removes the partial file and frees the writer. */
void mf_iw_abort(mf_image_writer *w);

/* A short name for a runtime MF_E_* code (host tools print it; kept here
 * so they do not need the runtime's mf_strerror). */
const char *mf_iw_error_name(int rc);

/* Encodes a header (with its CRC) into out[MF_HEADER_BYTES]. */
void mf_image_encode_header(const mf_image_header *h, uint8_t *out);

/* A section to add to an image (its kind, count, bytes). */
typedef struct {
    uint32_t kind, count;
    const void *data;
    uint64_t bytes;
} mf_extra_section;

/* Copies image src to dst with the n sections added, each replacing the
 * section of its kind when one exists (data NULL: the section of that kind
 * is dropped and nothing added), and the section table and CRCs
 * rewritten. The file is cut after the last section it keeps, so that
 * replacing sections at the end (as `moeflash profile` does) does not grow
 * it. The four structural sections (resident table/data, expert dir/data)
 * cannot be replaced. src may equal dst (the copy goes through dst.tmp and
 * a rename). 0, or -1 with a one-line message in err. */
int mf_image_copy_with_sections(const char *src, const char *dst, const mf_extra_section *secs,
                                size_t n, char *err, size_t errlen);
/* The same for one section. */
int mf_image_copy_with_section(const char *src, const char *dst, uint32_t kind, uint32_t count,
                               const void *data, uint64_t bytes, char *err, size_t errlen);

#endif
