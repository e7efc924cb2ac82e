/* NFC (UAX #15): decompose canonically, reorder combining marks by class,
 * compose, one stretch between NFC_QC=Yes starters at a time. */
#include "unicode_nfc.h"

#include "unicode_tables.h"

#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)

static uint32_t run_value(const uint32_t *runs, uint32_t n, uint32_t cp)
{
    uint32_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((runs[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return runs[lo] & 0xFF;
}

static uint32_t ccc(uint32_t cp)
{
    if (cp < 0x300) return 0;
    return run_value(mf_unicode_ccc_runs, mf_unicode_n_ccc_runs, cp);
}

static int qc_yes(uint32_t cp)
{
    if (cp < 0x300) return 1;
    return run_value(mf_unicode_nfcqc_runs, mf_unicode_n_nfcqc_runs, cp) == 0;
}

/* UTF-8 decode of one character (strict); 0 length never; cp = -1 for an invalid byte. */
static size_t dec(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t l;
    uint32_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        l = 2;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        l = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        l = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        c &= 0x07;
    } else {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    if (n < l) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    for (size_t k = 1; k < l; k++) {
        uint32_t b = s[k];
        if (b < lo || b > hi) {
            *cp = 0xFFFFFFFFu;
            return 1;
        }
        lo = 0x80;
        hi = 0xBF;
        c = c << 6 | (b & 0x3F);
    }
    *cp = c;
    return l;
}

int mf_unicode_nfc_boundary(uint32_t cp) { return qc_yes(cp) && ccc(cp) == 0; }

int mf_unicode_nfc_quick(const uint8_t *s, size_t n)
{
    uint32_t last = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            last = 0;
            i++;
            continue;
        }
        uint32_t cp;
        i += dec(s + i, n - i, &cp);
        if (cp == 0xFFFFFFFFu) {
            last = 0;
            continue;
        }
        uint32_t c = ccc(cp);
        if (c && last > c) return 0;
        if (!qc_yes(cp)) return 0;
        last = c;
    }
    return 1;
}

static int find_decomp(uint32_t cp, uint32_t *a, uint32_t *b)
{
    uint32_t lo = 0, hi = mf_unicode_n_decomp;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        uint32_t v = mf_unicode_decomp[mid][0];
        if (v == cp) {
            *a = mf_unicode_decomp[mid][1];
            *b = mf_unicode_decomp[mid][2];
            return 1;
        }
        if (v < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    uint32_t lo = 0, hi = mf_unicode_n_comp;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const uint32_t *e = mf_unicode_comp[mid];
        if (e[0] == a && e[1] == b) return e[2];
        if (e[0] < a || (e[0] == a && e[1] < b))
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

typedef struct {
    uint32_t cp[MF_NFC_MAX_RUN + 8];
    uint8_t cc[MF_NFC_MAX_RUN + 8];
    uint32_t n;
    uint8_t *out;
    size_t cap, len;
    int overflow;
} nfc_state;

static void decompose(nfc_state *st, uint32_t cp, int depth)
{
    uint32_t a, b;
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t si = cp - S_BASE;
        decompose(st, L_BASE + si / N_COUNT, depth + 1);
        decompose(st, V_BASE + (si % N_COUNT) / T_COUNT, depth + 1);
        if (si % T_COUNT) decompose(st, T_BASE + si % T_COUNT, depth + 1);
        return;
    }
    if (depth < 8 && cp >= 0xC0 && find_decomp(cp, &a, &b)) {
        decompose(st, a, depth + 1);
        if (b) decompose(st, b, depth + 1);
        return;
    }
    if (st->n < sizeof st->cp / sizeof st->cp[0]) {
        st->cp[st->n] = cp;
        st->cc[st->n] = (uint8_t)ccc(cp);
        st->n++;
    }
}

static void put(nfc_state *st, uint8_t b)
{
    if (st->out) {
        if (st->len < st->cap)
            st->out[st->len] = b;
        else
            st->overflow = 1;
    }
    st->len++;
}

static void put_cp(nfc_state *st, uint32_t c)
{
    if (c < 0x80) {
        put(st, (uint8_t)c);
    } else if (c < 0x800) {
        put(st, (uint8_t)(0xC0 | c >> 6));
        put(st, (uint8_t)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        put(st, (uint8_t)(0xE0 | c >> 12));
        put(st, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
        put(st, (uint8_t)(0x80 | (c & 0x3F)));
    } else {
        put(st, (uint8_t)(0xF0 | c >> 18));
        put(st, (uint8_t)(0x80 | ((c >> 12) & 0x3F)));
        put(st, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
        put(st, (uint8_t)(0x80 | (c & 0x3F)));
    }
}

static void flush(nfc_state *st)
{
    uint32_t n = st->n;
    if (!n) return;
    /* canonical ordering: stable sort of each run of non-starters by class */
    for (uint32_t i = 1; i < n; i++) {
        uint32_t c = st->cp[i];
        uint8_t k = st->cc[i];
        if (!k) continue;
        uint32_t j = i;
        while (j > 0 && st->cc[j - 1] > k) {
            st->cp[j] = st->cp[j - 1];
            st->cc[j] = st->cc[j - 1];
            j--;
        }
        st->cp[j] = c;
        st->cc[j] = k;
    }
    /* canonical composition */
    uint32_t starter = 0, out = 1;
    int have_starter = st->cc[0] == 0;
    uint32_t last = have_starter ? 0 : 256;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t c = st->cp[i], k = st->cc[i], comp;
        if (have_starter && (last < k || last == 0) && (comp = compose(st->cp[starter], c)) != 0 &&
            !(last == 0 && out != starter + 1)) {
            st->cp[starter] = comp;
            continue;
        }
        if (k == 0) {
            starter = out;
            have_starter = 1;
        }
        last = k;
        st->cp[out] = c;
        st->cc[out] = (uint8_t)k;
        out++;
    }
    for (uint32_t i = 0; i < out; i++) put_cp(st, st->cp[i]);
    st->n = 0;
}

size_t mf_unicode_nfc(const uint8_t *s, size_t n, uint8_t *out, size_t cap)
{
    nfc_state st;
    st.n = 0;
    st.out = out;
    st.cap = cap;
    st.len = 0;
    st.overflow = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80 && (i + 1 >= n || s[i + 1] < 0x80)) {
            /* ASCII followed by ASCII: a boundary on both sides */
            flush(&st);
            put(&st, s[i]);
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = dec(s + i, n - i, &cp);
        if (cp == 0xFFFFFFFFu) {
            flush(&st);
            put(&st, s[i]);
            i += l;
            continue;
        }
        if (qc_yes(cp) && ccc(cp) == 0) flush(&st);
        if (st.n + 8 > MF_NFC_MAX_RUN) flush(&st);
        decompose(&st, cp, 0);
        i += l;
    }
    flush(&st);
    return st.overflow ? (size_t)-1 : st.len;
}
