/* SVG line / scatter plots: see svgplot.h. */
#include "svgplot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    double *x, *y;
    size_t n;
    int style;
} series;

struct svgplot {
    char *title, *xlabel, *ylabel;
    int logx, logy, width, height;
    int xfixed, yfixed;
    double xlo, xhi, ylo, yhi;
    series *s;
    size_t ns;
};

static char *dupstr(const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

svgplot *svgplot_new(const char *title, const char *xlabel, const char *ylabel)
{
    svgplot *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->title = dupstr(title);
    p->xlabel = dupstr(xlabel);
    p->ylabel = dupstr(ylabel);
    p->width = 760;
    p->height = 460;
    if (!p->title || !p->xlabel || !p->ylabel) {
        svgplot_free(p);
        return NULL;
    }
    return p;
}

void svgplot_free(svgplot *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->ns; i++) {
        free(p->s[i].name);
        free(p->s[i].x);
        free(p->s[i].y);
    }
    free(p->s);
    free(p->title);
    free(p->xlabel);
    free(p->ylabel);
    free(p);
}

void svgplot_set_log_x(svgplot *p, int on) { p->logx = on != 0; }
void svgplot_set_log_y(svgplot *p, int on) { p->logy = on != 0; }
void svgplot_set_size(svgplot *p, int width, int height)
{
    if (width >= 200) p->width = width;
    if (height >= 150) p->height = height;
}
void svgplot_set_x_range(svgplot *p, double lo, double hi)
{
    p->xfixed = hi > lo;
    p->xlo = lo;
    p->xhi = hi;
}
void svgplot_set_y_range(svgplot *p, double lo, double hi)
{
    p->yfixed = hi > lo;
    p->ylo = lo;
    p->yhi = hi;
}

int svgplot_add(svgplot *p, const char *name, const double *x, const double *y, size_t n,
                int style)
{
    series *ns = realloc(p->s, sizeof *ns * (p->ns + 1));
    if (!ns) return -1;
    p->s = ns;
    series *s = &p->s[p->ns];
    memset(s, 0, sizeof *s);
    s->name = dupstr(name);
    s->x = malloc(sizeof(double) * (n ? n : 1));
    s->y = malloc(sizeof(double) * (n ? n : 1));
    if (!s->name || !s->x || !s->y) {
        free(s->name);
        free(s->x);
        free(s->y);
        return -1;
    }
    if (n) {
        memcpy(s->x, x, sizeof(double) * n);
        memcpy(s->y, y, sizeof(double) * n);
    }
    s->n = n;
    s->style = style ? style : (SVGPLOT_LINE | SVGPLOT_MARKERS);
    p->ns++;
    return 0;
}

static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double step = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0;
    return step * mag;
}

size_t svgplot_ticks(double lo, double hi, int log_axis, double *ticks, size_t cap)
{
    size_t n = 0;
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) return 0;
    if (log_axis) {
        if (lo <= 0) return 0;
        int d0 = (int)floor(log10(lo) + 1e-9), d1 = (int)ceil(log10(hi) - 1e-9);
        static const double m3[] = {1, 2, 5}, m1[] = {1};
        const double *m = d1 - d0 <= 3 ? m3 : m1;
        int nm = d1 - d0 <= 3 ? 3 : 1;
        for (int d = d0; d <= d1; d++)
            for (int j = 0; j < nm; j++) {
                double v = m[j] * pow(10.0, d);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) {
                    if (n < cap) ticks[n] = v;
                    n++;
                }
            }
        return n;
    }
    double step = nice_step(hi - lo, 6);
    double first = ceil(lo / step - 1e-9) * step;
    for (double v = first; v <= hi + step * 1e-9; v += step) {
        double r = fabs(v) < step * 1e-9 ? 0.0 : v;
        if (n < cap) ticks[n] = r;
        n++;
        if (n > 1000) break;
    }
    return n;
}

