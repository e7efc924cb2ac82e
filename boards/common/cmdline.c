#include "cmdline.h"

#include <string.h>

/* decimal digits; a value that does not fit in max is an error */
static uint64_t parse_uint(const char *s, const char *end, uint64_t max, int *ok)
{
    uint64_t v = 0;
    if (s == end) *ok = 0;
    for (; *ok && s < end; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10u) *ok = 0;
        else v = v * 10u + d;
    }
    return *ok ? v : 0;
}

static uint32_t parse_u32(const char *s, const char *end, int *ok)
{
    return (uint32_t)parse_uint(s, end, UINT32_MAX, ok);
}

/* digits[.digits], at most 15 of them: the digits as an integer over a power
 * of ten, both exact in a double, so the one rounding of the division gives
 * the double nearest the decimal, as the host's strtod does (no strtod here:
 * newlib's allocates). */
static double parse_decimal(const char *s, const char *end, int *ok)
{
    uint64_t digits = 0;
    double scale = 1.0;
    int n = 0, dot = 0;
    for (; s < end; s++) {
        if (*s == '.' && !dot) {
            dot = 1;
        } else if (*s >= '0' && *s <= '9' && n < 15) {
            digits = digits * 10u + (uint64_t)(*s - '0');
            n++;
            if (dot) scale *= 10.0;
        } else {
            *ok = 0;
            return 0.0;
        }
    }
    if (n == 0) *ok = 0;
    return (double)digits / scale;
}

/* a name of names[] (its index) or its number, below n */
static int parse_name(const char *s, const char *end, const char *const *names, uint32_t n, int *ok)
{
    for (uint32_t i = 0; i < n; i++)
        if (strlen(names[i]) == (size_t)(end - s) && memcmp(s, names[i], (size_t)(end - s)) == 0)
            return (int)i;
    return (int)parse_uint(s, end, n - 1, ok);
}

static const char *const policy_names[] = {"none", "lru", "lfu", "edgemoe"};
static const char *const predictor_names[] = {"none", "cooc", "lookahead", "combined"};

static int is_key(const char *key, size_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(key, name, klen) == 0;
}

static int fail_at(const char *why_text, const char *from, const char *to, const char **why, const char **at,
               size_t *at_len)
{
    *why = why_text;
    *at = from;
    *at_len = (size_t)(to - from);
    return 2;
}

int fw_args_parse(fw_args *a, const char *cl, const char **why, const char **at, size_t *at_len)
{
    *why = NULL;
    *at = cl;
    *at_len = 0;
    if (!cl) return 0;
    /* skip argv[0] (the program name QEMU puts first) */
    const char *p = cl;
    while (*p && *p != ' ') p++;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *key = p, *end = p;
        while (*end && *end != ' ') end++;
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (!eq) return fail_at("argument without '='", key, end, why, at, at_len);
        size_t klen = (size_t)(eq - key);
        const char *val = eq + 1;
        if (is_key(key, klen, "prompt")) {
            /* the rest of the line, spaces included */
            size_t n = 0;
            for (const char *s = val; *s; s++) {
                char c = *s;
                if (c == '\\' && s[1] == 'n') c = '\n', s++;
                else if (c == '\\' && s[1] == '\\') s++;
                if (n >= MF_MAX_PROMPT) return fail_at("prompt too long", key, key + strlen(key), why, at, at_len);
                a->prompt[n++] = c;
            }
            a->prompt[n] = 0;
            a->prompt_len = n;
            return 0;
        }
        int ok = 1;
        if (is_key(key, klen, "tokens")) a->tokens = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "ctx")) a->ctx = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "slots")) a->slots = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "batch")) a->batch = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "slide")) a->slide = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "quiet")) a->quiet = parse_u32(val, end, &ok);
        else if (is_key(key, klen, "policy")) a->policy = parse_name(val, end, policy_names, 4, &ok);
        else if (is_key(key, klen, "predictor")) a->predictor = parse_name(val, end, predictor_names, 4, &ok);
        else if (is_key(key, klen, "temperature")) a->temperature = parse_decimal(val, end, &ok);
        else if (is_key(key, klen, "top_p")) {
            a->top_p = parse_decimal(val, end, &ok);
            if (!(a->top_p > 0.0 && a->top_p <= 1.0)) ok = 0;
        } else if (is_key(key, klen, "seed")) {
            a->seed = parse_uint(val, end, UINT64_MAX, &ok);
        } else if (is_key(key, klen, "image")) {
            size_t n = (size_t)(end - val);
            if (n == 0 || n >= sizeof a->image) return fail_at("image path empty or too long", key, end, why, at, at_len);
            memcpy(a->image, val, n);
            a->image[n] = 0;
        } else {
            ok = 0;
        }
        if (!ok) return fail_at("bad argument", key, end, why, at, at_len);
        p = end;
    }
    return 0;
}
