/*
 * Per-expert quantisation sensitivity on calibration text (host only;
 * allocates, writes temporary images).
 *
 * For every expert (layer, expert) and candidate encoding:
 *  - direct (EdgeMoE's measurement, optional, slow): the calibration loss
 *    (bits per token) of an image whose experts are all at the base
 *    encoding except this one at the candidate encoding, minus the loss of
 *    the base image. One conversion and one calibration run per
 *    (expert, encoding).
 *  - proxy (cheap: one calibration run plus the weight errors): the
 *    squared routing weight summed over the calibration tokens routed to
 *    the expert, times the squared quantisation error of its weights,
 *    sum over gate/up/down of ||W - Q(W)||_F^2 (Q = encode then decode
 *    with the image's group size). The expert's contribution to the layer
 *    output is w * f(x), so a weight perturbation dW changes the output by
 *    about w * dW x; for roughly isotropic normalised inputs its expected
 *    energy is proportional to w^2 ||dW||_F^2.
 *
 * Calibration: the text is tokenised by the model (bytes for a byte-level
 * model) and cut into `windows` non-overlapping windows of `window` tokens,
 * each scored from an empty context (the golden val_protocol, applied to
 * calibration text -- callers must pass training text, not validation).
 */
#ifndef MF_TOOLS_SENSITIVITY_H
#define MF_TOOLS_SENSITIVITY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MF_SENS_MAX_ENC 8

typedef struct {
    int resident_encoding;   /* resident weights of the calibration images; default f32 */
    int base_encoding;       /* every other expert in the direct runs; default f32 */
    uint32_t group_size;     /* default 32 */
    uint32_t window;         /* tokens per calibration window; default 256 */
    uint32_t windows;        /* at most this many windows; default 16 */
    int enc[MF_SENS_MAX_ENC];/* candidate encodings; default q8 q4 q3 q2 */
    size_t n_enc;
    int direct;              /* also measure the direct sensitivity */
    int direct_zero_enc;     /* an encoding not measured directly (delta taken as 0,
                                e.g. MF_ENC_Q8 against an f32 base); -1 = none */
    int jobs;                /* direct runs in this many forked processes; 0/1 = serial */
    const char *tmp_dir;     /* temporary images; default $TMPDIR or /tmp */
    FILE *progress;          /* NULL = quiet */
} mf_sens_options;

typedef struct {
    uint32_t n_layers, n_experts;
    size_t n_enc;
    int enc[MF_SENS_MAX_ENC];
    uint64_t enc_bytes[MF_SENS_MAX_ENC]; /* bytes of one expert blob (all experts share a shape) */
    uint64_t expert_weights;             /* weights of one expert (3 matrices) */
    uint64_t calib_tokens;               /* tokens scored per calibration run */
    double base_bits;                    /* bits/token of the base image on the calibration */
    /* [n_layers * n_experts] */
    double *route_count;                 /* tokens routed to the expert (top-k) */
    double *route_w, *route_w2;          /* sum of routing weights, of their squares */
    /* [(layer * n_experts + expert) * n_enc + k] */
    double *werr;                        /* sum over the 3 matrices of ||W - Q(W)||^2 */
    double *proxy;                       /* route_w2 * werr */
    double *direct;                      /* delta bits/token; NULL unless options.direct */
} mf_sens;

void mf_sens_options_default(mf_sens_options *o);

/* 0 on success; -1 with a one-line message. */
int mf_sens_compute(const char *hf_dir, const unsigned char *calib, size_t calib_len,
                    const mf_sens_options *o, mf_sens *s, char *err, size_t errlen);
void mf_sens_free(mf_sens *s);

/* Spearman rank correlation of a[n] and b[n] (average ranks for ties). */
double mf_spearman(const double *a, const double *b, size_t n);

/* Calibration loss of an image (bits per token) over the given token windows;
 * with obs != NULL also accumulates routing statistics into count/w/w2
 * ([n_layers * n_experts]). -1 on error. Exposed for the report driver. */
double mf_sens_calib_bits(const char *img, const uint32_t *tokens, uint32_t window, uint32_t windows,
                          double *count, double *w, double *w2);

/* Reads a whole file (host helper). NULL on error; *len gets the size. */
unsigned char *mf_sens_read_file(const char *path, size_t *len);



/* Expert encodings minimising sum(loss) (loss laid out like s->proxy) with
 * the experts' total bytes <= budget: encodings[n_layers * n_experts] gets
 * MF_ENC_* values. 0, or -1 when the budget is below all-cheapest. */
int mf_sens_choose(const mf_sens *s, const double *loss, uint64_t budget, int *encodings,
                   double *pred_loss, uint64_t *bytes);

/* Expert bytes for an average of avg_bits bits per expert weight. */
uint64_t mf_sens_budget_for_bits(const mf_sens *s, double avg_bits);
#endif
