/*
 * libFuzzer harness: tools/lib/json.c. Parses the input; on success walks
 * the tree checking what json.h promises (counts equal the number of
 * children, strings NUL-terminated at str_len, object members keyed), and
 * exercises the lookup helpers. On failure the error message must be set.
 */
#include "fuzz_common.h"

#include "../tools/lib/json.h"

static size_t fuzz_json_walk(const mf_json *n, int depth)
{
    FUZZ_CHECK(depth <= MF_JSON_MAX_DEPTH + 1);
    size_t nodes = 1;
    switch (n->type) {
    case MF_JSON_STRING:
        FUZZ_CHECK(n->str != NULL);
        FUZZ_CHECK(n->str[n->str_len] == '\0');
        break;
    case MF_JSON_ARRAY:
    case MF_JSON_OBJECT: {
        size_t count = 0;
        for (const mf_json *c = n->child; c; c = c->next) {
            if (n->type == MF_JSON_OBJECT) {
                FUZZ_CHECK(c->key != NULL);
                FUZZ_CHECK(c->key[c->key_len] == '\0');
                /* Lookup by key finds a member with that key (the first
                 * one when duplicated). Keys with NULs can't be looked up. */
                if (strlen(c->key) == c->key_len) {
                    const mf_json *g = mf_json_get(n, c->key);
                    FUZZ_CHECK(g != NULL && g->key_len == c->key_len);
                }
            } else {
                FUZZ_CHECK(mf_json_at(n, count) == c);
            }
            count++;
            nodes += fuzz_json_walk(c, depth + 1);
        }
        FUZZ_CHECK(count == n->count);
        if (n->type == MF_JSON_ARRAY) FUZZ_CHECK(mf_json_at(n, count) == NULL);
        break;
    }
    case MF_JSON_NUMBER:
    case MF_JSON_NULL:
    case MF_JSON_TRUE:
    case MF_JSON_FALSE:
        break;
    default:
        FUZZ_CHECK(!"unknown node type");
    }
    return nodes;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    mf_json_doc doc;
    memset(&doc, 0x5A, sizeof doc); /* the parser must not rely on a zeroed doc */
    if (mf_json_parse(&doc, (const char *)data, size) == 0) {
        FUZZ_CHECK(doc.root != NULL);
        fuzz_json_walk(doc.root, 0);
        double d;
        const char *s;
        int b;
        (void)mf_json_get_number(doc.root, "a", &d);
        (void)mf_json_get_string(doc.root, "model_type", &s);
        (void)mf_json_get_bool(doc.root, "tie_word_embeddings", &b);
        mf_json_free(&doc);
    } else {
        FUZZ_CHECK(memchr(doc.error, '\0', sizeof doc.error) != NULL);
        FUZZ_CHECK(doc.error[0] != '\0');
    }
    return 0;
}
