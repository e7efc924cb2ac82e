/*
 * The quantisation report (make quant-report):
 *   build/bench/quant_report HF_DIR TEXT OUTDIR [--jobs N] [--val-windows N]
 *       [--calib-windows N]
 *  1. sensitivity of every expert at q4/q3/q2 on calibration text: 8
 *     windows of 256 tokens spread evenly over the TRAINING split (first 90%
 *     of TEXT); direct (delta calibration bits with only that expert
 *     quantised, all others f32) and the proxy; Spearman rank correlation
 *     of the two -> OUTDIR/quant_sensitivity.csv, stdout;
 *  2. images: all-f32, resident q8, uniform q8/q4/q3/q2, adaptive at several
 *     average bit budgets (allocated from the direct measurement and from the
 *     proxy); each scored on the whole VALIDATION split (last 10%) by the
 *     golden val_protocol (256-token windows, empty context each), the same
 *     computation as `moeflash ppl` -> OUTDIR/quant.csv, OUTDIR/quant.svg.
 * Images are converted to $TMPDIR and removed. Resident weights f32 unless
 * the row says otherwise, so rows differ only in the experts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../runtime/quant.h"
#include "../../tools/lib/convert.h"
#include "../../tools/lib/sensitivity.h"
#include "../../tools/lib/svgplot.h"

#define MAXCFG 32

typedef struct {
    char name[48], kind[16];
    int resident, uniform; /* uniform < 0: per-expert encs */
    int *encs;
    double target_bits;    /* adaptive budget, 0 otherwise */
    double pred;
    /* results */
    double expert_bytes, avg_bits, val_bits;
    int counts[MF_ENC_COUNT];
} cfg;

static const char *hf_dir;
static uint32_t *val_tok;
static uint32_t val_windows;
static size_t n_cfg;
static cfg cfgs[MAXCFG];
static uint64_t total_weights;

