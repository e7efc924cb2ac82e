/* tools/lib/json.c: valid documents decode to the values written by hand
 * here; malformed ones fail with a line/column message. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../tools/lib/json.h"
#include "harness.h"

static int parses(const char *text)
{
    mf_json_doc d;
    int rc = mf_json_parse(&d, text, strlen(text));
    mf_json_free(&d);
    return rc == 0;
}

/* The error message of a malformed document (static buffer). */
static const char *error_of(const char *text)
{
    static char msg[160];
    mf_json_doc d;
    if (mf_json_parse(&d, text, strlen(text)) == 0) {
        mf_json_free(&d);
        return NULL;
    }
    memcpy(msg, d.error, sizeof msg);
    return msg;
}

static void test_values(void)
{
    const char *t = "{\"a\": 1.5e2, \"b\": [true, false, null, -0.25, 7], \"s\": \"x\\ny\\u00e9\\ud83d\\ude00\","
                    " \"nested\": {\"k\": {}}, \"empty\": [], \"z\": \"a\\u0000b\", \"esc\": \"\\\"\\\\\\/\\b\\f\\r\\t\"}";
    mf_json_doc d;
    CHECK(mf_json_parse(&d, t, strlen(t)) == 0, "%s", d.error);
    const mf_json *r = d.root;
    CHECK(r && r->type == MF_JSON_OBJECT && r->count == 7, "root");
    double v = 0;
    CHECK(mf_json_get_number(r, "a", &v) == 0 && v == 150.0, "a=%g", v);
    const mf_json *b = mf_json_get(r, "b");
    CHECK(b && b->type == MF_JSON_ARRAY && b->count == 5, "b");
    CHECK(mf_json_at(b, 0)->type == MF_JSON_TRUE, "b0");
    CHECK(mf_json_at(b, 1)->type == MF_JSON_FALSE, "b1");
    CHECK(mf_json_at(b, 2)->type == MF_JSON_NULL, "b2");
    CHECK(mf_json_at(b, 3)->number == -0.25, "b3");
    CHECK(mf_json_at(b, 4)->number == 7, "b4");
    CHECK(mf_json_at(b, 5) == NULL, "b5 out of range");
    const char *s = NULL;
    CHECK(mf_json_get_string(r, "s", &s) == 0, "s");
    /* x \n y, U+00E9 = C3 A9, U+1F600 = F0 9F 98 80 */
    CHECK(s && strcmp(s, "x\ny\xc3\xa9\xf0\x9f\x98\x80") == 0, "s decoded");
    CHECK(mf_json_get(r, "s")->str_len == 9, "s len %zu", mf_json_get(r, "s")->str_len);
    const mf_json *z = mf_json_get(r, "z");
    CHECK(z && z->str_len == 3 && memcmp(z->str, "a\0b", 3) == 0, "embedded NUL");
    CHECK(mf_json_get_string(r, "esc", &s) == 0 && strcmp(s, "\"\\/\b\f\r\t") == 0, "escapes");
    const mf_json *n = mf_json_get(r, "nested");
    CHECK(n && mf_json_get(n, "k") && mf_json_get(n, "k")->type == MF_JSON_OBJECT &&
              mf_json_get(n, "k")->count == 0, "nested");
    CHECK(mf_json_get(r, "missing") == NULL, "missing");
    int bv;
    CHECK(mf_json_get_bool(r, "a", &bv) == -1, "wrong type");
    CHECK(mf_json_get_number(r, "s", &v) == -1, "wrong type");
    mf_json_free(&d);

    const char *nums[] = {"0", "-0", "1e3", "1E-2", "123.456e+1", "-9007199254740993", "1e400"};
    double want[] = {0, -0.0, 1000, 0.01, 1234.56, -9007199254740992.0, HUGE_VAL};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        CHECK(mf_json_parse(&d, nums[i], strlen(nums[i])) == 0, "%s: %s", nums[i], d.error);
        CHECK(d.root && d.root->number == want[i], "%s -> %g", nums[i], d.root ? d.root->number : 0);
        mf_json_free(&d);
    }
    /* Not NUL-terminated: the number ends at len. */
    CHECK(mf_json_parse(&d, "42999", 2) == 0 && d.root->number == 42, "len-bounded number");
    mf_json_free(&d);
    CHECK(parses(" \n\t[1 , 2 ]\r\n "), "whitespace");
    /* Duplicate keys: the last wins (Python's json does the same). */
    CHECK(mf_json_parse(&d, "{\"k\":1,\"j\":2,\"k\":3}", 19) == 0 && d.root->count == 3, "dup parse");
    CHECK(mf_json_get_number(d.root, "k", &v) == 0 && v == 3, "dup: last wins (%g)", v);
    mf_json_free(&d);
}

