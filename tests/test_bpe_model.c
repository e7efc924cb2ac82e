/*
 * small-qwen3-moe-bpe end to end from TEXT (issue 7): the converter stores
 * its tokenizer.json in the image, and then
 *  - each golden prompt encodes to golden's `tokens`;
 *  - greedy decoding from those ids gives golden's greedy ids, and decoding
 *    them token by token (special tokens skipped) gives `greedy_text`;
 *  - `moeflash ppl --window 128` on the validation split (tokenized whole)
 *    is within 0.1% of golden's val_bits_per_token_fp32;
 *  - the end-of-sequence id of config.json is the image's only one, and
 *    `moeflash generate` prints golden's greedy_text (it never meets it),
 *    stops before printing anything when `convert --eos` names the first
 *    greedy token, and goes on with --ignore-eos.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* `trace --ids` and `ppl --ids` take ids directly: the trace of a golden
 * case's ids matches golden's logits and experts, and ppl over the ids
 * equals ppl over the prompt text they encode. */
static void check_ids_commands(const char *img, const char *dir, const mf_json *c)
{
    const mf_json *tokens = mf_json_get(c, "tokens"), *prompt = mf_json_get(c, "prompt");
    const mf_json *logits = mf_json_get(c, "logits"), *topk = mf_json_get(c, "topk_experts");
    if (!tokens || !prompt || !logits || !topk) {
        CHECK(0, "golden case lacks tokens/prompt/logits/topk_experts");
        return;
    }
    char ids_path[512], text_path[512], out_path[512], cmd[2048];
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", dir);
    snprintf(text_path, sizeof text_path, "%s/prompt.txt", dir);
    snprintf(out_path, sizeof out_path, "%s/trace.json", dir);
    FILE *f = fopen(ids_path, "w"), *t = fopen(text_path, "wb");
    if (!f || !t) {
        CHECK(0, "cannot write %s", dir);
        if (f) fclose(f);
        if (t) fclose(t);
        return;
    }
    for (size_t i = 0; i < tokens->count; i++)
        fprintf(f, "%s%.0f", i % 16 ? " " : "\n", mf_json_at(tokens, i)->number);
    fputc('\n', f);
    fclose(f);
    fwrite(prompt->str, 1, prompt->str_len, t);
    fclose(t);

    snprintf(cmd, sizeof cmd, "%s/moeflash trace %s --ids %s --out %s 2>/dev/null", BUILD, img,
             ids_path, out_path);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    size_t len = 0;
    char *json = mf_read_file(out_path, &len);
    mf_json_doc doc = {0};
    CHECK(json && mf_json_parse(&doc, json, len) == 0, "trace output: %s", doc.error);
    const mf_json *tl = doc.root ? mf_json_get(doc.root, "logits") : NULL;
    const mf_json *te = doc.root ? mf_json_get(doc.root, "experts") : NULL;
    CHECK(tl && te && tl->count == tokens->count, "trace output lacks logits/experts");
    if (tl && te && tl->count == tokens->count) {
        double worst = 0;
        size_t sets_differ = 0;
        for (size_t p = 0; p < tokens->count; p++) {
            const mf_json *g = mf_json_at(logits, p), *o = mf_json_at(tl, p);
            double mx = 0, d = 0;
            for (size_t j = 0; j < g->count; j++) {
                double gv = mf_json_at(g, j)->number;
                if (fabs(gv) > mx) mx = fabs(gv);
                if (fabs(gv - mf_json_at(o, j)->number) > d) d = fabs(gv - mf_json_at(o, j)->number);
            }
            if (d / mx > worst) worst = d / mx;
            for (size_t l = 0; l < te->count; l++) {
                const mf_json *ge = mf_json_at(mf_json_at(topk, l), p);
                const mf_json *oe = mf_json_at(mf_json_at(te, l), p);
                for (size_t a = 0; a < ge->count; a++) {
                    int found = 0;
                    for (size_t b = 0; b < oe->count; b++)
                        found |= mf_json_at(ge, a)->number == mf_json_at(oe, b)->number;
                    sets_differ += !found;
                }
            }
        }
        printf("trace --ids: max relative logit error %.2e\n", worst);
        CHECK(worst <= 1e-4, "trace --ids logits off by %.2e of max", worst);
        CHECK(sets_differ == 0, "trace --ids: %zu experts differ from golden", sets_differ);
    }
    mf_json_free(&doc);
    free(json);

    char a[256] = "", b[256] = "";
    snprintf(cmd, sizeof cmd, "%s/moeflash ppl %s --ids %s --window 8 --quiet 2>/dev/null", BUILD,
             img, ids_path);
    FILE *p = popen(cmd, "r");
    if (p && !fgets(a, sizeof a, p)) a[0] = 0;
    if (p) pclose(p);
    snprintf(cmd, sizeof cmd, "%s/moeflash ppl %s --text %s --window 8 --quiet 2>/dev/null", BUILD,
             img, text_path);
    p = popen(cmd, "r");
    if (p && !fgets(b, sizeof b, p)) b[0] = 0;
    if (p) pclose(p);
    CHECK(a[0] && !strcmp(a, b), "ppl --ids '%s' vs ppl --text '%s'", a, b);

    snprintf(cmd, sizeof cmd, "echo '1 2 999999' > %s && %s/moeflash ppl %s --ids %s 2>/dev/null",
             ids_path, BUILD, img, ids_path);
    int rc = system(cmd);
    CHECK(rc != 0 && WIFEXITED(rc) && WEXITSTATUS(rc) < 128, "an id past the vocabulary is accepted");
}

