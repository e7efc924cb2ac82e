/* Dual precision (HOBBIT fallback, opt.fallback_stall_ns) on the tiny model
 * through the simulated mcu-qspi flash (66.5 MB/s; one q8 expert ~1.6 ms):
 *  - threshold 0 on an image with q2 fallback copies: logits bit-identical
 *    to the same image without fallback copies, no fallback read;
 *  - threshold 1 ns: every expert read is the q2 copy, so the logits are
 *    bit-identical to a uniform-q2 image's, and since a copy is never kept
 *    for a later get(), a second pass over the same tokens with slots for
 *    all 64 experts still has no hit;
 *  - threshold 2 ms (between one and two q8 reads): the second demand read
 *    of a layer takes the copy: fallback reads > 0, less stall and fewer
 *    bytes than without, loss below the q2 image's, logits differ from q8's
 *    (48 tokens are too few to order it against q8's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../experts/store.h"
#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"
#include "../runtime/moeflash.h"
#include "../runtime/quant.h"
#include "../tools/lib/convert.h"
#include "../tools/lib/json.h"
#include "harness.h"
#include "store_fixture.h"

#define NT 48
static uint32_t ids[NT];

typedef struct {
    mf_stats st;
    double bits;
    int rc;
} result;

/* Feeds the tokens one at a time (passes times, reset between), logits to out. */
static result run(const char *img, uint64_t thr, uint32_t slots, int passes, float *out)
{
    result r;
    memset(&r, 0, sizeof r);
    mf_port fp, sim;
    mf_posix_port_state ps;
    mf_sim_state ss;
    if (mf_posix_port_open(&fp, &ps, img) != MF_PORT_OK) {
        r.rc = -1;
        return r;
    }
    const mf_sim_profile *prof = mf_sim_profile_find("mcu-qspi");
    mf_sim_port_open(&sim, &ss, &fp, prof, NULL);
    mf_options o;
    mf_options_default(&o);
    o.context_len = NT;
    o.prefill_batch = 1;
    o.expert_slots = slots;
    o.fallback_stall_ns = thr;
    o.flash_ns_per_byte = (float)(1e9 / prof->bandwidth);
    size_t bytes;
    void *arena = NULL;
    mf_model *m;
    r.rc = mf_arena_bytes(&sim, &o, &bytes);
    if (!r.rc && !(arena = malloc(bytes))) r.rc = -1;
    if (!r.rc) r.rc = mf_init(&m, &sim, &o, arena, bytes);
    for (int p = 0; p < passes && !r.rc; p++) {
        r.rc = mf_reset(m);
        if (!r.rc) r.rc = mf_feed_all(m, ids, NT, out);
    }
    if (!r.rc) {
        uint32_t V = mf_vocab_size(m);
        double nats = 0;
        for (uint32_t i = 0; i + 1 < NT; i++) {
            const float *l = out + (size_t)i * V;
            double mx = l[0], s = 0;
            for (uint32_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
            for (uint32_t j = 0; j < V; j++) s += exp((double)l[j] - mx);
            nats += mx + log(s) - l[ids[i + 1]];
        }
        r.bits = nats / (NT - 1) / log(2.0);
        mf_get_stats(m, &r.st);
    }
    free(arena);
    mf_posix_port_close(&fp);
    return r;
}

static int make_img(const char *path, int expert, int fallback)
{
    mf_convert_options o;
    mf_convert_result cr;
    char err[256];
    mf_convert_options_default(&o);
    o.resident_encoding = MF_ENC_Q8;
    o.expert_encoding = expert;
    o.fallback_encoding = fallback;
    if (mf_convert("models/tiny-shakespeare-moe", path, &o, &cr, err, sizeof err)) {
        fprintf(stderr, "convert: %s\n", err);
        return -1;
    }
    return 0;
}

/* The store on its own over a memory copy of a fallback image (synchronous
 * reads, one slot, verify_experts 2, no retry), the fallback threshold set
 * by hand before each get(). docs/quantization.md: "With verify_experts = 2
 * a fallback copy is always CRC-checked (it does not mark the expert
 * verified)". (0, 0)'s full blob and (0, 1)'s low-bit copy have a flipped
 * byte. */
typedef struct {
    mf_mem_port_state ms;
    mf_port port;
    mf_image_header h;
    mf_expert_store s;
    mf_stats st;
    void *arena;
} fb_store;

static int fb_store_open(fb_store *u, const uint8_t *buf, size_t len)
{
    memset(u, 0, sizeof *u);
    if (mf_mem_port_open(&u->port, &u->ms, buf, len) != MF_PORT_OK) return -1;
    mf_options o;
    mf_options_default(&o);
    o.expert_slots = 1;
    o.policy = MF_POLICY_LRU;
    o.verify_experts = 2;
    o.max_retries = 0;
    o.fallback_stall_ns = 1;
    o.flash_ns_per_byte = 1.0f;
    return mf_test_store_open(&u->port, &u->port, &o, &u->h, &u->s, &u->st, &u->arena);
}

/* get() + release() of (0, e), the low-bit copy when `copy`. */
static int fb_get(fb_store *u, uint32_t e, int copy)
{
    const uint8_t *blob;
    int enc;
    u->s.fallback_stall_ns = copy ? 1u : 0u;
    uint64_t fb0 = u->st.fallback_reads;
    int rc = mf_store_get(&u->s, 0, e, &blob, &enc);
    if (rc == MF_OK) mf_store_release(&u->s, 0, e);
    if ((u->st.fallback_reads > fb0) != copy) return 99; /* not the read asked for */
    return rc;
}

static void fallback_verification(const char *path)
{
    size_t len = 0;
    uint8_t *buf = (uint8_t *)mf_read_file(path, &len);
    fb_store u;
    CHECK(buf && fb_store_open(&u, buf, len) == 0 && u.s.fb_dir, "store over the fallback image");
    if (!buf || !u.arena || !u.s.fb_dir) {
        free(buf);
        free(u.arena);
        return;
    }
    mf_expert_entry full0 = u.s.dir[0], copy1 = u.s.fb_dir[1];
    buf[full0.offset + full0.bytes / 2] ^= 0x10;
    buf[copy1.offset + copy1.bytes / 2] ^= 0x10;
    /* (0, 0): its copy verifies, then its full blob (first read) must be checked */
    CHECK(fb_get(&u, 0, 1) == MF_OK, "(0, 0): the intact low-bit copy");
    CHECK(fb_get(&u, 0, 0) == MF_E_CRC, "(0, 0): the corrupt full blob after its copy -> MF_E_CRC");
    /* (0, 1): its full blob verifies, then its copy must still be checked */
    CHECK(fb_get(&u, 1, 0) == MF_OK, "(0, 1): the intact full blob");
    CHECK(fb_get(&u, 2, 0) == MF_OK && u.s.where[1] < 0, "(0, 2) evicts (0, 1)");
    CHECK(fb_get(&u, 1, 1) == MF_E_CRC, "(0, 1): the corrupt copy after the verified blob -> MF_E_CRC");
    CHECK(u.st.crc_failures == 2, "two CRC failures counted, got %llu",
          (unsigned long long)u.st.crc_failures);
    /* (0, 3): a corrupt copy, an intact full blob, one retry: the retry
     * reads the full expert (docs/quantization.md), so the read succeeds
     * at the full encoding. */
    mf_expert_entry copy3 = u.s.fb_dir[3];
    buf[copy3.offset + copy3.bytes / 2] ^= 0x10;
    u.s.max_retries = 1;
    uint64_t r0 = u.st.retries;
    const uint8_t *blob;
    int enc = -1;
    u.s.fallback_stall_ns = 1u;
    uint64_t fb0 = u.st.fallback_reads;
    int rc = mf_store_get(&u.s, 0, 3, &blob, &enc);
    CHECK(rc == MF_OK && u.st.fallback_reads == fb0 + 1 && u.st.retries == r0 + 1 &&
              enc == (int)u.s.dir[3].encoding && u.st.crc_failures == 3,
          "(0, 3): corrupt copy, retry of the full expert: rc %d, encoding %d (full %u), %llu retries",
          rc, enc, (unsigned)u.s.dir[3].encoding, (unsigned long long)(u.st.retries - r0));
    if (rc == MF_OK) mf_store_release(&u.s, 0, 3);
    free(u.arena);
    free(buf);
}

int main(void)
{
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "/tmp/mf_fb_%ld_a.img", (long)getpid());
    snprintf(b, sizeof b, "/tmp/mf_fb_%ld_b.img", (long)getpid());
    snprintf(c, sizeof c, "/tmp/mf_fb_%ld_c.img", (long)getpid());
    FILE *f = fopen("tests/data/tinyshakespeare.txt", "rb");
    CHECK(f != NULL, "text");
    if (!f) return mf_test_done("test_fallback");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, (long)((double)len * 0.9), SEEK_SET);
    for (int i = 0; i < NT; i++) ids[i] = (uint32_t)fgetc(f);
    fclose(f);
    int ok = !make_img(a, MF_ENC_Q8, MF_ENC_Q2) && !make_img(b, MF_ENC_Q8, -1) && !make_img(c, MF_ENC_Q2, -1);
    CHECK(ok, "images converted");
    if (ok) {
        size_t n = (size_t)NT * 256;
        float *la = malloc(n * sizeof *la), *lb = malloc(n * sizeof *lb), *lc = malloc(n * sizeof *lc);
        result rb = run(b, 0, 2, 1, lb);
        result ra = run(a, 0, 2, 1, la);
        CHECK(ra.rc == 0 && rb.rc == 0, "runs %d %d", ra.rc, rb.rc);
        CHECK(!memcmp(la, lb, n * sizeof *la), "threshold 0: logits equal the no-fallback image's");
        CHECK(ra.st.fallback_reads == 0, "threshold 0: %llu fallback reads", (unsigned long long)ra.st.fallback_reads);

        result rc = run(c, 0, 2, 1, lc);
        result r1 = run(a, 1, 64, 2, la);
        CHECK(rc.rc == 0 && r1.rc == 0, "runs %d %d", rc.rc, r1.rc);
        CHECK(!memcmp(la, lc, n * sizeof *la), "threshold 1 ns: logits equal the uniform-q2 image's");
        CHECK(r1.st.hits == 0 && r1.st.fallback_reads == r1.st.misses && r1.st.misses > 0,
              "threshold 1 ns, 64 slots, 2 passes: hits %llu misses %llu fallback %llu",
              (unsigned long long)r1.st.hits, (unsigned long long)r1.st.misses,
              (unsigned long long)r1.st.fallback_reads);

        result r2 = run(a, 2000000, 2, 1, la);
        CHECK(r2.rc == 0, "run %d", r2.rc);
        CHECK(r2.st.fallback_reads > 0 && r2.st.fallback_reads < r2.st.misses,
              "threshold 2 ms: fallback %llu of %llu misses", (unsigned long long)r2.st.fallback_reads,
              (unsigned long long)r2.st.misses);
        CHECK(r2.st.stall_ns < ra.st.stall_ns && r2.st.flash_bytes < ra.st.flash_bytes,
              "stall %llu vs %llu ns, bytes %llu vs %llu", (unsigned long long)r2.st.stall_ns,
              (unsigned long long)ra.st.stall_ns, (unsigned long long)r2.st.flash_bytes,
              (unsigned long long)ra.st.flash_bytes);
        CHECK(r2.bits < rc.bits && memcmp(la, lb, n * sizeof *la) != 0,
              "bits %.4f below the q2 image's %.4f (q8 %.4f), logits differ from q8's", r2.bits, rc.bits,
              rb.bits);
        printf("test_fallback: %d tokens, mcu-qspi: q8 %.4f bits stall %.1f ms | fallback@2ms %.4f bits "
               "stall %.1f ms, %llu of %llu misses | q2 %.4f bits\n",
               NT, rb.bits, ra.st.stall_ns / 1e6, r2.bits, r2.st.stall_ns / 1e6,
               (unsigned long long)r2.st.fallback_reads, (unsigned long long)r2.st.misses, rc.bits);
        free(la), free(lb), free(lc);
        fallback_verification(a);
    }
    remove(a), remove(b), remove(c);
    return mf_test_done("test_fallback");
}
