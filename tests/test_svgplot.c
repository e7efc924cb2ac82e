/* tests/test_svgplot: tick placement (1-2-5 steps, decades) and the
 * structure of the SVG document tools/lib/svgplot.c writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/lib/svgplot.h"
#include "harness.h"

static int count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub)) n++;
    return n;
}

/* The document p writes, as a heap string (NULL when the write fails). */
static char *render(const svgplot *p)
{
    FILE *f = tmpfile();
    if (!f) return NULL;
    char *doc = NULL;
    if (svgplot_write_file(p, f) == 0) {
        long len = ftell(f);
        rewind(f);
        doc = calloc((size_t)len + 1, 1);
        if (doc && fread(doc, 1, (size_t)len, f) != (size_t)len) {
            free(doc);
            doc = NULL;
        }
    }
    fclose(f);
    return doc;
}

/* The plot area: the frame rectangle (fill none, black stroke). */
static int frame(const char *doc, double *x, double *y, double *w, double *h)
{
    for (const char *r = doc; (r = strstr(r, "<rect x=\"")); r++) {
        int end = 0;
        if (sscanf(r, "<rect x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\" fill=\"none\" stroke=\"black\"%n",
                   x, y, w, h, &end) == 4 && end > 0)
            return 1;
    }
    return 0;
}

/* Centre of the k-th <circle> (0-based; the data markers come before the
 * legend's). */
static int circle(const char *doc, int k, double *cx, double *cy)
{
    const char *c = doc;
    for (int i = 0; c && i <= k; i++)
        if ((c = strstr(c, "<circle")) && i < k) c++;
    return c && sscanf(c, "<circle cx=\"%lf\" cy=\"%lf\"", cx, cy) == 2;
}

static int near(double a, double b) { return fabs(a - b) < 0.02; }

/* Where the data land in the plot area, and the other promises of
 * svgplot.h: a fixed range maps its ends to the area's edges (y up), a log
 * axis puts the geometric mean in the middle, a linear y axis includes 0,
 * a skipped point breaks a line, dash patterns start with the 11th series,
 * a single point still gives finite coordinates. */
static void check_geometry(void)
{
    double fx, fy, fw, fh, cx, cy;
    svgplot *p = svgplot_new("t", "x", "y");
    svgplot_set_x_range(p, 0, 10);
    svgplot_set_y_range(p, 0, 100);
    double x[] = {0, 10, 5, 2.5}, y[] = {0, 100, 50, 75};
    svgplot_add(p, "s", x, y, 4, SVGPLOT_MARKERS);
    char *doc = render(p);
    CHECK(doc && frame(doc, &fx, &fy, &fw, &fh), "linear: frame");
    if (doc && frame(doc, &fx, &fy, &fw, &fh)) {
        CHECK(circle(doc, 0, &cx, &cy) && near(cx, fx) && near(cy, fy + fh),
              "(0, 0) at the bottom left corner (%.2f,%.2f) of the area, not (%.2f, %.2f)", fx,
              fy + fh, cx, cy);
        CHECK(circle(doc, 1, &cx, &cy) && near(cx, fx + fw) && near(cy, fy),
              "(10, 100) at the top right corner (%.2f,%.2f), not (%.2f, %.2f)", fx + fw, fy, cx, cy);
        CHECK(circle(doc, 2, &cx, &cy) && near(cx, fx + fw / 2) && near(cy, fy + fh / 2),
              "(5, 50) in the middle, not (%.2f, %.2f)", cx, cy);
        CHECK(circle(doc, 3, &cx, &cy) && near(cx, fx + fw / 4) && near(cy, fy + fh / 4),
              "(2.5, 75) a quarter from the left and the top, not (%.2f, %.2f)", cx, cy);
    }
    free(doc);
    svgplot_free(p);

    p = svgplot_new("t", "x", "y");
    svgplot_set_log_x(p, 1);
    svgplot_set_log_y(p, 1);
    svgplot_set_x_range(p, 1, 100);
    svgplot_set_y_range(p, 10, 1000);
    double lx[] = {1, 100, 10}, ly[] = {10, 1000, 100};
    svgplot_add(p, "s", lx, ly, 3, SVGPLOT_MARKERS);
    doc = render(p);
    CHECK(doc && frame(doc, &fx, &fy, &fw, &fh), "log: frame");
    if (doc && frame(doc, &fx, &fy, &fw, &fh)) {
        CHECK(circle(doc, 0, &cx, &cy) && near(cx, fx) && near(cy, fy + fh), "log: (1, 10) at the bottom left");
        CHECK(circle(doc, 1, &cx, &cy) && near(cx, fx + fw) && near(cy, fy), "log: (100, 1000) at the top right");
        CHECK(circle(doc, 2, &cx, &cy) && near(cx, fx + fw / 2) && near(cy, fy + fh / 2),
              "log: (10, 100) in the middle, not (%.2f, %.2f)", cx, cy);
    }
    free(doc);
    svgplot_free(p);

    /* y from the data on a linear axis includes 0: a tick labelled 0. */
    p = svgplot_new("t", "x", "y");
    double zx[] = {1, 2, 3}, zy[] = {5, 7, 10};
    svgplot_add(p, "s", zx, zy, 3, SVGPLOT_LINE);
    doc = render(p);
    CHECK(doc && strstr(doc, "text-anchor=\"end\">0</text>"), "linear y from 5..10: no y tick at 0");
    free(doc);
    svgplot_free(p);

    /* A non-finite point in the middle breaks the line in two. */
    p = svgplot_new("t", "x", "y");
    double gx[] = {1, 2, 3, 4}, gy[] = {1, NAN, 3, 4};
    svgplot_add(p, "s", gx, gy, 4, SVGPLOT_LINE);
    doc = render(p);
    CHECK(doc && count(doc, "<polyline") == 2, "a gap: %d polylines, not 2", doc ? count(doc, "<polyline") : -1);
    free(doc);
    svgplot_free(p);

    /* Distinct colours for 10 series, dash patterns after: only the 11th
     * (its line and its legend line) is dashed. */
    p = svgplot_new("t", "x", "y");
    for (int i = 0; i < 11; i++) {
        double sx[] = {1, 2}, sy[] = {i, i + 1};
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        svgplot_add(p, name, sx, sy, 2, SVGPLOT_LINE);
    }
    doc = render(p);
    CHECK(doc && count(doc, "stroke-dasharray") == 2, "11 series: %d dashed elements, not 2",
          doc ? count(doc, "stroke-dasharray") : -1);
    free(doc);
    svgplot_free(p);

    /* One point: degenerate ranges are widened, the coordinates finite. */
    p = svgplot_new("t", "x", "y");
    double ox[] = {3}, oy[] = {7};
    svgplot_add(p, "s", ox, oy, 1, 0);
    doc = render(p);
    CHECK(doc && !strstr(doc, "nan") && !strstr(doc, "inf") && circle(doc, 0, &cx, &cy),
          "a single point: finite coordinates");
    free(doc);
    svgplot_free(p);
}

