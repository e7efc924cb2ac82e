/*
 * libFuzzer harness: runtime/image.c. The input is the whole flash device,
 * read through a memory-backed port. mf_image_read_header runs with
 * verify_tables=1 twice: streamed through a small scratch buffer and
 * through map() (the XIP path). When the header is accepted, every
 * resident-table entry and every expert/fallback directory entry is
 * decoded, and each accepted entry must lie inside the image and the
 * device. Each input runs as it is and again with its checksums made right
 * (fuzz_image_crc.h), so that the checks behind them are reached.
 */
#include "fuzz_common.h"
#include "fuzz_image_crc.h"

#include "../runtime/image.h"
#include "../runtime/moeflash.h"
#include "../runtime/quant.h"

static void fuzz_image_entries(const mf_port *port, const mf_image_header *h, size_t size)
{
    const mf_section *rt = mf_image_section(h, MF_SEC_RESIDENT_TABLE);
    const mf_section *rd = mf_image_section(h, MF_SEC_RESIDENT_DATA);
    FUZZ_CHECK(rt && rd);
    for (uint32_t i = 0; i < rt->count; i++) {
        mf_resident_entry e;
        int rc = mf_image_resident_entry(port, h, i, &e);
        FUZZ_CHECK(rc <= 0);
        if (rc) continue;
        FUZZ_CHECK(e.encoding < MF_ENC_COUNT);
        FUZZ_CHECK(e.offset >= rd->offset && e.offset <= size && e.bytes <= size - e.offset);
        FUZZ_CHECK(e.offset + e.bytes <= rd->offset + rd->bytes);
    }
    mf_resident_entry e;
    FUZZ_CHECK(mf_image_resident_entry(port, h, rt->count, &e) == MF_E_ARG);

    const mf_section *xd = mf_image_section(h, MF_SEC_EXPERT_DATA);
    const uint32_t dirs[2] = {MF_SEC_EXPERT_DIR, MF_SEC_FALLBACK_DIR};
    for (int d = 0; d < 2; d++) {
        const mf_section *dir = mf_image_section(h, dirs[d]);
        if (!dir) continue;
        for (uint32_t l = 0; l < h->n_layers; l++) {
            for (uint32_t x = 0; x < h->n_experts; x++) {
                mf_expert_entry ee;
                int rc = mf_image_expert_entry(port, h, dirs[d], l, x, &ee);
                FUZZ_CHECK(rc <= 0);
                if (rc) continue;
                FUZZ_CHECK(ee.layer == l && ee.expert == x);
                FUZZ_CHECK(ee.encoding < MF_ENC_COUNT && ee.bytes > 0);
                FUZZ_CHECK(ee.offset % h->page_size == 0);
                FUZZ_CHECK(ee.offset >= xd->offset && ee.offset <= size &&
                           ee.bytes <= size - ee.offset);
                FUZZ_CHECK(ee.offset + ee.bytes <= xd->offset + xd->bytes);
            }
        }
        mf_expert_entry ee;
        FUZZ_CHECK(mf_image_expert_entry(port, h, dirs[d], h->n_layers, 0, &ee) == MF_E_ARG);
        FUZZ_CHECK(mf_image_expert_entry(port, h, dirs[d], 0, h->n_experts, &ee) == MF_E_ARG);
    }
}

static void fuzz_image_header_ok(const mf_image_header *h, size_t size)
{
    FUZZ_CHECK(h->version >= 1 && h->version <= MF_FORMAT_VERSION);
    FUZZ_CHECK(h->image_bytes >= MF_HEADER_BYTES && h->image_bytes <= size);
    FUZZ_CHECK(h->n_sections <= MF_MAX_SECTIONS);
    FUZZ_CHECK(h->top_k >= 1 && h->top_k <= h->n_experts);
    FUZZ_CHECK(h->n_kv_heads >= 1 && h->n_heads % h->n_kv_heads == 0);
    FUZZ_CHECK(h->page_size && (h->page_size & (h->page_size - 1)) == 0);
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const mf_section *s = &h->sections[i];
        FUZZ_CHECK(s->offset >= MF_HEADER_BYTES && s->offset <= h->image_bytes &&
                   s->bytes <= h->image_bytes - s->offset);
    }
}

static void image_case(const uint8_t *data, size_t size)
{
    mf_port port;
    fuzz_mem mem;
    uint8_t scratch[256];
    mf_image_header h1, h2;

    /* Streamed table CRCs (no map), scratch smaller than most tables. */
    fuzz_mem_port(&port, &mem, data, size, 0);
    int rc1 = mf_image_read_header(&port, &h1, 1, scratch, sizeof scratch);
    FUZZ_CHECK(rc1 <= 0 && rc1 >= MF_E_TOKEN);
    if (rc1 == MF_OK) {
        fuzz_image_header_ok(&h1, size);
        fuzz_image_entries(&port, &h1, size);
    }

    /* The same through map(): the result must not depend on the path. */
    fuzz_mem_port(&port, &mem, data, size, 1);
    int rc2 = mf_image_read_header(&port, &h2, 1, NULL, 0);
    FUZZ_CHECK(rc2 == rc1);
    if (rc2 == MF_OK) FUZZ_CHECK(memcmp(&h1, &h2, sizeof h1) == 0);

    /* Without table verification, the header alone. */
    int rc3 = mf_image_read_header(&port, &h2, 0, NULL, 0);
    FUZZ_CHECK(rc3 <= 0);
    if (rc1 == MF_OK) FUZZ_CHECK(rc3 == MF_OK);
    if (rc3 == MF_OK) {
        fuzz_image_header_ok(&h2, size);
        fuzz_image_entries(&port, &h2, size);
    }
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    image_case(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    fuzz_fix_crcs(fixed, size);
    image_case(fixed, size);
    free(fixed);
    return 0;
}
