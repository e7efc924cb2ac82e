/* Per-expert quantisation sensitivity: direct measurement and proxy.
 * See sensitivity.h. */
#include "sensitivity.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../port/posix/posix_port.h"
#include "../../runtime/image.h"
#include "../../runtime/moeflash.h"
#include "../../runtime/quant.h"
#include "allocate.h"
#include "convert.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void mf_sens_options_default(mf_sens_options *o)
{
    memset(o, 0, sizeof *o);
    o->resident_encoding = MF_ENC_F32;
    o->base_encoding = MF_ENC_F32;
    o->group_size = 32;
    o->window = 256;
    o->windows = 16;
    o->enc[0] = MF_ENC_Q8;
    o->enc[1] = MF_ENC_Q4;
    o->enc[2] = MF_ENC_Q3;
    o->enc[3] = MF_ENC_Q2;
    o->n_enc = 4;
    o->direct_zero_enc = -1;
}

void mf_sens_free(mf_sens *s)
{
    free(s->route_count), free(s->route_w), free(s->route_w2);
    free(s->werr), free(s->proxy), free(s->direct);
    memset(s, 0, sizeof *s);
}

unsigned char *mf_sens_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    unsigned char *p;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return NULL;
    }
    p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

typedef struct {
    uint32_t n_experts;
    double *count, *w, *w2;
} route_acc;

static void on_route(void *user, uint32_t layer, uint32_t pos, const uint32_t *experts,
                     const float *weights, uint32_t k)
{
    route_acc *a = user;
    (void)pos;
    for (uint32_t i = 0; i < k; i++) {
        size_t j = (size_t)layer * a->n_experts + experts[i];
        a->count[j] += 1;
        a->w[j] += weights[i];
        a->w2[j] += (double)weights[i] * weights[i];
    }
}

typedef struct {
    mf_port port;
    mf_posix_port_state st;
    mf_model *m;
    void *arena;
} open_model;

static int model_open(open_model *om, const char *img, uint32_t window)
{
    mf_options opt;
    size_t bytes;
    memset(om, 0, sizeof *om);
    if (mf_posix_port_open(&om->port, &om->st, img) != MF_PORT_OK) return -1;
    mf_options_default(&opt);
    opt.context_len = window;
    opt.prefill_batch = window;
    if (mf_arena_bytes(&om->port, &opt, &bytes) != MF_OK || !(om->arena = malloc(bytes)) ||
        mf_init(&om->m, &om->port, &opt, om->arena, bytes) != MF_OK) {
        free(om->arena);
        mf_posix_port_close(&om->port);
        return -1;
    }
    return 0;
}

static void model_close(open_model *om)
{
    free(om->arena);
    mf_posix_port_close(&om->port);
}

double mf_sens_calib_bits(const char *img, const uint32_t *tokens, uint32_t window, uint32_t windows,
                          double *count, double *w, double *w2)
{
    open_model om;
    mf_info info;
    double nats = 0;
    uint64_t n = 0;
    if (!windows || window < 2 || model_open(&om, img, window)) return -1;
    mf_model_info(om.m, &info);
    route_acc acc = {info.n_experts, count, w, w2};
    if (count) mf_set_route_observer(om.m, on_route, &acc);
    uint32_t V = info.vocab;
    float *logits = malloc((size_t)window * V * sizeof *logits);
    if (!logits) {
        model_close(&om);
        return -1;
    }
    for (uint32_t k = 0; k < windows; k++) {
        const uint32_t *t = tokens + (size_t)k * window;
        if (mf_reset(om.m) != MF_OK || mf_feed_all(om.m, t, window, logits) != MF_OK) {
            n = 0;
            break;
        }
        for (uint32_t i = 0; i + 1 < window; i++) {
            nats += mf_token_nats(logits + (size_t)i * V, V, t[i + 1]);
            n++;
        }
    }
    free(logits);
    model_close(&om);
    return n ? nats / (double)n / log(2.0) : -1;
}

/* Sum of squared errors of one encoded matrix of floats. */
static double matrix_sq_err(int enc, const float *w, uint32_t rows, uint32_t cols, uint32_t group,
                            void *buf, float *row)
{
    double e = 0;
    mf_quantize_matrix(enc, w, rows, cols, group, buf);
    for (uint32_t r = 0; r < rows; r++) {
        mf_dequantize_row(enc, buf, r, cols, group, row);
        for (uint32_t c = 0; c < cols; c++) {
            double d = (double)row[c] - w[(size_t)r * cols + c];
            e += d * d;
        }
    }
    return e;
}


typedef struct {
    double v;
    size_t i;
} vi;

static int cmp_vi(const void *a, const void *b)
{
    const vi *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v ? 1 : 0;
}

