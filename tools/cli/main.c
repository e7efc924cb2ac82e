/* build/moeflash: the host command line. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"convert", cmd_convert,
     "convert HF_DIR OUT.img [--weights ENC] [--experts ENC|auto [--avg-bits B | --expert-budget "
     "BYTES] --calib FILE] [--resident ENC] [--fallback ENC] [--page-size N] [--group N] "
     "[--max-seq N]"},
    {"inspect", cmd_inspect, "inspect IMG [--json] [--verify]"},
    {"generate", cmd_generate,
     "generate IMG --prompt TEXT --tokens N [--temperature T] [--top-p P] [--seed S] [RUN]"},
    {"trace", cmd_trace, "trace IMG (--text FILE | --ids FILE) --out OUT.json [RUN]"},
    {"ppl", cmd_ppl, "ppl IMG (--text FILE | --ids FILE) [--window 256] [--windows N] [RUN]"},
    {"bench", cmd_bench,
     "bench IMG --text FILE [--tokens N] [--profile NAME] [--expert-ram BYTES | --slots N] "
     "[--policy P] [--predictor Q] [--json | --csv] [--trace-out FILE]"},
    {"profile", cmd_profile,
     "profile IMG --text FILE [--out OUT.img] [--max-tokens N] | profile IMG --eval FILE [--tokens N]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: moeflash COMMAND ...\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  moeflash %s\n", commands[i].usage);
    fprintf(f, "RUN options: [--context N] [--kv f32|f16|bf16|q8] [--slots N | --expert-ram BYTES] [--batch N]\n"
               "  [--policy none|lru|lfu|edgemoe|belady] [--predictor none|cooc|lookahead|combined]\n"
               "  [--pin N] [--prefetch N] [--prefetch-min P] [--verify 0|1|2] [--float-activations]\n"
               "  [--fallback-stall-ms MS] (read the image's low-bit copy when a miss would stall longer)\n"
               "  [--no-preempt] (demand reads wait behind speculative ones even if the port can cancel)\n"
               "  bench only: [--predictor oracle [--oracle-accuracy R]] (the true next routing from the\n"
               "  text's recorded trace, each guess right with probability R: a reference for predictors)\n"
               "ENC: f32 bf16 f16 q8 q4 q3 q2\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "moeflash: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
