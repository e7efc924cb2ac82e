/* bench/stream/plot: turns the CSV written by bench/stream/sweep.sh (one row
 * per `moeflash bench --csv` run, with a leading `sweep` column: wide or
 * headline) into
 *   - OUT.svg: tokens/s (virtual time) against expert RAM, log-log, one line
 *     per policy+predictor from the wide rows, plus the Belady bound
 *     (tokens / bound_seconds);
 *   - on stdout: a Markdown table of the headline rows (those of the most
 *     tokens) per expert-RAM fraction: every configuration's tokens/s,
 *     speed-up over --policy none, efficiency, flash bytes / Belady's, recall
 *     and precision.
 *
 *   plot IN.csv OUT.svg TITLE
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/lib/svgplot.h"

#define MAXCOL 80
#define MAXROW 4096

typedef struct {
    char *cell[MAXCOL];
    int n;
} row;

static char *header_line;
static row header;
static row rows[MAXROW];
static int nrows;

static int split(char *line, row *r)
{
    r->n = 0;
    char *s = line;
    for (;;) {
        char *c = strchr(s, ',');
        if (r->n == MAXCOL) {
            fprintf(stderr, "plot: more than %d columns\n", MAXCOL);
            exit(1);
        }
        r->cell[r->n++] = s;
        if (!c) break;
        *c = 0;
        s = c + 1;
    }
    char *nl = strpbrk(r->cell[r->n - 1], "\r\n");
    if (nl) *nl = 0;
    return r->n;
}

static int col(const char *name)
{
    for (int i = 0; i < header.n; i++)
        if (!strcmp(header.cell[i], name)) return i;
    fprintf(stderr, "plot: no column '%s'\n", name);
    exit(1);
}

static const char *S(const row *r, const char *name) { return r->cell[col(name)]; }
static double N(const row *r, const char *name) { return atof(S(r, name)); }

static char *config_of(const row *r, char *buf, size_t cap)
{
    const char *pol = S(r, "policy"), *pred = S(r, "predictor");
    if (!strcmp(pred, "none")) snprintf(buf, cap, "%s", pol);
    else snprintf(buf, cap, "%s+%s", pol, pred);
    /* Older CSVs have no prefetch_min column. */
    for (int i = 0; i < header.n; i++)
        if (!strcmp(header.cell[i], "prefetch_min") && atof(r->cell[i]) > 0) {
            size_t n = strlen(buf);
            snprintf(buf + n, cap - n, " (min p %s)", r->cell[i]);
        }
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: plot IN.csv OUT.svg TITLE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char buf[1 << 16];
    if (!fgets(buf, sizeof buf, f)) return 1;
    header_line = strdup(buf);
    split(header_line, &header);
    while (fgets(buf, sizeof buf, f)) {
        if (buf[0] == '\n' || buf[0] == '#') continue;
        if (nrows == MAXROW) {
            fprintf(stderr, "plot: more than %d rows\n", MAXROW);
            return 1;
        }
        char *line = strdup(buf);
        if (split(line, &rows[nrows]) != header.n) {
            fprintf(stderr, "plot: row %d has %d cells, header %d\n", nrows + 2, rows[nrows].n,
                    header.n);
            return 1;
        }
        nrows++;
    }
    fclose(f);

    /* ---- the plot: wide rows ---- */
    char names[64][64];
    int nconf = 0;
    for (int i = 0; i < nrows; i++) {
        if (strcmp(S(&rows[i], "sweep"), "wide")) continue;
        char c[64];
        config_of(&rows[i], c, sizeof c);
        int k;
        for (k = 0; k < nconf; k++)
            if (!strcmp(names[k], c)) break;
        if (k == nconf && nconf < 64) strcpy(names[nconf++], c);
    }
    double wide_tokens = 0;
    for (int i = 0; i < nrows; i++)
        if (!strcmp(S(&rows[i], "sweep"), "wide")) wide_tokens = N(&rows[i], "tokens");
    char title[512];
    snprintf(title, sizeof title, "%s (%.0f tokens)", argv[3], wide_tokens);
    svgplot *p = svgplot_new(title, "expert RAM (MiB, log scale)",
                             "tokens/s, virtual time (log scale)");
    svgplot_set_log_x(p, 1);
    svgplot_set_log_y(p, 1);
    double *x = malloc(sizeof(double) * (size_t)(nrows + 1));
    double *y = malloc(sizeof(double) * (size_t)(nrows + 1));
    double *pair = malloc(sizeof(double) * 2 * (size_t)(nrows + 1));
    /* The bound first (from every wide row: it depends on the slots only). */
    for (int pass = 0; pass <= nconf; pass++) {
        size_t n = 0;
        for (int i = 0; i < nrows; i++) {
            const row *r = &rows[i];
            if (strcmp(S(r, "sweep"), "wide")) continue;
            char c[64];
            if (pass && strcmp(config_of(r, c, sizeof c), names[pass - 1])) continue;
            double xm = N(r, "expert_ram") / 1048576.0;
            double yv = pass ? N(r, "tokens_per_second") : N(r, "tokens") / N(r, "bound_seconds");
            int dup = 0;
            for (size_t j = 0; j < n; j++)
                if (pair[2 * j] == xm) dup = 1;
            if (dup) continue;
            pair[2 * n] = xm;
            pair[2 * n + 1] = yv;
            n++;
        }
        qsort(pair, n, 2 * sizeof(double), cmp_double);
        for (size_t j = 0; j < n; j++) x[j] = pair[2 * j], y[j] = pair[2 * j + 1];
        if (n) svgplot_add(p, pass ? names[pass - 1] : "Belady bound", x, y, n, SVGPLOT_LINE | SVGPLOT_MARKERS);
    }
    if (svgplot_write(p, argv[2])) {
        fprintf(stderr, "plot: cannot write %s\n", argv[2]);
        return 1;
    }
    svgplot_free(p);

    /* ---- the headline table ---- */
    double maxtok = 0;
    for (int i = 0; i < nrows; i++)
        if (!strcmp(S(&rows[i], "sweep"), "headline") && N(&rows[i], "tokens") > maxtok)
            maxtok = N(&rows[i], "tokens");
    double fr[16];
    int nfr = 0;
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (strcmp(S(r, "sweep"), "headline") || N(r, "tokens") != maxtok) continue;
        double v = N(r, "expert_ram_fraction");
        int k;
        for (k = 0; k < nfr; k++)
            if (fabs(fr[k] - v) < 1e-9) break;
        if (k == nfr && nfr < 16) fr[nfr++] = v;
    }
    qsort(fr, (size_t)nfr, sizeof(double), cmp_double);
    /* Summary against the targets: the fastest configuration that needs no
     * future (not belady) at each fraction. */
    printf("| profile | expert RAM | best online configuration | tokens/s | x none (target >= 3) "
           "| efficiency (target >= 0.90) | flash bytes / Belady (target <= 1.2) | efficiency if "
           "fully overlapped | recall | bound tokens/s (its compute) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < nfr; k++) {
        const row *best = NULL, *base = NULL;
        for (int i = 0; i < nrows; i++) {
            const row *r = &rows[i];
            if (strcmp(S(r, "sweep"), "headline") || N(r, "tokens") != maxtok ||
                fabs(N(r, "expert_ram_fraction") - fr[k]) >= 1e-9)
                continue;
            if (!strcmp(S(r, "policy"), "none") && !strcmp(S(r, "predictor"), "none")) base = r;
            if (strcmp(S(r, "policy"), "belady") &&
                (!best || N(r, "tokens_per_second") > N(best, "tokens_per_second")))
                best = r;
        }
        if (!best) continue;
        char c[64];
        /* Its reads at Belady's cost per byte (equal-size experts), overlapped
         * perfectly with compute: what is left is the cost of extra bytes. */
        double rd = N(best, "belady_read_seconds") * N(best, "flash_bytes_over_belady");
        double cp = N(best, "compute_seconds");
        printf("| %s | %.1f%% | %s | %.2f | %.2f | %.3f | %.2f | %.3f | %.3f | %.2f |\n",
               S(best, "profile"), 100 * fr[k], config_of(best, c, sizeof c),
               N(best, "tokens_per_second"),
               base ? N(best, "tokens_per_second") / N(base, "tokens_per_second") : NAN,
               N(best, "efficiency"), N(best, "flash_bytes_over_belady"),
               N(best, "bound_seconds") / (rd > cp ? rd : cp),
               N(best, "prefetch_recall"), N(best, "tokens") / N(best, "bound_seconds"));
    }
    for (int k = 0; k < nfr; k++) {
        const row *base = NULL;
        for (int i = 0; i < nrows; i++) {
            const row *r = &rows[i];
            if (!strcmp(S(r, "sweep"), "headline") && N(r, "tokens") == maxtok &&
                fabs(N(r, "expert_ram_fraction") - fr[k]) < 1e-9 && !strcmp(S(r, "policy"), "none") &&
                !strcmp(S(r, "predictor"), "none"))
                base = r;
        }
        /* Each run's bound uses its own compute (a predictor adds router
         * matvecs); the header gives the highest, from the cheapest run. */
        const row *any = NULL;
        for (int i = 0; i < nrows; i++)
            if (!strcmp(S(&rows[i], "sweep"), "headline") && N(&rows[i], "tokens") == maxtok &&
                fabs(N(&rows[i], "expert_ram_fraction") - fr[k]) < 1e-9 &&
                (!any || N(&rows[i], "bound_seconds") < N(any, "bound_seconds")))
                any = &rows[i];
        printf("\n**%s, expert RAM %.1f%% (%s slots, %.2f MiB), %.0f tokens** - Belady bound "
               "%.2f tokens/s with the least compute of these runs (%s misses, %.1f MB)\n\n",
               S(any, "profile"), 100 * fr[k], S(any, "slots"), N(any, "expert_ram") / 1048576.0,
               maxtok, N(any, "tokens") / N(any, "bound_seconds"), S(any, "belady_misses"),
               N(any, "belady_flash_bytes") / 1e6);
        printf("| configuration | tokens/s | x none | efficiency | flash MB | bytes / Belady | "
               "stall s | compute s | recall | precision |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < nrows; i++) {
            const row *r = &rows[i];
            if (strcmp(S(r, "sweep"), "headline") || N(r, "tokens") != maxtok ||
                fabs(N(r, "expert_ram_fraction") - fr[k]) >= 1e-9)
                continue;
            char c[64];
            double sp = base ? N(r, "tokens_per_second") / N(base, "tokens_per_second") : NAN;
            printf("| %s | %.2f | %.2f | %.3f | %.1f | %.2f | %.2f | %.2f | %.3f | %.3f |\n",
                   config_of(r, c, sizeof c), N(r, "tokens_per_second"), sp, N(r, "efficiency"),
                   N(r, "flash_bytes") / 1e6, N(r, "flash_bytes_over_belady"),
                   N(r, "stall_seconds"), N(r, "compute_seconds"), N(r, "prefetch_recall"),
                   N(r, "prefetch_precision"));
        }
    }
    free(x);
    free(y);
    free(pair);
    return 0;
}