static void ranks(const double *a, size_t n, double *r, vi *tmp)
{
    for (size_t i = 0; i < n; i++) tmp[i].v = a[i], tmp[i].i = i;
    qsort(tmp, n, sizeof *tmp, cmp_vi);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && tmp[j + 1].v == tmp[i].v) j++;
        double avg = (double)(i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++) r[tmp[k].i] = avg;
        i = j + 1;
    }
}

double mf_spearman(const double *a, const double *b, size_t n)
{
    double *ra = malloc(n * sizeof *ra), *rb = malloc(n * sizeof *rb);
    vi *tmp = malloc(n * sizeof *tmp);
    double res = NAN;
    if (ra && rb && tmp && n > 1) {
        ranks(a, n, ra, tmp);
        ranks(b, n, rb, tmp);
        double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
        for (size_t i = 0; i < n; i++) ma += ra[i], mb += rb[i];
        ma /= (double)n, mb /= (double)n;
        for (size_t i = 0; i < n; i++) {
            sab += (ra[i] - ma) * (rb[i] - mb);
            saa += (ra[i] - ma) * (ra[i] - ma);
            sbb += (rb[i] - mb) * (rb[i] - mb);
        }
        res = saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
    }
    free(ra), free(rb), free(tmp);
    return res;
}

static int convert_to(const char *hf_dir, const char *path, const mf_sens_options *o, int expert_enc,
                      const int *encs, size_t n_encs, char *err, size_t errlen)
{
    mf_convert_options co;
    mf_convert_result cr;
    char e2[256];
    mf_convert_options_default(&co);
    co.resident_encoding = o->resident_encoding;
    co.expert_encoding = expert_enc;
    co.expert_encodings = encs;
    co.n_expert_encodings = n_encs;
    co.group_size = o->group_size;
    if (mf_convert(hf_dir, path, &co, &cr, e2, sizeof e2)) {
        seterr(err, errlen, "calibration image: %s", e2);
        return -1;
    }
    return 0;
}

/* One worker's share of the direct runs: (expert j, encoding k) pairs with
 * (j * K + k) % jobs == w. Results as (index, value) pairs to fd, or into
 * s->direct when fd < 0. */
static int direct_worker(const char *hf_dir, const char *tmp, const mf_sens_options *o, mf_sens *s,
                         const uint32_t *tokens, uint32_t nwin, int *encs, int w, int jobs, int fd,
                         char *err, size_t errlen)
{
    size_t NE = (size_t)s->n_layers * s->n_experts, K = s->n_enc;
    char one[1024];
    snprintf(one, sizeof one, "%s/mf_sens_%ld_%d.img", tmp, (long)getpid(), w);
    for (size_t j = 0; j < NE; j++) encs[j] = -1;
    for (size_t j = 0; j < NE; j++)
        for (size_t k = 0; k < K; k++) {
            size_t idx = j * K + k;
            if ((int)(idx % (size_t)jobs) != w) continue;
            double d = 0;
            if (s->enc[k] != o->base_encoding && s->enc[k] != o->direct_zero_enc) { /* the base encoding: delta 0 by definition */
                encs[j] = s->enc[k];
                int bad = convert_to(hf_dir, one, o, o->base_encoding, encs, NE, err, errlen);
                encs[j] = -1;
                if (bad) {
                    remove(one);
                    return -1;
                }
                double b = mf_sens_calib_bits(one, tokens, o->window, nwin, NULL, NULL, NULL);
                if (b < 0) {
                    seterr(err, errlen, "sensitivity: calibration run failed on %s", one);
                    remove(one);
                    return -1;
                }
                d = b - s->base_bits;
            }
            if (fd >= 0) {
                double rec[2] = {(double)idx, d};
                if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec) return -1;
            } else {
                s->direct[idx] = d;
            }
            if (o->progress)
                fprintf(o->progress, "sensitivity: layer %zu expert %zu %s: %+.6f bits/token\n",
                        j / s->n_experts, j % s->n_experts, mf_encoding_name(s->enc[k]), d);
        }
    remove(one);
    return 0;
}

