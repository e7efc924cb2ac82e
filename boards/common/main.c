/*
 * The firmware application, the same on every board: open the model image
 * through the board's port, lay the runtime out in a static arena, feed the
 * prompt, generate (greedy, or sampled with temperature=) and print the
 * text on the console.
 *
 * Command line (semihosting SYS_GET_CMDLINE on the QEMU boards; the
 * board_config.h defaults when there is none), space-separated key=value,
 * parsed by cmdline.c:
 *   tokens=N      tokens to generate (default MF_DEFAULT_TOKENS)
 *   image=PATH    read the image from a host file (semihosting port)
 *   ctx=N         KV-cache positions (default MF_CONTEXT_LEN)
 *   slots=N       expert slots (default 0 = top_k)
 *   batch=N       prefill batch (default MF_PREFILL_BATCH)
 *   policy=P      expert cache policy: none, lru, lfu, edgemoe or its
 *                 mf_policy number (default the runtime's: lfu)
 *   predictor=Q   expert predictor: none, cooc, lookahead, combined or its
 *                 mf_predictor number (default MF_PREDICTOR, else the
 *                 runtime's: none)
 *   temperature=T sampling temperature, a decimal such as 0.8 (default 0:
 *                 greedy); top_p=P nucleus (default 1: off); seed=S the
 *                 sampler's seed (default 0). The same seed gives the host's
 *                 `moeflash generate --temperature T --top-p P --seed S` text.
 *   slide=N       when the context is full, start it again from the last N
 *                 tokens, fed anew (as `moeflash generate --slide N`);
 *                 default MF_SLIDE, 0 = stop there
 *   quiet=1       only the generated text on stdout
 *   prompt=TEXT   everything after "prompt=" up to the end of the line;
 *                 "\n" and "\\" are unescaped (must be the last key)
 * Exit status: 0 ok, 2 bad arguments, 3 image/port error, 4 arena too small,
 * 5 runtime error.
 */
#include <stdint.h>
#include <string.h>

#include "../../runtime/moeflash.h"
#include "../../runtime/tokenizer.h"
#include "board.h"
#include "board_config.h"
#include "cmdline.h"

#ifndef MF_EXPERT_SLOTS
#define MF_EXPERT_SLOTS 0
#endif
#ifndef MF_KV_ENCODING
#define MF_KV_ENCODING 0
#endif
#ifndef MF_PREFILL_BATCH
#define MF_PREFILL_BATCH 1
#endif
#ifndef MF_PREDICTOR
#define MF_PREDICTOR (-1) /* the runtime's default */
#endif
#ifndef MF_SLIDE
#define MF_SLIDE 0
#endif
/* BPE images: encode scratch in the arena, exact for any prompt that fits
 * the prompt buffer (fw_args.prompt: one pre-tokenized chunk is at most the whole prompt); the
 * tokenizer tables themselves stay in flash (mapped). */
#ifndef MF_ENCODE_SCRATCH
#define MF_ENCODE_SCRATCH MF_TOKENIZER_SCRATCH(MF_MAX_PROMPT)
#endif

/* The arena: a static array placed by the linker script (section .arena). */
static uint8_t mf_arena[MF_ARENA_BYTES] __attribute__((section(".arena"), aligned(32)));

/* the command line: options, prompt text, image path */
static fw_args args;
/* the BOS (if the model has one) and the prompt's ids; once the prompt is
 * fed, the last tokens of the sequence for slide=N */
static uint32_t prompt_ids[MF_MAX_PROMPT + 1];

static int quiet;

/* Called once after the prompt and once after each generated token: the
 * bench (boards/common/bench.sh) counts executed instructions between calls. */
__attribute__((noinline, used)) void mf_token_mark(uint32_t i)
{
    __asm__ volatile("" ::"r"(i) : "memory");
}

static void info(const char *s)
{
    if (!quiet) con_puts(s);
}

/* Moves the last n of the n_hist tokens in prompt_ids[1..] to its front;
 * returns n. */
static uint32_t keep_last(uint32_t n_hist, uint32_t n)
{
    memmove(prompt_ids + 1, prompt_ids + 1 + (n_hist - n), sizeof(uint32_t) * n);
    return n;
}

static int fail(const char *what, int err, int status)
{
    con_puts("\nmoeflash: ");
    con_puts(what);
    if (err) {
        con_puts(": ");
        con_puts(mf_strerror(err));
        con_puts(" (");
        con_puti(err);
        con_puts(")");
    }
    con_puts("\n");
    return status;
}

