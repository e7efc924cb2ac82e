/*
 * A small JSON parser for the host tools (config.json, safetensors headers,
 * tokenizer.json, golden.json). Parses a whole document into a tree of
 * nodes held in one heap block owned by the mf_json_doc (host-only code may
 * allocate). Strings are decoded (escapes, \uXXXX with surrogate pairs) to
 * UTF-8 and NUL-terminated, with their length kept for embedded NULs.
 * Depth is bounded (MF_JSON_MAX_DEPTH) so hostile input cannot overflow the
 * stack.
 */
#ifndef MF_JSON_H
#define MF_JSON_H

#include <stddef.h>
#include <stdint.h>

#define MF_JSON_MAX_DEPTH 256

typedef enum {
    MF_JSON_NULL,
    MF_JSON_FALSE,
    MF_JSON_TRUE,
    MF_JSON_NUMBER,
    MF_JSON_STRING,
    MF_JSON_ARRAY,
    MF_JSON_OBJECT
} mf_json_type;

typedef struct mf_json mf_json;
struct mf_json {
    mf_json_type type;
    double number;
    const char *str;    /* STRING: decoded UTF-8, NUL-terminated */
    size_t str_len;
    const char *key;    /* the key when this node is an object member */
    size_t key_len;
    mf_json *child;     /* ARRAY/OBJECT: first element */
    mf_json *next;      /* next sibling */
    size_t count;       /* ARRAY/OBJECT: number of children */
};

typedef struct {
    mf_json *root;
    void *block;        /* everything, freed by mf_json_free */
    char error[160];    /* "line 3 column 7: expected ':'" on failure */
} mf_json_doc;

/* 0 on success; on failure -1 and doc->error says where and why. */
int mf_json_parse(mf_json_doc *doc, const char *text, size_t len);
void mf_json_free(mf_json_doc *doc);

/* Lookups; NULL when absent or of another type. */
const mf_json *mf_json_get(const mf_json *obj, const char *key);
const mf_json *mf_json_at(const mf_json *arr, size_t i);
/* Typed getters: return 0 and fill *out, or -1 when missing/wrong type. */
int mf_json_get_number(const mf_json *obj, const char *key, double *out);
int mf_json_get_string(const mf_json *obj, const char *key, const char **out);
int mf_json_get_bool(const mf_json *obj, const char *key, int *out);

/* Control bytes of s (< 0x20, 0x7f) become '?': error messages quote names
 * and values from the input, and the CLI prints each as exactly one line. */
void mf_one_line(char *s);

/* Reads a whole file into a NUL-terminated heap buffer; NULL on error. */
char *mf_read_file(const char *path, size_t *len);

#endif