static int direct_runs(const char *hf_dir, const char *tmp, const mf_sens_options *o, mf_sens *s,
                       const uint32_t *tokens, uint32_t nwin, int *encs, char *err, size_t errlen)
{
    int jobs = o->jobs > 1 ? o->jobs : 1;
    size_t total = (size_t)s->n_layers * s->n_experts * s->n_enc, got = 0;
    if (jobs == 1) return direct_worker(hf_dir, tmp, o, s, tokens, nwin, encs, 0, 1, -1, err, errlen);
    int fds[2];
    if (pipe(fds)) {
        seterr(err, errlen, "sensitivity: pipe failed");
        return -1;
    }
    pid_t pids[64];
    if (jobs > 64) jobs = 64;
    fflush(NULL);
    for (int w = 0; w < jobs; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            close(fds[0]);
            int r = direct_worker(hf_dir, tmp, o, s, tokens, nwin, encs, w, jobs, fds[1], err, errlen);
            if (r && err) fprintf(stderr, "%s\n", err);
            _exit(r ? 1 : 0);
        }
        if (pids[w] < 0) {
            seterr(err, errlen, "sensitivity: fork failed");
            jobs = w;
            break;
        }
    }
    close(fds[1]);
    double rec[2];
    while (read(fds[0], rec, sizeof rec) == (ssize_t)sizeof rec) {
        size_t idx = (size_t)rec[0];
        if (idx < total) s->direct[idx] = rec[1], got++;
    }
    close(fds[0]);
    int ok = 1;
    for (int w = 0; w < jobs; w++) {
        int st;
        if (waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) ok = 0;
    }
    if (!ok || got != total) {
        seterr(err, errlen, "sensitivity: a direct-measurement worker failed (%zu of %zu results)", got,
               total);
        return -1;
    }
    return 0;
}

