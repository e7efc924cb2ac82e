/*
 * The forward pass against transformers (golden.json, float64). For every
 * shipped model: convert to an f32 image with `$BUILD/moeflash convert`,
 * then for every golden case
 *  - logits at every position: max|d logit| <= 1e-4 * max|logit| of that
 *    position;
 *  - the same top-k expert set at every layer and position, and routing
 *    weights within 1e-4;
 *  - the greedy continuation (feed the prompt, argmax, feed, ...) equal to
 *    golden's greedy_continuation.
 * Also q8 images: greedy matches and bits per byte are reported; for the
 * tiny model the q8 bits/byte on the first validation windows must be
 * within 1% of f32's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"

static const char *BUILD = "build";
static char tmpdir[256];

typedef struct {
    mf_posix_port_state st;
    mf_port port;
    void *arena;
    mf_model *m;
} model_h;

static int convert(const char *dir, const char *out, const char *weights)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/moeflash convert %s %s --weights %s >/dev/null 2>&1", BUILD, dir,
             out, weights);
    return system(cmd);
}

static int open_model(model_h *mh, const char *img, uint32_t ctx, uint32_t batch)
{
    memset(mh, 0, sizeof *mh);
    if (mf_posix_port_open(&mh->port, &mh->st, img) != MF_PORT_OK) return MF_E_IO;
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = ctx;
    opt.prefill_batch = batch;
    opt.verify_experts = 1;
    size_t need;
    int rc = mf_arena_bytes(&mh->port, &opt, &need);
    if (rc) return rc;
    mh->arena = malloc(need);
    if (!mh->arena) return MF_E_ARENA;
    return mf_init(&mh->m, &mh->port, &opt, mh->arena, need);
}

static void close_model(model_h *mh)
{
    mf_posix_port_close(&mh->port);
    free(mh->arena);
    memset(mh, 0, sizeof *mh);
}

/* Routing recorded by the observer: [L][T][k]. */
typedef struct {
    uint32_t T, k, L;
    uint32_t *experts;
    float *weights;
    uint32_t calls;
} route_rec;

static void observe(void *user, uint32_t layer, uint32_t pos, const uint32_t *e, const float *w,
                    uint32_t k)
{
    route_rec *r = user;
    r->calls++;
    if (layer >= r->L || pos >= r->T || k != r->k) return;
    for (uint32_t j = 0; j < k; j++) {
        r->experts[((size_t)layer * r->T + pos) * k + j] = e[j];
        r->weights[((size_t)layer * r->T + pos) * k + j] = w[j];
    }
}

static uint32_t *json_ids(const mf_json *arr, uint32_t *n)
{
    *n = arr ? (uint32_t)arr->count : 0;
    uint32_t *ids = malloc(sizeof(uint32_t) * (*n + 1));
    uint32_t i = 0;
    for (const mf_json *c = arr ? arr->child : NULL; c; c = c->next) ids[i++] = (uint32_t)c->number;
    return ids;
}

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Greedy continuation of `prompt`: how many of the golden ids it matches
 * (counting up to the first difference). */
static uint32_t greedy_matches(mf_model *m, const uint32_t *prompt, uint32_t n, const uint32_t *cont,
                               uint32_t n_cont)
{
    mf_reset(m);
    if (mf_feed(m, prompt, n) != MF_OK) return 0;
    mf_sampler s;
    mf_sampler_init(&s, 0.0f, 1.0f, 1);
    uint32_t i;
    for (i = 0; i < n_cont; i++) {
        uint32_t tok;
        if (mf_sample(m, &s, &tok) != MF_OK || tok != cont[i]) break;
        if (i + 1 < n_cont && mf_feed(m, &tok, 1) != MF_OK) break;
    }
    return i;
}

/* Bits per token over the first n_win windows of `window` ids. */
static double bits_per_token(mf_model *m, const uint32_t *ids, uint32_t n_ids, uint32_t window,
                             uint32_t n_win)
{
    uint32_t V = mf_vocab_size(m);
    float *logits = malloc(sizeof(float) * (size_t)window * V);
    double nats = 0.0;
    uint64_t count = 0;
    for (uint32_t w = 0; w < n_win && (uint64_t)(w + 1) * window <= n_ids; w++) {
        const uint32_t *tok = ids + (size_t)w * window;
        mf_reset(m);
        if (mf_feed_all(m, tok, window, logits) != MF_OK) {
            free(logits);
            return NAN;
        }
        for (uint32_t i = 0; i + 1 < window; i++) {
            const float *l = logits + (size_t)i * V;
            double mx = l[argmax(l, V)], s = 0.0;
            for (uint32_t j = 0; j < V; j++) s += exp((double)l[j] - mx);
            nats += mx + log(s) - (double)l[tok[i + 1]];
            count++;
        }
    }
    free(logits);
    return count ? nats / (double)count / log(2.0) : NAN;
}

