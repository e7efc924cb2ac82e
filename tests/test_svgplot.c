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
