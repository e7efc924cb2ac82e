/* The bit-width allocator (tools/lib/allocate.c): on random small problems
 * the DP's choice never exceeds the budget and equals the optimum found by
 * enumerating every assignment; its loss never increases with the budget;
 * the greedy respects the budget and is never better than the optimum;
 * infeasible budgets are refused; a case with expert-like sizes (gcd > 1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../tools/lib/allocate.h"
#include "harness.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Brute force: minimum loss over all m^n assignments within budget. */
static double brute(size_t n, size_t m, const double *loss, const uint64_t *bytes, uint64_t budget)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total *= m;
    double best = INFINITY;
    for (size_t a = 0; a < total; a++) {
        size_t x = a;
        double l = 0;
        uint64_t b = 0;
        for (size_t i = 0; i < n; i++) {
            size_t c = x % m;
            x /= m;
            l += loss[i * m + c];
            b += bytes[i * m + c];
        }
        if (b <= budget && l < best) best = l;
    }
    return best;
}

int main(void)
{
    enum { N = 6, M = 4 };
    double loss[N * M];
    uint64_t bytes[N * M];
    int choice[N];
    mf_alloc_result r;
    int opt_ok = 1, budget_ok = 1, mono_ok = 1, greedy_ok = 1, infeasible_ok = 1, loss_ok = 1;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + rnd() % N, m = 1 + rnd() % M;
        uint64_t minb = 0, maxb = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (size_t c = 0; c < m; c++) {
                /* sometimes expert-like sizes with a common factor, sometimes arbitrary */
                bytes[i * m + c] = trial % 2 ? 3072 * (10 + rnd() % 25) : 1 + rnd() % 40;
                loss[i * m + c] = (double)(rnd() % 1000) / 100.0 - (trial % 5 == 0 ? 3.0 : 0.0);
                if (bytes[i * m + c] < lo) lo = bytes[i * m + c];
                if (bytes[i * m + c] > hi) hi = bytes[i * m + c];
            }
            minb += lo;
            maxb += hi;
        }
        double prev_loss = INFINITY;
        for (int s = 0; s <= 8; s++) {
            uint64_t budget = minb + (maxb - minb) * (uint64_t)s / 8 + (s == 8 ? 7 : 0);
            if (mf_allocate(n, m, loss, bytes, budget, choice, &r)) {
                opt_ok = 0;
                continue;
            }
            double l = 0;
            uint64_t b = 0;
            for (size_t i = 0; i < n; i++) {
                l += loss[i * m + (size_t)choice[i]];
                b += bytes[i * m + (size_t)choice[i]];
            }
            if (b > budget || r.bytes != b) budget_ok = 0;
            if (fabs(r.loss - l) > 1e-9) loss_ok = 0;
            if (fabs(l - brute(n, m, loss, bytes, budget)) > 1e-9 || !r.exact) opt_ok = 0;
            if (l > prev_loss + 1e-9) mono_ok = 0;
            prev_loss = l;
            if (mf_allocate_greedy(n, m, loss, bytes, budget, choice, &r) == 0) {
                double gl = 0;
                uint64_t gb = 0;
                for (size_t i = 0; i < n; i++) {
                    gl += loss[i * m + (size_t)choice[i]];
                    gb += bytes[i * m + (size_t)choice[i]];
                }
                if (gb > budget || gl < l - 1e-9) greedy_ok = 0;
            } else {
                greedy_ok = 0;
            }
        }
        if (minb > 0 && mf_allocate(n, m, loss, bytes, minb - 1, choice, &r) == 0) infeasible_ok = 0;
    }
    CHECK(opt_ok, "DP result differs from the brute-force optimum");
    CHECK(budget_ok, "allocation exceeds the budget");
    CHECK(loss_ok, "reported loss differs from the sum of chosen losses");
    CHECK(mono_ok, "loss increased with a larger budget");
    CHECK(greedy_ok, "greedy exceeded the budget or beat the optimum");
    CHECK(infeasible_ok, "a budget below the cheapest assignment was accepted");

    /* Expert-shaped: 64 experts, bytes of q8/q4/q3/q2 of a 3 x 128 x 256 expert
     * (group 32), convex losses: at the budget of uniform q4 the DP spends at
     * most that budget and its loss is <= uniform q4's. */
    {
        enum { E = 64 };
        static double L[E * 4];
        static uint64_t B[E * 4];
        static int ch[E];
        const uint64_t sz[4] = {104448, 55296, 43008, 30720};
        double uq4 = 0;
        for (int e = 0; e < E; e++) {
            double s = 0.01 + (double)(rnd() % 1000) / 1000.0;
            const double rel[4] = {0.0001, 0.006, 0.026, 0.11}; /* ~ relative MSE of each width */
            for (int c = 0; c < 4; c++) L[e * 4 + c] = s * rel[c], B[e * 4 + c] = sz[c];
            uq4 += L[e * 4 + 1];
        }
        uint64_t budget = (uint64_t)E * sz[1];
        CHECK(mf_allocate(E, 4, L, B, budget, ch, &r) == 0 && r.exact, "expert-shaped DP");
        CHECK(r.bytes <= budget && r.loss <= uq4 + 1e-12, "bytes %llu loss %g vs uniform %g",
              (unsigned long long)r.bytes, r.loss, uq4);
        int mixed = 0;
        for (int e = 1; e < E; e++) mixed |= ch[e] != ch[0];
        CHECK(mixed, "varied sensitivities should give mixed widths");
    }
    return mf_test_done("test_allocate");
}