/* Child: convert and score one config, write "bytes val" to fd. */
static int run_cfg(const cfg *c, int idx, int fd)
{
    char path[512], err[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/mf_qreport_%ld_%d.img", tmp && *tmp ? tmp : "/tmp", (long)getpid(), idx);
    mf_convert_options o;
    mf_convert_result r;
    mf_convert_options_default(&o);
    o.resident_encoding = c->resident;
    o.expert_encoding = c->uniform >= 0 ? c->uniform : MF_ENC_F32;
    if (c->uniform < 0) {
        o.expert_encodings = c->encs;
        o.n_expert_encodings = total_weights; /* set by the parent: n_layers * n_experts */
    }
    if (mf_convert(hf_dir, path, &o, &r, err, sizeof err)) {
        fprintf(stderr, "quant_report: %s: %s\n", c->name, err);
        return 1;
    }
    double b = mf_sens_calib_bits(path, val_tok, 256, val_windows, NULL, NULL, NULL);
    remove(path);
    double rec[3] = {(double)idx, (double)r.expert_bytes, b};
    if (b < 0 || write(fd, rec, sizeof rec) != (ssize_t)sizeof rec) return 1;
    return 0;
}

static int run_all(int jobs)
{
    int fds[2];
    if (pipe(fds)) return -1;
    size_t next = 0;
    int running = 0, bad = 0;
    fflush(NULL);
    while (next < n_cfg || running) {
        while (running < jobs && next < n_cfg) {
            pid_t p = fork();
            if (p == 0) {
                close(fds[0]);
                _exit(run_cfg(&cfgs[next], (int)next, fds[1]));
            }
            if (p < 0) return -1;
            next++, running++;
        }
        int st;
        if (wait(&st) > 0) {
            running--;
            if (!WIFEXITED(st) || WEXITSTATUS(st)) bad = 1;
        }
    }
    close(fds[1]);
    double rec[3];
    size_t got = 0;
    while (read(fds[0], rec, sizeof rec) == (ssize_t)sizeof rec) {
        size_t i = (size_t)rec[0];
        if (i < n_cfg) cfgs[i].expert_bytes = rec[1], cfgs[i].val_bits = rec[2], got++;
    }
    close(fds[0]);
    return bad || got != n_cfg ? -1 : 0;
}

static cfg *add(const char *name, const char *kind, int resident, int uniform)
{
    cfg *c = &cfgs[n_cfg++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    c->resident = resident;
    c->uniform = uniform;
    return c;
}

int main(int argc, char **argv)
{
    int jobs = 2;
    uint32_t calib_windows = 8, vw = 0;
    if (argc < 4) {
        fprintf(stderr, "usage: quant_report HF_DIR TEXT OUTDIR [--jobs N] [--val-windows N] "
                        "[--calib-windows N]\n");
        return 2;
    }
    hf_dir = argv[1];
    const char *outdir = argv[3];
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--jobs")) jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--val-windows")) vw = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--calib-windows")) calib_windows = (uint32_t)atoi(argv[i + 1]);
    }
    if (jobs < 1) jobs = 1;
    size_t len;
    unsigned char *text = mf_sens_read_file(argv[2], &len);
    if (!text) {
        fprintf(stderr, "quant_report: cannot read %s\n", argv[2]);
        return 1;
    }
    size_t split = (size_t)((double)len * 0.9);
    /* calibration: windows spread evenly over the training split */
    size_t cw = 256, cn = calib_windows;
    unsigned char *calib = malloc(cw * cn);
    for (size_t k = 0; k < cn; k++) memcpy(calib + k * cw, text + (split - cw) * k / (cn - 1 ? cn - 1 : 1), cw);
    /* validation: bytes from split (byte-level model) */
    val_windows = (uint32_t)((len - split) / 256);
    if (vw && vw < val_windows) val_windows = vw;
    val_tok = malloc((size_t)val_windows * 256 * sizeof *val_tok);
    for (size_t i = 0; i < (size_t)val_windows * 256; i++) val_tok[i] = text[split + i];

    mf_sens_options so;
    mf_sens s;
    char err[512];
    mf_sens_options_default(&so);
    so.windows = (uint32_t)cn;
    so.direct = 1;
    so.jobs = jobs;
    so.direct_zero_enc = MF_ENC_Q8; /* q8 vs f32: ~0 (2.174598 vs 2.1746 on the whole split) */
    if (mf_sens_compute(hf_dir, calib, cw * cn, &so, &s, err, sizeof err)) {
        fprintf(stderr, "quant_report: %s\n", err);
        return 1;
    }
    size_t NE = (size_t)s.n_layers * s.n_experts, K = s.n_enc;
    total_weights = NE;
    char path[1024];
    snprintf(path, sizeof path, "%s/quant_sensitivity.csv", outdir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "layer,expert,routed_tokens,sum_w,sum_w2,encoding,weight_sq_err,proxy,direct_delta_bits\n");
    for (size_t j = 0; j < NE; j++)
        for (size_t k = 0; k < K; k++)
            fprintf(f, "%zu,%zu,%.0f,%.6f,%.6f,%s,%.6e,%.6e,%.6e\n", j / s.n_experts, j % s.n_experts,
                    s.route_count[j], s.route_w[j], s.route_w2[j], mf_encoding_name(s.enc[k]),
                    s.werr[j * K + k], s.proxy[j * K + k], s.direct[j * K + k]);
    fclose(f);

    /* Spearman: pooled over experts x (q4, q3, q2), and per encoding, for
     * the proxy and for simpler variants. */
    double *a = malloc(NE * K * sizeof *a), *b = malloc(NE * K * sizeof *b);
    printf("calibration: %u windows of 256 bytes from the training split, base %.5f bits/byte\n",
           (unsigned)cn, s.base_bits);
    const char *pname[4] = {"route_w2*werr (proxy)", "route_w*werr", "route_count*werr", "werr"};
    for (int v = 0; v < 4; v++) {
        printf("spearman %-22s:", pname[v]);
        for (int sel = -1; sel < (int)K; sel++) {
            size_t n = 0;
            for (size_t j = 0; j < NE; j++)
                for (size_t k = 0; k < K; k++) {
                    if (s.enc[k] == MF_ENC_Q8 && sel < 0) continue;
                    if (sel >= 0 && (int)k != sel) continue;
                    double m = v == 0 ? s.route_w2[j] : v == 1 ? s.route_w[j] : v == 2 ? s.route_count[j] : 1;
                    a[n] = m * s.werr[j * K + k];
                    b[n] = s.direct[j * K + k];
                    n++;
                }
            printf(" %s %.3f", sel < 0 ? "pooled(q4,q3,q2)" : mf_encoding_name(s.enc[sel]),
                   mf_spearman(a, b, n));
        }
        printf("\n");
    }
    free(a), free(b);

    /* configurations */
    add("f32", "reference", MF_ENC_F32, MF_ENC_F32);
    add("resident_q8", "resident", MF_ENC_Q8, MF_ENC_F32);
    const int uni[4] = {MF_ENC_Q8, MF_ENC_Q4, MF_ENC_Q3, MF_ENC_Q2};
    for (int u = 0; u < 4; u++) {
        char nm[48];
        snprintf(nm, sizeof nm, "uniform_%s", mf_encoding_name(uni[u]));
        add(nm, "uniform", MF_ENC_F32, uni[u]);
    }
    const double budgets[] = {2.75, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0};
    const size_t nb = sizeof budgets / sizeof *budgets;
    for (int src = 0; src < 2; src++)
        for (size_t i = 0; i < nb; i++) {
            if (src == 1 && !(budgets[i] == 3.0 || budgets[i] == 4.0)) continue;
            char nm[48];
            snprintf(nm, sizeof nm, "adaptive_%s_%.2f", src ? "proxy" : "direct", budgets[i]);
            cfg *c = add(nm, src ? "adaptive_proxy" : "adaptive_direct", MF_ENC_F32, -1);
            c->encs = malloc(NE * sizeof *c->encs);
            c->target_bits = budgets[i];
            uint64_t eb;
            if (mf_sens_choose(&s, src ? s.proxy : s.direct, mf_sens_budget_for_bits(&s, budgets[i]),
                               c->encs, &c->pred, &eb)) {
                fprintf(stderr, "quant_report: allocation failed at %.2f bits\n", budgets[i]);
                return 1;
            }
            for (size_t j = 0; j < NE; j++) c->counts[c->encs[j]]++;
        }
    if (run_all(jobs)) {
        fprintf(stderr, "quant_report: a run failed\n");
        return 1;
    }
    double ref = cfgs[0].val_bits;
    snprintf(path, sizeof path, "%s/quant.csv", outdir);
    f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "config,kind,resident,experts,expert_bytes,avg_bits,val_bits_per_byte,ratio_vs_f32,"
               "n_q8,n_q4,n_q3,n_q2,predicted_loss\n");
    for (size_t i = 0; i < n_cfg; i++) {
        cfg *c = &cfgs[i];
        c->avg_bits = 8.0 * c->expert_bytes / ((double)s.expert_weights * (double)NE);
        if (c->uniform >= 0) c->counts[c->uniform] = (int)NE;
        fprintf(f, "%s,%s,%s,%s,%.0f,%.4f,%.6f,%.6f,%d,%d,%d,%d,%.6g\n", c->name, c->kind,
                mf_encoding_name(c->resident), c->uniform >= 0 ? mf_encoding_name(c->uniform) : "mixed",
                c->expert_bytes, c->avg_bits, c->val_bits, c->val_bits / ref, c->counts[MF_ENC_Q8],
                c->counts[MF_ENC_Q4], c->counts[MF_ENC_Q3], c->counts[MF_ENC_Q2], c->pred);
        printf("%-24s experts %9.0f bytes  %.3f bits  val %.6f bits/byte  x%.5f\n", c->name,
               c->expert_bytes, c->avg_bits, c->val_bits, c->val_bits / ref);
    }
    fclose(f);

    /* plot */
    svgplot *p = svgplot_new("tiny-shakespeare-moe: validation bits/byte vs expert bytes",
                             "expert bytes (MB, all 64 experts)", "validation bits/byte");
    const char *kinds[3] = {"uniform", "adaptive_direct", "adaptive_proxy"};
    const char *labels[3] = {"uniform q8/q4/q3/q2", "adaptive (direct sensitivity)", "adaptive (proxy)"};
    for (int k = 0; k < 3; k++) {
        double x[MAXCFG], y[MAXCFG];
        size_t n = 0;
        for (size_t i = 0; i < n_cfg; i++)
            if (!strcmp(cfgs[i].kind, kinds[k])) x[n] = cfgs[i].expert_bytes / 1e6, y[n++] = cfgs[i].val_bits;
        /* sort by x */
        for (size_t u = 1; u < n; u++)
            for (size_t v = u; v > 0 && x[v] < x[v - 1]; v--) {
                double t = x[v]; x[v] = x[v - 1]; x[v - 1] = t;
                t = y[v]; y[v] = y[v - 1]; y[v - 1] = t;
            }
        svgplot_add(p, labels[k], x, y, n, SVGPLOT_LINE | SVGPLOT_MARKERS);
    }
    {
        double x[2] = {1.5, 7.0}, y[2] = {ref, ref};
        svgplot_add(p, "f32 experts", x, y, 2, SVGPLOT_LINE);
        double y1[2] = {2.1746 * 1.01, 2.1746 * 1.01}, y3[2] = {2.1746 * 1.03, 2.1746 * 1.03};
        svgplot_add(p, "target x1.01", x, y1, 2, SVGPLOT_LINE);
        svgplot_add(p, "target x1.03", x, y3, 2, SVGPLOT_LINE);
    }
    svgplot_set_y_range(p, 2.16, 2.34);
    snprintf(path, sizeof path, "%s/quant.svg", outdir);
    svgplot_write(p, path);
    svgplot_free(p);
    mf_sens_free(&s);
    free(text), free(calib), free(val_tok);
    return 0;
}
