/*
 * Shared by the run commands (generate, trace, ppl, profile, bench): option
 * parsing for the runtime settings and opening an image through the POSIX
 * file port into a heap arena (host tools may allocate; the runtime itself
 * never does). --help handling is shared by every command.
 */
#ifndef MF_CLI_COMMON_H
#define MF_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "../../port/posix/posix_port.h"
#include "../../port/sim/sim_port.h"
#include "../../runtime/moeflash.h"

typedef struct {
    mf_posix_port_state st;
    mf_port port;
    mf_options opt;
    uint64_t expert_ram;  /* --expert-ram: bytes for expert slots (0 = unset) */
    void *arena;
    size_t arena_bytes;
    mf_model *m;
    int open;
} cli_model;

/* Strict number parsing: the whole string must be a number in range. */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_f(const char *s, double *out);

/* If argv[*i] is a runtime option (--slots N, --expert-ram BYTES,
 * --context N, --batch N, --verify 0|1|2, --policy none|lru|lfu|edgemoe|belady,
 * --predictor none|cooc|lookahead|combined, --pin N, --prefetch N,
 * --float-activations, --fallback-stall-ms MS) consume it
 * (and its value) and
 * return 1; 0 when it is not one; -1 after printing an error. */
int cli_runtime_option(const char *cmd, int argc, char **argv, int *i, cli_model *cm);

/* The runtime options cli_runtime_option takes, one paragraph for
 * `moeflash --help` and each run command's --help, so the two cannot drift. */
extern const char CLI_RUN_OPTIONS[];

/* 1 when a is --help or -h, after printing usage on stdout (a request, not
 * a mistake: stdout and exit status 0); else 0. */
int cli_help(const char *a, const char *usage);

/* An argument a run command did not recognise: --help or -h prints its usage
 * and CLI_RUN_OPTIONS; the image path the first time; an unknown option or a
 * second path prints an error. CLI_GO_ON when parsing goes on, else the exit
 * status to return (0 after help, 2 after an error). */
#define CLI_GO_ON (-1)
int cli_positional(const char *cmd, const char *a, const char **img, const char *usage);

/* The value after argv[*i], or NULL after printing an error. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* Opens the image, sizes and allocates the arena, mf_init. Prints one line
 * on stderr and returns non-zero on failure. */
/* --context, --slots and --expert-ram against the image: an error naming the
 * option (the runtime would only say MF_E_ARG) and 1, else 0; turns
 * --expert-ram into opt.expert_slots. */
int cli_check_options(const char *cmd, const mf_info *info, cli_model *cm);
int cli_open(const char *cmd, const char *path, cli_model *cm);
void cli_close(cli_model *cm);

/* Reads a whole file; prints an error and returns NULL on failure. */
char *cli_read_file(const char *cmd, const char *path, size_t *len);

/* The tokens of a run: the text of text_path through the model's tokenizer,
 * or, when ids_path is set, its whitespace-separated ids (each checked
 * against the vocabulary). Heap array in *ids; prints one line and returns
 * -1 on failure (also for an empty input). */
int cli_load_tokens(const char *cmd, cli_model *cm, const char *text_path, const char *ids_path,
                    uint32_t **ids, uint32_t *n);

double cli_now(void);

/* The simulator's board profile of that name, or NULL after printing the
 * known names. */
const mf_sim_profile *cli_profile(const char *cmd, const char *name);

/* How `moeflash bench` feeds a text (teacher forcing): windows of the
 * context (rounded down to a whole number of prefill batches; the context
 * is reset between windows), each fed in calls of `sub` tokens. Prints an
 * error and returns 1 when the context is shorter than a batch. */
int cli_feed_windows(const char *cmd, const mf_info *mi, uint32_t *window, uint32_t *sub);

/* On a model with a BOS token, the stream a teacher-forced run feeds in
 * windows of W from an empty context: the text's ids in pieces of W - 1,
 * each after a BOS, so that every window starts as a generation does.
 * Replaces *ids (heap) and *T; nothing changes without a BOS. Prints an
 * error and returns 1 when W < 2 would leave no room for the text. */
int cli_bos_windows(const char *cmd, const mf_model *m, uint32_t W, uint32_t **ids, uint32_t *T);

/* Feeds ids[0..T) so, adding to *nll_bits the loss (bits) of each next
 * token within its window and counting them in *nll_n. *window_base (when
 * not NULL) holds the first token of the window being fed. logits: room
 * for sub x V floats. 0 or the runtime's error. */
int cli_teacher_force(mf_model *m, const uint32_t *ids, uint32_t T, uint32_t window, uint32_t sub,
                      uint32_t V, float *logits, uint32_t *window_base, double *nll_bits,
                      uint64_t *nll_n);

#endif