static double max_rel_err_all = 0.0;

static void check_model(const char *dir, const char *name)
{
    char path[512], f32img[512], q8img[512];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    size_t len;
    char *text = mf_read_file(path, &len);
    CHECK(text != NULL, "%s: cannot read %s", name, path);
    if (!text) return;
    mf_json_doc doc;
    int prc = mf_json_parse(&doc, text, len);
    CHECK(prc == 0, "%s: golden.json: %s", name, doc.error);
    if (prc) {
        free(text);
        return;
    }
    const mf_json *cases = mf_json_get(doc.root, "cases");
    CHECK(cases && cases->count > 0, "%s: no cases", name);

    snprintf(f32img, sizeof f32img, "%s/%s-f32.img", tmpdir, name);
    snprintf(q8img, sizeof q8img, "%s/%s-q8.img", tmpdir, name);
    int crc = convert(dir, f32img, "f32");
    CHECK(crc == 0, "%s: convert f32 failed (%d)", name, crc);
    int qrc = convert(dir, q8img, "q8");
    CHECK(qrc == 0, "%s: convert q8 failed (%d)", name, qrc);
    if (crc || qrc || !cases) goto out;

    model_h mh, mq;
    int rc = open_model(&mh, f32img, 256, 16);
    CHECK(rc == MF_OK, "%s: f32 init: %s", name, mf_strerror(rc));
    int rq = open_model(&mq, q8img, 256, 16);
    CHECK(rq == MF_OK, "%s: q8 init: %s", name, mf_strerror(rq));
    /* (both closed: a port left open would be reopened over by the next
     * model's, and its I/O thread would deadlock the program) */
    if (rc || rq) goto close;
    mf_info info;
    mf_model_info(mh.m, &info);
    uint32_t V = info.vocab, L = info.n_layers, K = info.top_k;

    double worst = 0.0;
    uint32_t q8_match = 0, q8_total = 0;
    int ci = 0;
    for (const mf_json *c = cases->child; c; c = c->next, ci++) {
        uint32_t T, n_cont;
        uint32_t *tokens = json_ids(mf_json_get(c, "tokens"), &T);
        uint32_t *cont = json_ids(mf_json_get(c, "greedy_continuation"), &n_cont);
        const mf_json *glog = mf_json_get(c, "logits");
        const mf_json *gexp = mf_json_get(c, "topk_experts");
        const mf_json *gw = mf_json_get(c, "topk_weights");
        CHECK(T > 0 && glog && glog->count == T && gexp && gexp->count == L && gw,
              "%s case %d: malformed golden", name, ci);
        if (!(T > 0 && glog && glog->count == T && gexp && gexp->count == L && gw)) {
            free(tokens);
            free(cont);
            continue;
        }
        float *logits = malloc(sizeof(float) * (size_t)T * V);
        route_rec rr = {T, K, L, calloc((size_t)L * T * K, sizeof(uint32_t)),
                        calloc((size_t)L * T * K, sizeof(float)), 0};
        mf_set_route_observer(mh.m, observe, &rr);
        mf_reset(mh.m);
        rc = mf_feed_all(mh.m, tokens, T, logits);
        mf_set_route_observer(mh.m, NULL, NULL);
        CHECK(rc == MF_OK, "%s case %d: feed: %s", name, ci, mf_strerror(rc));
        CHECK(rr.calls == L * T, "%s case %d: observer called %u times, expected %u", name, ci,
              rr.calls, L * T);

        /* Logits at every position. */
        uint32_t bad_pos = 0;
        const mf_json *row = glog->child;
        for (uint32_t t = 0; t < T && row; t++, row = row->next) {
            double mx = 0.0, err = 0.0;
            uint32_t j = 0;
            for (const mf_json *v = row->child; v && j < V; v = v->next, j++) {
                if (fabs(v->number) > mx) mx = fabs(v->number);
                double d = fabs((double)logits[(size_t)t * V + j] - v->number);
                if (d > err) err = d;
            }
            if (j != V || err > 1e-4 * mx) bad_pos++;
            if (mx > 0 && err / mx > worst) worst = err / mx;
        }
        CHECK(bad_pos == 0, "%s case %d: %u of %u positions with max|dlogit| > 1e-4 max|logit|", name,
              ci, bad_pos, T);

        /* The same expert set (order-free) at every layer and position. */
        uint32_t bad_sets = 0;
        double werr = 0.0;
        const mf_json *gl = gexp->child, *gwl = gw->child;
        for (uint32_t l = 0; l < L && gl && gwl; l++, gl = gl->next, gwl = gwl->next) {
            const mf_json *gt = gl->child, *gwt = gwl->child;
            for (uint32_t t = 0; t < T && gt && gwt; t++, gt = gt->next, gwt = gwt->next) {
                const uint32_t *mine = rr.experts + ((size_t)l * T + t) * K;
                const float *mw = rr.weights + ((size_t)l * T + t) * K;
                uint32_t found = 0;
                for (const mf_json *e = gt->child, *w = gwt->child; e && w; e = e->next, w = w->next)
                    for (uint32_t j = 0; j < K; j++)
                        if (mine[j] == (uint32_t)e->number) {
                            found++;
                            double d = fabs((double)mw[j] - w->number);
                            if (d > werr) werr = d;
                        }
                if (found != K || gt->count != K) bad_sets++;
            }
        }
        CHECK(bad_sets == 0, "%s case %d: %u (layer, position) with a different expert set", name,
              ci, bad_sets);
        CHECK(werr <= 1e-4, "%s case %d: routing weight error %.3g", name, ci, werr);

        /* Greedy continuation. */
        uint32_t g = greedy_matches(mh.m, tokens, T, cont, n_cont);
        CHECK(g == n_cont, "%s case %d: greedy continuation matches %u of %u", name, ci, g, n_cont);
        q8_match += greedy_matches(mq.m, tokens, T, cont, n_cont);
        q8_total += n_cont;

        free(rr.experts);
        free(rr.weights);
        free(logits);
        free(tokens);
        free(cont);
    }
    if (worst > max_rel_err_all) max_rel_err_all = worst;
    printf("%-22s f32: max |dlogit| / max|logit| = %.3g; q8: greedy continuation %u/%u ids match "
           "golden\n",
           name, worst, q8_match, q8_total);

    /* Bits per byte on the first validation windows, f32 and q8 (byte models). */
    if (V == 256) {
        size_t tl;
        char *tt = mf_read_file("tests/data/tinyshakespeare.txt", &tl);
        CHECK(tt != NULL, "cannot read tests/data/tinyshakespeare.txt");
        if (tt) {
            size_t off = (size_t)(tl * 0.9);
            uint32_t n = (uint32_t)(tl - off);
            uint32_t *ids = malloc(sizeof(uint32_t) * n);
            for (uint32_t i = 0; i < n; i++) ids[i] = (uint8_t)tt[off + i];
            const uint32_t W = 8;
            close_model(&mh);
            close_model(&mq);
            rc = open_model(&mh, f32img, 256, 256);
            rq = open_model(&mq, q8img, 256, 256);
            CHECK(rc == MF_OK && rq == MF_OK, "%s: reopen for ppl", name);
            if (rc || rq) {
                free(ids);
                free(tt);
                goto close;
            }
            double bf = bits_per_token(mh.m, ids, n, 256, W);
            double bq = bits_per_token(mq.m, ids, n, 256, W);
            printf("%-22s bits/byte on the first %u validation windows: f32 %.5f, q8 %.5f (%+.3f%%)\n",
                   name, W, bf, bq, 100.0 * (bq - bf) / bf);
            if (!strcmp(name, "tiny-shakespeare-moe"))
                CHECK(fabs(bq - bf) <= 0.01 * bf, "%s: q8 bits/byte %.5f not within 1%% of f32 %.5f",
                      name, bq, bf);
            free(ids);
            free(tt);
        }
    }
close:
    close_model(&mh);
    close_model(&mq);
out:
    remove(f32img);
    remove(q8img);
    mf_json_free(&doc);
    free(text);
}

