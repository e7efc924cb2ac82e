/* Bit-width allocation: exact multiple-choice knapsack DP, greedy fallback.
 * See allocate.h. */
#include "allocate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void finish(size_t n, size_t m, const double *loss, const uint64_t *bytes, const int *choice,
                   int exact, mf_alloc_result *res)
{
    if (!res) return;
    res->loss = 0;
    res->bytes = 0;
    for (size_t i = 0; i < n; i++) {
        res->loss += loss[i * m + (size_t)choice[i]];
        res->bytes += bytes[i * m + (size_t)choice[i]];
    }
    res->exact = exact;
}

/* Index of item i's cheapest choice (fewest bytes, then lowest loss). */
static size_t cheapest(size_t m, const double *l, const uint64_t *b)
{
    size_t best = 0;
    for (size_t c = 1; c < m; c++)
        if (b[c] < b[best] || (b[c] == b[best] && l[c] < l[best])) best = c;
    return best;
}

static int check_args(size_t n, size_t m, const double *loss, const uint64_t *bytes, uint64_t budget,
                      int *choice)
{
    if (!n || !m || m > 255 || !loss || !bytes || !choice) return -1;
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < m; c++)
            if (!isfinite(loss[i * m + c])) return -1;
        need += bytes[i * m + cheapest(m, loss + i * m, bytes + i * m)];
        if (need > budget) return -1;
    }
    return 0;
}

int mf_allocate_greedy(size_t n, size_t m, const double *loss, const uint64_t *bytes,
                       uint64_t budget, int *choice, mf_alloc_result *res)
{
    if (check_args(n, m, loss, bytes, budget, choice)) return -1;
    /* hull[i*m + k]: the k-th choice on item i's lower convex hull, by bytes */
    size_t *hull = malloc(n * m * sizeof *hull), *hn = malloc(n * sizeof *hn), *pos = calloc(n, sizeof *pos);
    size_t *ord = malloc(m * sizeof *ord);
    if (!hull || !hn || !pos || !ord) {
        free(hull), free(hn), free(pos), free(ord);
        return -1;
    }
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const double *l = loss + i * m;
        const uint64_t *b = bytes + i * m;
        size_t k = 0;
        for (size_t c = 0; c < m; c++) ord[c] = c;
        for (size_t a = 1; a < m; a++) /* insertion sort by bytes, then loss */
            for (size_t j = a; j > 0 && (b[ord[j]] < b[ord[j - 1]] ||
                                         (b[ord[j]] == b[ord[j - 1]] && l[ord[j]] < l[ord[j - 1]]));
                 j--) {
                size_t t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        size_t *h = hull + i * m;
        for (size_t a = 0; a < m; a++) {
            size_t c = ord[a];
            if (k && (b[c] == b[h[k - 1]] || l[c] >= l[h[k - 1]])) continue; /* dominated */
            /* pop while the last point is above the segment (h[k-2], c); a
             * point on it stays, as a smaller step of the same rate */
            while (k >= 2) {
                size_t p = h[k - 2], q = h[k - 1];
                double s1 = (l[p] - l[q]) / (double)(b[q] - b[p]);
                double s2 = (l[q] - l[c]) / (double)(b[c] - b[q]);
                if (s2 > s1) k--;
                else break;
            }
            h[k++] = c;
        }
        hn[i] = k;
        used += b[h[0]];
    }
    for (;;) {
        size_t best = n;
        double best_rate = 0;
        for (size_t i = 0; i < n; i++) {
            if (pos[i] + 1 >= hn[i]) continue;
            size_t cur = hull[i * m + pos[i]], nx = hull[i * m + pos[i] + 1];
            uint64_t db = bytes[i * m + nx] - bytes[i * m + cur];
            if (used + db > budget) {
                hn[i] = pos[i] + 1; /* cannot grow any more */
                continue;
            }
            double rate = (loss[i * m + cur] - loss[i * m + nx]) / (double)db;
            if (best == n || rate > best_rate) best = i, best_rate = rate;
        }
        if (best == n) break;
        size_t cur = hull[best * m + pos[best]], nx = hull[best * m + pos[best] + 1];
        used += bytes[best * m + nx] - bytes[best * m + cur];
        pos[best]++;
    }
    for (size_t i = 0; i < n; i++) choice[i] = (int)hull[i * m + pos[i]];
    free(hull), free(hn), free(pos), free(ord);
    finish(n, m, loss, bytes, choice, 0, res);
    return 0;
}

int mf_allocate(size_t n, size_t m, const double *loss, const uint64_t *bytes, uint64_t budget,
                int *choice, mf_alloc_result *res)
{
    if (check_args(n, m, loss, bytes, budget, choice)) return -1;
    uint64_t g = 0, total_max = 0;
    for (size_t i = 0; i < n * m; i++) g = gcd64(g, bytes[i]);
    for (size_t i = 0; i < n; i++) {
        uint64_t mx = 0;
        for (size_t c = 0; c < m; c++)
            if (bytes[i * m + c] > mx) mx = bytes[i * m + c];
        total_max += mx;
    }
    if (budget > total_max) budget = total_max; /* more budget cannot help */
    if (g == 0) { /* every choice costs 0 bytes: take the lowest loss */
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t c = 1; c < m; c++)
                if (loss[i * m + c] < loss[i * m + best]) best = c;
            choice[i] = (int)best;
        }
        finish(n, m, loss, bytes, choice, 1, res);
        return 0;
    }
    uint64_t U = budget / g;
    if ((double)n * (double)(U + 1) > (double)MF_ALLOC_DP_CELLS)
        return mf_allocate_greedy(n, m, loss, bytes, budget, choice, res);
    size_t W = (size_t)U + 1;
    double *prev = malloc(W * sizeof *prev), *cur = malloc(W * sizeof *cur);
    unsigned char *pick = malloc(n * W);
    if (!prev || !cur || !pick) {
        free(prev), free(cur), free(pick);
        return -1;
    }
    for (size_t u = 0; u < W; u++) prev[u] = 0; /* at most u units, no items */
    for (size_t i = 0; i < n; i++) {
        for (size_t u = 0; u < W; u++) {
            double best = INFINITY;
            unsigned char bc = 0;
            for (size_t c = 0; c < m; c++) {
                uint64_t w = bytes[i * m + c] / g;
                if (w > u || !isfinite(prev[u - w])) continue;
                double v = prev[u - w] + loss[i * m + c];
                if (v < best) best = v, bc = (unsigned char)c;
            }
            cur[u] = best;
            pick[i * W + u] = bc;
        }
        double *t = prev;
        prev = cur;
        cur = t;
    }
    size_t u = (size_t)U;
    for (size_t i = n; i-- > 0;) {
        int c = pick[i * W + u];
        choice[i] = c;
        u -= (size_t)(bytes[i * m + (size_t)c] / g);
    }
    free(prev), free(cur), free(pick);
    finish(n, m, loss, bytes, choice, 1, res);
    return 0;
}
