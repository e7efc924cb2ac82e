/* The bit-width allocator (tools/lib/allocate.c): on random small problems
 * the DP's choice never exceeds the budget and equals the optimum found by
 * enumerating every assignment; its loss never increases with the budget;
 * the greedy respects the budget and is never better than the optimum;
 * infeasible budgets are refused; a case with expert-like sizes (gcd > 1).
 * The greedy against its documented rule (allocate.h: upgrades along each
 * item's lower convex hull by the best loss decrease per byte while it
 * fits) on items whose choices are already strictly convex, replayed here:
 * same choices, and no item's next upgrade fits in what is left; given
 * three equal-cost upgrades and room for two, it takes the two largest; it
 * never picks a choice another choice of the item dominates. When every
 * choice costs 0 bytes, the lowest loss is taken. */
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

/* The greedy on strictly convex items (every choice on the lower hull,
 * bytes increasing with the index, loss decreasing, loss decrease per byte
 * decreasing): replayed from the rule in allocate.h, and its leftover. */
static void test_greedy(void)
{
    enum { N = 8, M = 5 };
    double loss[N * M];
    uint64_t bytes[N * M];
    int choice[N];
    mf_alloc_result r;
    int same = 1, tight = 1, fits = 1;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + rnd() % N, m = 2 + rnd() % (M - 1);
        uint64_t minb = 0, maxb = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t b = 1 + rnd() % 20;
            double l = 100.0 + (double)(rnd() % 100), rate = 1.0 + (double)(rnd() % 1000) / 100.0;
            for (size_t c = 0; c < m; c++) {
                bytes[i * m + c] = b;
                loss[i * m + c] = l;
                uint64_t db = 1 + rnd() % 20;
                b += db;
                l -= rate * (double)db;
                rate *= 0.3 + 0.6 * (double)(rnd() % 1000) / 1000.0; /* strictly convex */
            }
            minb += bytes[i * m];
            maxb += bytes[i * m + m - 1];
        }
        uint64_t budget = minb + rnd() % (maxb - minb + 2);
        if (mf_allocate_greedy(n, m, loss, bytes, budget, choice, &r)) {
            same = 0;
            continue;
        }
        /* The replay: repeatedly the upgrade with the best rate among those that fit. */
        size_t pos[N] = {0};
        uint64_t used = minb;
        for (;;) {
            size_t best = n;
            double best_rate = 0;
            for (size_t i = 0; i < n; i++) {
                if (pos[i] + 1 >= m) continue;
                uint64_t db = bytes[i * m + pos[i] + 1] - bytes[i * m + pos[i]];
                if (used + db > budget) continue;
                double rate = (loss[i * m + pos[i]] - loss[i * m + pos[i] + 1]) / (double)db;
                if (best == n || rate > best_rate) best = i, best_rate = rate;
            }
            if (best == n) break;
            used += bytes[best * m + pos[best] + 1] - bytes[best * m + pos[best]];
            pos[best]++;
        }
        uint64_t gb = 0;
        for (size_t i = 0; i < n; i++) {
            same &= choice[i] == (int)pos[i];
            gb += bytes[i * m + (size_t)choice[i]];
        }
        fits &= gb <= budget && r.bytes == gb;
        /* Less than one step left: no item's next choice fits in budget - gb. */
        for (size_t i = 0; i < n && gb <= budget; i++) {
            size_t c = (size_t)choice[i];
            if (c + 1 < m && bytes[i * m + c + 1] - bytes[i * m + c] <= budget - gb) tight = 0;
        }
    }
    CHECK(same, "the greedy differs from the documented best-rate-first replay on convex items");
    CHECK(fits, "the greedy exceeded the budget or misreported its bytes");
    CHECK(tight, "the greedy left room for some item's next upgrade");

    /* Three items, upgrades of 10 bytes gaining 1, 5 and 3; room for two:
     * items 1 and 2 are upgraded. */
    {
        const double l3[6] = {10, 9, 10, 5, 10, 7};
        const uint64_t b3[6] = {10, 20, 10, 20, 10, 20};
        int ch[3];
        CHECK(mf_allocate_greedy(3, 2, l3, b3, 50, ch, &r) == 0 && ch[0] == 0 && ch[1] == 1 && ch[2] == 1,
              "best two upgrades: %d %d %d", ch[0], ch[1], ch[2]);
    }
    /* A dominated choice (more bytes, no less loss) is never taken, with or
     * without room for it. */
    {
        const double ld[4] = {5, 1, 1, 3};
        const uint64_t bd[4] = {10, 20, 30, 25};
        int ch[1];
        for (uint64_t budget = 10; budget <= 40; budget += 5) {
            int ok = mf_allocate_greedy(1, 4, ld, bd, budget, ch, &r) == 0;
            CHECK(ok && (ch[0] == 0 || ch[0] == 1), "budget %llu: choice %d is dominated", (unsigned long long)budget,
                  ok ? ch[0] : -1);
        }
    }
}

/* Every choice costs 0 bytes: any budget fits all, the lowest loss wins. */
static void test_zero_bytes(void)
{
    const double l[6] = {3, 1, 2, 0.5, 4, 9};
    const uint64_t b[6] = {0, 0, 0, 0, 0, 0};
    int ch[2];
    mf_alloc_result r;
    CHECK(mf_allocate(2, 3, l, b, 0, ch, &r) == 0 && ch[0] == 1 && ch[1] == 0 && r.loss == 1.5 && r.bytes == 0,
          "zero-byte choices: %d %d", ch[0], ch[1]);
}

/* Points on a straight line of (bytes, loss) are steps of the same rate:
 * the greedy keeps the middle one, so that budget for one step only still
 * buys it (10 B loss 10, 20 B loss 5, 30 B loss 0, room for 10 B more:
 * loss 5, not 10). */
static void test_collinear(void)
{
    const double loss[3] = {10, 5, 0};
    const uint64_t bytes[3] = {10, 20, 30};
    int choice[1];
    mf_alloc_result r;
    CHECK(mf_allocate_greedy(1, 3, loss, bytes, 20, choice, &r) == 0 && choice[0] == 1 && r.loss == 5,
          "greedy on collinear choices with 20 B: choice %d, loss %g", choice[0], r.loss);
    CHECK(mf_allocate_greedy(1, 3, loss, bytes, 30, choice, &r) == 0 && choice[0] == 2 && r.loss == 0,
          "greedy on collinear choices with 30 B: choice %d, loss %g", choice[0], r.loss);
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
    test_greedy();
    test_zero_bytes();
    test_collinear();
    return mf_test_done("test_allocate");
}