/* argv[1..]: only these models (by name), so that each fits a per-program
 * time limit under valgrind (mk/valgrind_run.sh); none: all of them.
 * --list prints the names. */
int main(int argc, char **argv)
{
    static const char *models[][2] = {
        {"models/tiny-shakespeare-moe", "tiny-shakespeare-moe"},
        {"tests/data/arch-mixtral", "arch-mixtral"},
        {"tests/data/arch-olmoe", "arch-olmoe"},
        {"tests/data/arch-qwen2-moe", "arch-qwen2-moe"},
        {"tests/data/arch-qwen3-moe-fused", "arch-qwen3-moe-fused"},
        {"tests/data/small-qwen3-moe-bpe", "small-qwen3-moe-bpe"},
    };
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) printf("%s\n", models[i][1]);
        return 0;
    }
    const char *b = getenv("BUILD");
    if (b && *b) BUILD = b;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mf_golden_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        int want = argc < 2;
        for (int j = 1; j < argc; j++) want |= !strcmp(argv[j], models[i][1]);
        if (!want) continue;
        check_model(models[i][0], models[i][1]);
        ran++;
    }
    CHECK(ran > 0 && (argc < 2 || ran == argc - 1), "%d of the %d models named were found", ran,
          argc - 1);
    printf("largest relative logit error over all models: %.3g\n", max_rel_err_all);
    rmdir(tmpdir);
    return mf_test_done("test_golden");
}
