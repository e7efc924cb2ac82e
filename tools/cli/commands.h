/* The subcommands of build/moeflash, one file each in tools/cli/. Each takes
 * the arguments after its name and returns the process exit status. */
#ifndef MF_CLI_COMMANDS_H
#define MF_CLI_COMMANDS_H

int cmd_convert(int argc, char **argv);  /* cmd_convert.c */
int cmd_inspect(int argc, char **argv);  /* cmd_inspect.c */
int cmd_generate(int argc, char **argv); /* cmd_generate.c */
int cmd_trace(int argc, char **argv);    /* cmd_trace.c */
int cmd_ppl(int argc, char **argv);      /* cmd_ppl.c */
int cmd_profile(int argc, char **argv);  /* cmd_profile.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */
int cmd_plan(int argc, char **argv);     /* cmd_plan.c */

#endif
