/* Greedy, temperature and top-p sampling (sampler.h). No heap, no libc sort. */
#include "sampler.h"

#include <math.h>

#include "model.h"
#include "ops.h"

void mf_sampler_init(mf_sampler *s, float temperature, float top_p, uint64_t seed)
{
    if (!s) return;
    s->temperature = temperature;
    s->top_p = top_p;
    /* splitmix64 of the seed: never zero, and nearby seeds differ at once. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    s->state = z ? z : 0x2545F4914F6CDD1Dull;
}

float mf_sampler_random(mf_sampler *s)
{
    uint64_t x = s->state;
    if (!x) x = 0x2545F4914F6CDD1Dull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->state = x;
    return (float)((x * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

/* a ranks before b: higher probability, then lower id. */
static int before(const float *p, uint32_t a, uint32_t b)
{
    if (p[a] != p[b]) return p[a] > p[b];
    return a < b;
}

double mf_token_nats(const float *logits, uint32_t vocab, uint32_t target)
{
    if (!logits || vocab == 0 || target >= vocab) return NAN;
    double mx = logits[0];
    for (uint32_t j = 1; j < vocab; j++)
        if (logits[j] > mx) mx = logits[j];
    double s = 1.0; /* the max's own term, exp(0) */
    int max_seen = 0;
    for (uint32_t j = 0; j < vocab; j++) {
        if (!max_seen && logits[j] == mx) {
            max_seen = 1;
            continue;
        }
        s += exp((double)logits[j] - mx);
    }
    return mx + log(s) - (double)logits[target];
}

/* Heap sort of idx[0..n) by `before` (a total order, so the result is unique). */
static void sift(const float *p, uint32_t *idx, uint32_t i, uint32_t n)
{
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) return;
        /* max-heap on "ranks after", so that the sorted array ranks first-to-last */
        if (c + 1 < n && before(p, idx[c], idx[c + 1])) c++;
        if (before(p, idx[i], idx[c])) {
            uint32_t t = idx[i];
            idx[i] = idx[c];
            idx[c] = t;
            i = c;
        } else {
            return;
        }
    }
}

static void sort_desc(const float *p, uint32_t *idx, uint32_t n)
{
    /* Heap whose root is the element that ranks last; popping it to the end
     * leaves the array in ranking order. */
    for (uint32_t i = n / 2; i-- > 0;) sift(p, idx, i, n);
    for (uint32_t end = n; end > 1; end--) {
        uint32_t t = idx[0];
        idx[0] = idx[end - 1];
        idx[end - 1] = t;
        sift(p, idx, 0, end - 1);
    }
}

int mf_sample_logits(const float *logits, uint32_t n, mf_sampler *s, float *probs, uint32_t *idx,
                     uint32_t *token)
{
    if (!logits || !s || !token || n == 0) return MF_E_ARG;
    if (!(s->temperature > 0.0f)) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        *token = best;
        return MF_OK;
    }
    if (!probs || !idx) return MF_E_ARG;
    float mx = logits[0];
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        /* mf_expf, not libm's: a seed samples the same text on every target */
        probs[i] = mf_expf((logits[i] - mx) / s->temperature);
        sum += probs[i];
    }
    for (uint32_t i = 0; i < n; i++) probs[i] = (float)(probs[i] / sum);

    uint32_t m = n;
    double mass = 1.0;
    if (s->top_p > 0.0f && s->top_p < 1.0f) {
        /* Candidates below (1 - top_p) / (n - 1) can never be in the nucleus
         * (the rest would already hold top_p): drop them before sorting. */
        float cutoff = (1.0f - s->top_p) / (float)(n > 1 ? n - 1 : 1);
        m = 0;
        for (uint32_t i = 0; i < n; i++)
            if (probs[i] >= cutoff) idx[m++] = i;
        if (m == 0) { /* cannot happen (the largest is >= 1/n), but be safe */
            for (uint32_t i = 0; i < n; i++) idx[i] = i;
            m = n;
        }
        sort_desc(probs, idx, m);
        double cum = 0.0;
        uint32_t keep = m;
        for (uint32_t i = 0; i < m; i++) {
            cum += probs[idx[i]];
            if (cum >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
        m = keep;
        mass = cum;
    } else {
        for (uint32_t i = 0; i < n; i++) idx[i] = i;
    }
    double r = (double)mf_sampler_random(s) * mass;
    double cdf = 0.0;
    for (uint32_t i = 0; i < m; i++) {
        cdf += probs[idx[i]];
        if (r < cdf) {
            *token = idx[i];
            return MF_OK;
        }
    }
    *token = idx[m - 1]; /* rounding at the very end */
    return MF_OK;
}

int mf_sample(mf_model *m, mf_sampler *s, uint32_t *token)
{
    if (!m || !s || !token) return MF_E_ARG;
    if (!m->have_logits) return MF_E_STATE;
    return mf_sample_logits(m->logits, m->h.vocab, s, m->probs, m->prob_idx, token);
}
