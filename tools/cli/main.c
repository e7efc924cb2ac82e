/* build/moeflash: the host command line. */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"convert", cmd_convert,
     "convert HF_DIR OUT.img [--weights ENC] [--experts ENC] [--resident ENC] [--fallback ENC]\n"
     "      [--page-size N] [--group N] [--max-seq N] [--eos ID[,ID...]|none]\n"
     "      [--experts auto (--avg-bits B | --expert-budget BYTES) --calib FILE [--calib-windows N]\n"
     "       [--sensitivity proxy|direct]]"},
    {"inspect", cmd_inspect, "inspect IMG [--json] [--verify]"},
    {"generate", cmd_generate,
     "generate IMG --prompt TEXT --tokens N [--temperature T] [--top-p P] [--seed S] [--ignore-eos]\n"
     "      [--slide KEEP] [--quiet] [RUN]\n"
     "      (--slide: when the context is full, start it again from the last KEEP tokens)"},
    {"trace", cmd_trace, "trace IMG (--text FILE | --ids FILE) --out OUT.json [RUN]"},
    {"ppl", cmd_ppl, "ppl IMG (--text FILE | --ids FILE) [--window 256] [--windows N] [--quiet] [RUN]"},
    {"bench", cmd_bench,
     "bench IMG --text FILE [--tokens N] [--profile NAME] [--json | --csv] [--trace-out FILE] [RUN]\n"
     "  moeflash bench --csv-header"},
    {"plan", cmd_plan,
     "plan IMG --ram BYTES [--profile NAME] [--text FILE [--tokens N]] [RUN]\n"
     "      (the expert slots each policy + predictor gets from an arena of BYTES, ranked by\n"
     "       simulated tokens/s with --text)"},
    {"profile", cmd_profile,
     "profile IMG --text FILE [--out OUT.img] [--max-tokens N] [--window N] [--no-lookahead] [RUN]\n"
     "  moeflash profile IMG --eval FILE [--tokens N] [--window N] [RUN]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: moeflash COMMAND ...\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  moeflash %s\n", commands[i].usage);
    fputs(CLI_RUN_OPTIONS, f);
    fprintf(f, "ENC: f32 bf16 f16 q8 q4 q3 q2; each command's --help prints its own usage\n");
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
