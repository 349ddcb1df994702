/* The bash completion script: tools/docgen/extsnap.bash.in with the line
 * @COMMAND_DATA@ replaced by the commands, their options and what their
 * arguments and operands are, from the command tables. */
#ifndef ES_DOCGEN_COMPLETION_H
#define ES_DOCGEN_COMPLETION_H

/* Returns 0, or -1 after printing why. */
int completion_write(const char *template_path, const char *out_path);

#endif