int main(void)
{
    args.tokens = MF_DEFAULT_TOKENS;
    args.ctx = MF_CONTEXT_LEN;
    args.slots = MF_EXPERT_SLOTS;
    args.batch = MF_PREFILL_BATCH;
    args.slide = MF_SLIDE;
    args.policy = -1;
    args.predictor = MF_PREDICTOR;
    args.top_p = 1.0;
    args.prompt_len = strlen(MF_DEFAULT_PROMPT);
    memcpy(args.prompt, MF_DEFAULT_PROMPT, args.prompt_len + 1);
    const char *why, *at;
    size_t at_len;
    if (fw_args_parse(&args, board_cmdline(), &why, &at, &at_len)) {
        con_puts("\nmoeflash: ");
        con_puts(why);
        con_puts(" '");
        board_write(at, at_len);
        con_puts("' (keys: " FW_ARGS_KEYS ")\n");
        return 2;
    }
    quiet = (int)args.quiet;
    const uint32_t tokens = args.tokens, slide = args.slide;

    static mf_port port;
    int r = board_open_image(&port, args.image[0] ? args.image : NULL);
    if (r != MF_PORT_OK) return fail("cannot open the model image", 0, 3);

    mf_options opt;
    mf_options_default(&opt);
    opt.context_len = args.ctx;
    opt.expert_slots = args.slots;
    opt.prefill_batch = args.batch;
    if (args.policy >= 0) opt.policy = args.policy;
    if (args.predictor >= 0) opt.predictor = args.predictor;
    if (MF_KV_ENCODING) opt.kv_encoding = MF_KV_ENCODING;
    opt.encode_scratch = MF_ENCODE_SCRATCH;

    size_t need = 0;
    r = mf_arena_bytes(&port, &opt, &need);
    if (r != MF_OK) return fail("mf_arena_bytes", r, 3);
    info("# " MF_BOARD_NAME ": image ");
    if (!quiet) con_putu(port.size);
    info(" bytes, arena ");
    if (!quiet) con_putu(need);
    info(" of ");
    if (!quiet) con_putu(sizeof mf_arena);
    info(" bytes\n");
    if (need > sizeof mf_arena) return fail("arena too small (raise MF_ARENA_BYTES)", MF_E_ARENA, 4);

    mf_model *m = 0;
    uint64_t t0 = board_now_ns();
    r = mf_init(&m, &port, &opt, mf_arena, sizeof mf_arena);
    if (r != MF_OK) return fail("mf_init", r, 5);

    /* Like transformers (and moeflash generate), a model with a BOS token
     * sees it first. */
    uint32_t bos = mf_token_bos(m), n_bos = bos != MF_NO_TOKEN;
    if (slide && (slide + n_bos >= mf_context_len(m) || slide >= MF_MAX_PROMPT))
        return fail("slide must be less than the context and than MF_MAX_PROMPT", 0, 2);
    uint32_t n_ids = 0;
    prompt_ids[0] = bos;
    r = mf_encode(m, args.prompt, args.prompt_len, prompt_ids + 1, MF_MAX_PROMPT, &n_ids);
    if (r != MF_OK) return fail("mf_encode", r, 5);
    if (n_ids > MF_MAX_PROMPT) return fail("prompt too long", 0, 2);

    uint64_t t1 = board_now_ns();
    if (n_ids + n_bos) {
        r = mf_feed(m, prompt_ids + 1 - n_bos, n_ids + n_bos);
        if (r != MF_OK) return fail("mf_feed (prompt)", r, 5);
    }
    uint64_t t2 = board_now_ns();

    /* prompt_ids[1..n_hist]: the sequence's last tokens (BOS in [0]) */
    uint32_t n_hist = n_ids, slides = 0, ctx_full = 0;
    mf_sampler smp;
    mf_sampler_init(&smp, (float)args.temperature, (float)args.top_p, args.seed);
    char out[32];
    uint32_t done = 0;
    int eos = 0;
    mf_token_mark(0);
    for (; done < tokens; done++) {
        uint32_t id;
        r = mf_sample(m, &smp, &id);
        if (r != MF_OK) return fail("mf_sample", r, 5);
        if (mf_token_is_eos(m, id)) { /* as transformers' generate() */
            eos = 1;
            break;
        }
        size_t len = 0;
        r = mf_decode_token(m, id, out, sizeof out, &len);
        if (r != MF_OK) return fail("mf_decode_token", r, 5);
        board_write(out, len);
        if (done + 1 == tokens) break; /* the last token need not be fed */
        if (slide) {
            if (n_hist == MF_MAX_PROMPT) n_hist = keep_last(n_hist, slide); /* room */
            prompt_ids[1 + n_hist++] = id;
        }
        if (mf_position(m) < mf_context_len(m)) {
            r = mf_feed(m, &id, 1);
            if (r != MF_OK) return fail("mf_feed", r, 5);
        } else if (!slide) {
            ctx_full = 1;
            break;
        } else {
            n_hist = keep_last(n_hist, slide);
            slides++;
            r = mf_reset(m);
            if (r == MF_OK) r = mf_feed(m, prompt_ids + 1 - n_bos, slide + n_bos);
            if (r != MF_OK) return fail("mf_feed (slide)", r, 5);
        }
        mf_token_mark(done + 1);
    }
    uint64_t t3 = board_now_ns();
    if (!quiet) board_write("\n", 1); /* quiet: exactly the generated bytes */
    if (ctx_full) info("# context full: stopped (slide=N goes on past it)\n");

    if (!quiet) {
        mf_stats st;
        mf_get_stats(m, &st);
        con_puts("# tokens ");
        con_putu(eos ? done : done + (tokens ? 1u : 0u));
        con_puts(" arena_used ");
        con_putu(mf_arena_used_bytes(m));
        con_puts(" flash_bytes ");
        con_putu(st.flash_bytes);
        con_puts(" resident_bytes ");
        con_putu(st.resident_bytes);
        con_puts(" hits ");
        con_putu(st.hits);
        con_puts(" misses ");
        con_putu(st.misses);
        con_puts(" prefetches ");
        con_putu(st.prefetches);
        con_puts(" flash_errors ");
        con_putu(st.flash_errors);
        con_puts(" retries ");
        con_putu(st.retries);
        con_puts(" slides ");
        con_putu(slides);
        con_puts(" stack_used ");
        con_putu(board_stack_used());
        con_puts("\n# host-time ms: init ");
        con_putf((double)(t1 - t0) / 1e6, 1);
        con_puts(" prompt ");
        con_putf((double)(t2 - t1) / 1e6, 1);
        con_puts(" generate ");
        con_putf((double)(t3 - t2) / 1e6, 1);
        con_puts("\n");
    }
    return 0;
}
