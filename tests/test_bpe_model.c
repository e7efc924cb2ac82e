/*
 * small-qwen3-moe-bpe end to end from TEXT (issue 7): the converter stores
 * its tokenizer.json in the image, and then
 *  - each golden prompt encodes to golden's `tokens`;
 *  - greedy decoding from those ids gives golden's greedy ids, and decoding
 *    them token by token (special tokens skipped) gives `greedy_text`;
 *  - `moeflash ppl --window 128` on the validation split (tokenized whole)
 *    is within 0.1% of golden's val_bits_per_token_fp32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port/posix/posix_port.h"
#include "../runtime/moeflash.h"
#include "../tools/lib/json.h"
#include "harness.h"

#define MODEL "tests/data/small-qwen3-moe-bpe"

static const char *BUILD = "build";

static uint32_t argmax(const float *l, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

static void check_case(mf_model *m, const mf_json *c, size_t idx)
{
    const char *prompt = NULL, *greedy_text = NULL;
    const mf_json *prompt_j = mf_json_get(c, "prompt"), *text_j = mf_json_get(c, "greedy_text");
    const mf_json *tokens = mf_json_get(c, "tokens"), *cont = mf_json_get(c, "greedy_continuation");
    CHECK(prompt_j && text_j && tokens && cont, "case %zu lacks a field", idx);
    if (!prompt_j || !text_j || !tokens || !cont) return;
    prompt = prompt_j->str;
    greedy_text = text_j->str;

    uint32_t ids[512], n = 0;
    int rc = mf_encode(m, prompt, prompt_j->str_len, ids, 512, &n);
    CHECK(rc == MF_OK && n == tokens->count, "case %zu: encode rc %d, %u ids, golden %zu", idx, rc,
          n, tokens->count);
    if (rc || n != tokens->count) return;
    int same = 1;
    for (uint32_t i = 0; i < n; i++) same &= ids[i] == (uint32_t)mf_json_at(tokens, i)->number;
    CHECK(same, "case %zu: prompt ids differ from golden tokens", idx);

    mf_reset(m);
    rc = mf_feed(m, ids, n);
    CHECK(rc == MF_OK, "case %zu: feed: %s", idx, mf_strerror(rc));
    if (rc) return;
    char text[4096];
    size_t tlen = 0;
    uint32_t matched = 0;
    for (size_t i = 0; i < cont->count; i++) {
        uint32_t tok = argmax(mf_logits(m), mf_vocab_size(m));
        if (tok == (uint32_t)mf_json_at(cont, i)->number) matched++;
        char buf[64];
        size_t len = 0;
        if (mf_decode_token(m, tok, buf, sizeof buf, &len) == MF_OK && !mf_token_is_special(m, tok) &&
            tlen + len < sizeof text) {
            memcpy(text + tlen, buf, len);
            tlen += len;
        }
        if (i + 1 < cont->count && mf_feed(m, &tok, 1) != MF_OK) break;
    }
    size_t flen = 0;
    char fl[8];
    if (mf_decode_flush(m, fl, sizeof fl, &flen) == MF_OK && tlen + flen < sizeof text) {
        memcpy(text + tlen, fl, flen);
        tlen += flen;
    }
    CHECK(matched == cont->count, "case %zu: %u of %zu greedy ids match", idx, matched, cont->count);
    CHECK(tlen == text_j->str_len && !memcmp(text, greedy_text, tlen),
          "case %zu: greedy text differs:\n  got    '%.*s'\n  golden '%s'", idx, (int)tlen, text,
          greedy_text);
}

int main(void)
{
    const char *b = getenv("BUILD");
    if (b && *b) BUILD = b;
    char dir[] = "/tmp/mf_bpe_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char img[512], val[512], cmd[2048];
    snprintf(img, sizeof img, "%s/model.img", dir);
    snprintf(val, sizeof val, "%s/val.txt", dir);
    snprintf(cmd, sizeof cmd, "%s/moeflash convert %s %s >/dev/null 2>&1", BUILD, MODEL, img);
    int rc = system(cmd);
    CHECK(rc == 0, "convert failed: %s", cmd);

    size_t glen = 0;
    char *gtext = mf_read_file(MODEL "/golden.json", &glen);
    mf_json_doc doc = {0};
    CHECK(gtext && mf_json_parse(&doc, gtext, glen) == 0, "golden.json: %s", doc.error);
    if (rc || !doc.root) return mf_test_done("test_bpe_model");

    mf_posix_port_state st;
    mf_port port;
    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = 512;
    size_t need = 0;
    void *arena = NULL;
    mf_model *m = NULL;
    rc = mf_posix_port_open(&port, &st, img);
    if (rc == MF_PORT_OK) rc = mf_arena_bytes(&port, &opt, &need);
    if (rc == MF_OK) arena = malloc(need);
    if (arena) rc = mf_init(&m, &port, &opt, arena, need);
    CHECK(m != NULL, "cannot open the image: %d", rc);
    if (m) {
        mf_info info;
        mf_model_info(m, &info);
        CHECK(info.has_tokenizer,
              "the image has no tokenizer section");
        const mf_json *cases = mf_json_get(doc.root, "cases");
        for (size_t i = 0; cases && i < cases->count; i++) check_case(m, mf_json_at(cases, i), i);
        mf_posix_port_close(&port);
    }
    free(arena);

    /* Validation split: the last 10% of the text's bytes, tokenized whole. */
    size_t tlen = 0;
    char *text = mf_read_file("tests/data/tinyshakespeare.txt", &tlen);
    FILE *f = text ? fopen(val, "wb") : NULL;
    size_t start = (size_t)((double)tlen * 0.9);
    CHECK(f && fwrite(text + start, 1, tlen - start, f) == tlen - start, "cannot write %s", val);
    if (f) fclose(f);
    free(text);
    double golden = 0;
    CHECK(mf_json_get_number(doc.root, "val_bits_per_token_fp32", &golden) == 0, "no golden ppl");
    snprintf(cmd, sizeof cmd, "%s/moeflash ppl %s --text %s --window 128 --quiet 2>/dev/null", BUILD,
             img, val);
    FILE *p = popen(cmd, "r");
    double got = -1;
    char unit[32] = "";
    CHECK(p && fscanf(p, "%lf bits/%31s", &got, unit) == 2, "ppl printed nothing: %s", cmd);
    if (p) pclose(p);
    double rel = fabs(got - golden) / golden;
    printf("small-qwen3-moe-bpe ppl %.6f bits/%s, golden %.6f, relative %.2e\n", got, unit, golden,
           rel);
    CHECK(!strcmp(unit, "token"), "ppl unit '%s', expected token", unit);
    CHECK(rel <= 1e-3, "ppl %.6f vs golden %.6f", got, golden);

    mf_json_free(&doc);
    free(gtext);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", dir);
    return mf_test_done("test_bpe_model");
}
