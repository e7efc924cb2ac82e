/*
 * The sampler against independent math: greedy = argmax with the lowest id
 * on ties; temperature sampling frequencies match softmax(logits / T)
 * (chi-square over many draws); top-p never leaves the nucleus computed
 * here by sorting, and follows the renormalised nucleus distribution; the
 * same seed gives the same sequence, different seeds do not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/sampler.h"
#include "harness.h"

enum { N = 10 };
static const float LOGITS[N] = {1.0f, 2.5f, 0.3f, 2.5f, -1.0f, 0.0f, 1.7f, 3.0f, -2.0f, 0.9f};

static void probs_ref(double T, double *p)
{
    double s = 0;
    for (int i = 0; i < N; i++) s += (p[i] = exp(LOGITS[i] / T));
    for (int i = 0; i < N; i++) p[i] /= s;
}

/* Chi-square statistic of counts against probabilities p over `draws`. */
static double chi2(const long *count, const double *p, long draws)
{
    double c = 0;
    for (int i = 0; i < N; i++)
        if (p[i] > 0) c += pow(count[i] - draws * p[i], 2) / (draws * p[i]);
    return c;
}

int main(void)
{
    float probs[N];
    uint32_t idx[N], tok;
    mf_sampler s;

    /* Greedy: argmax, ties to the lower id. */
    mf_sampler_init(&s, 0.0f, 1.0f, 7);
    CHECK(mf_sample_logits(LOGITS, N, &s, probs, idx, &tok) == MF_OK && tok == 7, "greedy %u", tok);
    const float tie[4] = {0.5f, 2.0f, 2.0f, 1.0f};
    CHECK(mf_sample_logits(tie, 4, &s, probs, idx, &tok) == MF_OK && tok == 1, "greedy tie %u", tok);
    CHECK(mf_sample_logits(NULL, N, &s, probs, idx, &tok) == MF_E_ARG, "NULL logits");

    /* Temperature sampling: frequencies vs softmax(logits / T). With 9
     * degrees of freedom, chi2 > 27.9 has probability 0.001. */
    const double temps[] = {1.0, 0.7, 2.0};
    for (int ti = 0; ti < 3; ti++) {
        double p[N];
        probs_ref(temps[ti], p);
        long count[N] = {0}, draws = 200000;
        mf_sampler_init(&s, (float)temps[ti], 1.0f, 1234 + ti);
        for (long d = 0; d < draws; d++) {
            mf_sample_logits(LOGITS, N, &s, probs, idx, &tok);
            if (tok < N) count[tok]++;
        }
        double c = chi2(count, p, draws);
        CHECK(c < 27.9, "T=%.1f: chi2 %.1f", temps[ti], c);
    }

    /* Top-p: the nucleus by sorting here (probability desc, then id). */
    const double tops[] = {0.5, 0.8, 0.95};
    for (int pi = 0; pi < 3; pi++) {
        double p[N];
        probs_ref(1.0, p);
        int order[N];
        for (int i = 0; i < N; i++) order[i] = i;
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++)
                if (p[order[j]] > p[order[i]] || (p[order[j]] == p[order[i]] && order[j] < order[i])) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        int in[N] = {0};
        double cum = 0, q[N] = {0};
        for (int i = 0; i < N; i++) {
            in[order[i]] = 1;
            cum += p[order[i]];
            if (cum >= tops[pi]) break;
        }
        for (int i = 0; i < N; i++) q[i] = in[i] ? p[i] / cum : 0.0;
        long count[N] = {0}, draws = 100000, outside = 0;
        mf_sampler_init(&s, 1.0f, (float)tops[pi], 99 + pi);
        for (long d = 0; d < draws; d++) {
            mf_sample_logits(LOGITS, N, &s, probs, idx, &tok);
            if (tok < N) count[tok]++;
            if (tok >= N || !in[tok]) outside++;
        }
        CHECK(outside == 0, "top-p %.2f: %ld draws outside the nucleus", tops[pi], outside);
        double c = chi2(count, q, draws);
        CHECK(c < 27.9, "top-p %.2f: chi2 %.1f", tops[pi], c);
    }

    /* Top-p boundary: two equal logits have probability 1/2 each, exactly
     * (e^0 / 2); with top_p = 0.5 the first already reaches top_p, so the
     * nucleus is that one id, and of equal probabilities the lower id
     * ranks first: always token 0. */
    {
        const float two[2] = {1.0f, 1.0f};
        float p2[2];
        uint32_t i2[2];
        int other = 0;
        mf_sampler_init(&s, 1.0f, 0.5f, 5);
        for (int d = 0; d < 200; d++) {
            uint32_t t2 = 9;
            mf_sample_logits(two, 2, &s, p2, i2, &t2);
            other += t2 != 0;
        }
        CHECK(other == 0, "top-p 0.5 over two equal logits: %d of 200 draws not id 0", other);
    }

    /* top_p 0 and 1 (and above) all mean no restriction: the same draws
     * for a seed. */
    {
        uint32_t s0[64], s1[64], s2[64];
        mf_sampler_init(&s, 0.8f, 0.0f, 77);
        for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &s0[i]);
        mf_sampler_init(&s, 0.8f, 1.0f, 77);
        for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &s1[i]);
        mf_sampler_init(&s, 0.8f, 1.5f, 77);
        for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &s2[i]);
        CHECK(memcmp(s0, s1, sizeof s0) == 0 && memcmp(s0, s2, sizeof s0) == 0,
              "top_p 0, 1 and 1.5 sample differently");
    }

    /* Temperature, precisely: logits {0, 1} at T = 0.5 give id 1 with
     * probability 1 / (1 + e^-2) = 0.8808; 10^6 draws measure it to
     * +-0.0003 (one standard deviation), so 4.5 of them bound it. */
    {
        const float lg2[2] = {0.0f, 1.0f};
        float p2[2];
        uint32_t i2[2], t2;
        long ones = 0, draws = 1000000;
        double pw = 1.0 / (1.0 + exp(-2.0)), sd = sqrt(pw * (1 - pw) / (double)draws);
        mf_sampler_init(&s, 0.5f, 1.0f, 2024);
        for (long d = 0; d < draws; d++) {
            mf_sample_logits(lg2, 2, &s, p2, i2, &t2);
            ones += t2 == 1;
        }
        CHECK(fabs((double)ones / (double)draws - pw) < 4.5 * sd, "T=0.5: P(id 1) %.5f, expected %.5f",
              (double)ones / (double)draws, pw);
    }

    /* Determinism. */
    uint32_t a[64], b[64], c2[64];
    mf_sampler_init(&s, 1.0f, 0.9f, 42);
    for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &a[i]);
    mf_sampler_init(&s, 1.0f, 0.9f, 42);
    for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &b[i]);
    mf_sampler_init(&s, 1.0f, 0.9f, 43);
    for (int i = 0; i < 64; i++) mf_sample_logits(LOGITS, N, &s, probs, idx, &c2[i]);
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same sequence");
    CHECK(memcmp(a, c2, sizeof a) != 0, "another seed, another sequence");

    /* Random numbers in [0, 1), roughly uniform mean. */
    mf_sampler_init(&s, 1.0f, 1.0f, 0);
    double mean = 0;
    int in01 = 1;
    for (int i = 0; i < 100000; i++) {
        float r = mf_sampler_random(&s);
        if (!(r >= 0.0f && r < 1.0f)) in01 = 0;
        mean += r;
    }
    CHECK(in01, "random outside [0, 1)");
    CHECK(fabs(mean / 100000 - 0.5) < 0.005, "random mean %g", mean / 100000);
    return mf_test_done("test_sampler");
}