int main(void)
{
    double t[64];
    size_t n = svgplot_ticks(0, 10, 0, t, 64);
    CHECK(n == 6 && t[0] == 0 && t[1] == 2 && t[5] == 10, "linear 0..10: %zu ticks", n);
    n = svgplot_ticks(0.3, 97, 0, t, 64);
    CHECK(n == 4 && fabs(t[0] - 20) < 1e-9 && fabs(t[3] - 80) < 1e-9, "linear 0.3..97: %zu", n);
    n = svgplot_ticks(-1, 1, 0, t, 64);
    int has0 = 0;
    for (size_t i = 0; i < n && i < 64; i++) has0 |= t[i] == 0.0;
    CHECK(n == 5 && has0, "symmetric: %zu ticks, zero exact", n);
    n = svgplot_ticks(1, 1000, 1, t, 64); /* 3 decades: 1 2 5 per decade */
    CHECK(n == 10 && t[0] == 1 && fabs(t[1] - 2) < 1e-12 && fabs(t[9] - 1000) < 1e-9, "log: %zu", n);
    n = svgplot_ticks(1, 1e6, 1, t, 64); /* many decades: powers of ten only */
    CHECK(n == 7, "log 6 decades: %zu", n);
    CHECK(svgplot_ticks(0, 10, 1, t, 64) == 0, "log axis from 0");
    CHECK(svgplot_ticks(5, 5, 0, t, 64) == 0, "empty range");
    n = svgplot_ticks(0, 40, 0, t, 64); /* a step of 10, not 5: 1-2-5 steps, about 6 ticks */
    CHECK(n == 5 && t[0] == 0 && fabs(t[1] - 10) < 1e-9 && fabs(t[4] - 40) < 1e-9, "linear 0..40: %zu", n);
    check_geometry();

    svgplot *p = svgplot_new("a <title> & more", "x", "y");
    CHECK(p != NULL, "new");
    svgplot_set_log_x(p, 1);
    double x[] = {1, 2, 4, 8, 0, 16}, y[] = {1, 3, 2, 5, 9, NAN};
    CHECK(svgplot_add(p, "first", x, y, 6, 0) == 0, "add");
    CHECK(svgplot_add(p, "second", x, y, 4, SVGPLOT_MARKERS) == 0, "add");
    char path[] = "/tmp/mf_svg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w+");
    CHECK(svgplot_write_file(p, f) == 0, "write");
    long len = ftell(f);
    rewind(f);
    char *doc = calloc((size_t)len + 1, 1);
    CHECK(fread(doc, 1, (size_t)len, f) == (size_t)len, "read back");
    fclose(f);
    remove(path);
    CHECK(!strncmp(doc, "<svg ", 5) && strstr(doc, "</svg>\n"), "document");
    CHECK(strstr(doc, "a &lt;title&gt; &amp; more") != NULL, "title escaped");
    CHECK(strstr(doc, ">first</text>") && strstr(doc, ">second</text>"), "legend");
    /* first: points 1,2,4,8 usable (x=0 skipped on log x, y=NaN skipped):
     * 4 markers + 1 legend marker; second: 4 + 1. One polyline + legend line
     * for the first series only. */
    CHECK(count(doc, "<circle") == 10, "markers %d", count(doc, "<circle"));
    CHECK(count(doc, "<polyline") == 1, "polylines %d", count(doc, "<polyline"));
    /* Deterministic. */
    char path2[] = "/tmp/mf_svg_XXXXXX";
    fd = mkstemp(path2);
    f = fdopen(fd, "w+");
    svgplot_write_file(p, f);
    rewind(f);
    char *doc2 = calloc((size_t)len + 1, 1);
    CHECK(fread(doc2, 1, (size_t)len, f) == (size_t)len && !memcmp(doc, doc2, (size_t)len),
          "same bytes");
    fclose(f);
    remove(path2);
    svgplot_free(p);
    p = svgplot_new("empty", "x", "y");
    f = tmpfile();
    CHECK(svgplot_write_file(p, f) == -1, "nothing to plot");
    fclose(f);
    svgplot_free(p);
    free(doc);
    free(doc2);
    return mf_test_done("test_svgplot");
}
