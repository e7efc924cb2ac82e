/*
 * A small SVG line / scatter plot writer (host tools; allocates).
 *
 *   svgplot *p = svgplot_new("tokens/s vs expert RAM", "expert RAM (KiB)", "tokens/s");
 *   svgplot_set_log_x(p, 1);
 *   svgplot_add(p, "lru", x, y, n, SVGPLOT_LINE | SVGPLOT_MARKERS);
 *   svgplot_write(p, "out.svg");
 *   svgplot_free(p);
 *
 * Axes with "nice" ticks (1-2-5 steps; decades, plus 2 and 5 when the range
 * is short, on a log axis), grid lines, a title, axis labels and a legend to
 * the right of the plot area. Series get distinct colours (and dash patterns
 * after the first 10). Points with a non-finite coordinate (or <= 0 on a log
 * axis) are skipped and break a line. The output is deterministic (same
 * input, same bytes).
 */
#ifndef MF_TOOLS_SVGPLOT_H
#define MF_TOOLS_SVGPLOT_H

#include <stddef.h>
#include <stdio.h>

enum { SVGPLOT_LINE = 1, SVGPLOT_MARKERS = 2 };

typedef struct svgplot svgplot;

/* NULL on out of memory. Strings are copied. */
svgplot *svgplot_new(const char *title, const char *xlabel, const char *ylabel);
void svgplot_free(svgplot *p);

void svgplot_set_log_x(svgplot *p, int on);
void svgplot_set_log_y(svgplot *p, int on);
void svgplot_set_size(svgplot *p, int width, int height); /* default 760 x 460 */
/* Fix an axis range (default: from the data; y includes 0 on a linear axis). */
void svgplot_set_x_range(svgplot *p, double lo, double hi);
void svgplot_set_y_range(svgplot *p, double lo, double hi);

/* Adds a series (the points are copied). style: SVGPLOT_LINE and/or
 * SVGPLOT_MARKERS (0 means both). Returns 0, or -1 on out of memory. */
int svgplot_add(svgplot *p, const char *name, const double *x, const double *y, size_t n,
                int style);

/* Writes the document. Returns 0, or -1 (I/O error, nothing to plot). */
int svgplot_write_file(const svgplot *p, FILE *f);
int svgplot_write(const svgplot *p, const char *path);

/* The tick values a linear axis over [lo, hi] gets (at most cap written);
 * returns the count. Exposed for tests. */
size_t svgplot_ticks(double lo, double hi, int log_axis, double *ticks, size_t cap);

#endif
