/*
 * The firmware's command line: space-separated key=value pairs after the
 * program name, as semihosting's SYS_GET_CMDLINE gives them (QEMU's
 * -append). Separate from main.c so that the host can test and fuzz it
 * (tests/test_fw_cmdline.c, fuzz/fuzz_fw_cmdline.c): on a board it is the
 * one parser of outside input besides the image itself.
 */
#ifndef MF_BOARD_CMDLINE_H
#define MF_BOARD_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of prompt (and tokens of history for slide=). A board that changes
 * it sets it for every file (-D in FW_EXTRA_DEFS), not in board_config.h,
 * which cmdline.c does not see. */
#ifndef MF_MAX_PROMPT
#define MF_MAX_PROMPT 256
#endif

typedef struct {
    uint32_t tokens, ctx, slots, batch, slide;
    int policy, predictor; /* -1: the runtime's default */
    double temperature, top_p;
    uint64_t seed;
    uint32_t quiet;
    char prompt[MF_MAX_PROMPT + 1]; /* unescaped, NUL-terminated */
    size_t prompt_len;
    char image[256]; /* "": the board's own (memory-mapped) image */
} fw_args;

/* The keys, for the error message. */
#define FW_ARGS_KEYS "tokens image ctx slots batch policy predictor temperature top_p seed slide quiet prompt"

/* Parses cl over *a, whose fields hold the defaults; a key not given keeps
 * its default. Returns 0, or 2 (the firmware's exit status for bad
 * arguments) with *why naming the problem and *at, *at_len the text of the
 * argument at fault (inside cl). Every number is checked: a count that
 * does not fit 32 bits, a decimal with more than 15 digits, top_p outside
 * (0, 1], a name that is no policy or predictor are errors, never wrapped
 * or clamped. */
int fw_args_parse(fw_args *a, const char *cl, const char **why, const char **at, size_t *at_len);

#endif
