/*
 * Bit-width allocation under a byte budget (host only; allocates).
 *
 * n items (experts), each takes exactly one of m choices (encodings);
 * choice c of item i costs bytes[i*m + c] and predicts a quality loss
 * loss[i*m + c] (any finite value; additive over items). mf_allocate picks
 * one choice per item minimising the total predicted loss subject to
 * total bytes <= budget.
 *
 * Method: exact dynamic programme (multiple-choice knapsack) over the
 * budget measured in units of g = gcd of every byte count, when
 * n * (budget / g) <= MF_ALLOC_DP_CELLS; otherwise a greedy on the lower
 * convex hull of each item's (bytes, loss) curve, upgrading by the best
 * loss decrease per byte while it fits (the classic MCKP greedy; within one
 * item's largest step of the optimum).
 */
#ifndef MF_TOOLS_ALLOCATE_H
#define MF_TOOLS_ALLOCATE_H

#include <stddef.h>
#include <stdint.h>

#define MF_ALLOC_DP_CELLS 200000000ull

typedef struct {
    double loss;      /* total predicted loss of the choice */
    uint64_t bytes;   /* total bytes (<= budget) */
    int exact;        /* 1: DP (optimal), 0: greedy */
} mf_alloc_result;

/* 0 on success (choice[n] written); -1 when even the cheapest choice of
 * every item exceeds the budget, or on bad arguments / out of memory. */
int mf_allocate(size_t n, size_t m, const double *loss, const uint64_t *bytes, uint64_t budget,
                int *choice, mf_alloc_result *res);

/* The greedy alone (exposed for tests and huge problems). */
int mf_allocate_greedy(size_t n, size_t m, const double *loss, const uint64_t *bytes,
                       uint64_t budget, int *choice, mf_alloc_result *res);

#endif