int mf_sens_compute(const char *hf_dir, const unsigned char *calib, size_t calib_len,
                    const mf_sens_options *o, mf_sens *s, char *err, size_t errlen)
{
    mf_sens_options def;
    char base[1024];
    const char *tmp = o && o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
    uint32_t *tokens = NULL;
    int rc = -1;
    open_model om;
    int have_model = 0;
    int *encs = NULL;
    float *wbuf = NULL, *row = NULL;
    void *qbuf = NULL;
    if (!o) {
        mf_sens_options_default(&def);
        o = &def;
    }
    memset(s, 0, sizeof *s);
    if (!tmp || !*tmp) tmp = "/tmp";
    if (!o->n_enc || o->n_enc > MF_SENS_MAX_ENC || o->window < 2 || !o->windows) {
        seterr(err, errlen, "sensitivity: bad options");
        return -1;
    }
    snprintf(base, sizeof base, "%s/mf_sens_%ld_base.img", tmp, (long)getpid());
    if (convert_to(hf_dir, base, o, o->base_encoding, NULL, 0, err, errlen)) return -1;
    if (model_open(&om, base, o->window)) {
        seterr(err, errlen, "sensitivity: cannot open the calibration image %s", base);
        goto out;
    }
    have_model = 1;
    mf_info info;
    mf_model_info(om.m, &info);
    s->n_layers = info.n_layers;
    s->n_experts = info.n_experts;
    s->n_enc = o->n_enc;
    memcpy(s->enc, o->enc, o->n_enc * sizeof *o->enc);

    /* Calibration tokens. */
    size_t want = (size_t)o->window * o->windows;
    uint32_t ntok = 0;
    tokens = malloc(want * sizeof *tokens);
    if (!tokens) goto oom;
    if (!info.has_tokenizer) {
        ntok = (uint32_t)(calib_len < want ? calib_len : want);
        for (uint32_t i = 0; i < ntok; i++) tokens[i] = calib[i];
    } else {
        size_t take = calib_len < want * 16 ? calib_len : want * 16;
        if (mf_encode(om.m, (const char *)calib, take, tokens, (uint32_t)want, &ntok) != MF_OK) {
            seterr(err, errlen, "sensitivity: cannot tokenise the calibration text");
            goto out;
        }
        if (ntok > want) ntok = (uint32_t)want;
    }
    uint32_t nwin = ntok / o->window;
    if (!nwin) {
        seterr(err, errlen, "sensitivity: calibration text shorter than one window of %u tokens",
               o->window);
        goto out;
    }
    s->calib_tokens = (uint64_t)nwin * (o->window - 1);

    size_t NE = (size_t)s->n_layers * s->n_experts, K = s->n_enc;
    s->route_count = calloc(NE, sizeof(double));
    s->route_w = calloc(NE, sizeof(double));
    s->route_w2 = calloc(NE, sizeof(double));
    s->werr = calloc(NE * K, sizeof(double));
    s->proxy = calloc(NE * K, sizeof(double));
    if (!s->route_count || !s->route_w || !s->route_w2 || !s->werr || !s->proxy) goto oom;
    model_close(&om);
    have_model = 0;
    s->base_bits = mf_sens_calib_bits(base, tokens, o->window, nwin, s->route_count, s->route_w,
                                      s->route_w2);
    if (s->base_bits < 0) {
        seterr(err, errlen, "sensitivity: calibration run failed on %s", base);
        goto out;
    }

    /* Weight errors from the base image's expert blobs (must be f32). */
    if (o->base_encoding != MF_ENC_F32) {
        /* decode the blobs to f32 below anyway; keep it simple: require f32 */
        seterr(err, errlen, "sensitivity: the base encoding must be f32 for the weight errors");
        goto out;
    }
    {
        mf_port port;
        mf_posix_port_state st;
        mf_image_header h;
        if (mf_posix_port_open(&port, &st, base) != MF_PORT_OK ||
            mf_image_read_header(&port, &h, 0, NULL, 0) != MF_OK) {
            seterr(err, errlen, "sensitivity: cannot read %s", base);
            goto out;
        }
        uint32_t H = h.hidden, F = h.expert_ffn, G = o->group_size;
        size_t nw = (size_t)3 * H * F;
        s->expert_weights = nw;
        for (size_t k = 0; k < K; k++)
            s->enc_bytes[k] = 2 * mf_matrix_bytes(s->enc[k], F, H, G) + mf_matrix_bytes(s->enc[k], H, F, G);
        wbuf = malloc(nw * sizeof *wbuf);
        row = malloc((H > F ? H : F) * sizeof *row);
        qbuf = malloc(mf_matrix_bytes(MF_ENC_F32, F, H, G));
        if (!wbuf || !row || !qbuf) {
            mf_posix_port_close(&port);
            goto oom;
        }
        for (uint32_t l = 0; l < s->n_layers; l++)
            for (uint32_t x = 0; x < s->n_experts; x++) {
                mf_expert_entry e;
                if (mf_image_expert_entry(&port, &h, MF_SEC_EXPERT_DIR, l, x, &e) != MF_OK ||
                    e.encoding != MF_ENC_F32 || e.bytes != nw * 4 ||
                    port.read(&port, e.offset, wbuf, nw * 4) != MF_PORT_OK) {
                    mf_posix_port_close(&port);
                    seterr(err, errlen, "sensitivity: cannot read expert %u of layer %u", x, l);
                    goto out;
                }
                size_t j = (size_t)l * s->n_experts + x;
                for (size_t k = 0; k < K; k++) {
                    double se = matrix_sq_err(s->enc[k], wbuf, F, H, G, qbuf, row) +
                                matrix_sq_err(s->enc[k], wbuf + (size_t)F * H, F, H, G, qbuf, row) +
                                matrix_sq_err(s->enc[k], wbuf + (size_t)2 * F * H, H, F, G, qbuf, row);
                    s->werr[j * K + k] = se;
                    s->proxy[j * K + k] = s->route_w2[j] * se;
                }
            }
        mf_posix_port_close(&port);
        /* done with them: freed before the direct runs fork their workers,
         * which would carry them to _exit (memcheck calls that a leak) */
        free(wbuf), free(row), free(qbuf);
        wbuf = row = NULL;
        qbuf = NULL;
    }
    if (o->progress)
        fprintf(o->progress, "sensitivity: base %.5f bits/token over %u windows of %u tokens\n",
                s->base_bits, nwin, o->window);

    if (o->direct) {
        s->direct = calloc(NE * K, sizeof(double));
        encs = malloc(NE * sizeof *encs);
        if (!s->direct || !encs) goto oom;
        if (direct_runs(hf_dir, tmp, o, s, tokens, nwin, encs, err, errlen)) goto out;
    }
    rc = 0;
    goto out;
oom:
    seterr(err, errlen, "sensitivity: out of memory");
out:
    if (have_model) model_close(&om);
    free(tokens), free(encs), free(wbuf), free(row), free(qbuf);
    remove(base);
    if (rc) mf_sens_free(s);
    return rc;
}

int mf_sens_choose(const mf_sens *s, const double *loss, uint64_t budget, int *encodings,
                   double *pred_loss, uint64_t *bytes)
{
    size_t NE = (size_t)s->n_layers * s->n_experts, K = s->n_enc;
    uint64_t *b = calloc(NE * K + 1, sizeof *b);
    int *ch = malloc(NE * sizeof *ch);
    mf_alloc_result r;
    int rc = -1;
    if (b && ch) {
        for (size_t j = 0; j < NE; j++)
            for (size_t k = 0; k < K; k++) b[j * K + k] = s->enc_bytes[k];
        if (mf_allocate(NE, K, loss, b, budget, ch, &r) == 0) {
            for (size_t j = 0; j < NE; j++) encodings[j] = s->enc[ch[j]];
            if (pred_loss) *pred_loss = r.loss;
            if (bytes) *bytes = r.bytes;
            rc = 0;
        }
    }
    free(b), free(ch);
    return rc;
}

uint64_t mf_sens_budget_for_bits(const mf_sens *s, double avg_bits)
{
    return (uint64_t)floor(avg_bits * (double)s->expert_weights * s->n_layers * s->n_experts / 8.0 + 1e-9);
}