static void fmt_num(char *buf, size_t cap, double v)
{
    double a = fabs(v);
    if (v == 0) snprintf(buf, cap, "0");
    else if (a >= 1e6 || a < 1e-3) snprintf(buf, cap, "%.3g", v);
    else snprintf(buf, cap, "%.6g", v);
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
static const char *const DASHES[] = {"", "6,3", "2,3", "8,3,2,3"};

static int usable(const svgplot *p, double x, double y)
{
    if (!isfinite(x) || !isfinite(y)) return 0;
    if (p->logx && x <= 0) return 0;
    if (p->logy && y <= 0) return 0;
    return 1;
}

int svgplot_write_file(const svgplot *p, FILE *f)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < p->ns; i++)
        for (size_t j = 0; j < p->s[i].n; j++) {
            double x = p->s[i].x[j], y = p->s[i].y[j];
            if (!usable(p, x, y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (p->xfixed) xlo = p->xlo, xhi = p->xhi;
    if (p->yfixed) ylo = p->ylo, yhi = p->yhi;
    if (!(xhi >= xlo) || !(yhi >= ylo)) return -1;
    if (!p->yfixed && !p->logy) {
        if (ylo > 0) ylo = 0;
        if (yhi < 0) yhi = 0;
    }
    /* Widen degenerate ranges and round out to ticks. */
    if (xhi == xlo) {
        if (p->logx) xlo /= 2, xhi *= 2;
        else xlo -= 1, xhi += 1;
    }
    if (yhi == ylo) {
        if (p->logy) ylo /= 2, yhi *= 2;
        else ylo -= 1, yhi += 1;
    }
    if (!p->yfixed && !p->logy) {
        double st = nice_step(yhi - ylo, 6);
        ylo = floor(ylo / st + 1e-9) * st;
        yhi = ceil(yhi / st - 1e-9) * st;
    }
    if (p->logx && !p->xfixed) xlo /= 1.08, xhi *= 1.08;
    if (p->logy && !p->yfixed) ylo /= 1.08, yhi *= 1.08;

    /* Legend width from the longest name. */
    size_t maxname = 0;
    for (size_t i = 0; i < p->ns; i++) {
        size_t n = strlen(p->s[i].name);
        if (n > maxname) maxname = n;
    }
    double W = p->width, H = p->height;
    double legw = p->ns ? 40 + 7.0 * (double)maxname : 0;
    double ml = 72, mr = 20 + legw, mt = 40, mb = 56;
    double pw = W - ml - mr, ph = H - mt - mb;
    if (pw < 50) pw = 50, W = ml + mr + pw;
#define TX(x) (ml + pw * (p->logx ? (log10(x) - log10(xlo)) / (log10(xhi) - log10(xlo)) : ((x) - xlo) / (xhi - xlo)))
#define TY(y) (mt + ph - ph * (p->logy ? (log10(y) - log10(ylo)) / (log10(yhi) - log10(ylo)) : ((y) - ylo) / (yhi - ylo)))

    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" "
            "font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
               "font-weight=\"bold\">", ml + pw / 2);
    xml_text(f, p->title);
    fputs("</text>\n", f);

    double ticks[64];
    char buf[64];
    size_t nt = svgplot_ticks(xlo, xhi, p->logx, ticks, 64);
    if (nt > 64) nt = 64;
    for (size_t i = 0; i < nt; i++) {
        double x = TX(ticks[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e0e0e0\"/>\n", x,
                mt, x, mt + ph);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"black\"/>\n", x,
                mt + ph, x, mt + ph + 5);
        fmt_num(buf, sizeof buf, ticks[i]);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", x,
                mt + ph + 18, buf);
    }
    nt = svgplot_ticks(ylo, yhi, p->logy, ticks, 64);
    if (nt > 64) nt = 64;
    for (size_t i = 0; i < nt; i++) {
        double y = TY(ticks[i]);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e0e0e0\"/>\n", ml,
                y, ml + pw, y);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"black\"/>\n",
                ml - 5, y, ml, y);
        fmt_num(buf, sizeof buf, ticks[i]);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", ml - 8, y + 4,
                buf);
    }
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"black\"/>\n", ml, mt, pw, ph);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", ml + pw / 2, H - 14);
    xml_text(f, p->xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"18\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.2f)\">",
            mt + ph / 2, mt + ph / 2);
    xml_text(f, p->ylabel);
    fputs("</text>\n", f);

    fprintf(f, "<defs><clipPath id=\"area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
               "height=\"%.2f\"/></clipPath></defs>\n", ml - 4, mt - 4, pw + 8, ph + 8);
    for (size_t i = 0; i < p->ns; i++) {
        const series *s = &p->s[i];
        const char *col = COLORS[i % 10], *dash = DASHES[(i / 10) % 4];
        fprintf(f, "<g clip-path=\"url(#area)\">\n");
        if (s->style & SVGPLOT_LINE) {
            int open = 0;
            for (size_t j = 0; j < s->n; j++) {
                if (!usable(p, s->x[j], s->y[j])) {
                    if (open) fputs("\"/>\n", f);
                    open = 0;
                    continue;
                }
                if (!open)
                    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s%s%s "
                               "points=\"", col, *dash ? " stroke-dasharray=\"" : "", dash,
                            *dash ? "\"" : "");
                fprintf(f, "%s%.2f,%.2f", open ? " " : "", TX(s->x[j]), TY(s->y[j]));
                open = 1;
            }
            if (open) fputs("\"/>\n", f);
        }
        if (s->style & SVGPLOT_MARKERS)
            for (size_t j = 0; j < s->n; j++)
                if (usable(p, s->x[j], s->y[j]))
                    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n",
                            TX(s->x[j]), TY(s->y[j]), col);
        fputs("</g>\n", f);
        double ly = mt + 10 + 18.0 * (double)i, lx = ml + pw + 14;
        if (s->style & SVGPLOT_LINE)
            fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                       "stroke-width=\"1.8\"%s%s%s/>\n", lx, ly, lx + 22, ly, col,
                    *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
        if (s->style & SVGPLOT_MARKERS)
            fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", lx + 11, ly, col);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", lx + 28, ly + 4);
        xml_text(f, s->name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef TX
#undef TY
    return ferror(f) ? -1 : 0;
}

int svgplot_write(const svgplot *p, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int rc = svgplot_write_file(p, f);
    if (fclose(f)) rc = -1;
    return rc;
}