/* Runs argv (no shell, so the prompt keeps its newlines) with stdout and
 * stderr to files; the exit status, or -1. */
static int run(char *const argv[], const char *out, const char *err)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "wb", stdout) || !freopen(err, "wb", stderr)) _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static void check_eos(mf_model *m, const char *img, const char *dir, const mf_json *c)
{
    size_t clen = 0;
    char *ctext = mf_read_file(MODEL "/config.json", &clen);
    mf_json_doc cd = {0};
    double eos = -1;
    CHECK(ctext && mf_json_parse(&cd, ctext, clen) == 0 &&
              mf_json_get_number(cd.root, "eos_token_id", &eos) == 0,
          "config.json has no numeric eos_token_id");
    mf_json_free(&cd);
    free(ctext);
    mf_info info;
    mf_model_info(m, &info);
    uint32_t n_eos = 0, which = 0;
    for (uint32_t id = 0; id < info.vocab; id++)
        if (mf_token_is_eos(m, id)) n_eos++, which = id;
    CHECK(n_eos == 1 && (double)which == eos, "%u eos ids (last %u), config.json says %.0f", n_eos,
          which, eos);
    CHECK(!mf_token_is_eos(m, info.vocab) && !mf_token_is_eos(NULL, which), "is_eos out of range");

    const mf_json *prompt = mf_json_get(c, "prompt"), *cont = mf_json_get(c, "greedy_continuation");
    const mf_json *text = mf_json_get(c, "greedy_text");
    if (!prompt || !cont || !text || !cont->count) {
        CHECK(0, "golden case lacks prompt/greedy_continuation/greedy_text");
        return;
    }
    char exe[512], n[32], out[512], err[512], img2[512], first[32];
    snprintf(exe, sizeof exe, "%s/moeflash", BUILD);
    snprintf(n, sizeof n, "%zu", cont->count);
    snprintf(out, sizeof out, "%s/gen.out", dir);
    snprintf(err, sizeof err, "%s/gen.err", dir);
    snprintf(img2, sizeof img2, "%s/eos.img", dir);
    snprintf(first, sizeof first, "%.0f", mf_json_at(cont, 0)->number);
    char *gen[] = {exe, "generate", (char *)img, "--prompt", (char *)prompt->str, "--tokens", n, NULL};
    CHECK(run(gen, out, err) == 0, "generate failed");
    size_t olen = 0;
    char *o = mf_read_file(out, &olen);
    CHECK(o && olen == text->str_len && !memcmp(o, text->str, olen),
          "generate printed %zu bytes, not golden's greedy_text (%zu)", olen, text->str_len);
    free(o);

    char *conv[] = {exe, "convert", MODEL, img2, "--eos", first, NULL};
    CHECK(run(conv, out, err) == 0, "convert --eos %s failed", first);
    char *gen2[] = {exe, "generate", img2, "--prompt", (char *)prompt->str, "--tokens", n, NULL};
    CHECK(run(gen2, out, err) == 0, "generate with eos %s failed", first);
    o = mf_read_file(out, &olen);
    CHECK(o && olen == 0, "generate went past the eos token: %zu bytes", o ? olen : 0);
    free(o);
    o = mf_read_file(err, &olen);
    CHECK(o && strstr(o, "0 tokens") && strstr(o, "stopped at end-of-sequence"),
          "generate does not say it stopped: %s", o ? o : "");
    free(o);
    char *gen3[] = {exe, "generate", img2, "--prompt", (char *)prompt->str, "--tokens", n, "--ignore-eos", NULL};
    CHECK(run(gen3, out, err) == 0, "generate --ignore-eos failed");
    o = mf_read_file(out, &olen);
    CHECK(o && olen == text->str_len && !memcmp(o, text->str, olen),
          "generate --ignore-eos printed %zu bytes, not greedy_text", olen);
    free(o);

    char *bad[] = {exe, "convert", MODEL, img2, "--eos", "1024", NULL};
    CHECK(run(bad, out, err) == 1, "--eos past the vocabulary accepted");
    o = mf_read_file(err, &olen);
    CHECK(o && strstr(o, "vocabulary size 1024"), "--eos 1024 message: %s", o ? o : "");
    free(o);
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
        if (cases && cases->count) check_eos(m, img, dir, mf_json_at(cases, 0));
        mf_posix_port_close(&port);
    }
    free(arena);
    const mf_json *cases = mf_json_get(doc.root, "cases");
    if (cases && cases->count) check_ids_commands(img, dir, mf_json_at(cases, cases->count - 1));

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