static void test_malformed(void)
{
    const char *bad[] = {
        "",              "   ",           "{",           "[1,2",          "[1,]",
        "{\"a\":1,}",    "{\"a\" 1}",     "{a:1}",       "'x'",           "tru",
        "nul",           "01",            "1.",          ".5",            "-",
        "1e",            "+1",            "\"abc",       "\"a\\x\"",      "\"\\u12G4\"",
        "\"\\ud800\"",   "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"a\tb\"",  "[1] 2",
        "{\"a\":1}}",    "[\"a\" \"b\"]", "NaN",         "Infinity",      "[1,,2]",
        "\"\\u00g0\"",    "\"\\uG000\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *e = error_of(bad[i]);
        CHECK(e != NULL, "accepted malformed input [%s]", bad[i]);
        if (e) CHECK(strncmp(e, "line ", 5) == 0 && strstr(e, "column "), "message [%s]", e);
    }
    /* Line/column point at the problem. */
    const char *e = error_of("{\n  \"a\": 1,\n  \"b\" 2\n}");
    CHECK(e && strstr(e, "line 3 column 7"), "position: %s", e ? e : "(none)");
    e = error_of("[1,\n2,\n x]");
    CHECK(e && strstr(e, "line 3 column 2"), "position: %s", e ? e : "(none)");

    /* Depth bound: exactly MF_JSON_MAX_DEPTH nested arrays parse, one more fails. */
    size_t n = MF_JSON_MAX_DEPTH;
    char *deep = malloc(2 * n + 4);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = 0;
    CHECK(parses(deep), "depth %zu should parse", n);
    memset(deep, '[', n + 1);
    memset(deep + n + 1, ']', n + 1);
    deep[2 * n + 2] = 0;
    e = error_of(deep);
    CHECK(e && strstr(e, "nesting"), "depth %zu: %s", n + 1, e ? e : "(accepted)");
    free(deep);
    /* A huge unclosed nesting must fail cleanly, not crash. */
    size_t big = 1000000;
    char *huge = malloc(big + 1);
    memset(huge, '[', big);
    huge[big] = 0;
    CHECK(!parses(huge), "huge nesting");
    free(huge);
}

/* The parser reads only the len bytes it is given (RFC 8259 text ends at
 * len): a document cut inside a literal, an escape or a \u sequence fails
 * even when the bytes after len would complete it. The text is placed at
 * the very end of a readable page followed by an unreadable one, so a read
 * past len also faults. */
static void test_bounded(void)
{
    mf_json_doc d;
    CHECK(mf_json_parse(&d, "true", 3) == -1, "\"tru\" of \"true\" accepted");
    CHECK(mf_json_parse(&d, "false", 4) == -1, "\"fals\" of \"false\" accepted");
    CHECK(mf_json_parse(&d, "null", 3) == -1, "\"nul\" of \"null\" accepted");
    CHECK(mf_json_parse(&d, "[true]", 5) == -1, "\"[true\" accepted");

    long pg = sysconf(_SC_PAGESIZE);
    int fd = open("/dev/zero", O_RDONLY);
    char *map = fd < 0 ? MAP_FAILED : mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (fd >= 0) close(fd);
    CHECK(map != MAP_FAILED, "mmap");
    if (map == MAP_FAILED) return;
    CHECK(mprotect(map + pg, (size_t)pg, PROT_NONE) == 0, "guard page");
    const char *cut[] = {"\"ab\\", "\"\\u00", "\"\\ud83d", "\"\\ud83d\\", "\"\\ud83d\\u", "tru", "fals",
                         "nul", "[1,tr", "{\"k\":nu", "-", "1.", "1e+"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        size_t n = strlen(cut[i]);
        char *at = map + pg - n;
        memcpy(at, cut[i], n);
        int rc = mf_json_parse(&d, at, n);
        CHECK(rc == -1 && strncmp(d.error, "line ", 5) == 0, "cut document [%s]: rc %d [%s]", cut[i], rc, d.error);
        if (rc == 0) mf_json_free(&d);
    }
    munmap(map, (size_t)pg * 2);
}

static void test_file(void)
{
    size_t len = 0;
    char *text = mf_read_file("tests/data/arch-mixtral/config.json", &len);
    CHECK(text && len > 0 && strlen(text) == len, "read config.json");
    mf_json_doc d;
    CHECK(text && mf_json_parse(&d, text, len) == 0, "parse config.json: %s", d.error);
    const char *mt = NULL;
    CHECK(mf_json_get_string(d.root, "model_type", &mt) == 0 && strcmp(mt, "mixtral") == 0, "model_type");
    mf_json_free(&d);
    free(text);
    CHECK(mf_read_file("tests/data/no-such-file.json", &len) == NULL, "missing file");

    /* golden.json is the largest JSON we have; parse it whole. */
    text = mf_read_file("tests/data/arch-mixtral/golden.json", &len);
    CHECK(text != NULL, "read golden.json");
    if (text) {
        CHECK(mf_json_parse(&d, text, len) == 0, "parse golden.json: %s", d.error);
        const mf_json *cases = mf_json_get(d.root, "cases");
        CHECK(cases && cases->type == MF_JSON_ARRAY && cases->count > 0, "golden cases");
        mf_json_free(&d);
        free(text);
    }
}

int main(void)
{
    test_values();
    test_malformed();
    test_bounded();
    test_file();
    return mf_test_done("test_json");
}
